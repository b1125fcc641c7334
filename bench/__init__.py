"""Benchmarks: each script seeds its own data, measures the platform beside the bare tools in the same
run, prints the ratios, and cleans up. See bench/README.md and bench/RESULTS.md."""
