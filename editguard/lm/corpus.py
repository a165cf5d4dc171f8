"""A text corpus as editors see it, and how it is cut into token chunks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from transformers import PreTrainedTokenizerBase


@dataclasses.dataclass(frozen=True)
class Corpus:
    """Documents in a fixed order; ``source`` describes where they came from, for provenance."""

    name: str
    texts: tuple[str, ...]
    source: str


# A corpus provider: a corpus spec (e.g. "wikipedia-en", "file:PATH") -> its documents.
CorpusProvider = Callable[[str], Corpus]


def token_chunks(corpus: Corpus, tokenizer: PreTrainedTokenizerBase, n_tokens: int, seq_len: int,
                 add_special_tokens: bool = False) -> list[list[int]]:
    """Exactly ``n_tokens`` token ids in chunks of at most ``seq_len``, documents in order.

    A chunk never spans two documents; the last chunk is cut so the total is exact.
    """
    if n_tokens <= 0 or seq_len <= 0:
        raise ValueError(f"n_tokens and seq_len must be positive, got n_tokens={n_tokens}, seq_len={seq_len}")
    chunks: list[list[int]] = []
    total = 0
    for text in corpus.texts:
        ids = list(tokenizer(text, add_special_tokens=add_special_tokens, verbose=False)["input_ids"])
        for start in range(0, len(ids), seq_len):
            piece = ids[start:start + seq_len][: n_tokens - total]
            chunks.append(piece)
            total += len(piece)
            if total == n_tokens:
                return chunks
    raise ValueError(f"corpus {corpus.name!r} has only {total} tokens with this tokenizer but {n_tokens} were "
                     "asked for; lower n_tokens or use a bigger corpus ('file:PATH')")


def first_sentences(texts: Sequence[str], count: int) -> list[str]:
    """The first sentence (3 to 40 words) of each text, until there are ``count``: plain text a
    trained editor must leave alone."""
    out = []
    for text in texts:
        sentence = text.strip().split(". ", 1)[0].strip()
        if 3 <= len(sentence.split()) <= 40:
            out.append(sentence if sentence.endswith(".") else sentence + ".")
        if len(out) == count:
            break
    return out
