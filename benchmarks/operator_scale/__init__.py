"""The parts of ``benchmarks/bench_operator.py``: bursts of objects on a throwaway local cluster,
waited for with progress and a fast stop, and the figures read from the audit log."""
