"""Helpers for the operations tests: scrape the metrics and read one sample out of them."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by (name, sorted labels)."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, labels: Mapping[str, str] | None = None) -> float:
    """The sample's value, 0 when absent (a counter not yet moved has no sample)."""
    return samples.get((name, tuple(sorted((labels or {}).items()))), 0.0)


def total(samples: Samples, name: str, **match: str) -> float:
    """The sum over every sample of `name` whose labels include `match`."""
    return sum(v for (n, labels), v in samples.items()
               if n == name and all(dict(labels).get(k) == want for k, want in match.items()))


def scrape(client, **kw) -> Samples:
    resp = client.get("/metrics", **kw)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.content_type.startswith("text/plain")
    return parse(resp.get_data(as_text=True))
