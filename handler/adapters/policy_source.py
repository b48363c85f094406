"""Where the policy document comes from, and how it is kept fresh without a redeploy.

`RECORDING_POLICY` names the source:

- a path (or `file:PATH`): a YAML/JSON file, the default (`policies/default.yaml`);
- `ssm:/name`: an SSM Parameter Store parameter (String or SecureString), via Powertools;
- `appconfig:APPLICATION/ENVIRONMENT/PROFILE`: an AppConfig freeform configuration profile, via
  Powertools `get_app_config` (AppConfig's own validators and deployment strategies apply first).

`PolicyProvider.current()` re-fetches at most every `POLICY_CACHE_SECONDS` (default 300; 0 means
load once). A new document that fails to fetch or validate never replaces the good one in use:
the provider logs the error and keeps deciding with the last good policy.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from handler.bootstrap.observability import logger
from handler.domain.policy import Policy, PolicyError, parse_policy_text


class PolicySource(Protocol):
    """Fetches the current document text; raises on any failure to fetch."""

    label: str

    def fetch(self) -> str | bytes: ...


class FileSource:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.label = str(path)

    def fetch(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise PolicyError(f"{self.label}: cannot read policy ({exc.strerror})") from None


Fetch = Callable[[], object]


class SsmSource:
    """A parameter in SSM Parameter Store (decrypted when it is a SecureString)."""

    def __init__(self, name: str, fetch: Fetch | None = None) -> None:
        self.name = name
        self.label = f"ssm:{name}"
        self._fetch = fetch or self._powertools

    def _powertools(self) -> object:
        from aws_lambda_powertools.utilities import parameters

        # The provider does the caching; Powertools' own cache would only delay a change.
        return parameters.get_parameter(self.name, decrypt=True, force_fetch=True)

    def fetch(self) -> str | bytes:
        return _text(self._fetch(), self.label)


class AppConfigSource:
    """An AppConfig configuration profile (freeform, YAML or JSON)."""

    def __init__(
        self, application: str, environment: str, profile: str, fetch: Fetch | None = None
    ) -> None:
        self.application, self.environment, self.profile = application, environment, profile
        self.label = f"appconfig:{application}/{environment}/{profile}"
        self._fetch = fetch or self._powertools
        self._provider: object = None

    def _powertools(self) -> object:
        """Its own provider: Powertools' shared default one keeps the application and
        environment of its first caller. The provider keeps the AppConfig session token and
        returns the last configuration when AppConfig answers "unchanged" (empty)."""
        from aws_lambda_powertools.utilities.parameters import AppConfigProvider

        if self._provider is None:
            self._provider = AppConfigProvider(
                environment=self.environment, application=self.application
            )
        assert isinstance(self._provider, AppConfigProvider)
        return self._provider.get(self.profile, force_fetch=True)

    def fetch(self) -> str | bytes:
        return _text(self._fetch(), self.label)


def _text(value: object, label: str) -> str | bytes:
    if isinstance(value, str | bytes) and value:
        return value
    raise PolicyError(f"{label}: the source returned no document ({type(value).__name__})")


def source_from_setting(value: str, base: Path | None = None) -> PolicySource:
    """Turn a `RECORDING_POLICY` value into a source; refuses malformed references."""
    if value.startswith("ssm:"):
        name = value.removeprefix("ssm:")
        if not name or any(c.isspace() for c in name):
            raise PolicyError(f"RECORDING_POLICY: {value!r} is not ssm:/parameter/name")
        return SsmSource(name)
    if value.startswith("appconfig:"):
        parts = value.removeprefix("appconfig:").split("/")
        if len(parts) != 3 or not all(p.strip() for p in parts):
            raise PolicyError(
                f"RECORDING_POLICY: {value!r} is not appconfig:APPLICATION/ENVIRONMENT/PROFILE"
            )
        application, environment, profile = parts
        return AppConfigSource(application, environment, profile)
    path = Path(value.removeprefix("file:"))
    return FileSource(base / path if base is not None and not path.is_absolute() else path)


class PolicyProvider:
    """The policy to decide with now: fetched once, re-fetched after `cache_seconds`, and
    replaced only by a document that validates. Safe to call on every event (a clock read)."""

    def __init__(
        self,
        source: PolicySource,
        cache_seconds: int = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._policy: Policy | None = None
        self._digest: bytes | None = None
        self._next_check = 0.0

    def current(self) -> Policy:
        """The policy in force. Raises `PolicyError` only while no good document was ever
        loaded (a cold start on a broken document): there is nothing safe to decide with."""
        if self._policy is None:
            self._policy = self._first_load()
        elif self.cache_seconds > 0 and self._clock() >= self._next_check:
            self._refresh()
        return self._policy

    def _first_load(self) -> Policy:
        self._next_check = self._clock() + self.cache_seconds
        raw = self.source.fetch()
        policy = parse_policy_text(raw, self.source.label)
        self._digest = _digest(raw)
        logger.info(
            "policy loaded",
            extra={"policy_source": self.source.label, "policy_version": policy.version},
        )
        return policy

    def _refresh(self) -> None:
        assert self._policy is not None
        self._next_check = self._clock() + self.cache_seconds
        keep = {"policy_source": self.source.label, "policy_version": self._policy.version}
        try:
            raw = self.source.fetch()
        except Exception as exc:  # any fetch failure: keep deciding with the good policy
            logger.error(
                "policy fetch failed; keeping the last good policy",
                extra={**keep, "error": f"{type(exc).__name__}: {exc}"},
            )
            return
        digest = _digest(raw)
        if digest == self._digest:
            return
        try:
            policy = parse_policy_text(raw, self.source.label)
        except PolicyError as exc:
            logger.error(
                "new policy refused; keeping the last good policy",
                extra={**keep, "error": str(exc)},
            )
            return
        logger.info(
            "policy reloaded",
            extra={**keep, "policy_version": policy.version, "previous": self._policy.version},
        )
        self._policy, self._digest = policy, digest


def _digest(raw: str | bytes) -> bytes:
    return hashlib.sha256(raw.encode() if isinstance(raw, str) else raw).digest()
