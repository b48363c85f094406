"""Fixtures the end-to-end tests share."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from handler.bootstrap.observability import logger


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Everything the shared Powertools logger writes during the test, one JSON doc per line."""
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def emf(text: str) -> list[dict[str, Any]]:
    """The CloudWatch EMF documents among captured stdout lines."""
    docs = [json.loads(x) for x in text.splitlines() if x.startswith("{") and '"_aws"' in x]
    return docs


def metric_counts(docs: list[dict[str, Any]]) -> dict[tuple[str, str | None], int]:
    """(metric name, its extra dimension values joined by "/") -> how many datapoints."""
    out: dict[tuple[str, str | None], int] = {}
    for doc in docs:
        directive = doc["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "GmeAutorecord"
        dims = [d for d in directive["Dimensions"][0] if d != "service"]
        extra = "/".join(str(doc[d]) for d in dims) if dims else None
        for metric in directive["Metrics"]:
            values = doc[metric["Name"]]
            n = len(values) if isinstance(values, list) else 1
            key = (metric["Name"], extra)
            out[key] = out.get(key, 0) + n
    return out


@pytest.fixture
def policy_limits(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run the shipped policy with `max_duration` set on some rules: `policy_limits(rule=value)`
    (value as written in the document, e.g. "none" or "30h"); the stack then uses it."""
    import yaml

    from handler.bootstrap import app
    from tests.conftest import ROOT

    def use(**limits: str) -> None:
        doc = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
        for rule in doc["rules"]:
            if rule["name"] in limits:
                rule["max_duration"] = limits[rule["name"]]
        path = tmp_path / "policy-with-limits.yaml"
        path.write_text(yaml.safe_dump(doc))
        monkeypatch.setenv("RECORDING_POLICY", str(path))
        app.reset()

    return use
