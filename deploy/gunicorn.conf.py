"""gunicorn settings for fablab:  gunicorn -c deploy/gunicorn.conf.py 'fablab:create_app()'

Prometheus with several workers: each worker is a process with its own counters, so they are written to
files in PROMETHEUS_MULTIPROC_DIR and any worker's /metrics sums them all. The folder must be set before a
worker imports prometheus_client (this file runs in the master first, so setting it here is enough), must
start empty (on_starting below clears it: old files would add a previous run's counts), and a worker that
exits must be marked (child_exit below) so that its live gauges are dropped. Put the folder on a tmpfs
(/run) and give the ingest worker (`fablab worker`) none, or another one: it serves its own port.

Every value can be overridden from the command line (`-w 8`, `-b 0.0.0.0:8000`) or the environment below.
"""

import os
import shutil
from pathlib import Path

bind = os.environ.get("FABLAB_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("FABLAB_WORKERS", str(min(8, 2 * (os.cpu_count() or 1) + 1))))
worker_class = "sync"
timeout = 60
graceful_timeout = 30
keepalive = 5
max_requests = 2000  # recycle workers now and then (a slow leak never grows big)
max_requests_jitter = 200
forwarded_allow_ips = "127.0.0.1"  # the nginx in front; set FABLAB_PROXY_FIX=1 too

os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.environ.get("FABLAB_METRICS_DIR", "/run/fablab/metrics"))
_metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])

# Logs to stderr (journald or docker collects them). The access line carries the request id the app sets
# (X-Request-ID); FABLAB_LOG_FORMAT=json turns gunicorn's own lines into JSON objects too and leaves the
# request lines to the app (one JSON line per request, with route, status and duration_ms).
errorlog = "-"
loglevel = "info"
if os.environ.get("FABLAB_LOG_FORMAT", "text").lower() == "json":
    accesslog = None
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "fablab.log_format.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stderr"}},
        "loggers": {"gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False}},
        "root": {"handlers": [], "level": "INFO"},
    }
else:
    accesslog = "-"
    access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms id=%({x-request-id}o)s "%(a)s"'

_QUIET = ("/healthz", "/readyz", "/metrics")


def _quiet_probes() -> None:
    """Successful probes and scrapes stay out of the access log (they come every few seconds)."""
    import logging

    class QuietProbes(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            args = record.args if isinstance(record.args, dict) else {}
            return not (args.get("U") in _QUIET and str(args.get("s", "")).startswith("2"))

    logging.getLogger("gunicorn.access").addFilter(QuietProbes())


def on_starting(server):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    """In the master, before any worker: an empty metrics folder for this run."""
    if _metrics_dir.exists():
        shutil.rmtree(_metrics_dir)
    _metrics_dir.mkdir(parents=True, exist_ok=True)


def post_fork(server, worker):  # noqa: ANN001, ANN201
    _quiet_probes()


def child_exit(server, worker):  # noqa: ANN001, ANN201
    """A worker ended (recycled, crashed, stopped): its live gauges go; its counters stay in the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
