"""Benchmarks: `make bench` (= `python -m bench`) measures the API and worker side by side with the
seed's design and with raw DBOS, in one run on one machine, and prints a table of ratios.

Nothing here is asserted in the test suite; see docs/benchmarks.md for what each figure means.
"""
