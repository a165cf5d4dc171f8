"""A backend the tests plug in by import path (``--backend tests.backends_for_tests:TaggedHF``)."""

from __future__ import annotations

from typing import Any

from editguard.backends.hf import HFBackend


class TaggedHF(HFBackend):
    """The transformers backend under another name: its name reaches every baseline key and
    every row's provenance, so a run shows which backend scored it."""

    name = "tagged-hf"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "tagged": True}


class ScoringOnlyHF(HFBackend):
    """A backend that scores but does not generate (as a log-likelihood-only service would)."""

    name = "scoring-only"
    can_generate = False
