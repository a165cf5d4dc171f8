"""Exact match as lm-evaluation-harness's ``exact_match`` metric computes it: the response is
stripped of surrounding whitespace (its ``remove_whitespace`` filter), then the ignored regexes
are removed from response and reference, then case and ASCII punctuation when asked; the item
scores 1 if the response equals any reference."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

ARTICLES = r"\b(?:The |the |An |A |The |a |an )"  # nq_open's regexes_to_ignore
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalise(text: str, *, ignore: Sequence[str] = (), ignore_case: bool = True,
              ignore_punctuation: bool = True) -> str:
    for pattern in ignore:
        text = re.sub(pattern, "", text)
    if ignore_case:
        text = text.lower()
    if ignore_punctuation:
        text = text.translate(_PUNCTUATION)
    return text


def exact_match(response: str, references: Sequence[str], *, ignore: Sequence[str] = (),
                ignore_case: bool = True, ignore_punctuation: bool = True) -> float:
    def norm(text: str) -> str:
        return normalise(text, ignore=ignore, ignore_case=ignore_case,
                         ignore_punctuation=ignore_punctuation)

    got = norm(response.strip())
    return float(any(got == norm(r) for r in references))
