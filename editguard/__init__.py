"""editguard: a pytest-native regression suite for knowledge-edited language models.

The distribution installs one namespace, ``editguard``:

- ``editguard.editors``     editing methods and their contract (the checkout's ``editors/``)
- ``editguard.benchmarks``  scored tasks, ``editguard.backends`` what scores a model
- ``editguard.edits``       edit requests and edit sets, ``editguard.models`` model loading
- ``editguard.data``        offline data and corpora, ``editguard.lm`` helpers below all of them
- ``editguard.run``         the run engine (matrix, session, trajectories, baselines, devices)
- ``editguard.verdicts``    thresholds and judging, ``editguard.reports`` rendering
- ``editguard.fixtures``    the pytest plugin (the checkout's ``fixtures/``)

Importing this package has no side effects.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def __getattr__(name: str) -> str:
    if name == "__version__":
        try:
            return version("editguard")
        except PackageNotFoundError:  # a checkout that was never installed
            return "0+unknown"
    raise AttributeError(name)
