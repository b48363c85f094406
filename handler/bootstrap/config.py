"""All configuration, read from the environment once and validated with clear errors."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from handler.adapters.secrets import is_reference
from handler.bootstrap.observability import tracing_enabled
from handler.domain.signatures import TrtcCallbackKey, standard_webhook_key

DEFAULT_POLICY = os.path.normpath(
    os.path.join(os.path.dirname(__file__), "..", "..", "policies", "default.yaml")
)


def _split(value: str | None) -> list[SecretStr]:
    return [SecretStr(v.strip()) for v in (value or "").split(",") if v.strip()]


def _app_ids(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


AppId = Annotated[int, Field(gt=0, lt=2**63)]


class ConfigError(ValueError):
    """Names the variable at fault; never shows a secret value."""


#: Optional parts of the build (requirements-<extra>.txt): the module each one brings.
OPTIONAL_PARTS = {"redis": "redis", "xray": "aws_xray_sdk"}


def require_part(extra: str, needed_by: str) -> None:
    """Fail at start, naming the setting and the build option, when a setting needs an optional
    part that this build (the default zip, or `make run`'s environment) does not carry."""
    import importlib.util

    if importlib.util.find_spec(OPTIONAL_PARTS[extra]) is None:
        raise ValueError(
            f"{needed_by} needs the optional part `{extra}`, which this build lacks: deploy a zip"
            f" built with `make artifact EXTRAS={extra}` (locally: `make run EXTRAS={extra}`)"
        )


SECRET_VARIABLES = (
    "TENCENTCLOUD_SECRET_ID",
    "TENCENTCLOUD_SECRET_KEY",
    "TENCENTCLOUD_SESSION_TOKEN",
    "WEBHOOK_SECRETS",
    "TRTC_CALLBACK_KEY",
    "GME_CALLBACK_KEY",
    "NOTIFY_WEBHOOK_SECRET",
)


def has_secret_references(env: Mapping[str, str] | None = None) -> bool:
    """Whether any secret variable holds a reference (then the settings are re-read)."""
    env = os.environ if env is None else env
    return any(is_reference(env.get(name, "")) for name in SECRET_VARIABLES)


def _fetch(name: str, reference: str, resolve: Callable[[str], str] | None) -> str:
    if resolve is None:
        from handler.adapters import secrets

        resolve = secrets.resolve
    try:
        return resolve(reference)
    except Exception as exc:  # any fetch failure: name the variable, not the value
        raise ConfigError(f"{name}: cannot resolve {reference} ({type(exc).__name__})") from None


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    gme_endpoint: str = "gme.tencentcloudapi.com"
    secret_id: SecretStr | None = None
    secret_key: SecretStr | None = None
    session_token: SecretStr | None = None
    gme_timeout_seconds: Annotated[int, Field(ge=1, le=60)] = 5
    # GME allows 20 per second per API per credential and region (all BizIds together); 19 with
    # no burst stays under it by one request a second (handler.domain.ratelimit.Pace; 0 = off).
    gme_rate_limit_per_second: Annotated[float, Field(ge=0, le=1000)] = 19.0
    gme_rate_limit_burst: Annotated[int, Field(ge=1, le=100)] = 1
    idempotency_store: str = "sqlite:///.local/idempotency.db"
    idempotency_expiry_seconds: Annotated[int, Field(ge=60)] = 26 * 3600
    recording_policy: str = DEFAULT_POLICY
    policy_cache_seconds: Annotated[int, Field(ge=0, le=86_400)] = 300
    active_recordings: str | None = None
    # Plain mutable defaults (pydantic copies them per instance): `default_factory=list` makes
    # pydantic read the builtin's text signature, which pulls in tokenize at import time.
    webhook_secrets: list[SecretStr] = []
    #: The TRTC apps this deployment serves; an unbound TRTC key verifies these only. Declared
    #: before the keys: their validator reads it.
    trtc_sdk_app_ids: list[AppId] = []
    trtc_callback_keys: list[SecretStr] = []
    gme_callback_keys: list[SecretStr] = []
    record_queue_url: str | None = None
    room_not_found_grace_seconds: Annotated[int, Field(ge=0)] = 120
    max_body_bytes: Annotated[int, Field(ge=1024, le=1_048_576)] = 64 * 1024
    # Recording events out (docs/notifications.md): a signed webhook and/or an EventBridge bus.
    notify_webhook_url: str | None = None
    notify_webhook_secret: SecretStr | None = None
    notify_event_bus: str | None = None
    notify_timeout_seconds: Annotated[float, Field(gt=0, le=10)] = 2.0
    notify_retry_seconds: Annotated[int, Field(ge=60, le=14 * 86_400)] = 86_400

    @field_validator("notify_webhook_url")
    @classmethod
    def _notify_url(cls, value: str | None) -> str | None:
        if value and not value.lower().startswith(("https://", "http://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("notify_webhook_secret")
    @classmethod
    def _notify_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("whsec_"):
            raise ValueError("must be a Standard Webhooks secret, whsec_<base64>")
        if value is not None:
            standard_webhook_key(value.get_secret_value())  # raises on a malformed whsec_
        return value

    @field_validator("webhook_secrets")
    @classmethod
    def _whsec(cls, value: list[SecretStr]) -> list[SecretStr]:
        for secret in value:
            standard_webhook_key(secret.get_secret_value())  # raises on a malformed whsec_
        return value

    @field_validator("idempotency_store")
    @classmethod
    def _store_url(cls, value: str) -> str:
        from handler.adapters.stores import parse_store_url

        parse_store_url(value)  # raises on a malformed URL (its message hides any password)
        if value.startswith(("redis://", "rediss://")):
            require_part("redis", "a redis:// store")
        return value

    @field_validator("trtc_callback_keys")
    @classmethod
    def _trtc(cls, value: list[SecretStr], info: ValidationInfo) -> list[SecretStr]:
        named = "trtc_sdk_app_ids" not in info.data or info.data["trtc_sdk_app_ids"]
        for position, entry in enumerate(value, 1):
            try:
                key = TrtcCallbackKey.parse(entry.get_secret_value())
            except ValueError as exc:  # the entry's position, never its value
                raise ValueError(f"entry {position}: {exc}") from None
            if key.sdk_app_id is None and not named:
                # TRTC signs the body only: a key bound to no app would verify a body one app
                # signed when it is replayed under any other app's SdkAppId header.
                raise ValueError(
                    f"entry {position} names no app: write it SDKAPPID:key (for example "
                    "1400000000:<key>), or set TRTC_SDK_APP_ID to the app(s) it is for"
                )
        return value

    @field_validator("recording_policy")
    @classmethod
    def _policy_reference(cls, value: str) -> str:
        from handler.adapters.policy_source import source_from_setting

        source_from_setting(value)  # raises on a malformed ssm: / appconfig: reference
        return value

    @field_validator("active_recordings")
    @classmethod
    def _counter(cls, value: str | None) -> str | None:
        from handler.adapters.active_recordings import build_active_recordings

        if value != "ledger:":  # the ledger is built by the app, from LEDGER_STORE
            build_active_recordings(value)  # raises on an unknown form; opens nothing
        return value

    def webhook_keys(self) -> list[bytes]:
        return [standard_webhook_key(s.get_secret_value()) for s in self.webhook_secrets]

    def trtc_keys(self) -> list[TrtcCallbackKey]:
        """`TRTC_CALLBACK_KEY` entries, each bound to an app: `SDKAPPID:key` to that one, a bare
        `key` to each app of `TRTC_SDK_APP_ID` (validation refuses a bare key without them)."""
        keys = [TrtcCallbackKey.parse(s.get_secret_value()) for s in self.trtc_callback_keys]
        return [
            bound
            for key in keys
            for bound in (
                [key]
                if key.sdk_app_id is not None
                else [TrtcCallbackKey(key.key, app) for app in self.trtc_sdk_app_ids]
            )
        ]

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        resolve: Callable[[str], str] | None = None,
    ) -> Settings:
        """Read the environment. Secret variables may hold a reference (`ssm:/path` or
        `secretsmanager:name`) instead of a value; `resolve` fetches it."""
        env = dict(os.environ if env is None else env)
        if not env.get("NOTIFY_WEBHOOK_URL"):  # the deployed reference is fetched only when used
            env.pop("NOTIFY_WEBHOOK_SECRET", None)
        for name in SECRET_VARIABLES:
            value = env.get(name, "")
            if is_reference(value):
                env[name] = _fetch(name, value, resolve)
        names = {
            "gme_endpoint": "GME_ENDPOINT",
            "secret_id": "TENCENTCLOUD_SECRET_ID",
            "secret_key": "TENCENTCLOUD_SECRET_KEY",
            "session_token": "TENCENTCLOUD_SESSION_TOKEN",
            "gme_timeout_seconds": "GME_TIMEOUT_SECONDS",
            "gme_rate_limit_per_second": "GME_RATE_LIMIT_PER_SECOND",
            "gme_rate_limit_burst": "GME_RATE_LIMIT_BURST",
            "idempotency_store": "IDEMPOTENCY_STORE",
            "idempotency_expiry_seconds": "IDEMPOTENCY_EXPIRY_SECONDS",
            "recording_policy": "RECORDING_POLICY",
            "policy_cache_seconds": "POLICY_CACHE_SECONDS",
            "active_recordings": "ACTIVE_RECORDINGS",
            "record_queue_url": "RECORD_QUEUE_URL",
            "room_not_found_grace_seconds": "ROOM_NOT_FOUND_GRACE_SECONDS",
            "max_body_bytes": "MAX_BODY_BYTES",
            "notify_webhook_url": "NOTIFY_WEBHOOK_URL",
            "notify_webhook_secret": "NOTIFY_WEBHOOK_SECRET",
            "notify_event_bus": "NOTIFY_EVENT_BUS",
            "notify_timeout_seconds": "NOTIFY_TIMEOUT_SECONDS",
            "notify_retry_seconds": "NOTIFY_RETRY_SECONDS",
        }
        lists = {
            "webhook_secrets": "WEBHOOK_SECRETS",
            "trtc_callback_keys": "TRTC_CALLBACK_KEY",
            "gme_callback_keys": "GME_CALLBACK_KEY",
        }
        if tracing_enabled(env):
            try:
                require_part("xray", "tracing (POWERTOOLS_TRACE_DISABLED=false)")
            except ValueError as exc:
                raise ConfigError(f"POWERTOOLS_TRACE_DISABLED: {exc}") from None
        data: dict[str, object] = {k: env[v] for k, v in names.items() if env.get(v)}
        data.update({k: _split(env.get(v)) for k, v in lists.items()})
        data["trtc_sdk_app_ids"] = _app_ids(env.get("TRTC_SDK_APP_ID", ""))
        if data.get("notify_webhook_url") and not data.get("notify_webhook_secret"):
            raise ConfigError(  # never an unsigned notification
                "invalid configuration: NOTIFY_WEBHOOK_SECRET: required with NOTIFY_WEBHOOK_URL"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            every = {**names, **lists, "trtc_sdk_app_ids": "TRTC_SDK_APP_ID"}
            problems = [
                f"{every.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            ]
            raise ConfigError("invalid configuration: " + "; ".join(problems)) from None

    def require_credentials(self) -> tuple[str, str, str | None]:
        if not self.secret_id or not self.secret_key:
            raise ConfigError(
                "TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY are required to call GME"
            )
        token = self.session_token.get_secret_value() if self.session_token else None
        return self.secret_id.get_secret_value(), self.secret_key.get_secret_value(), token
