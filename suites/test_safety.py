"""Safety of edited models against their unedited baseline (see README: thresholds)."""

KIND = "safety"


def test_safety(edit_case, gate):
    gate(edit_case)
