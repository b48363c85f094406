"""gme-autorecord: start Tencent Cloud GME room recordings once per room session.

The package is laid out by role, one folder each; each folder's `__init__` says what lives there
and what it may import, and tests/unit/test_layers.py holds the code to those rules:

    entrypoints/    the three Lambda handlers: parse, observe, hand one message on
    ingress/        the webhook's authentication, bounds, answers and once-per-id enqueue
    service_layer/  use cases: the recording service, the idempotent start, the lifecycle
    domain/         pure rules and models; imports nothing outside itself
    adapters/       stores, clients, queues, policy sources behind the domain's ports
    bootstrap/      the composition root (`app`), settings, observability, the init phase
    tools/          the command line and the local stack; never shipped in the Lambda zip

`python -m handler` is the command line (`tools/cli.py`; `__main__.py` only forwards to it).
"""
