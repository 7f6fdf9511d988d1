"""Which design files we accept, what they really contain, and safe names and XML for them.

Pure: takes bytes / names, returns dataclasses or raises a `FileContentError` whose message can be
shown to the uploader as it is.
"""

from __future__ import annotations

import io
import posixpath
import re
import unicodedata
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn, Protocol
from xml.parsers import expat

if TYPE_CHECKING:
    from fablab.domain.upload_budget import Budget


class FileContentError(ValueError):
    """A file was refused or could not be read; `str(err)` is a message for the uploader."""


class UnsafeFileError(FileContentError):
    """The name, type or content is not acceptable (mismatch, traversal, zip bomb, DOCTYPE...)."""


class MetadataError(FileContentError):
    """The file has the right type but is corrupt or truncated, so no metadata can be read."""


@dataclass(frozen=True)
class FileKind:
    kind: str  # mesh, cad, vector, gcode, document, image, text
    label: str  # what to call it on a page, e.g. "STL mesh"
    mime: str  # Content-Type to serve it with (always as an attachment)


# Extension (lower case, with dot) -> kind. The allow-list: anything else is refused.
ALLOWED: dict[str, FileKind] = {
    ".stl": FileKind("mesh", "STL mesh", "model/stl"),
    ".3mf": FileKind("mesh", "3MF model", "model/3mf"),
    ".obj": FileKind("mesh", "OBJ mesh", "model/obj"),
    ".step": FileKind("cad", "STEP model", "model/step"),
    ".stp": FileKind("cad", "STEP model", "model/step"),
    ".svg": FileKind("vector", "SVG drawing", "image/svg+xml"),
    ".dxf": FileKind("vector", "DXF drawing", "image/vnd.dxf"),
    ".gcode": FileKind("gcode", "G-code", "text/x-gcode"),
    ".gco": FileKind("gcode", "G-code", "text/x-gcode"),
    ".g": FileKind("gcode", "G-code", "text/x-gcode"),
    ".nc": FileKind("gcode", "G-code (CNC)", "text/x-gcode"),
    ".pdf": FileKind("document", "PDF document", "application/pdf"),
    ".png": FileKind("image", "PNG image", "image/png"),
    ".jpg": FileKind("image", "JPEG image", "image/jpeg"),
    ".jpeg": FileKind("image", "JPEG image", "image/jpeg"),
    ".webp": FileKind("image", "WebP image", "image/webp"),
    ".md": FileKind("text", "Markdown text", "text/markdown; charset=utf-8"),
    ".txt": FileKind("text", "Text", "text/plain; charset=utf-8"),
}

SNIFF_BYTES = 8192  # how much of the start of a file `sniff` needs

_MAX_NAME = 200
# Control characters, and the invisible format ones (bidi overrides and isolates such as U+202E, which
# make "photo\u202egnp.exe" display as "photoexe.png"; zero-width spaces and joiners; BOM), surrogates,
# and line/paragraph separators.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_RESERVED = re.compile(r'[<>:"|?*\\/]')
_WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                    *(f"lpt{i}" for i in range(1, 10))}
# Markup that must never be served under a harmless extension (browsers sniff it as HTML).
_HTML_START = re.compile(
    rb"^\s*(<!doctype\s+html|<html|<head|<body|<script|<iframe|<meta|<a\s|<img\s|<div|<\?php)", re.I
)


def extension(name: str) -> str:
    """Lower-case extension with dot ('' if none) of a display name."""
    return posixpath.splitext(name.lower())[1]


def safe_display_name(name: str) -> str:
    """The last path component of an uploaded name, without traversal, control or reserved characters.

    Used only for showing and for Content-Disposition; files are stored under generated names.
    """
    name = unicodedata.normalize("NFC", name or "")
    name = "".join(c for c in name if unicodedata.category(c) not in _HIDDEN_CATEGORIES)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]  # Windows and POSIX directories
    name = _RESERVED.sub("_", name).strip().strip(".").strip()
    if name in {"", ".", ".."}:
        name = "file"
    stem, ext = posixpath.splitext(name)
    if stem.lower() in _WINDOWS_DEVICES:
        stem = f"_{stem}"
    if len(stem) + len(ext) > _MAX_NAME:
        ext = ext[:20]
        stem = stem[: _MAX_NAME - len(ext)]
    return stem + ext


def kind_for_name(name: str) -> FileKind:
    """The allowed kind for a file name, or UnsafeFileError naming the allowed extensions."""
    ext = extension(safe_display_name(name))
    try:
        return ALLOWED[ext]
    except KeyError:
        allowed = " ".join(sorted(ALLOWED))
        shown = ext or "no extension"
        raise UnsafeFileError(f"Files of type {shown!r} are not accepted; allowed: {allowed}") from None


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        # A multi-byte character cut at the end of the sample is still text.
        if err.start < len(head) - 4:
            try:
                head.decode("latin-1")
            except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes everything
                return False
            return not re.search(rb"[\x00-\x08\x0e-\x1f]", head)
    return True


