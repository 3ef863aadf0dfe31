"""Benchmarks: run by a command, they print figures and write them into docs/benchmarks.md."""
