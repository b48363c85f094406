"""The published webhook contract: answer shapes per route, the OpenAPI document, the JSON Schema.

Powertools generates the OpenAPI document from the resolver in `handler.entrypoints.webhook` (paths,
summaries, tags); this module then gives each operation its answers, request body and signature
headers. The handlers read bodies raw, never through validation, because the signature covers
the exact bytes; and the answer models are only named here, so the webhook never builds them at
cold start just to describe them. `python -m handler.tools.contract` rewrites `docs/`; a test
fails when the committed files differ from what the code generates.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from handler.domain.callbacks import GmeCallbackBody
from handler.domain.inbound import RoomEventV1, TrtcCallback
from handler.domain.outcome import Outcome
from handler.entrypoints.webhook import api
from handler.ingress.ingest import Route

DOCS = Path(__file__).resolve().parents[2] / "docs"
OPENAPI_FILE = DOCS / "openapi.json"
ROOM_EVENT_SCHEMA_FILE = DOCS / "room-event-v1.schema.json"
RECORDING_EVENT_SCHEMA_FILE = DOCS / "recording-event-v1.schema.json"
VERSION = "1.0.0"
REF = "#/components/schemas/{model}"


class ErrorBody(BaseModel):
    """Every refusal: a machine-readable code, a human message, the field when one is at fault."""

    model_config = ConfigDict(title="Error")

    code: str
    message: str
    field: str | None = None


class Queued(BaseModel):
    """Queue mode: the event was verified and enqueued (or was already, when `duplicate`)."""

    status: str = "queued"
    event_id: str
    message_id: str
    duplicate: bool = False


class Health(BaseModel):
    """Liveness: the function answers; it checks no dependency (stores, queue, GME)."""

    status: str = "ok"


_RETRY_HEADERS = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
_COMMON: dict[int, tuple[str, type[BaseModel]]] = {
    400: (
        "not JSON, JSON too deep or too many members, base64 body that is not, or a signing "
        "header sent twice (duplicate_header; `field` names it)",
        ErrorBody,
    ),
    401: (
        "signature missing or wrong, timestamp stale, SdkAppId missing or mismatched, key not "
        "configured",
        ErrorBody,
    ),
    413: ("body larger than MAX_BODY_BYTES", ErrorBody),
    415: ("Content-Type is not application/json", ErrorBody),
    422: ("a field is missing or invalid, or a number not finite; `field` names it", ErrorBody),
    503: (
        "not done yet (queue unavailable, GME retryable error, misconfigured); retry",
        ErrorBody,
    ),
}
_RECORDED = (
    "inline mode: the outcome (started, adopted, skipped, stopped, ignored, failed)",
    Outcome,
)
_QUEUED = ("queue mode: enqueued for the worker, or a duplicate already enqueued", Queued)

#: The answers of each route, by status. They live here, not on the route declarations, so the
#: webhook's cold start never builds the answer models it only describes.
RESPONSES: dict[str, dict[int, tuple[str, type[BaseModel] | None]]] = {
    Route.ROOM_EVENTS.value: {200: _RECORDED, 202: _QUEUED, **_COMMON},
    Route.TRTC.value: {200: _RECORDED, 202: _QUEUED, **_COMMON},
    Route.GME_CALLBACK.value: {200: _RECORDED, **_COMMON},
    "/health": {200: ("up", Health)},
}
#: Answers for any path and method the API does not serve.
UNROUTED = {404: "no such route", 405: "the path exists but not with this method"}

_HEADERS: dict[Route, list[tuple[str, str]]] = {
    Route.ROOM_EVENTS: [
        ("webhook-id", "message id, signed"),
        ("webhook-timestamp", "Unix seconds, within ±300 s"),
        ("webhook-signature", "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>, space-separated"),
    ],
    Route.TRTC: [
        ("Sign", "base64(HMAC-SHA256(key, raw body))"),
        (
            "SdkAppId",
            "TRTC SdkAppId, used as the GME BizId; each key verifies only its app's requests "
            "(TRTC_CALLBACK_KEY entry SDKAPPID:key, or a bare key for the apps of "
            "TRTC_SDK_APP_ID), else 401 bad_signature; without it 401 missing_app_id",
        ),
    ],
    Route.GME_CALLBACK: [("Signature", "HMAC-SHA1(key, raw body), base64 or hex")],
}


def gme_callback_schema() -> dict[str, Any]:
    """The callback's wire model, with `Timestamp` required: the webhook's freshness check
    needs it (a queue message may go without)."""
    schema = GmeCallbackBody.model_json_schema(ref_template=REF)
    schema["properties"]["Timestamp"] = {
        "type": "integer",
        "minimum": 0,
        "maximum": 2**63 - 1,
        "description": "Unix seconds, within ±300 s",
    }
    schema["required"] = sorted({*schema.get("required", ()), "Timestamp"})
    return schema


def room_event_schema() -> dict[str, Any]:
    schema = RoomEventV1.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:gme-autorecord:room-event-v1",
        **schema,
    }


def recording_event_schema() -> dict[str, Any]:
    """Recording events out (docs/notifications.md): the webhook body and EventBridge detail."""
    from handler.domain.recording_events import RecordingEvent

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:gme-autorecord:recording-event-v1",
        **RecordingEvent.model_json_schema(mode="serialization"),
    }


def _request_schema(route: Route) -> dict[str, Any]:
    if route is Route.ROOM_EVENTS:
        schema = RoomEventV1.model_json_schema(ref_template=REF)
    elif route is Route.TRTC:
        schema = TrtcCallback.model_json_schema(ref_template=REF)
    else:
        schema = gme_callback_schema()
    return schema


def _answer(
    status: int, text: str, model: type[BaseModel] | None, schemas: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {"description": text}
    if model is not None:
        schema = model.model_json_schema(ref_template=REF, mode="serialization")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        ref = {"$ref": REF.format(model=model.__name__)}
        out["content"] = {"application/json": {"schema": ref}}
    if status == 503:
        out["headers"] = _RETRY_HEADERS
    return out


def openapi() -> dict[str, Any]:
    """Powertools' document for the resolver, completed with answers, bodies and signature
    headers."""
    doc: dict[str, Any] = json.loads(
        api.get_openapi_json_schema(
            title="gme-autorecord webhook",
            version=VERSION,
            description=(
                "Signed room events in; recordings started once per room session. An integer "
                "field takes a JSON integer, or below 2^53 a number with a zero fraction (2.0); "
                "a number that overflows to infinity (1e400) is refused, 422 non_finite_number."
            ),
        )
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for path, answers in RESPONSES.items():
        for operation in doc["paths"][path].values():
            operation["responses"] = {
                str(status): _answer(status, text, model, schemas)
                for status, (text, model) in answers.items()
            }
    for route in Route:
        request = _request_schema(route)
        schemas.update(request.pop("$defs", {}))
        schemas[request["title"]] = request
        operation = doc["paths"][route.value]["post"]
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{request['title']}"}}
            },
        }
        operation["parameters"] = [
            {"name": name, "in": "header", "required": True, "description": text,
             "schema": {"type": "string"}}
            for name, text in _HEADERS[route]
        ]  # fmt: skip
    doc["x-unrouted-responses"] = {str(k): v for k, v in UNROUTED.items()}
    for _ in range(3):  # drop Powertools' validation-error schemas: nothing refers to them
        text = json.dumps(doc["paths"]) + json.dumps(schemas)
        for name in [n for n in schemas if f'/{n}"' not in text]:
            del schemas[name]
    return doc


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generated() -> dict[Path, str]:
    return {
        OPENAPI_FILE: _dump(openapi()),
        ROOM_EVENT_SCHEMA_FILE: _dump(room_event_schema()),
        RECORDING_EVENT_SCHEMA_FILE: _dump(recording_event_schema()),
    }


def main(argv: list[str]) -> int:
    """`python -m handler.tools.contract [--check]`: write docs/, or exit 1 when they are stale."""
    stale = [p for p, text in generated().items() if not p.exists() or p.read_text() != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path.name} is stale: run python -m handler.tools.contract", file=sys.stderr)
        return 1 if stale else 0
    DOCS.mkdir(exist_ok=True)
    for path, text in generated().items():
        path.write_text(text)
        print(f"wrote {path.relative_to(DOCS.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
