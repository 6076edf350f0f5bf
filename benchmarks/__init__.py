"""Benchmarks and production-deployment helpers (see benchmarks/README.md)."""
