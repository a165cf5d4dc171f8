"""Speed benchmarks (run as modules from the checkout; not part of the test suite)."""
