"""The monitoring settings (metrics access, log format, readiness bounds), read once per app from the
environment; values already in the app's config (tests, an embedding app) win."""

from __future__ import annotations

import os
from typing import Any

from .metrics import LOOPBACK, parse_networks

DEFAULTS: dict[str, Any] = {
    # Bearer token a scraper may send (empty: none accepted); compared as hashes, in constant time.
    "FABLAB_METRICS_TOKEN": "",
    # Addresses that may scrape without a token, comma-separated CIDRs ("" : none); loopback by default.
    "FABLAB_METRICS_ALLOW": LOOPBACK,
    # "text" (default) or "json": one JSON object per log line.
    "FABLAB_LOG_FORMAT": "text",
    # How long /readyz waits for the database before it answers 503.
    "FABLAB_READY_TIMEOUT": 2.0,
    # The worker is not ready while a received message has waited longer than this to be committed.
    "FABLAB_WORKER_MAX_LAG_SECONDS": 60.0,
}


def load(config: dict[str, Any]) -> None:
    for name, default in DEFAULTS.items():
        if name not in config:
            raw = os.environ.get(name)
            try:
                config[name] = default if raw is None else type(default)(raw)
            except ValueError:
                raise ValueError(f"{name} must be a {type(default).__name__}, got {raw!r}") from None
    config["FABLAB_LOG_FORMAT"] = str(config["FABLAB_LOG_FORMAT"]).strip().lower()
    if config["FABLAB_LOG_FORMAT"] not in ("text", "json"):
        raise ValueError(f"FABLAB_LOG_FORMAT must be text or json, got {config['FABLAB_LOG_FORMAT']!r}")
    config["FABLAB_METRICS_NETWORKS"] = parse_networks(str(config["FABLAB_METRICS_ALLOW"]))
