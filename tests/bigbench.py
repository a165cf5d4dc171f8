"""Tests that read BIG-bench tasks run only where a local copy of its sdist was installed: PyPI
no longer has bigbench 1.0.0's files, so a fresh machine has none."""

from __future__ import annotations

import pytest

from editguard.data.archives import BIGBENCH
from editguard.data.install import has_bigbench

requires_bigbench = pytest.mark.skipif(
    not has_bigbench(),
    reason=f"BIG-bench tasks not installed: PyPI no longer has {BIGBENCH.requirement}; put "
           f"{BIGBENCH.filename} in $EDITGUARD_DOWNLOADS and run python -m editguard.data.install")
