"""editguard's pytest plugins load through the ``pytest11`` entry points of the installed
distribution (``editguard.fixtures.plugin`` and ``editguard.reports.plugin``; see
pyproject.toml), so nothing is registered here. Run ``bash scripts/setup.sh`` first."""
