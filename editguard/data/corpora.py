"""The corpora editguard ships or reads for second-moment statistics (ROME / MEMIT covariances).

``load_corpus`` is the default corpus provider handed to editors at ``prepare``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from editguard.data.paths import bigbench_task_path
from editguard.lm.corpus import Corpus

ACCEPTED = ("wikipedia-en", "file:PATH (.txt: blank-line separated documents; .jsonl: a 'text' field)")
DEFAULT_CORPUS = "wikipedia-en"

# Frequent English function words that are rare as words in the task's other languages.
_ENGLISH_STOPWORDS = frozenset(
    "the of and to in a is was for on as by with that from at his are an it which be or he this "
    "their were its has have also had first after one not but".split()
)
_ENGLISH_MIN_RATIO = 0.21  # on paragraph_segmentation: English >= 0.23, the other eight languages <= 0.2
_SNIFF_CHARS = 2000  # the language is judged from a document's opening
_WORD = re.compile(r"\w+")


def english_ratio(text: str) -> float:
    """The share of words in the opening of ``text`` that are common English function words."""
    words = _WORD.findall(text[:_SNIFF_CHARS].lower())
    return sum(w in _ENGLISH_STOPWORDS for w in words) / len(words) if words else 0.0


def is_english(text: str) -> bool:
    """A paragraph-level guess (a single short sentence may carry too few function words)."""
    return english_ratio(text) >= _ENGLISH_MIN_RATIO


def wikipedia_en() -> Corpus:
    """The English Wikipedia documents of BIG-bench ``paragraph_segmentation``, lines joined by spaces."""
    path = bigbench_task_path("paragraph_segmentation")
    examples = json.loads(path.read_bytes())["examples"]
    texts = []
    for example in examples:
        text = " ".join(line.strip() for line in example["input"].splitlines() if line.strip())
        if text and is_english(text):
            texts.append(text)
    source = (f"English Wikipedia paragraphs: {len(texts)} of {len(examples)} documents of BIG-bench 1.0.0 "
              f"paragraph_segmentation/task.json kept by an English stopword ratio >= {_ENGLISH_MIN_RATIO}, "
              "lines joined by spaces")
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
