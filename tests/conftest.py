"""Shared fixtures of the project's own tests: a real tokenizer and tiny random-init models."""

from __future__ import annotations

import pytest
from transformers import PreTrainedTokenizerBase

from tests.tiny import smollm_tokenizer


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerBase:
    return smollm_tokenizer()
