"""Ingress of the webhook: authentication and bounds (`ingest`), the answer to each request
(`receiver`) and the once-per-event-id enqueue (`enqueue`).

Runs inside the webhook entry, before anything is recorded. May import the domain, the
composition root and settings (`bootstrap`), and from `adapters` only the queue's error it
answers (`adapters.queue`); never the entry points, the service layer or `tools`.
"""
