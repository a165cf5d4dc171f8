"""Speed benchmarks: each script prints a ratio against a baseline measured in the same run."""
