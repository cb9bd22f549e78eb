"""Benchmarks that anyone can rerun: ``python -m bench.lifecycle`` (see bench/README.md)."""
