"""A researcher's own editor and benchmark, from their own distribution, gated by the suite.

The distribution is written to a temporary directory, built and installed into a throwaway
target folder with pip (no network: the build uses the venv's setuptools), and found by the
suite only through its ``editguard.editors`` / ``editguard.benchmarks`` entry points.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from editguard.data.paths import editguard_home
from tests.tiny import save_tiny

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[1]
HOME = editguard_home()  # read before pytester points $HOME at a temporary directory

PYPROJECT = """
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "acme-editing"
version = "0.1.0"

[project.entry-points."editguard.editors"]
acme-ft = "acme_editing.editor:AcmeFineTune"

[project.entry-points."editguard.benchmarks"]
acme-capitals = "acme_editing.benchmark:Capitals"

[tool.setuptools]
packages = ["acme_editing"]
"""

# An editor written against the public API only: plain gradient steps on one MLP output
# matrix, towards the new target after each edit prompt.
EDITOR = '''
import dataclasses

import torch

from editguard.editors.base import EditorBase, EditRequest
from editguard.editors.layers import arch_for, layer_field


@dataclasses.dataclass(frozen=True)
class Settings:
    layer: int = layer_field(1)  # checked against the model's depth at start-up
    steps: int = 10
    lr: float = 0.05


class AcmeFineTune(EditorBase):
    name = "acme-ft"
    settings = Settings

    def _parameter_names(self, model):
        return [arch_for(model).weight_name(self.resolve(model).layer)]

    def _apply(self, model, tokenizer, requests: list[EditRequest]):
        cfg = self.resolve(model)
        (name,) = self._parameter_names(model)
        weight = model.get_parameter(name)
        optimiser = torch.optim.SGD([weight], lr=cfg.lr)
        losses = []
        with torch.enable_grad():
            weight.requires_grad_(True)
            for _ in range(cfg.steps):
                optimiser.zero_grad()
                loss = sum(self._nll(model, tokenizer, r) for r in requests) / len(requests)
                loss.backward()
                optimiser.step()
                losses.append(float(loss))
        weight.grad = None
        return {"first_nll": losses[0], "last_nll": losses[-1]}

    @staticmethod
    def _nll(model, tokenizer, request):
        prompt = tokenizer(request.text)["input_ids"]
        target = tokenizer(" " + request.target_new, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt + target[:-1]])
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
        return -sum(logp[len(prompt) - 1 + j, t] for j, t in enumerate(target)) / len(target)
'''

BENCHMARK = '''
import dataclasses

from editguard.benchmarks.base import Choice, Metric, MultipleChoice, subset

CAPITALS = [("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
            ("Japan", "Tokyo"), ("Egypt", "Cairo"), ("Peru", "Lima"), ("Norway", "Oslo")]


@dataclasses.dataclass(frozen=True)
class Settings:
    limit: int = 0


class Capitals(MultipleChoice):
    name = "acme-capitals"
    version = "1"
    kind = "capability"
    metrics = (Metric("acc", primary=True),)
    settings = Settings

    def items(self):
        cities = [city for _, city in CAPITALS]
        out = []
        for country, city in CAPITALS:
            choices = tuple(" " + c for c in cities)
            out.append(Choice(country, f"The capital of {country} is", choices,
                              cities.index(city)))
        return subset(out, self.options.limit, self.seed)
'''


@pytest.fixture(scope="module")
def acme_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The third-party distribution, installed into a folder of its own."""
    source = tmp_path_factory.mktemp("acme-src")
    (source / "pyproject.toml").write_text(PYPROJECT)
    package = source / "acme_editing"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "editor.py").write_text(textwrap.dedent(EDITOR))
    (package / "benchmark.py").write_text(textwrap.dedent(BENCHMARK))
    site = tmp_path_factory.mktemp("acme-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(site), str(source)],
                   check=True, cwd=source)
    assert (site / "acme_editing-0.1.0.dist-info" / "entry_points.txt").is_file()
    return site


def test_a_third_party_editor_and_benchmark_run_by_entry_point(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, acme_site: Path,
        tokenizer, tmp_path: Path) -> None:
    monkeypatch.setenv("EDITGUARD_HOME", str(HOME))
    monkeypatch.setenv("PYTHONPATH", str(acme_site))
    model = save_tiny("llama", tokenizer, tmp_path / "tiny-llama")
    report = tmp_path / "report"
    result = pytester.runpytest_subprocess(
        str(REPO / "suites"), "--rootdir", str(REPO), "-c", str(REPO / "pyproject.toml"),
        "-p", "no:cacheprovider", "--models", str(model), "--methods", "acme-ft",
        "--benchmarks", "acme-capitals,efficacy", "--n-edits", "1,2",
        # the gates are the plugin's business here, not how well a random tiny model edits
        "--max-drop", "acme-capitals.acc=100", "--min-score", "efficacy.rewrite=0",
        "--min-score", "efficacy.paraphrase=0", "--max-drop", "efficacy.neighborhood=100",
        "--editguard-cache", str(tmp_path / "cache"), "--report-dir", str(report), "-v",
        timeout=600)
    out = result.stdout.str()
    for case in ("tiny-llama-acme-ft-n1-acme-capitals", "tiny-llama-acme-ft-n2-acme-capitals",
                 "tiny-llama-acme-ft-n2-efficacy"):
        assert f"[{case}] PASSED" in out, out
    rows = json.loads((report / "results.json").read_text())["results"]
    capitals = [r for r in rows if r["benchmark"] == "acme-capitals"]
    assert [(r["method"], r["n_edits"], r["n_items"]) for r in capitals] == [
        ("acme-ft", 1, 8), ("acme-ft", 2, 8)]
    # the edits took (the new targets' NLL fell in every editor call; on a random tiny model the
    # rewrite metric itself may already be 1.0 unedited), and the editor's stats arrived
    rewrite = next(r for r in rows if r["metric"] == "rewrite" and r["n_edits"] == 2)
    assert rewrite["edited"] >= rewrite["baseline"]
    editor = rewrite["provenance"]["editor"]
    assert [b["last_nll"] < b["first_nll"] for b in editor["edit_batches"]] == [True, True]
    (change,) = editor["weight_change"].values()
    assert change["delta_fro"] > 0
