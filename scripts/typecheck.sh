#!/usr/bin/env bash
# Type-check the installed layout of the editguard package with mypy (settings in pyproject.toml).
# mypy cannot follow an editable install's import hooks, and the checkout maps editors/,
# fixtures/ and reports/ into the editguard namespace, so the package is installed as a wheel
# would install it into .cache/typecheck and checked there.
set -euo pipefail
cd "$(dirname "$0")/.."
target=.cache/typecheck
rm -rf "$target"
.venv/bin/python -m pip --disable-pip-version-check -q install --no-deps --no-build-isolation \
  --no-index --target "$target" .
rm -rf build  # setuptools' scratch folder
cd "$target"
../../.venv/bin/mypy --config-file ../../pyproject.toml --cache-dir ../mypy -p editguard
