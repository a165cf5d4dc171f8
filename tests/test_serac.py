"""SERAC on tiny random-init models: a routing layer, not a weight edit. In-scope inputs reach the
model with the edit stated first, others unchanged; the memory grows along a trajectory; restore
uninstalls the router; the trained scope classifier is cached, checked, and retrained when its
settings or training data change."""

from __future__ import annotations


import pytest
import torch

from editguard.backends.hf import HFBackend
from editguard.editors.registry import create
from editguard.edits.request import EditRequest
from editguard.lm import routing
from editguard.models.loading import module_structure
from tests.test_editors import REQUESTS
from tests.tiny import (TINY_METHOD_OPTIONS, check_damaged_artifact_is_retrained,
                        prepare_context, prepared_editor, tiny_model)

UNRELATED = "The following are multiple choice questions (with answers) about astronomy."


@pytest.fixture(params=["llama", "gpt2"])
def setup(request, tokenizer, tmp_path, asset_home):
    return prepared_editor("serac", request.param, tokenizer, tmp_path)


def statement(request: EditRequest) -> str:
    return f"{request.text} {request.target_new}.\n"


def test_in_scope_inputs_read_the_edit_and_restore_uninstalls_the_router(setup, tokenizer):
    model, editor = setup
    original = {n: p.detach().clone() for n, p in model.named_parameters()}
    structure = module_structure(model)
    request = REQUESTS[0]
    backend = HFBackend(model, tokenizer)
    texts = [request.text, UNRELATED]
    handle = editor.apply(model, tokenizer, [request])
    assert handle.batches[0] == {"edits_in_memory": 1, "own_prompt_in_scope": 1.0}
    # a random tiny model's features say little about scope: check the routing against the
    # classifier's own decisions (the embedded model's test checks what is out of scope)
    scope = editor._router.scope(texts)
    assert scope[0] == 0
    expected = [t if k is None else statement(request) + t for t, k in zip(texts, scope)]
    assert routing.routed(model, texts) == expected
    # every text is embedded once: the edit prompt and the two inputs' last paragraphs
    assert routing.routed(model, texts) == expected
    assert sorted(editor._router._embedded) == sorted({request.text, UNRELATED})
    routed_scores = backend.loglikelihood([(t, " Rome") for t in texts])
    router = routing.router_of(model)
    routing.uninstall(model)
    # the backend scores what the router hands it: the edit prompt with the edit stated first
    assert backend.loglikelihood([(t, " Rome") for t in expected]) == routed_scores
    routing.install(model, router)
    # no weight changed; a module was added (the run's structure check would name it)
    assert editor.parameter_names(model) == []
    assert all(torch.equal(p, original[n]) for n, p in model.named_parameters())
    assert module_structure(model) != structure
    assert "editguard_router" not in dict(model.named_parameters()) and \
        not any(k.startswith("editguard_router") for k in model.state_dict())

    handle.restore()
    handle.restore()  # idempotent
    assert module_structure(model) == structure and routing.router_of(model) is None
    assert routing.routed(model, [request.text]) == [request.text]


def test_the_memory_grows_along_a_trajectory_and_undoing_keeps_the_earlier_edits(setup,
                                                                                 tokenizer):
    model, editor = setup
    first = editor.apply(model, tokenizer, [REQUESTS[0]])
    later = editor.apply(model, tokenizer, [REQUESTS[1]])
    assert later.batches[0]["edits_in_memory"] == 2
    assert routing.routed(model, [REQUESTS[1].text]) == [statement(REQUESTS[1]) + REQUESTS[1].text]
    later.restore()
    assert routing.routed(model, [REQUESTS[0].text, REQUESTS[1].text])[0] == \
        statement(REQUESTS[0]) + REQUESTS[0].text
    assert editor._router is not None and len(editor._router.statements) == 1
    first.restore()
    assert routing.router_of(model) is None


def test_a_batch_goes_into_memory_at_once(setup, tokenizer):
    model, editor = setup
    handle = editor.apply(model, tokenizer, REQUESTS)
    assert handle.batches[0]["edits_in_memory"] == len(REQUESTS)
    handle.restore()
    assert routing.router_of(model) is None


def test_the_classifier_is_read_back_retrained_on_new_settings_and_repaired(tokenizer, tmp_path,
                                                                           asset_home):
    model = tiny_model("llama", len(tokenizer))
    context = prepare_context(tmp_path, "tiny-llama")

    def prepared(**overrides):
        editor = create("serac", {**TINY_METHOD_OPTIONS["serac"], **overrides})
        editor.prepare(model, tokenizer, context)
        return editor.provenance["classifier"]

    first = prepared()
    assert first["cache"] == "trained" and first["train_seconds"] >= 0
    assert set(first["heldout"]) >= {"in_scope_recall", "out_of_scope_specificity"}
    assert prepared()["cache"] == "read"
    assert prepared(dim=32)["cache"] == "trained"  # another key: another file
    assert prepared(train_edits=12)["cache"] == "trained"  # other training data
    files = sorted((tmp_path / "serac").rglob("classifier.*.safetensors"))
    assert len(files) == 3
    assert prepared(threshold=0.7)["cache"] == "read"  # changes routing only, not the training
    check_damaged_artifact_is_retrained(files, first["key"], prepared)


@pytest.mark.parametrize("overrides, message", [
    ({"threshold": 1.5}, "serac threshold 1.5 must lie strictly between 0 and 1"),
    ({"statement": "{prompt} is now so.\n"}, "must contain {prompt} and {target}"),
    ({"statement": "{prompt} {target} {other}"}, "only {prompt} and {target}"),
    ({"lr": 0.0}, "serac lr 0.0 must be positive")])
def test_bad_settings_are_refused_with_the_fix(tokenizer, overrides, message):
    model = tiny_model("llama", len(tokenizer))
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        create("serac", {**TINY_METHOD_OPTIONS["serac"], **overrides}).resolve(model)


@pytest.mark.slow
def test_on_the_embedded_model_the_edit_takes_and_unrelated_prompts_stay(tmp_path, asset_home):
    from editguard.benchmarks.registry import create as benchmark
    from editguard.data.paths import editguard_home
    from editguard.edits.geonames import embedded_edits
    from editguard.edits.sampling import sample
    from editguard.models.loading import load
    from editguard.models.spec import ModelSpec

    lm = load(ModelSpec("smollm2-135m"), editguard_home())
    editor = create("serac", {"train_edits": 200, "steps": 300})
    editor.prepare(lm.model, lm.tokenizer, prepare_context(tmp_path, lm.fingerprint))
    edits = sample(embedded_edits(0), 3, 0)
    backend = HFBackend(lm.model, lm.tokenizer)
    efficacy = benchmark("efficacy", {}, edits=edits)
    before = efficacy.evaluate(backend)
    handle = editor.apply(lm.model, lm.tokenizer, edits)
    after = efficacy.evaluate(backend)
    assert before.value("rewrite") == 0.0 and after.value("rewrite") == 1.0
    assert after.value("neighborhood") >= before.value("neighborhood") - 1e-9
    mmlu = [c.context for c in benchmark("mmlu", {"limit": 20}).items()]
    assert routing.routed(lm.model, mmlu) == mmlu  # out of scope of every edit
    handle.restore()
    assert lm.changed_structure() == [] and lm.changed_parameters() == []
