"""Benchmark of "policies for me now" (issue 12): ``python -m bench.subscribers``."""