def sniff(name: str, head: bytes, open_zip: Callable[[], zipfile.ZipFile] | None = None) -> FileKind:
    """Check that the start of a file (`head`, >= SNIFF_BYTES or the whole file) matches its extension.

    Returns the kind (with the MIME type to serve it with) or raises UnsafeFileError saying what is wrong.
    For .3mf, `open_zip` (a callable opening the whole file as a ZipFile) lets the check look inside;
    without it only the zip signature is checked.
    """
    kind = kind_for_name(name)
    ext = extension(safe_display_name(name))
    label = kind.label

    def refuse(what: str) -> UnsafeFileError:
        return UnsafeFileError(f"This file is named {ext} but its content is not {label}: {what}")

    if not head:
        raise UnsafeFileError("The file is empty")
    if _HTML_START.match(head):
        raise refuse("it looks like an HTML page")

    if ext == ".stl":
        if head.lstrip()[:5].lower() == b"solid" and _is_text(head):
            return kind
        if len(head) < 84:
            raise refuse("too short for a binary STL")
        if len(head) > 134 and _is_text(head):
            raise refuse("it is text but does not start with 'solid' like an ASCII STL")
        return kind  # binary: an 80-byte header + count; mesh_meta validates the size
    elif ext == ".3mf":
        if not head.startswith(b"PK\x03\x04"):
            raise refuse("it is not a zip archive")
        if open_zip is not None:
            try:
                with open_zip() as zf:
                    names = {n.lower() for n in zf.namelist()}
            except (zipfile.BadZipFile, OSError) as err:
                raise refuse(f"the zip archive is damaged ({err})") from None
            if "3d/3dmodel.model" not in names and not any(n.endswith(".model") for n in names):
                raise refuse("the archive has no 3D/3dmodel.model part")
        return kind
    elif ext in {".step", ".stp"}:
        if head.lstrip().startswith(b"ISO-10303-21;"):
            return kind
        raise refuse("a STEP file starts with 'ISO-10303-21;'")
    elif ext == ".pdf":
        if head.startswith(b"%PDF-"):
            return kind
        raise refuse("a PDF starts with '%PDF-'")
    elif ext == ".png":
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            return kind
        raise refuse("wrong PNG signature")
    elif ext in {".jpg", ".jpeg"}:
        if head.startswith(b"\xff\xd8\xff"):
            return kind
        raise refuse("wrong JPEG signature")
    elif ext == ".webp":
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return kind
        raise refuse("wrong WebP signature")
    elif ext == ".svg":
        text = head.lstrip(b"\xef\xbb\xbf").lstrip()
        if _is_text(head) and (text.startswith(b"<?xml") or text.startswith(b"<svg")
                               or text.startswith(b"<!--")) and b"<svg" in head:
            return kind
        raise refuse("an SVG is an XML document with an <svg> root")
    elif ext == ".dxf":
        if _is_text(head) and re.match(rb"^\s*(999\s*\r?\n.*\r?\n\s*)?0\s*\r?\n\s*SECTION", head, re.S):
            return kind
        if head.startswith(b"AutoCAD Binary DXF"):
            raise refuse("binary DXF is not supported, please export ASCII DXF")
        raise refuse("an ASCII DXF starts with '0 / SECTION'")
    elif kind.kind in {"gcode", "text"}:
        if _is_text(head):
            return kind
        raise refuse("it contains binary data")
    elif ext == ".obj":
        if _is_text(head):
            return kind
        raise refuse("it contains binary data")
    raise refuse("unrecognised content")  # pragma: no cover - every allowed extension is handled above


# --- ZIP directories ------------------------------------------------------------------------------

ZIP_TAIL_BYTES = 22 + 65535 + 20 + 56  # end of central directory with the longest comment, and Zip64's


def zip_entry_count(tail: bytes) -> int | None:
    """The number of entries a zip declares, from the last ZIP_TAIL_BYTES of the file (None: no directory
    found). Read before zipfile parses the directory, which builds an object per entry: millions of
    entries in a small file would take the memory that the entries' contents never could."""
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return None
    count = int.from_bytes(tail[at + 10:at + 12], "little")
    if count == 0xFFFF:  # Zip64: the real count is in the Zip64 end record just before the locator
        z64 = tail.rfind(b"PK\x06\x06", 0, at)
        if z64 >= 0 and len(tail) >= z64 + 40:
            count = int.from_bytes(tail[z64 + 32:z64 + 40], "little")
    return count


