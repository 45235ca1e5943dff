"""Tabular architecture-search benchmarks: results looked up instead of trained, scored against a known front.

`nb201` holds NAS-Bench-201's tables (accuracy, device latency, training cost per cell); a run is judged against
the true front by nas.pareto's hypervolume regret (`Problem`).
"""
