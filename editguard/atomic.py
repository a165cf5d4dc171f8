"""Atomic replacement of files and folders: write beside the target, then rename over it.

Readers never see a half-written file; a crash leaves only a hidden temporary behind (removed on
the next error path). New files get the mode a plain ``open()`` would give them (umask-based),
not the 0600 of ``tempfile``, so a shared cache stays readable by a team.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def default_mode(directory: bool = False) -> int:
    """The mode a plain ``open(path, "w")`` (or ``mkdir``) gives under the current umask."""
    return (0o777 if directory else 0o666) & ~_umask()


@contextmanager
def replacing(target: Path, *, directory: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``target``; on success rename it over ``target``.

    With ``directory=True`` the temporary path is an empty folder and ``target`` must not exist
    yet as a non-empty folder (folders cannot be swapped atomically over contents).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        temp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
        os.chmod(temp, default_mode(directory=True))
    else:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        temp = Path(name)
    try:
        yield temp
        if not directory:
            os.chmod(temp, default_mode())
        os.replace(temp, target)
    except BaseException:
        if temp.is_dir():
            shutil.rmtree(temp, ignore_errors=True)
        else:
            temp.unlink(missing_ok=True)
        raise


def write_bytes(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically (fsynced before the rename)."""
    with replacing(target) as temp:
        with temp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def write_text(target: Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))
