"""Benchmarks: workloads run against a real server process over HTTP; `python -m benchmarks` prints a table."""
