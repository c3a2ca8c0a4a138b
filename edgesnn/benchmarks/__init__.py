"""Benchmarks behind `edgesnn bench` and tools/bench: they print tables, never assert times."""
