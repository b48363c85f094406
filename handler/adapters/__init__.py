"""Adapters: the infrastructure behind the domain's ports (the Tencent SDK client, ledgers,
idempotency stores, the SQS publisher, secrets, policy sources, notification sinks).

May import the domain, other adapters and `bootstrap.observability` (logger, tracer); never
the service layer, the ingress, the entry points, the composition root (`app`), settings
(`config`, which builds adapters) or `tools`.
"""
