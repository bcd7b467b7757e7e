"""Benchmarks: metrics, strategy comparison, performance."""
