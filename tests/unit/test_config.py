"""Settings read from the environment: defaults, validation, and secrets never echoed."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from handler.bootstrap.config import ConfigError, Settings

ROOT = Path(__file__).resolve().parents[2]
WHSEC = "whsec_" + base64.b64encode(b"webhook-key-one").decode()


def config_error(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    return str(info.value)


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.gme_endpoint == "gme.tencentcloudapi.com"
    assert s.secret_id is None
    assert s.secret_key is None
    assert s.session_token is None
    assert s.gme_timeout_seconds == 5
    assert s.idempotency_store.startswith("sqlite:///")
    assert s.idempotency_expiry_seconds == 26 * 3600
    assert s.webhook_secrets == []
    assert s.trtc_callback_keys == []
    assert s.gme_callback_keys == []
    assert s.webhook_keys() == []
    assert s.record_queue_url is None
    assert s.room_not_found_grace_seconds == 120
    assert s.max_body_bytes == 64 * 1024
    assert Path(s.recording_policy).resolve() == ROOT / "policies" / "default.yaml"


def test_empty_variables_count_as_unset() -> None:
    s = Settings.from_env({"GME_TIMEOUT_SECONDS": "", "GME_ENDPOINT": "", "WEBHOOK_SECRETS": ""})
    assert s.gme_timeout_seconds == 5
    assert s.gme_endpoint == Settings.from_env({}).gme_endpoint
    assert s.webhook_secrets == []


def test_values_are_read_from_their_variables() -> None:
    s = Settings.from_env(
        {
            "GME_ENDPOINT": "http://127.0.0.1:8080",
            "GME_TIMEOUT_SECONDS": "7",
            "IDEMPOTENCY_STORE": "dynamodb://table",
            "IDEMPOTENCY_EXPIRY_SECONDS": "3600",
            "RECORDING_POLICY": "/etc/policy.yaml",
            "RECORD_QUEUE_URL": "https://sqs.example/q",
            "ROOM_NOT_FOUND_GRACE_SECONDS": "0",
            "MAX_BODY_BYTES": "2048",
            "UNRELATED": "ignored",
        }
    )
    assert (s.gme_endpoint, s.gme_timeout_seconds) == ("http://127.0.0.1:8080", 7)
    assert (s.idempotency_store, s.idempotency_expiry_seconds) == ("dynamodb://table", 3600)
    assert (s.recording_policy, s.record_queue_url) == ("/etc/policy.yaml", "https://sqs.example/q")
    assert (s.room_not_found_grace_seconds, s.max_body_bytes) == (0, 2048)


def test_from_env_reads_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GME_TIMEOUT_SECONDS", "9")
    assert Settings.from_env().gme_timeout_seconds == 9


@pytest.mark.parametrize("value", ["abc", "0", "61", "1.5", "-1"])
def test_bad_timeout_names_the_variable(value: str) -> None:
    message = config_error({"GME_TIMEOUT_SECONDS": value})
    assert "GME_TIMEOUT_SECONDS" in message
    assert "gme_timeout_seconds" not in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_BODY_BYTES", "100"),
        ("MAX_BODY_BYTES", "2000000"),
        ("IDEMPOTENCY_EXPIRY_SECONDS", "59"),
        ("ROOM_NOT_FOUND_GRACE_SECONDS", "-1"),
    ],
)
def test_out_of_range_values_name_their_variable(name: str, value: str) -> None:
    assert name in config_error({name: value})


def test_several_problems_are_reported_together() -> None:
    message = config_error({"GME_TIMEOUT_SECONDS": "x", "MAX_BODY_BYTES": "y"})
    assert "GME_TIMEOUT_SECONDS" in message
    assert "MAX_BODY_BYTES" in message


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="GME_TIMEOUT_SECONDS"):
        Settings.from_env({"GME_TIMEOUT_SECONDS": "x"})


@pytest.mark.parametrize("payload", ["not*base64*at*all", "abcde", "abcd=efg"])
def test_malformed_whsec_is_refused_without_echoing_it(payload: str) -> None:
    message = config_error({"WEBHOOK_SECRETS": f"{WHSEC},whsec_{payload}"})
    assert "WEBHOOK_SECRETS" in message
    assert payload not in message
    assert WHSEC not in message


def test_comma_separated_keys_are_split_and_trimmed() -> None:
    other = "whsec_" + base64.b64encode(b"webhook-key-two").decode()
    s = Settings.from_env(
        {
            "WEBHOOK_SECRETS": f" {WHSEC} ,{other},, bare-secret ",
            "TRTC_CALLBACK_KEY": "t1,t2",
            "TRTC_SDK_APP_ID": "1400000000",
            "GME_CALLBACK_KEY": "g1",
        }
    )
    assert s.webhook_keys() == [b"webhook-key-one", b"webhook-key-two", b"bare-secret"]
    assert [k.get_secret_value() for k in s.trtc_callback_keys] == ["t1", "t2"]
    assert [k.get_secret_value() for k in s.gme_callback_keys] == ["g1"]


def test_whsec_with_empty_key_is_refused() -> None:
    assert "WEBHOOK_SECRETS" in config_error({"WEBHOOK_SECRETS": "whsec_"})


def test_secrets_do_not_leak_through_repr() -> None:
    s = Settings.from_env(
        {
            "TENCENTCLOUD_SECRET_ID": "AKIDsecretid",
            "TENCENTCLOUD_SECRET_KEY": "secret-key-value",
            "TENCENTCLOUD_SESSION_TOKEN": "session-token-value",
            "WEBHOOK_SECRETS": WHSEC,
            "TRTC_CALLBACK_KEY": "trtc-key-value",
            "TRTC_SDK_APP_ID": "1400000000",
            "GME_CALLBACK_KEY": "gme-key-value",
        }
    )
    text = repr(s) + str(s) + s.model_dump_json()
    for secret in (
        "AKIDsecretid",
        "secret-key-value",
        "session-token-value",
        WHSEC,
        "trtc-key-value",
        "gme-key-value",
    ):
        assert secret not in text


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"TENCENTCLOUD_SECRET_ID": "id"},
        {"TENCENTCLOUD_SECRET_KEY": "key"},
        {"TENCENTCLOUD_SECRET_ID": "", "TENCENTCLOUD_SECRET_KEY": "key"},
    ],
)
def test_require_credentials_names_both_variables(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env).require_credentials()
    assert "TENCENTCLOUD_SECRET_ID" in str(info.value)
    assert "TENCENTCLOUD_SECRET_KEY" in str(info.value)
    for value in env.values():
        if value:
            assert value not in str(info.value)


def test_require_credentials_returns_id_key_and_optional_token() -> None:
    base = {"TENCENTCLOUD_SECRET_ID": "id", "TENCENTCLOUD_SECRET_KEY": "key"}
    assert Settings.from_env(base).require_credentials() == ("id", "key", None)
    with_token = {**base, "TENCENTCLOUD_SESSION_TOKEN": "tok"}
    assert Settings.from_env(with_token).require_credentials() == ("id", "key", "tok")


def test_trtc_keys_are_read_in_order_and_a_bare_one_bound_to_each_named_app() -> None:
    s = Settings.from_env(
        {
            "TRTC_CALLBACK_KEY": "1400000000:key-a, shared-key ,0140:key:b",
            "TRTC_SDK_APP_ID": " 7, 0008 ",
        }
    )
    assert [(k.sdk_app_id, k.key) for k in s.trtc_keys()] == [
        (1400000000, "key-a"),
        (7, "shared-key"),
        (8, "shared-key"),
        (140, "key:b"),
    ]


@pytest.mark.parametrize("value", ["bare-key-value", "140:bound-key-value,bare-key-value"])
def test_a_bare_trtc_key_without_named_apps_is_refused_showing_the_bound_form(value: str) -> None:
    message = config_error({"TRTC_CALLBACK_KEY": value})
    assert message.startswith("invalid configuration: TRTC_CALLBACK_KEY: ")
    assert f"entry {value.count(',') + 1} names no app" in message
    assert "SDKAPPID:key" in message
    assert "TRTC_SDK_APP_ID" in message
    assert "key-value" not in message


@pytest.mark.parametrize("value", ["0", "x", "1,-5", str(2**63)])
def test_malformed_trtc_sdk_app_id_is_refused(value: str) -> None:
    message = config_error({"TRTC_SDK_APP_ID": value, "TRTC_CALLBACK_KEY": "bare-key-value"})
    assert "TRTC_SDK_APP_ID" in message
    assert "key-value" not in message


@pytest.mark.parametrize(
    ("value", "position"),
    [
        ("140:", 1),
        ("good-key,140:  ", 2),
        ("0:key-value", 1),
        ("key-one,key-two,99999999999999999999:x", 3),
    ],
)
def test_malformed_trtc_entry_names_the_variable_and_position_not_the_value(
    value: str, position: int
) -> None:
    message = config_error({"TRTC_CALLBACK_KEY": value, "TRTC_SDK_APP_ID": "1"})
    assert message.startswith("invalid configuration: TRTC_CALLBACK_KEY: ")
    assert f"entry {position}:" in message
    for part in value.split(","):
        assert part.strip() not in message
    assert "trtc_callback_keys" not in message


def test_bound_trtc_keys_do_not_leak_through_repr() -> None:
    s = Settings.from_env(
        {"TRTC_CALLBACK_KEY": "140:bound-key-value,unbound-key-value", "TRTC_SDK_APP_ID": "9"}
    )
    text = repr(s) + str(s) + s.model_dump_json() + repr(s.trtc_keys())
    assert "bound-key-value" not in text


NOTIFY_KEY = "whsec_" + "bm90aWZ5LWtleS1mb3ItdGVzdHM="  # "notify-key-for-tests"


def test_notify_webhook_needs_its_signing_key() -> None:
    with pytest.raises(ConfigError, match="NOTIFY_WEBHOOK_SECRET: required"):
        Settings.from_env({"NOTIFY_WEBHOOK_URL": "https://example.invalid/hooks"})
    with pytest.raises(ConfigError, match=r"NOTIFY_WEBHOOK_URL: .*http") as bad_url:
        Settings.from_env({"NOTIFY_WEBHOOK_URL": "ftp://x", "NOTIFY_WEBHOOK_SECRET": NOTIFY_KEY})
    assert NOTIFY_KEY not in str(bad_url.value)
    with pytest.raises(ConfigError, match=r"NOTIFY_WEBHOOK_SECRET: .*whsec_") as bad_key:
        Settings.from_env(
            {"NOTIFY_WEBHOOK_URL": "https://x.invalid/", "NOTIFY_WEBHOOK_SECRET": "plain-key-1"}
        )
    assert "plain-key-1" not in str(bad_key.value)
    s = Settings.from_env(
        {"NOTIFY_WEBHOOK_URL": "https://x.invalid/", "NOTIFY_WEBHOOK_SECRET": NOTIFY_KEY}
    )
    assert s.notify_webhook_secret is not None
    assert s.notify_webhook_secret.get_secret_value() == NOTIFY_KEY
    assert (s.notify_timeout_seconds, s.notify_retry_seconds) == (2.0, 86_400)


def test_the_notify_key_reference_is_fetched_only_with_a_url() -> None:
    fetched: list[str] = []

    def resolve(reference: str) -> str:
        fetched.append(reference)
        return NOTIFY_KEY

    env = {"NOTIFY_WEBHOOK_SECRET": "ssm:/gme-autorecord/dev/notify-webhook-secret"}
    assert Settings.from_env(env, resolve).notify_webhook_secret is None
    assert fetched == []  # the deployed stack references it whether or not a URL is set
    s = Settings.from_env({**env, "NOTIFY_WEBHOOK_URL": "https://x.invalid/"}, resolve)
    assert fetched == ["ssm:/gme-autorecord/dev/notify-webhook-secret"]
    assert s.notify_webhook_secret is not None
