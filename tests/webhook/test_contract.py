"""The published contract matches the code: docs/ is what the code generates, every served route
is documented, and the JSON Schema agrees with the parser on every sample event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from handler.domain.inbound import InvalidEvent, parse_json, parse_room_event_v1
from handler.entrypoints.webhook import api
from handler.tools import contract
from tests.conftest import EVENTS, ROOT

V1_SAMPLES = sorted(
    p for p in EVENTS.glob("*.json") if json.loads(p.read_text()).get("version") == 1
)
INVALID = sorted((EVENTS / "invalid").iterdir())


def test_committed_docs_are_what_the_code_generates() -> None:
    for path, text in contract.generated().items():
        assert path.read_text() == text, (
            f"{path.name} is stale: run python -m handler.tools.contract"
        )


def test_every_served_route_is_documented_and_nothing_else() -> None:
    served = {(r.path, r.method.lower()) for r in api._static_routes}
    doc = json.loads(contract.OPENAPI_FILE.read_text())
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert served == documented
    for path, ops in doc["paths"].items():
        for op in ops.values():
            assert op["responses"], path
            for status, response in op["responses"].items():
                if int(status) >= 400:  # every refusal documents the {code, message} body
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorBody")


def test_serverless_yml_lists_every_route() -> None:
    text = (ROOT / "serverless.yml").read_text()
    for path, method in {(r.path, r.method) for r in api._static_routes}:
        assert f"{{method: {method}, path: {path}}}" in text, path


def test_schemas_are_valid_json_schema() -> None:
    Draft202012Validator.check_schema(contract.room_event_schema())
    doc = json.loads(contract.OPENAPI_FILE.read_text())
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def _schema_accepts(doc: Any) -> bool:
    return Draft202012Validator(contract.room_event_schema()).is_valid(doc)


def _parser_accepts(raw: bytes) -> bool:
    try:
        parse_room_event_v1(parse_json(raw))
    except InvalidEvent:
        return False
    return True


@pytest.mark.parametrize("path", V1_SAMPLES, ids=lambda p: p.name)
def test_every_v1_sample_validates(path: Path) -> None:
    assert _schema_accepts(json.loads(path.read_text()))
    assert _parser_accepts(path.read_bytes())


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_every_invalid_sample_is_refused_by_schema_and_parser(path: Path) -> None:
    assert not _parser_accepts(path.read_bytes())
    try:
        doc = json.loads(path.read_text())
    except ValueError:
        return  # not JSON at all: no schema to ask
    assert not _schema_accepts(doc)


def test_v1_samples_exist() -> None:
    assert len(V1_SAMPLES) >= 3
    assert len(INVALID) >= 9
