"""Throughput of the channel adapters against their simulators on loopback (``python -m bench.channels``)."""
