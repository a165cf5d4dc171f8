"""Whether an edited checkpoint is its base model with other weights: same architecture, same
tokenizer. Checked from configs and tokenizer files only, before any weights load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoTokenizer, PretrainedConfig, PreTrainedTokenizerBase

from editguard.models.loading import locate, read_config
from editguard.models.spec import ModelLoadError, ModelSpec

# Config entries that say where or how a checkpoint was saved, not what it computes.
IGNORED = frozenset({"_name_or_path", "transformers_version", "dtype", "torch_dtype",
                     "_commit_hash", "_attn_implementation_autoset"})
SHOWN = 5


def config_differences(base: PretrainedConfig, edited: PretrainedConfig) -> list[str]:
    """``key: base value vs edited value`` for each architecture setting that differs."""
    one, two = base.to_dict(), edited.to_dict()
    out = []
    for key in sorted((set(one) | set(two)) - IGNORED):
        if one.get(key, "(absent)") != two.get(key, "(absent)"):
            out.append(f"{key}: {one.get(key, '(absent)')!r} vs {two.get(key, '(absent)')!r}")
    return out


def tokenizer_differences(base: PreTrainedTokenizerBase,
                          edited: PreTrainedTokenizerBase) -> list[str]:
    """What differs between two tokenizers: vocabulary entries and special tokens."""
    out = []
    one, two = base.get_vocab(), edited.get_vocab()
    if one != two:
        moved = sorted(token for token in set(one) | set(two) if one.get(token) != two.get(token))
        out.append(f"vocabulary: {len(one)} vs {len(two)} tokens, {len(moved)} differ (e.g. "
                   f"{', '.join(repr(t) for t in moved[:SHOWN])})")
    specials: tuple[dict[str, Any], dict[str, Any]] = (base.special_tokens_map,
                                                        edited.special_tokens_map)
    if specials[0] != specials[1]:
        out.append(f"special tokens: {specials[0]} vs {specials[1]}")
    return out


def _tokenizer(spec: ModelSpec, home: Path) -> PreTrainedTokenizerBase:
    where = locate(spec, home)
    try:
        return AutoTokenizer.from_pretrained(where, trust_remote_code=spec.trust_remote_code)
    except (OSError, ValueError, TypeError) as err:
        raise ModelLoadError(
            f"{spec.source!r} has no tokenizer editguard can read ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no tokenizer files'}); save it with "
            "its tokenizer (tokenizer.save_pretrained(DIR)), or copy the base model's "
            "tokenizer files into it") from None


def check_compatible(base: ModelSpec, edited: ModelSpec, home: Path) -> None:
    """Raise ModelLoadError naming what differs when ``edited`` is not ``base`` re-weighted."""
    problems = [f"config {line}" for line in
                config_differences(read_config(base, home), read_config(edited, home))]
    tokenizers = [_tokenizer(spec, home) for spec in (base, edited)]
    problems += [f"tokenizer {line}" for line in tokenizer_differences(*tokenizers)]
    if problems:
        listed = "\n  ".join(problems)
        raise ModelLoadError(
            f"--edited {edited.source!r} is not an edit of --base {base.source!r}: they differ in"
            f"\n  {listed}\nan edited checkpoint must keep its base model's architecture and "
            "tokenizer (only weights change); pass the base model it was edited from")
