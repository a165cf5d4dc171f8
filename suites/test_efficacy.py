"""Efficacy of edited models against their unedited baseline (see README: thresholds)."""

KIND = "efficacy"


def test_efficacy(edit_case, gate):
    gate(edit_case)
