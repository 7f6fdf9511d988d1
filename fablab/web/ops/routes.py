"""Probes and the scrape. They answer before the session, CSRF and member hooks run (see hooks.py): a
probe never touches the database through a session, and /healthz never touches it at all."""

from __future__ import annotations

from flask import Response, current_app, jsonify, request

from ... import health, metrics
from ...auth import public
from . import bp


@bp.get("/healthz")
@public
def healthz() -> Response:
    """The process is up and answering (no database)."""
    return Response("ok\n", 200, mimetype="text/plain")


@bp.get("/readyz")
@public
def readyz() -> tuple[Response, int]:
    """Ready for traffic: the database answers within FABLAB_READY_TIMEOUT and its schema is at head."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    problem = health.database_problem(app, float(app.config["FABLAB_READY_TIMEOUT"]))
    if problem:
        return jsonify(status="unavailable", reason=problem), 503
    return jsonify(status="ok"), 200


def address_trusted() -> bool:
    """Without FABLAB_PROXY_FIX a forwarded request's address is the proxy's own (often loopback): it
    cannot stand for the client, only the token can."""
    return int(current_app.config["FABLAB_PROXY_FIX"]) > 0 or "X-Forwarded-For" not in request.headers


@bp.get("/metrics")
@public  # guarded below: the bearer token or an allowed address
def scrape() -> Response:
    cfg = current_app.config
    refusal = metrics.scrape_refusal(request.headers.get("Authorization"), request.remote_addr,
                                     str(cfg["FABLAB_METRICS_TOKEN"]), cfg["FABLAB_METRICS_NETWORKS"],
                                     address_trusted())
    if refusal == 401:
        return Response("A valid bearer token is needed to read the metrics.\n", 401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    if refusal:
        return Response("This address may not read the metrics (FABLAB_METRICS_ALLOW).\n", refusal,
                        mimetype="text/plain")
    return Response(metrics.exposition(metrics.LabCollector()), 200, content_type=metrics.CONTENT_TYPE)
