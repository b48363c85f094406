"""A hostile-request generator driven by the published OpenAPI document (docs/openapi.json).

For each documented operation it builds a body from the operation's request schema, then
corrupts it (wrong types, missing and unknown fields, huge and deeply nested values, unicode
and control characters, broken UTF-8, truncation, duplicate keys, NaN) and signs it well or
badly (forged, truncated, bit-flipped, wrong key, stale or future timestamp, replayed, missing
headers, wrong SdkAppId), wraps it in API Gateway framing (base64 or not, lying flags, wrong
content types, wrong methods, unknown paths). Each case records whether a rightful sender made
it, so a run can check that nothing else is ever accepted.

Seeded `random` rather than hypothesis: ten thousand cases must take seconds, and a failing
case is reproduced by its seed and index, printed with the failure.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import random
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from handler.domain.signatures import sign_standard_webhook, sign_trtc, standard_webhook_key
from handler.tools import contract
from handler.tools.local import http_event
from tests.conftest import BIZ_ID, GME_KEY, TRTC_KEY, WEBHOOK_SECRET, load_event

DOC: dict[str, Any] = json.loads(contract.OPENAPI_FILE.read_text())
KEY = standard_webhook_key(WEBHOOK_SECRET)
SAMPLES = {
    "/v1/room-events": ["room-created.json", "room-closed.json", "room-created-practice.json"],
    "/v1/trtc/room-callbacks": ["trtc-room-created.json", "trtc-room-dismissed.json"],
    "/v1/gme/recording-callbacks": ["gme-recording-started.json"],
}
SIGNINGS = (
    ["good"] * 8
    + ["forged", "truncated", "flipped", "wrong_key", "stale", "future", "missing", "tampered"]
    + ["wrong_app_id", "no_content_type", "wrong_content_type"]
)
HOSTILE_STRINGS = [
    "",
    " ",
    "\x00",
    "\x1b[31mred",
    "room\nid",
    "\u202eevil",
    "\ud83d\ude00",
    "é" * 200,
    "x" * 128,
    "x" * 70_000,
    "'; DROP TABLE rooms; --",
    "${jndi:ldap://127.0.0.1/a}",
    "../../etc/passwd",
    "\\ud800",
]


def gme_signature(body: bytes, key: str = GME_KEY, hex_form: bool = False) -> str:
    mac = hmac.new(key.encode(), body, hashlib.sha1).digest()
    return mac.hex() if hex_form else base64.b64encode(mac).decode()


def documented_statuses(path: str, method: str) -> set[int]:
    op = DOC["paths"].get(path, {}).get(method.lower())
    if op is None:
        return {int(code) for code in DOC["x-unrouted-responses"]}
    return {int(code) for code in op["responses"]}


@dataclass
class Case:
    index: int
    path: str
    method: str
    event: dict[str, Any]
    rightful: bool  # signed with a configured key over exactly these bytes, fresh, right app
    label: str


def _names_app(doc: Any) -> bool:
    info = doc.get("EventInfo") if isinstance(doc, dict) else None
    return isinstance(doc, dict) and (
        doc.get("SdkAppId") is not None
        or (isinstance(info, dict) and info.get("SdkAppId") is not None)
    )


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DOC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


class Generator:
    def __init__(self, seed: int, now: float, trtc_key_bound: bool = False) -> None:
        """`trtc_key_bound`: the webhook's TRTC key is configured as `BIZ_ID:key`, so only
        requests whose SdkAppId header is BIZ_ID may be accepted on the TRTC route."""
        self.rng = random.Random(seed)
        self.now = int(now)
        self.trtc_key_bound = trtc_key_bound
        self.operations = [
            (path, method, op) for path, ops in DOC["paths"].items() for method, op in ops.items()
        ]
        self.sent: list[Case] = []

    # -- bodies from the schema ---------------------------------------------------------------
    def instance(self, schema: dict[str, Any], name: str = "", depth: int = 0) -> Any:
        rng = self.rng
        schema = _resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return rng.choice(schema["enum"])
        if "anyOf" in schema:
            return self.instance(rng.choice(schema["anyOf"]), name, depth)
        kind = schema.get("type", "object")
        if name in ("CallbackTs",):
            return self.now * 1000
        if name in ("Timestamp",):
            return self.now
        if kind == "object":
            out: dict[str, Any] = {}
            required = set(schema.get("required", ()))
            for prop, sub in schema.get("properties", {}).items():
                if prop in required or rng.random() < 0.5:
                    out[prop] = self.instance(sub, prop, depth + 1)
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict) and depth < 3:
                for i in range(rng.randrange(4)):
                    out[f"k{i}"] = self.instance(extra, "", depth + 1)
            return out
        if kind == "string":
            if schema.get("format") == "date-time":
                return datetime.fromtimestamp(self.now, UTC).isoformat().replace("+00:00", "Z")
            low, high = schema.get("minLength", 0), min(schema.get("maxLength", 40), 40)
            alphabet = string.ascii_letters + string.digits + "-_.:"
            return "".join(rng.choice(alphabet) for _ in range(rng.randint(max(low, 1), high)))
        if kind == "integer":
            low = schema.get("exclusiveMinimum", schema.get("minimum", -1) - 1) + 1
            high = min(schema.get("exclusiveMaximum", 2**31) - 1, 2**40)
            return rng.choice([BIZ_ID, rng.randint(low, high)])
        if kind == "number":
            return rng.uniform(-1e6, 1e6)
        if kind == "boolean":
            return rng.random() < 0.5
        return None

    def body_doc(self, path: str, op: dict[str, Any]) -> Any:
        if path in SAMPLES and self.rng.random() < 0.5:
            doc = load_event(self.rng.choice(SAMPLES[path]))
            if "CallbackTs" in doc:
                doc["CallbackTs"] = self.now * 1000
            if "Timestamp" in doc:
                doc["Timestamp"] = self.now
            if "id" in doc and self.rng.random() < 0.7:
                doc["id"] = f"evt-{self.rng.randrange(10**9)}"
            return doc
        content = op.get("requestBody", {}).get("content", {}).get("application/json")
        return self.instance(content["schema"]) if content else {}

    # -- corruption ------------------------------------------------------------------------------
    def hostile_value(self) -> Any:
        rng = self.rng
        choice = rng.randrange(10)
        if choice == 0:
            return rng.choice(HOSTILE_STRINGS)
        if choice == 1:
            value: Any = 1
            for _ in range(rng.choice([5, 31, 40, 200])):
                value = [value] if rng.random() < 0.5 else {"a": value}
            return value
        if choice == 2:
            return rng.choice([0, -1, 2**63, 2**64, 10**30, -(10**30), 1.5, 1e308, True, False])
        if choice == 3:
            return None
        if choice == 4:
            return [rng.choice(HOSTILE_STRINGS) for _ in range(rng.randrange(50))]
        if choice == 5:
            return {f"k{i}": i for i in range(rng.choice([3, 65, 3000]))}
        if choice == 6:
            return "".join(chr(rng.randrange(0x20, 0x2FFFF)) for _ in range(rng.randrange(1, 80)))
        if choice == 7:
            return "".join(chr(rng.randrange(0, 0x20)) for _ in range(rng.randrange(1, 20)))
        if choice == 8:
            return str(rng.randrange(10**12))
        return rng.random()

    def mutate_doc(self, doc: Any) -> Any:
        rng = self.rng
        if not isinstance(doc, dict) or not doc:
            return self.hostile_value()
        doc = copy.deepcopy(doc)
        for _ in range(rng.randint(1, 3)):
            keys = list(doc)
            roll = rng.randrange(6)
            if roll == 0 and keys:
                del doc[rng.choice(keys)]
            elif roll <= 2 and keys:
                doc[rng.choice(keys)] = self.hostile_value()
            elif roll == 3:
                doc[rng.choice(["extra", "__proto__", "Type", "", "EventInfo"])] = (
                    self.hostile_value()
                )
            elif roll == 4 and isinstance(doc.get("EventInfo"), dict):
                doc["EventInfo"][rng.choice(["RoomId", "UserId", "EventMsTs", "SdkAppId"])] = (
                    self.hostile_value()
                )
            else:
                return rng.choice([[doc], self.hostile_value(), "string body"])
        return doc

    def raw(self, doc: Any) -> bytes:
        rng = self.rng
        text = json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
        roll = rng.randrange(14)
        if roll == 0:
            return text[: rng.randrange(len(text) + 1)]
        if roll == 1:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(300)))
        if roll == 2:
            return b"[" * rng.choice([33, 1000, 60_000]) + b"]" * rng.choice([0, 33])
        if roll == 3 and text.startswith(b"{") and len(text) > 2:
            return text[:-1] + b', "type": "room.closed", "biz_id": 1}'  # duplicate keys
        if roll == 4:
            return text.replace(b"1", b"NaN", 1)
        if roll == 5:
            return text + b" " * rng.choice([10, 70_000])
        if roll == 6:
            return text.replace(b'"', b"\xff", 1)
        return text

    # -- signing and framing ---------------------------------------------------------------------
    def headers(self, path: str, body: bytes, signing: str) -> dict[str, str]:
        rng = self.rng
        content_types = ["application/json", "application/json; charset=utf-8", "Application/JSON"]
        headers = {"content-type": rng.choice(content_types)}
        stamp = self.now
        if signing == "stale":
            stamp -= rng.randint(301, 10**8)
        elif signing == "future":
            stamp += rng.randint(301, 10**8)
        signed = body + (b"x" if signing == "tampered" else b"")
        if path == "/v1/room-events":
            key = b"another-key" if signing == "wrong_key" else KEY
            msg_id = f"msg-{rng.randrange(10**9)}"
            sig = sign_standard_webhook(key, msg_id, stamp, signed)
            headers |= {"webhook-id": msg_id, "webhook-timestamp": str(stamp)}
            headers["webhook-signature"] = self.spoil(sig, signing)
        elif path == "/v1/trtc/room-callbacks":
            sig = sign_trtc("another-key" if signing == "wrong_key" else TRTC_KEY, signed)
            headers["sign"] = self.spoil(sig, signing)
            headers["sdkappid"] = str(BIZ_ID + 1 if signing == "wrong_app_id" else BIZ_ID)
        else:
            key = "another-key" if signing == "wrong_key" else GME_KEY
            sig = gme_signature(signed, key, hex_form=rng.random() < 0.5)
            headers["signature"] = self.spoil(sig, signing)
        if signing == "missing":  # at least one signature header, maybe more
            signature_headers = {"webhook-id", "webhook-timestamp", "webhook-signature", "sign",
                                 "signature"} & set(headers)  # fmt: skip
            del headers[rng.choice(sorted(signature_headers))]
            for name in rng.sample(sorted(headers), rng.randint(0, len(headers))):
                del headers[name]
        if signing == "no_content_type":
            del headers["content-type"]
        if signing == "wrong_content_type":
            headers["content-type"] = rng.choice(["text/plain", "application/xml", "json", ""])
        if rng.random() < 0.1:
            headers[rng.choice(["x-evil", "webhook-id", "sign", "sdkappid"])] = rng.choice(
                HOSTILE_STRINGS[:9]
            )
        return headers

    def spoil(self, sig: str, signing: str) -> str:
        rng = self.rng
        if signing == "forged":
            return rng.choice(["v1,", ""]) + base64.b64encode(rng.randbytes(32)).decode()
        if signing == "truncated":
            return sig[: rng.randrange(len(sig))]
        if signing == "flipped":
            i = rng.randrange(len(sig) - 4, len(sig) - 1)
            return sig[:i] + ("A" if sig[i] != "A" else "B") + sig[i + 1 :]
        return sig

    def case(self, index: int) -> Case:
        rng = self.rng
        if self.sent and rng.random() < 0.05:  # an exact replay of an earlier request
            earlier = rng.choice(self.sent)
            return Case(index, earlier.path, earlier.method, copy.deepcopy(earlier.event),
                        earlier.rightful, "replay:" + earlier.label)  # fmt: skip
        path, method, op = rng.choice(self.operations)
        if path == "/health" and rng.random() < 0.7:  # mostly the signed routes
            path, method, op = rng.choice([o for o in self.operations if o[0] != "/health"])
        if path == "/health" or rng.random() < 0.03:
            method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
            path = rng.choice([path, "/", "/v1/room-events/", "/v2/room-events", "/%00"])
            open_route = (path, method) == ("/health", "GET")  # needs no signature
            event = http_event(method, path, {}, b"")
            case = Case(index, path, method, event, open_route, "routing")
            self.sent.append(case)
            return case
        doc = self.body_doc(path, op)
        mutated = rng.random() < 0.6
        if mutated:
            doc = self.mutate_doc(doc)
        signing = rng.choice(SIGNINGS)
        if signing in ("stale", "future") and isinstance(doc, dict):
            # TRTC and GME carry their freshness in the body, not in a header.
            shift = rng.randint(301, 10**8) * (1 if signing == "future" else -1)
            if isinstance(doc.get("CallbackTs"), int):
                doc["CallbackTs"] += shift * 1000
            if isinstance(doc.get("Timestamp"), int):
                doc["Timestamp"] += shift
        body = self.raw(doc)
        event = http_event("POST", path, self.headers(path, body, signing), body)
        framing = rng.randrange(10)
        if framing == 0:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
        elif framing == 1 and not event["isBase64Encoded"]:
            event["isBase64Encoded"] = True  # the flag lies
            signing = "lying_base64"
        rightful = signing == "good" or (
            # TRTC signs the body only: with an unbound key, a SdkAppId header the body does not
            # contradict is the sender's word (the other routes have no such header, so their
            # signature is good); a key bound to BIZ_ID verifies BIZ_ID's requests only.
            signing == "wrong_app_id"
            and not _names_app(doc)
            and not (self.trtc_key_bound and path == "/v1/trtc/room-callbacks")
        )
        case = Case(
            index, path, "POST", event, rightful, f"{signing}:{'mutated' if mutated else 'sample'}"
        )
        self.sent.append(case)
        return case
