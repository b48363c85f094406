"""Benchmarks for gme-autorecord. Each prints ratios measured within one run; see README.md."""
