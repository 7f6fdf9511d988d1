"""Designs API: list/search, upload (multipart), one design, versions, files (metadata and raw), forks."""

from __future__ import annotations

from typing import Any

from flask import current_app, request, send_file, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from ..domain import bounded
from ..domain.input_schema import Body, Field
from ..extensions import db
from ..models.designs import Design, DesignFile, DesignVersion
from ..services import design_discovery as discovery
from ..services import design_lineage as lineage_svc
from ..services import designs as svc
from . import bp
from .common import api_member, fail, iso, ok, query, token_required
from .openapi import PATHS, document, p, q, qf

_TEXT = 20_000  # a description or changelog

NEW_DESIGN = Body((Field("title", required=True), Field("licence", required=True, max_length=80),
                   Field("description", max_length=_TEXT), Field("changelog", max_length=_TEXT),
                   Field("tags", max_length=1000, description="comma separated"),
                   Field("machine_types", max_length=1000, description="comma separated slugs")))
NEW_VERSION = Body((Field("changelog", required=True, max_length=_TEXT),
                    Field("keep", max_length=10_000,
                          description="comma separated file ids of the latest version to keep, or 'all'")))
FORK = Body((Field("licence", required=True, max_length=80), Field("title"), Field("description", max_length=_TEXT),
             Field("changelog", max_length=_TEXT), Field("version", "id", description="the version to fork"),
             Field("tags", max_length=1000, description="comma separated")))
PAGE = Field("page", "integer", lo=1, hi=100_000, description="page number, from 1")
PER_PAGE = Field("per_page", "integer", lo=1, hi=100, description="up to 100")


def _design(design_id: int) -> Design:
    design = svc.get_design(design_id)
    if design is None:
        fail(404, "not_found", f"There is no design {design_id}.")
    return design


def _fields(schema: Body) -> tuple[dict[str, Any], list[svc.Upload]]:
    """Fields (checked against `schema`) and files of a multipart request, or fields of a JSON body; a too large
    body is a clear 413."""
    try:
        if request.mimetype == "application/json":
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                fail(400, "bad_json", "The body must be a JSON object.")
            return schema.validate(body, current_app.config["TZ"]), []
        files = [svc.Upload(fs.filename or "", fs.stream) for fs in request.files.getlist("files") if fs.filename]
        return schema.validate(request.form.to_dict(), current_app.config["TZ"], typed=False), files
    except RequestEntityTooLarge:
        fail(413, "too_large", svc.too_large_message())


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except svc.DesignError as err:
        fail(err.status, err.code, err.message)


def file_json(design: Design, f: DesignFile) -> dict[str, Any]:
    return {
        "id": f.id, "name": f.name, "kind": f.kind, "ext": f.ext, "mime": f.mime, "size": f.size,
        "sha256": f.sha256, "metadata": f.meta or {},
        # "ready", "processing" (the worker measures it shortly) or "failed" (then `problem` says why)
        "status": f.status, "problem": f.problem,
        "url": url_for("api.design_file_raw", design_id=design.id, file_id=f.id, _external=True),
        "thumbnail_url": (url_for("designs.file_thumb", design_id=design.id, file_id=f.id, _external=True)
                          if f.thumb_key else None),
    }


def version_json(design: Design, v: DesignVersion) -> dict[str, Any]:
    return {"number": v.number, "changelog": v.changelog, "created_at": iso(v.created_at),
            "author": v.author.name if v.author else None, "parent_version_id": v.parent_version_id,
            "files": [file_json(design, f) for f in v.files]}


def design_json(design: Design, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": design.id, "slug": design.slug, "title": design.title, "licence": design.licence,
        "tags": design.tags, "author": design.author_name, "parent_id": design.parent_id,
        "latest_version": design.latest_version, "forks_count": design.forks_count,
        "made_count": design.made_count, "created_at": iso(design.created_at), "updated_at": iso(design.updated_at),
        "url": url_for("designs.detail", design_id=design.id, _external=True),
        "zip_url": url_for("designs.download_zip", design_id=design.id, _external=True),
    }
    if full:
        version = design.version()
        out["description"] = design.description
        out["machine_types"] = [t.slug for t in design.machine_types]
        out["latest"] = version_json(design, version) if version else None
        out["attribution"] = [{"design_id": c.design_id, "title": c.title, "author": c.author_name,
                               "licence": c.licence, "version": c.version} for c in lineage_svc.attribution(design)]
        out["made_here"] = [{"machine": m.machine_name, "count": m.count} for m in discovery.made_by_machine(design)]
    return out


_MULTIPART = "multipart/form-data"


def _multipart_body(path: str, method: str, body: Body, files_required: bool) -> None:
    schema = body.schema()
    schema["properties"]["files"] = {"type": "array", "items": {"type": "string", "format": "binary"},
                                     "description": "one or more design files (field name 'files')"}
    if files_required:
        schema["required"] = [*schema.get("required", []), "files"]
    PATHS[path][method]["requestBody"] = {"required": True, "content": {_MULTIPART: {"schema": schema}}}


_ID = p("design_id", "the design's id", "integer")
_REFUSED = {"413": "A file is larger than the upload limit",
            "422": "Refused: licence not open, file type or content not accepted, corrupt file"}

document("/designs", "GET", "Search designs", params=[
    q("q", "words to find in title, tags, author, description"), q("tag", "a tag"),
    q("licence", "an SPDX id"), q("machine_type", "a machine type slug"),
    q("sort", "newest (default), forks or made"), qf(PAGE), qf(PER_PAGE)])
document("/designs", "POST", "Share a new design (multipart: fields and files)",
         responses={"201": "Created", "400": "Bad request", **_REFUSED})
