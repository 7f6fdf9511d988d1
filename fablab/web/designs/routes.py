"""Design pages: search (one route serves the page or its htmx partial), detail with previews, lineage and
"made here", upload, new version, fork, downloads (always attachments), zip and the Atom feed.

Reading the commons is open to anyone (FABLAB_DESIGNS_PUBLIC, default on); changing it needs an account.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Response, abort, current_app, flash, g, redirect, render_template, request, send_file, url_for
from htmx_flask import request as hx_request
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from ...auth import login_required, public
from ...domain import bounded
from ...domain.licences import LICENCES, allowed_fork_licences, open_licences
from ...domain.markdown_safe import render_markdown
from ...extensions import db
from ...models import Booking
from ...models.designs import Design, DesignFile, DesignVersion
from ...models.types import utcnow
from ...services import design_discovery as discovery
from ...services import design_lineage as lineage_svc
from ...services import designs as svc
from ...services import machines as machine_service
from ..choices import options
from . import bp
from .forms import DesignForm, ForkForm, MadeForm, VersionForm, licence_options

# Downloads are never rendered by the browser as a page of this site.
_FILE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox"}


def commons(view: Callable[..., Any]) -> Callable[..., Any]:
    """Readable without an account unless the lab turns FABLAB_DESIGNS_PUBLIC off."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_app.config.get("FABLAB_DESIGNS_PUBLIC", True) and g.get("member") is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return public(wrapped)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_err: RequestEntityTooLarge) -> Any:
    # The whole request was over the limit (werkzeug stops reading it): say what the limit is.
    return render_template("errors/error.html", code=413, message=svc.too_large_message()), 413


def _design(design_id: int) -> Design:
    design = svc.get_design(design_id)
    if design is None:
        abort(404, "There is no such design.")
    return design


def _file(design: Design, file_id: int) -> DesignFile:
    f = db.session.get(DesignFile, file_id)
    if f is None or f.version.design_id != design.id:
        abort(404, "This design has no such file.")
    return f


def _uploads() -> list[svc.Upload]:
    return [svc.Upload(fs.filename or "", fs.stream) for fs in request.files.getlist("files") if fs and fs.filename]


def _machine_type_options() -> list:
    return options([(t.slug, t.name) for t in machine_service.machine_types()])


def _refused(err: svc.DesignError) -> None:
    if err.status == 403:
        abort(403, err.message)
    flash(err.message, "error")


def _flash_processing(version: DesignVersion | None) -> None:
    n = svc.processing_count(version) if version is not None else 0
    if n:
        flash(f"{n} file{' is' if n == 1 else 's are'} large enough to be analysed after the upload: "
              "measurements and pictures appear on this page in a moment.", "ok")


# --- search ---------------------------------------------------------------------------------------------


@bp.get("/designs")
@commons
def index() -> Any:
    args = request.args
    try:
        page = bounded.parse_int(args.get("page") or "1", "page", 1, 100_000)
    except bounded.InputError:
        page = 1  # a page link mangled by hand shows the first page
    sort = args.get("sort", "newest")
    result = discovery.search_designs(args.get("q", ""), tag=args.get("tag", ""), licence=args.get("licence", ""),
                                      machine_type=args.get("machine_type", ""), sort=sort, page=page)
    query = {k: v for k, v in args.items() if k != "page" and v}
    ctx = {"result": result, "query": query, "sort": sort if sort in discovery.SORTS else "newest"}
    if hx_request.htmx:
        return render_template("designs/_results.html", **ctx)
    return render_template("designs/index.html", **ctx, licences=open_licences(),
                           machine_types=machine_service.machine_types(), sorts=discovery.SORT_LABELS,
                           tags=discovery.popular_tags())


# --- detail ---------------------------------------------------------------------------------------------


@bp.get("/designs/<id:design_id>")
@commons
def detail(design_id: int) -> Any:
    design = _design(design_id)
    number = request.args.get("v", type=int)
    version = design.version(number)
    if version is None:
        abort(404, f"{design.title} has no version {number}.")
    if hx_request.htmx and request.args.get("part") == "files":  # the file list polls while files are analysed
        return render_template("designs/_files.html", design=design, version=version)
    made_form = None
    if g.get("member") is not None:
        made_form = MadeForm()
        made_form.booking.choices = options(
            [(b.id, f"{b.machine.name}, {_local(b.start_at)}") for b in discovery.eligible_bookings(g.member)])
    return render_template(
        "designs/detail.html", design=design, version=version, description=render_markdown(design.description),
        licence=LICENCES.get(design.licence), credits=lineage_svc.attribution(design), tree=lineage_svc.lineage(design),
        made=discovery.made_by_machine(design), forks=lineage_svc.forks_of(design), made_form=made_form,
        can_edit=svc.can_edit(g.get("member"), design),
    )


