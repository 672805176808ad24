"""Benchmarks: speed and memory targets measured side by side, reported as medians and ratios."""
