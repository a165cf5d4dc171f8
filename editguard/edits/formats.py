"""Public edit-set formats: CounterFact (ROME) and zsRE (MEND / EasyEdit) JSON records."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from editguard.edits.request import EditRequest, Neighbour


def load_counterfact(records: Sequence[Mapping[str, Any]]) -> list[EditRequest]:
    """CounterFact records (ROME's ``counterfact.json`` schema) as edit requests, in record order."""
    out = []
    for index, record in enumerate(records):
        try:
            rewrite = record["requested_rewrite"]
            target_true = rewrite["target_true"]["str"].lstrip()
            out.append(EditRequest(
                case_id=str(record.get("case_id", index)),
                prompt=rewrite["prompt"],
                subject=rewrite["subject"],
                target_new=rewrite["target_new"]["str"].lstrip(),
                target_true=target_true,
                paraphrase_prompts=tuple(record.get("paraphrase_prompts", ())),
                neighbourhood=tuple(Neighbour(p, target_true) for p in record.get("neighborhood_prompts", ())),
                relation=str(rewrite.get("relation_id", "")),
            ))
        except (KeyError, TypeError) as exc:
            raise ValueError(
                f"CounterFact record {index} (case_id {record.get('case_id', '?')!r}) is malformed: missing "
                f"or wrong-typed {exc}; expected {{'case_id', 'requested_rewrite': {{'prompt', 'subject', "
                f"'target_new': {{'str'}}, 'target_true': {{'str'}}, 'relation_id'}}, 'paraphrase_prompts', "
                f"'neighborhood_prompts'}}"
            ) from exc
    return out


def load_zsre(records: Sequence[Mapping[str, Any]]) -> list[EditRequest]:
    """zsRE records (MEND / EasyEdit ``zsre_mem_eval.json`` schema) as edit requests, in record order."""
    out = []
    for index, record in enumerate(records):
        case_id = str(record.get("case_id", index))
        try:
            subject, src = record["subject"], record["src"]
            answers = record["answers"]
            target_true = answers[0].strip()
            target_new = record["alt"].strip()
            paraphrase, loc, loc_ans = record["rephrase"], record["loc"], record["loc_ans"]
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ValueError(
                f"zsRE record {case_id} is malformed: missing or wrong-typed {exc}; expected keys "
                "'subject', 'src', 'rephrase', 'alt', 'answers' (a non-empty list), 'loc', 'loc_ans'"
            ) from exc
        if not subject or subject not in src:
            raise ValueError(f"zsRE record {case_id}: subject {subject!r} does not occur in src {src!r}; "
                             "fix the record or drop it")
        if "{" in src or "}" in src:
            raise ValueError(f"zsRE record {case_id}: src {src!r} contains braces, which prompts reserve "
                             "for the subject slot; remove them from the record")
        out.append(EditRequest(
            case_id=case_id,
            prompt=src.replace(subject, "{}", 1),
            subject=subject,
            target_new=target_new,
            target_true=target_true,
            paraphrase_prompts=(paraphrase,),
            neighbourhood=(Neighbour(loc, str(loc_ans).strip()),),
        ))
    return out


def _read_json_list(path: Path, what: str) -> list[dict[str, Any]]:
    try:
        records = json.loads(Path(path).read_bytes())
    except ValueError as err:  # also an empty file
        raise ValueError(f"{path}: not a {what} JSON file ({err}); a {what} file holds a JSON "
                         "list of records") from None
    if not isinstance(records, list):
        raise ValueError(f"{path}: a {what} file must hold a JSON list of records, got {type(records).__name__}")
    return records


def read_counterfact(path: Path | str) -> list[EditRequest]:
    return load_counterfact(_read_json_list(Path(path), "CounterFact"))


def read_zsre(path: Path | str) -> list[EditRequest]:
    return load_zsre(_read_json_list(Path(path), "zsRE"))
