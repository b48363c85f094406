"""Service layer: the use cases every trigger shares.

`service` (an event to a decision to a start), `recorder` (the idempotent StartRecord),
`reporting`, `notify` (recording events out), and `lifecycle/` (what a tick plans and the
steps a worker runs). May import the domain, itself, and from `bootstrap` only the settings'
error (`config`) and `observability`; talks to infrastructure only through the domain's ports,
so never `adapters`, the entry points, the ingress, the composition root (`app`) or `tools`.
"""