def _local(value: Any) -> str:
    from .. import localtime

    return localtime(value)


# --- upload, version, fork ------------------------------------------------------------------------------


@bp.route("/designs/new", methods=["GET", "POST"])
@login_required
def new() -> Any:
    form = DesignForm()
    form.licence.choices = licence_options()
    form.machine_types.choices = _machine_type_options()
    if request.method == "GET":
        form.licence.data = "CC-BY-SA-4.0"
    if form.validate_on_submit():
        try:
            design = svc.create_design(
                g.member, title=form.title.data, licence=form.licence.data, files=_uploads(),
                description=form.description.data or "", tags=form.tags.data or "",
                machine_types=svc.machine_types_by_slugs(form.machine_types.data or []),
                changelog=form.changelog.data or "")
        except svc.DesignError as err:
            _refused(err)
            return render_template("designs/new.html", form=form), err.status
        flash(f"“{design.title}” is shared under {design.licence}.", "ok")
        _flash_processing(design.version())
        return redirect(url_for("designs.detail", design_id=design.id))
    status = 422 if form.errors else 200
    return render_template("designs/new.html", form=form), status


@bp.route("/designs/<id:design_id>/versions/new", methods=["GET", "POST"])
@login_required
def new_version(design_id: int) -> Any:
    design = _design(design_id)
    if not svc.can_edit(g.member, design):
        abort(403, "Only the design's author can add versions. Fork it to make your own changes.")
    latest = design.version()
    form = VersionForm()
    form.keep.choices = options([(f.id, f.name) for f in (latest.files if latest else [])])
    if request.method == "GET":
        form.keep.data = [f.id for f in (latest.files if latest else [])]
    if form.validate_on_submit():
        try:
            version = svc.add_version(design, g.member, files=_uploads(), changelog=form.changelog.data,
                                      keep_file_ids=form.keep.data or [])
        except svc.DesignError as err:
            _refused(err)
            return render_template("designs/version_new.html", form=form, design=design), err.status
        flash(f"Version {version.number} added.", "ok")
        _flash_processing(version)
        return redirect(url_for("designs.detail", design_id=design.id))
    status = 422 if form.errors else 200
    return render_template("designs/version_new.html", form=form, design=design), status


@bp.route("/designs/<id:design_id>/fork", methods=["GET", "POST"])
@login_required
def fork(design_id: int) -> Any:
    parent = _design(design_id)
    number = request.values.get("v", type=int) or parent.latest_version
    if parent.version(number) is None:
        abort(404, f"{parent.title} has no version {number}.")
    allowed = allowed_fork_licences(parent.licence)
    form = ForkForm()
    form.licence.choices = licence_options(allowed)
    if request.method == "GET":
        form.title.data = f"{parent.title} (fork)"
        form.licence.data = parent.licence
        form.description.data = parent.description
        form.tags.data = ", ".join(parent.tags)
    if form.validate_on_submit():
        try:
            child = svc.fork_design(parent, g.member, licence=form.licence.data, title=form.title.data,
                                    description=form.description.data or "", tags=form.tags.data or "",
                                    files=_uploads(), version_number=number, changelog=form.changelog.data or "")
        except svc.DesignError as err:
            _refused(err)
            return render_template("designs/fork.html", form=form, parent=parent, number=number,
                                   allowed=allowed), err.status
        flash(f"Forked. “{child.title}” credits {parent.author_name or 'the original author'}.", "ok")
        _flash_processing(child.version())
        return redirect(url_for("designs.detail", design_id=child.id))
    status = 422 if form.errors else 200
    return render_template("designs/fork.html", form=form, parent=parent, number=number, allowed=allowed), status


@bp.post("/designs/<id:design_id>/made")
@login_required
def made(design_id: int) -> Any:
    design = _design(design_id)
    form = MadeForm()
    if form.validate_on_submit():
        booking = db.session.get(Booking, form.booking.data) if form.booking.data else None
        if booking is None:
            flash("Choose one of your bookings.", "error")
        else:
            try:
                discovery.record_made(design, g.member, booking=booking, version=design.version(),
                                      note=form.note.data or "")
                flash("Thanks! Recorded as made here.", "ok")
            except svc.DesignError as err:
                _refused(err)
    else:
        flash("Choose one of your bookings.", "error")
    return redirect(url_for("designs.detail", design_id=design.id) + "#made-here")


