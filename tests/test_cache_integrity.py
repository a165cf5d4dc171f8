"""Fault injection on the caches: a damaged baseline or statistics file is detected, set aside,
recomputed to the same numbers, and said so."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from editguard.benchmarks.base import BenchmarkResult
from editguard.editors.stats import StatsSpec, layer_stats, stats_path
from editguard.integrity import CacheRepairWarning
from editguard.run.baselines import BaselineStore
from tests.tiny import prepare_context, tiny_model

PARTS = {"model": "fp", "benchmark": "b", "version": "1", "config": {"limit": 3}}
OTHER = {**PARTS, "config": {"limit": 4}}


def result(score: float = 0.75) -> BenchmarkResult:
    return BenchmarkResult("b", "1", {"limit": 3}, ("x", "y", "z"),
                           {"acc": (0.25, score, 1.0)})


def flip_a_score(path: Path) -> None:
    """A silent bit-level change of one number: still valid JSON, another value."""
    text = path.read_text()
    assert "0.75" in text
    path.write_text(text.replace("0.75", "0.95", 1))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.fixture
def store(tmp_path: Path) -> BaselineStore:
    store = BaselineStore(tmp_path / "baselines")
    assert store.get_or_compute(PARTS, result)[1] == "computed"
    assert store.get_or_compute(OTHER, lambda: result(0.5))[1] == "computed"
    return store


def another_keys_file(store: BaselineStore) -> Callable[[Path], None]:
    return lambda path: shutil.copyfile(store.path(OTHER), path)


@pytest.mark.parametrize("damage", ["flip", "truncate", "other-key", "empty"])
def test_a_damaged_baseline_is_set_aside_and_recomputed(store: BaselineStore, damage: str) -> None:
    path = store.path(PARTS)
    corrupt = {"flip": flip_a_score, "truncate": truncate, "other-key": another_keys_file(store),
               "empty": lambda p: p.write_bytes(b"")}[damage]
    corrupt(path)
    calls = []

    def compute() -> BenchmarkResult:
        calls.append(1)
        return result()

    with pytest.warns(CacheRepairWarning, match=path.name):
        again, status = store.get_or_compute(PARTS, compute)
    assert calls == [1] and again == result()
    assert status.startswith("recomputed: ") and "kept as" in status
    (aside,) = path.parent.glob(f"{path.name}.corrupt-*")
    assert aside.read_bytes() != path.read_bytes()  # the bad file is kept for inspection
    assert store.get_or_compute(PARTS, compute) == (result(), "read") and calls == [1]


def test_a_baseline_from_an_older_editguard_without_a_checksum_is_recomputed(
        store: BaselineStore) -> None:
    path = store.path(PARTS)
    payload = json.loads(path.read_text())
    path.write_text(json.dumps({"key": PARTS, "result": payload["result"]}))
    with pytest.warns(CacheRepairWarning, match="has no checksum"):
        assert store.get_or_compute(PARTS, result)[1].startswith("recomputed")


@pytest.fixture
def stats_setup(tokenizer, tmp_path: Path):
    model = tiny_model("llama", len(tokenizer))
    spec = StatsSpec("wikipedia-en", n_tokens=1200, seq_len=128)
    context = prepare_context(tmp_path, "fp-a")
    first = layer_stats(model, tokenizer, [1, 2], spec, context)
    assert {s.cache for s in first.values()} == {"computed"}
    return model, spec, context, first


def _flip_tail(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # inside the tensor's bytes, which follow the header
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flip", "truncate", "other-layer"])
def test_damaged_statistics_are_set_aside_and_recomputed_to_the_same_numbers(
        tokenizer, stats_setup, damage: str) -> None:
    model, spec, context, first = stats_setup
    path = stats_path(context.cache_dir, "fp-a", "model.layers.1.mlp.down_proj", spec)
    other = stats_path(context.cache_dir, "fp-a", "model.layers.2.mlp.down_proj", spec)
    {"flip": _flip_tail, "truncate": truncate,
     "other-layer": lambda p: shutil.copyfile(other, p)}[damage](path)
    with pytest.warns(CacheRepairWarning, match=path.name):
        again = layer_stats(model, tokenizer, [1, 2], spec, context)
    assert again[1].cache.startswith("recomputed: ") and again[2].cache == "read"
    assert torch.equal(again[1].mom2, first[1].mom2)
    assert len(list(path.parent.glob(f"{path.name}.corrupt-*"))) == 1
    assert layer_stats(model, tokenizer, [1], spec, context)[1].cache == "read"


TWO_PROCESSES = """
import sys, time
from pathlib import Path
from editguard.benchmarks.base import BenchmarkResult
from editguard.run.baselines import BaselineStore

root, log = Path(sys.argv[1]), Path(sys.argv[2])

def compute():
    with log.open("a") as f:
        f.write("computed\\n")
    time.sleep(1.0)  # long enough for the other process to arrive and wait on the lock
    return BenchmarkResult("b", "1", {}, ("x",), {"acc": (0.5,)})

result, status = BaselineStore(root).get_or_compute({"model": "fp", "benchmark": "b"}, compute)
print(status, result.value("acc"))
"""


def test_two_processes_on_an_empty_cache_compute_a_baseline_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    log = tmp_path / "calls.log"
    procs = [subprocess.Popen([sys.executable, "-c", TWO_PROCESSES, str(tmp_path / "b"), str(log)],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert [p.returncode for p in procs] == [0, 0]
    assert outputs == ["computed 0.5", "read 0.5"]
    assert log.read_text() == "computed\n"


def test_a_damaged_converted_model_is_set_aside_and_converted_again(tmp_path: Path) -> None:
    from editguard.models.embedded import MANIFEST, embedded_dir

    folder = embedded_dir("smollm2-135m", tmp_path)
    manifest = json.loads((folder / MANIFEST).read_text())
    weights = folder / "model.safetensors"
    assert set(manifest["files"]) >= {"config.json", "model.safetensors"}
    original = weights.read_bytes()
    damaged = bytearray(original)
    damaged[-100] ^= 0xFF
    weights.write_bytes(bytes(damaged))
    with pytest.warns(CacheRepairWarning, match=r"model.safetensors.*do not match"):
        again = embedded_dir("smollm2-135m", tmp_path)
    assert again == folder and weights.read_bytes() == original  # the same conversion
    (aside,) = folder.parent.glob("smollm2-135m.corrupt-*")
    assert (aside / "model.safetensors").read_bytes() == bytes(damaged)
