"""Entry points: the three Lambda handlers (`webhook`, `worker`, `scheduler`), a screen each.

Each parses its trigger, observes it (logger, metrics, tracer) and hands one message to the
service layer or the ingress. They may import the composition root and settings (`bootstrap`),
the ingress, the domain, and the service layer for types; never `adapters` (the composition
root builds those) nor `tools`. `bootstrap.init_phase` is each one's first import.
"""
