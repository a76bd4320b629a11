"""Benchmarks: each prints our figure beside a peer or a physical limit (make bench)."""
