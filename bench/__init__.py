"""Benchmarks, run by hand (`make bench`) or by CI with small sizes; they print their numbers."""