# --- XML without DTDs -----------------------------------------------------------------------------

_XML_CHUNK = 1 << 16
MAX_XML_DEPTH = 256  # deeper nesting is no drawing or model, and recursive readers would overflow
_TICK_EVERY = 4096  # elements between budget checks


class ByteStream(Protocol):
    """What XML is streamed from: an open binary file, a ZIP member, a BytesIO or a capped reader."""

    def read(self, size: int, /) -> bytes: ...


class _NoDtd:
    """A plain `<!DOCTYPE svg PUBLIC ...>` (OpenSCAD, old Inkscape) is harmless: external DTDs are never
    loaded. An internal subset or any ENTITY declaration is refused (billion laughs, external entities)."""

    def doctype(self, _name: str, _sysid: str | None, _pubid: str | None, has_internal_subset: int) -> None:
        if has_internal_subset:
            raise UnsafeFileError(
                "XML with an internal DTD subset is refused (entities could expand without bound)"
            )

    def entity(self, *_args: object) -> NoReturn:
        raise UnsafeFileError("XML with ENTITY declarations is refused (entity expansion / external files)")


# Callbacks return anything (TreeBuilder's return the element): expat ignores it.
def _expat_parser(on_start: Callable[[str, dict[str, str]], object] | None,
                  on_end: Callable[[str], object] | None,
                  on_data: Callable[[str], object] | None) -> expat.XMLParserType:
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    no_dtd = _NoDtd()
    parser.StartDoctypeDeclHandler = no_dtd.doctype
    parser.EntityDeclHandler = no_dtd.entity
    parser.UnparsedEntityDeclHandler = no_dtd.entity
    parser.ExternalEntityRefHandler = no_dtd.entity

    names: dict[str, str] = {}  # a model repeats a few names millions of times: convert each once

    def qname(name: str) -> str:
        found = names.get(name)
        if found is None:
            uri, _, local = name.rpartition(" ")
            found = f"{{{uri}}}{local}" if uri else local
            if len(names) < 10_000:
                names[name] = found
        return found

    if on_start is not None:
        def start(name: str, attrs: dict[str, str]) -> None:
            on_start(qname(name), {qname(k): v for k, v in attrs.items()} if attrs else attrs)
        parser.StartElementHandler = start
    if on_end is not None:
        parser.EndElementHandler = lambda name: on_end(qname(name))
    if on_data is not None:
        parser.CharacterDataHandler = on_data
    return parser


def parse_xml_events(stream: ByteStream,
                     on_start: Callable[[str, dict[str, str]], object],
                     on_end: Callable[[str], object] | None = None,
                     on_data: Callable[[str], object] | None = None,
                     budget: Budget | None = None) -> None:
    """Stream XML through callbacks ('{ns}local' names); DOCTYPE/ENTITY refused, errors as MetadataError.

    Nesting deeper than MAX_XML_DEPTH is refused; with a `budget`, the element count and the time are
    checked every few thousand elements."""
    depth = 0
    count = 0

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal depth, count
        depth += 1
        count += 1
        if depth > MAX_XML_DEPTH:
            raise UnsafeFileError(f"The XML is nested more than {MAX_XML_DEPTH} levels deep; no drawing or model "
                                  "needs that. Flatten the groups (e.g. ungroup in the editor) and upload it again.")
        if budget is not None and count % _TICK_EVERY == 0:
            budget.tick()
        on_start(name, attrs)

    def end(name: str) -> None:
        nonlocal depth
        depth -= 1
        if on_end is not None:
            on_end(name)

    parser = _expat_parser(start, end, on_data)
    try:
        while chunk := stream.read(_XML_CHUNK):
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except expat.ExpatError as err:
        reason = expat.ErrorString(err.code)
        raise MetadataError(f"The XML is malformed ({reason}, line {err.lineno})") from None


def parse_xml(data: bytes, budget: Budget | None = None) -> ET.Element:
    """Parse a whole XML document into an ElementTree element, refusing DOCTYPE/ENTITY declarations."""
    builder = ET.TreeBuilder()
    on_start: Callable[[str, dict[str, str]], object] = builder.start
    if budget is not None:  # a tree costs memory per element: count them against the budget
        count = 0

        def on_start(name: str, attrs: dict[str, str]) -> object:
            nonlocal count
            count += 1
            if count % _TICK_EVERY == 0:
                budget.elements(count, "XML elements")
            return builder.start(name, attrs)
    parse_xml_events(io.BytesIO(data), on_start, builder.end, builder.data, budget)
    try:
        return builder.close()
    except AssertionError:  # pragma: no cover - expat already refuses unbalanced documents
        raise MetadataError("The XML document is empty") from None
