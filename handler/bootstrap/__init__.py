"""The composition root and what every process runs with.

`app` builds the adapters and services from the settings, once per process; `config` reads
the settings from the environment; `observability` holds the logger, metrics and tracer;
`init_phase` is each entry's first import. `app` may import every runtime folder (never the
entry points or `tools`); `config` and `observability` are shared by the layers below, so they
import only the domain and adapters (lazily, to parse a setting that names one).
"""
