"""Recording events to the customer's HTTP endpoint, signed the Standard Webhooks way.

Headers `webhook-id` (the event's id: the same for the same fact on every attempt, so the
receiver deduplicates on it), `webhook-timestamp` (this attempt's Unix seconds) and
`webhook-signature` (`v1,` + base64 HMAC-SHA256 over `id.timestamp.body` with the
`whsec_` key). One attempt per call, no redirects followed (a redirect would carry the signed
body elsewhere), a total timeout: any non-2xx answer or error is a failed attempt.
"""

from __future__ import annotations

import time

import urllib3

from handler.domain.signatures import sign_standard_webhook, standard_webhook_key

USER_AGENT = "gme-autorecord-notify/1"


class DeliveryFailed(RuntimeError):
    """The receiver did not accept the event; the text says why (never the key)."""


class WebhookSink:
    name = "webhook"

    def __init__(self, url: str, secret: str) -> None:
        self._url = url
        self._key = standard_webhook_key(secret)
        self._http = urllib3.PoolManager(retries=False, maxsize=4)

    def send(self, event_id: str, event_type: str, body: str, timeout: float) -> None:
        raw = body.encode()
        stamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": event_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign_standard_webhook(self._key, event_id, stamp, raw),
        }
        try:
            answer = self._http.request(
                "POST",
                self._url,
                body=raw,
                headers=headers,
                redirect=False,
                timeout=urllib3.Timeout(total=timeout),
            )
        except urllib3.exceptions.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}") from None
        if not 200 <= answer.status < 300:
            raise DeliveryFailed(f"HTTP {answer.status}")
