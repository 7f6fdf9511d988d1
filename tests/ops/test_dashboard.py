"""The Grafana dashboard (deploy/grafana/fablab.json) asks only for metrics the app really exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "fablab.json"


def test_every_dashboard_query_names_an_exposed_metric(client) -> None:
    exposed: set[str] = set()
    for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True)):
        exposed |= {family.name, family.name + "_total", *(f"{family.name}_{s}" for s in ("bucket", "count", "sum"))}
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 15
    asked = {name for e in exprs for name in re.findall(r"\bfablab_[a-z_]+", e)}
    assert asked and asked <= exposed, asked - exposed
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
