"""Sanitize an uploaded SVG so it can be shown inline in a page.

Allow-list of SVG elements and presentation attributes; scripts, foreignObject, animations (which can
rewrite links), event handlers, external references and `javascript:` are removed, and what was removed
is reported so the uploader can be told.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from fablab.domain.filetypes import MetadataError, parse_xml
from fablab.domain.upload_budget import Budget

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"

_ELEMENTS = {
    "svg", "g", "defs", "symbol", "use", "title", "desc", "switch",
    "path", "rect", "circle", "ellipse", "line", "polyline", "polygon",
    "text", "tspan", "textPath", "image",
    "linearGradient", "radialGradient", "stop", "clipPath", "mask", "pattern", "marker",
    "filter", "feBlend", "feColorMatrix", "feComponentTransfer", "feComposite", "feFlood",
    "feFuncA", "feFuncB", "feFuncG", "feFuncR", "feGaussianBlur", "feMerge", "feMergeNode",
    "feMorphology", "feOffset", "feTurbulence", "feDropShadow",
}
_LINK_ATTRS = {"href", f"{{{XLINK_NS}}}href"}
_SAFE_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*$", re.I)
_URL_REF = re.compile(r"url\(\s*(['\"]?)(.*?)\1\s*\)", re.I | re.S)
_INVISIBLE = re.compile(r"[\x00-\x20\x7f]+")


@dataclass(frozen=True)
class SanitizedSvg:
    svg: str  # a standalone <svg> element, safe to embed in HTML or serve as image/svg+xml
    removed: list[str] = field(default_factory=list)  # what was neutralised, e.g. "<script> element"


def _local(name: str) -> tuple[str, str]:
    if name.startswith("{"):
        ns, _, local = name[1:].partition("}")
        return ns, local
    return "", name


def _dangerous_value(value: str) -> str | None:
    """Why an attribute or style value is unsafe, or None."""
    squashed = _INVISIBLE.sub("", value).lower()
    if "javascript:" in squashed or "vbscript:" in squashed or "expression(" in squashed:
        return "script URL"
    if "@import" in squashed:
        return "@import"
    for _q, target in _URL_REF.findall(value):
        if not target.strip().startswith("#"):
            return f"external reference {target.strip()[:60]!r}"
    return None


def sanitize_svg(data: bytes, budget: Budget | None = None) -> SanitizedSvg:
    """Sanitized SVG text; raises UnsafeFileError / MetadataError when it is not parseable, safe XML.
    Nesting is bounded by the parser (MAX_XML_DEPTH), so the recursive writer below cannot overflow."""
    root = parse_xml(data, budget)
    removed: list[str] = []
    ns, local = _local(root.tag)
    if local != "svg" or ns not in ("", SVG_NS):
        raise MetadataError("This is XML but its root element is not <svg>")
    out: list[str] = []
    _write(root, out, removed, is_root=True)
    return SanitizedSvg("".join(out), removed)


def _as_group(link: ET.Element) -> ET.Element:
    group = ET.Element(f"{{{SVG_NS}}}g", {k: v for k, v in link.attrib.items() if k not in _LINK_ATTRS})
    group.text = link.text
    group.extend(list(link))
    return group


def _write(elem: ET.Element, out: list[str], removed: list[str], is_root: bool = False) -> bool:
    ns, local = _local(elem.tag)
    if ns in ("", SVG_NS) and local == "a":
        # Keep what a link wraps, without the link: render it as a plain group.
        removed.append("<a> link")
        elem = _as_group(elem)
        ns, local = SVG_NS, "g"
    if ns not in ("", SVG_NS) or local not in _ELEMENTS:
        if ns in ("", SVG_NS):
            why = " (page-wide CSS)" if local == "style" else ""
            removed.append(f"<{local}> element{why}")
        return False  # foreign-namespace editor data (inkscape:, sodipodi:) is dropped quietly
    attrs: list[tuple[str, str]] = []
    for name, value in elem.attrib.items():
        ans, alocal = _local(name)
        if alocal.lower().startswith("on"):
            removed.append(f"{alocal} attribute")
            continue
        if name in _LINK_ATTRS:
            target = value.strip()
            if target.startswith("#") or (local == "image" and _SAFE_DATA_IMAGE.match(target)):
                attrs.append(("xlink:href" if ans == XLINK_NS else "href", value))
            else:
                removed.append(f"link to {target[:60]!r}")
            continue
        if ans not in ("",):  # other namespaced attributes: editor metadata
            continue
        reason = _dangerous_value(value)
        if reason:
            removed.append(f"{alocal} attribute ({reason})")
            continue
        attrs.append((alocal, value))
    if is_root:
        attrs = [("xmlns", SVG_NS), ("xmlns:xlink", XLINK_NS), *attrs]
    out.append(f"<{local}" + "".join(f" {k}={quoteattr(v)}" for k, v in attrs) + ">")
    if elem.text:
        out.append(escape(elem.text))
    for child in elem:
        _write(child, out, removed)
        if child.tail:
            out.append(escape(child.tail))
    out.append(f"</{local}>")
    return True