# --- files ----------------------------------------------------------------------------------------------


def _gone(message: str) -> Any:
    """410: the row exists but its stored bytes do not (a restore or a disk went wrong): say so plainly."""
    return render_template("errors/error.html", code=410, message=message), 410


def _send_stored(key: str, mimetype: str, name: str, *, attachment: bool, etag: str | None = None,
                 f: DesignFile | None = None) -> Any:
    path = svc.file_store().path(key)
    if not path.exists():
        if f is not None:
            svc.report_missing(f)
            return _gone(f"The file “{f.name}” is missing from the lab's file store. The lab's staff have been "
                         "told; the design's other files can still be downloaded one by one.")
        abort(404, "The file is missing from the store.")
    resp = send_file(path, mimetype=mimetype, as_attachment=attachment, download_name=name,
                     etag=etag or True, max_age=3600, conditional=True)
    resp.headers.update(_FILE_HEADERS)
    return resp


@bp.get("/designs/<id:design_id>/files/<id:file_id>")
@commons
def download(design_id: int, file_id: int) -> Any:
    f = _file(_design(design_id), file_id)
    return _send_stored(f.storage_key, f.mime, f.name, attachment=True, etag=f.sha256, f=f)


def _picture(f: DesignFile | None, key: str | None, name: str) -> Response:
    """A drawing is its own best picture: the sanitized SVG (shown by <img>, which never runs scripts);
    anything else gets its PNG thumbnail."""
    if f is not None and f.svg_safe:
        resp = Response(f.svg_safe, mimetype="image/svg+xml")
        resp.headers.update(_FILE_HEADERS)
        resp.cache_control.max_age = 3600
        return resp
    if not key:
        abort(404, "There is no picture for this.")
    return _send_stored(key, "image/png", f"{name}.png", attachment=False)


@bp.get("/designs/<id:design_id>/files/<id:file_id>/thumb")
@commons
def file_thumb(design_id: int, file_id: int) -> Any:
    f = _file(_design(design_id), file_id)
    return _picture(f, f.thumb_key, str(f.id))


@bp.get("/designs/<id:design_id>/thumb")
@commons
def thumb(design_id: int) -> Any:
    design = _design(design_id)
    cover = None
    if design.thumb_key:
        cover = db.session.scalar(select(DesignFile).join(DesignVersion).where(
            DesignVersion.design_id == design.id, DesignFile.thumb_key == design.thumb_key).limit(1))
    return _picture(cover, design.thumb_key, design.slug)


@bp.get("/designs/<id:design_id>/download.zip")
@commons
def download_zip(design_id: int) -> Any:
    design = _design(design_id)
    version = design.version(request.args.get("v", type=int))
    if version is None:
        abort(404, "There is no such version.")
    missing = svc.missing_files(version)  # logged for the staff; a zip without them would mislead
    if missing:
        names = ", ".join(f"“{f.name}”" for f in missing)
        return _gone(f"The zip of version {version.number} cannot be made: {names} "
                     f"{'is' if len(missing) == 1 else 'are'} missing from the lab's file store. The lab's staff "
                     "have been told; the other files can still be downloaded one by one from the design's page.")
    out = tempfile.TemporaryFile(prefix="fablab-zip-")  # closed (and so deleted) when the response ends
    try:
        lineage_svc.write_zip(design, version, out, url_for("designs.detail", design_id=design.id, _external=True))
    except BaseException:
        out.close()
        raise
    out.seek(0)
    resp = send_file(out, mimetype="application/zip", as_attachment=True,
                     download_name=f"{design.slug}-v{version.number}.zip")
    resp.headers.update(_FILE_HEADERS)
    return resp


# --- feed -----------------------------------------------------------------------------------------------


def feed_authority() -> str:
    host = urlsplit(url_for("designs.index", _external=True)).hostname or "localhost"
    return host


@bp.get("/designs/feed.atom")
@public
def feed() -> Any:
    authority = feed_authority()
    entries = discovery.feed_entries(authority, lambda d, n: url_for("designs.detail", design_id=d.id, v=n,
                                                                     _external=True))
    body = discovery.atom_feed(feed_id=f"tag:{authority},2026:designs",
                               title=f"{current_app.config['FABLAB_LAB_NAME']}: new designs and versions",
                               self_url=url_for("designs.feed", _external=True),
                               site_url=url_for("designs.index", _external=True), entries=entries, now=utcnow())
    return Response(body, mimetype="application/atom+xml")