_multipart_body("/designs", "post", NEW_DESIGN, files_required=True)
document("/designs/{design_id}", "GET", "One design with its latest version, attribution and made-here counts",
         params=[_ID], responses={"200": "OK", "404": "Unknown design"})
document("/designs/{design_id}/versions", "GET", "All versions of a design with their files",
         params=[_ID], responses={"200": "OK", "404": "Unknown design"})
document("/designs/{design_id}/versions", "POST", "Add a version (author or admin; multipart)", params=[_ID],
         responses={"201": "Created", "403": "Not the author", "404": "Unknown design", **_REFUSED})
_multipart_body("/designs/{design_id}/versions", "post", NEW_VERSION, files_required=False)
document("/designs/{design_id}/files/{file_id}", "GET", "A file's metadata",
         params=[_ID, p("file_id", "the file's id", "integer")], responses={"200": "OK", "404": "Unknown file"})
document("/designs/{design_id}/files/{file_id}/raw", "GET", "Download a file (as an attachment)",
         params=[_ID, p("file_id", "the file's id", "integer")],
         responses={"200": "The file, as its own media type (file.mime)", "304": "Not modified (If-None-Match)",
                    "404": "Unknown file", "410": "The stored file is missing"},
         content={"*/*": {"schema": {"type": "string", "format": "binary"}}})
document("/designs/{design_id}/forks", "GET", "Direct forks of a design", params=[_ID],
         responses={"200": "OK", "404": "Unknown design"})
document("/designs/{design_id}/forks", "POST", "Fork a design (JSON, or multipart with changed files)",
         params=[_ID], body=FORK,
         responses={"201": "Created", "404": "Unknown design or version", **_REFUSED})


@bp.get("/designs")
@token_required()
def designs_list() -> Any:
    a = request.args
    n = query(PAGE, PER_PAGE)
    result = discovery.search_designs(a.get("q", ""), tag=a.get("tag", ""), licence=a.get("licence", ""),
                                      machine_type=a.get("machine_type", ""), sort=a.get("sort", "newest"),
                                      page=n.get("page", 1), per_page=n.get("per_page", 24))
    return ok({"designs": [design_json(d) for d in result.designs], "total": result.total, "page": result.page,
               "per_page": result.per_page})


@bp.post("/designs")
@token_required()
def designs_create() -> Any:
    fields, files = _fields(NEW_DESIGN)
    types = _call(svc.machine_types_by_slugs, _list(fields.get("machine_types")))
    design = _call(svc.create_design, api_member(), title=str(fields.get("title", "")),
                   licence=str(fields.get("licence", "")), files=files, description=str(fields.get("description", "")),
                   tags=_list(fields.get("tags")), machine_types=types, changelog=str(fields.get("changelog", "")))
    return ok(design_json(design, full=True), 201)


@bp.get("/designs/<id:design_id>")
@token_required()
def design_get(design_id: int) -> Any:
    return ok(design_json(_design(design_id), full=True))


@bp.get("/designs/<id:design_id>/versions")
@token_required()
def design_versions(design_id: int) -> Any:
    design = _design(design_id)
    return ok({"versions": [version_json(design, v) for v in design.versions]})


@bp.post("/designs/<id:design_id>/versions")
@token_required()
def design_version_create(design_id: int) -> Any:
    design = _design(design_id)
    fields, files = _fields(NEW_VERSION)
    latest = design.version()
    keep_raw = _list(fields.get("keep"))
    if keep_raw == ["all"]:
        keep = [f.id for f in (latest.files if latest else [])]
    else:
        keep = [bounded.parse_id(k, "keep") for k in keep_raw]
    version = _call(svc.add_version, design, api_member(), files=files, changelog=str(fields.get("changelog", "")),
                    keep_file_ids=keep)
    return ok(version_json(design, version), 201)


def _file(design_id: int, file_id: int) -> tuple[Design, DesignFile]:
    design = _design(design_id)
    f = db.session.get(DesignFile, file_id)
    if f is None or f.version.design_id != design.id:
        fail(404, "not_found", f"Design {design_id} has no file {file_id}.")
    return design, f


@bp.get("/designs/<id:design_id>/files/<id:file_id>")
@token_required()
def design_file(design_id: int, file_id: int) -> Any:
    design, f = _file(design_id, file_id)
    return ok(file_json(design, f))


@bp.get("/designs/<id:design_id>/files/<id:file_id>/raw")
@token_required()
def design_file_raw(design_id: int, file_id: int) -> Any:
    _design_, f = _file(design_id, file_id)
    path = svc.file_store().path(f.storage_key)
    if not path.exists():
        svc.report_missing(f)
        fail(410, "file_missing", f"The file {f.name!r} is missing from the lab's file store; the lab's staff "
                                  "have been told.")
    resp = send_file(path, mimetype=f.mime, as_attachment=True, download_name=f.name, etag=f.sha256,
                     conditional=True)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@bp.get("/designs/<id:design_id>/forks")
@token_required()
def design_forks(design_id: int) -> Any:
    return ok({"forks": [design_json(d) for d in lineage_svc.forks_of(_design(design_id))]})


@bp.post("/designs/<id:design_id>/forks")
@token_required()
def design_fork(design_id: int) -> Any:
    parent = _design(design_id)
    fields, files = _fields(FORK)
    version_number = fields.get("version")
    tags = _list(fields["tags"]) if "tags" in fields else None
    child = _call(svc.fork_design, parent, api_member(), licence=str(fields.get("licence", "")),
                  title=fields.get("title") or None, description=fields.get("description"), tags=tags,
                  files=files, version_number=version_number, changelog=str(fields.get("changelog", "")))
    return ok(design_json(child, full=True), 201)
