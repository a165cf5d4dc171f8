"""Registers editguard's plugins; everything else lives in fixtures/ and reports/."""

pytest_plugins = ["reports.plugin", "fixtures.plugin"]
