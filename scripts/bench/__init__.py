"""Benchmarks: each `run_*_bench(...) -> dict` is dispatched by `creditnet bench`."""
