"""Capability of edited models against their unedited baseline (see README: thresholds)."""

KIND = "capability"


def test_capability(edit_case, gate):
    gate(edit_case)
