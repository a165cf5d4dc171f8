"""The suite end to end through pytester: xdist parity, the two regression properties, errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from editguard.data.paths import editguard_home
from editguard.editors.registry import available
from tests.tiny import save_tiny

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[1]
HOME = editguard_home()  # read before pytester points $HOME at a temporary directory


@pytest.fixture(autouse=True)
def data_home(monkeypatch):
    """The inner runs read the installed data and the converted model from the real home."""
    monkeypatch.setenv("EDITGUARD_HOME", str(HOME))



SUITE = (str(REPO / "suites"), "--rootdir", str(REPO), "-c", str(REPO / "pyproject.toml"),
         "-p", "no:cacheprovider")


def run(pytester: pytest.Pytester, *args: str, timeout: float = 900) -> pytest.RunResult:
    """The user's suite in a pytest subprocess, as a user runs it."""
    return pytester.runpytest_subprocess(*SUITE, *args, timeout=timeout)


def run_inline(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """In this process (no interpreter start-up): for runs that stop at start-up checks."""
    return pytester.runpytest(*SUITE, *args)


def verdict(result: pytest.RunResult, case_id: str) -> str:
    """PASSED / FAILED of one case in a ``-v`` run."""
    # xdist's ``-v`` also prints a line when a case starts: only the outcome lines count
    case = re.escape(f"[{case_id}]")
    outcome = "(PASSED|FAILED|ERROR)"
    for line in result.stdout.lines:  # ``-n 0``: "id PASSED"; ``-n N``: "[gwI] [ p%] PASSED id"
        found = re.search(rf"\S+{case} {outcome}\b|\b{outcome} \S+{case}", line)
        if found:
            return found.group(1) or found.group(2)
    raise AssertionError(f"no outcome for {case_id} in the output")


def workers(result: pytest.RunResult) -> dict[str, str]:
    """(model-method group) -> the xdist worker that ran its cases, from a ``-v -n N`` run;
    fails if one group's cases ran on two workers."""
    out: dict[str, str] = {}
    for worker, case_id in re.findall(r"\[(gw\d+)\] \[ *\d+%\] (?:PASSED|FAILED) \S+\[([^\]]+)\]",
                                      result.stdout.str()):
        group = re.fullmatch(r"(.+)-n\d+-.+", case_id).group(1)
        assert out.setdefault(group, worker) == worker, f"{group} ran on {out[group]} and {worker}"
    return out


def rows(report_dir: Path) -> dict[tuple, tuple]:
    data = json.loads((report_dir / "results.json").read_text())
    return {(r["model"], r["method"], r["n_edits"], r["benchmark"], r["metric"]):
            (r["baseline"], r["edited"], r["passed"], r["status"]) for r in data["results"]}


def paired(report_dir: Path) -> dict[tuple, tuple]:
    """Each row's delta with its paired interval and McNemar p-value."""
    data = json.loads((report_dir / "results.json").read_text())
    return {(r["model"], r["method"], r["n_edits"], r["benchmark"], r["metric"]):
            (r["delta"], r["interval"], r["p_value"], r["n_items"]) for r in data["results"]}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, tokenizer) -> Path:
    return save_tiny("llama", tokenizer, tmp_path_factory.mktemp("models") / "tiny-llama")


def tiny_args(tiny_dir: Path, cache: Path, report: Path) -> list[str]:
    return ["--models", str(tiny_dir), "--methods", "rome,ft", "--n-edits", "1,2",
            "--benchmarks", "efficacy,facts,bbq", "--bench-opt", "facts.limit=20",
            "--bench-opt", "bbq.limit=10", "--method-opt", "rome.layer=1",
            "--method-opt", "rome.stats_tokens=2000", "--method-opt", "rome.context_templates=2",
            "--method-opt", "ft.layer=1", "--editguard-cache", str(cache),
            "--report-dir", str(report)]


def test_xdist_gives_the_same_results_as_one_process(pytester, tiny_dir, tmp_path):
    serial = run(pytester, *tiny_args(tiny_dir, tmp_path / "c0", tmp_path / "r0"), "-n", "0")
    assert "editguard degradation" in serial.stdout.str()
    serial.stdout.fnmatch_lines(["*tiny-llama*rome*2*"])
    parallel = run(pytester, *tiny_args(tiny_dir, tmp_path / "c2", tmp_path / "r2"), "-n", "2",
                   "-v", "--junitxml", str(tmp_path / "junit.xml"))
    # the workers' progress lines ("[gw0] tiny-llama-rome: edits: 1/2") do not break the outcome
    # lines or the JUnit file, whose cases carry the numbers
    assert re.search(r"^\[gw\d\] tiny-llama-(ft|rome): edits: 2/2 in ", parallel.stderr.str(),
                     re.MULTILINE)
    assert "\r" not in parallel.stderr.str()
    import xml.etree.ElementTree as ElementTree

    cases = list(ElementTree.parse(tmp_path / "junit.xml").iter("testcase"))
    assert len(cases) == 12
    named = {p.get("name") for c in cases for p in c.iter("property")}
    assert "editguard.facts.acc.interval_pt" in named and "editguard_rows" not in named
    assert "editguard degradation" in parallel.stdout.str()
    assert serial.ret == parallel.ret
    one, two = rows(tmp_path / "r0"), rows(tmp_path / "r2")
    assert len(one) == 2 * 2 * (3 + 1 + 1) and one == two
    stats = paired(tmp_path / "r0")
    assert stats == paired(tmp_path / "r2")  # the bootstrap is seeded: identical intervals
    facts = stats[("tiny-llama", "rome", 2, "facts", "acc")]
    delta, (low, high), p_value, n = facts
    assert n == 20 and low - 1e-12 <= delta <= high + 1e-12 and 0 <= p_value <= 1
    # one worker per trajectory (xdist's own loadgroup spreads groups on pytest >= 9.2)
    assert workers(parallel).keys() == {"tiny-llama-ft", "tiny-llama-rome"}
    assert sorted(set(workers(parallel).values())) == ["gw0", "gw1"]


def test_case_ids_are_readable_and_sorted(pytester, tiny_dir, tmp_path):
    result = run(pytester, *tiny_args(tiny_dir, tmp_path / "c", tmp_path / "r"),
                 "--collect-only", "-q")
    ids = [line.split("[")[1].rstrip("]") for line in result.stdout.lines if "[" in line]
    assert ids[:3] == ["tiny-llama-ft-n1-efficacy", "tiny-llama-ft-n1-facts",
                       "tiny-llama-ft-n1-bbq"]
    assert len(ids) == 12


@pytest.mark.slow
def test_a_noop_editor_fails_efficacy_and_a_damaging_one_fails_capability_with_and_without_xdist(
        pytester, tmp_path):
    args = ["--models", "smollm2-135m",
            "--methods", "tests.editors_for_tests:NoOp,tests.editors_for_tests:Damage",
            "--n-edits", "2", "--benchmarks", "efficacy,facts", "--bench-opt", "facts.limit=60",
            "-v"]
    serial = run(pytester, *args, "--editguard-cache", str(tmp_path / "c0"),
                 "--report-dir", str(tmp_path / "r0"), "-n", "0")
    parallel = run(pytester, *args, "--editguard-cache", str(tmp_path / "c2"),
                   "--report-dir", str(tmp_path / "r2"), "-n", "2")
    for result in (serial, parallel):
        out = result.stdout.str()
        assert verdict(result, "smollm2-135m-noop-n2-efficacy") == "FAILED"
        assert verdict(result, "smollm2-135m-noop-n2-facts") == "PASSED"
        assert verdict(result, "smollm2-135m-damage-n2-facts") == "FAILED"
        assert re.search(r"efficacy rewrite 0\.\d{3} \(95% interval [^)]*, n=2\) below minimum "
                         r"0\.900, point mode \[smollm2-135m \| noop \| n=2\]", out), out
        assert "facts acc dropped" in out
    assert sorted(set(workers(parallel).values())) == ["gw0", "gw1"]
    r = rows(tmp_path / "r0")
    assert r == rows(tmp_path / "r2")  # the same numbers from two workers as from one process
    base, edited, passed, _ = r[("smollm2-135m", "damage", 2, "facts", "acc")]
    assert base > 0.5 and edited < base - 0.05 and passed is False


def test_an_editor_that_raises_in_preparation_fails_its_cases_and_says_where(pytester, tiny_dir,
                                                                            tmp_path):
    result = run(pytester, "--models", str(tiny_dir), "--methods", "tests.editors_for_tests:Broken",
                 "--n-edits", "1", "--benchmarks", "facts", "--bench-opt", "facts.limit=4",
                 "--editguard-cache", str(tmp_path / "c"))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*could not set up tiny-llama-broken: KeyError: 'statistics' "
                                 "(raised at editors_for_tests.py:* in _prepare)*"])


def test_a_killed_worker_is_reported_once_and_every_finished_row_is_kept(pytester, tiny_dir,
                                                                        tmp_path):
    """``crash`` kills its worker on its second edit (as the out-of-memory killer would)."""
    result = run(pytester, "--models", str(tiny_dir),
                 "--methods", "tests.editors_for_tests:Crash,ft", "--method-opt", "crash.layer=1",
                 "--method-opt", "ft.layer=1", "--n-edits", "1,2", "--benchmarks", "facts,mmlu",
                 "--bench-opt", "facts.limit=10", "--bench-opt", "mmlu.limit=4",
                 "--max-drop", "facts=100", "--max-drop", "mmlu=100",
                 "--editguard-cache", str(tmp_path / "c"), "--report-dir", str(tmp_path / "r"),
                 "-n", "2", "-v")
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED and "INTERNALERROR" not in out
    # the summary line's message may carry a node id too: take the one after FAILED
    failed = [line.split()[1].split("::")[-1] for line in result.stdout.lines
              if line.startswith("FAILED ")]
    # its first n2 case kills the worker; the replacement replays the trajectory for the second,
    # and dies again: each case is listed once, neither is run twice
    assert sorted(failed) == ["test_capability[tiny-llama-crash-n2-facts]",
                              "test_capability[tiny-llama-crash-n2-mmlu]"]
    # one line each from editguard (pytest's own lines with the crash vary with the width)
    assert sum(line.startswith("worker gw") and " died while running " in line
               for line in result.stdout.lines) == 2
    r = rows(tmp_path / "r")
    assert {k[:3] for k, v in r.items() if v[3] == "ok"} == {
        ("tiny-llama", "crash", 1), ("tiny-llama", "ft", 1), ("tiny-llama", "ft", 2)}
    errors = {k: v for k, v in r.items() if v[3] == "error"}
    assert set(errors) == {("tiny-llama", "crash", 2, "facts", "acc"),
                           ("tiny-llama", "crash", 2, "mmlu", "acc")}
    assert all(v[2] is False for v in errors.values())
    assert "worker gw" in out and "died while running tiny-llama-crash-n2-facts" in out


def test_a_collapsed_model_fails_with_model_collapsed_and_other_cases_go_on(pytester, tiny_dir, tmp_path):
    result = run(pytester, "--models", str(tiny_dir), "--methods", "tests.editors_for_tests:NaN,ft",
                 "--method-opt", "ft.layer=1", "--n-edits", "1", "--benchmarks", "facts",
                 "--bench-opt", "facts.limit=10", "--max-drop", "facts=100",
                 "--editguard-cache", str(tmp_path / "c"), "-v")
    assert verdict(result, "tiny-llama-ft-n1-facts") == "PASSED"
    assert verdict(result, "tiny-llama-nan-n1-facts") == "FAILED"
    assert "model collapsed after 1 nan edits" in result.stdout.str()


@pytest.mark.parametrize("args, message", [
    (["--methods", "rome,memmit"], "unknown editing method 'memmit'. Did you mean 'memit'?"),
    (["--benchmarks", "mmlu,truthfulq"], "unknown benchmark 'truthfulq'. Did you mean 'truthfulqa'?"),
    (["--n-edits", "1,ten"], "--n-edits 'ten' is not an integer"),
    (["--max-drop", "mmlu.acc:2"], "expected BENCHMARK[.METRIC]=POINTS"),
    (["--max-drop", "mmlu.accuracy=2"], "accuracy"),
    (["--n-edits", "100000"], "100000"),
    (["--batch-size", "4", "--methods", "rome"], "edits one fact at a time"),
    (["--bench-opt", "mmlu.limit=-1"], "--bench-opt mmlu: limit must be at least 0, got -1"),
    (["--bench-opt", "facts.limit=-1"], "--bench-opt facts: limit must be at least 0, got -1"),
    (["--bench-opt", "facts.limit=2.5"], "limit must be an integer, got 2.5"),
    (["--bench-opt", "facts.limt=5"], "unknown key 'limt' (did you mean 'limit'?)"),
    (["--bench-opt", "mmlu.source=hf"], "source must be one of 'offline', 'hub', got 'hf'"),
    (["--method-opt", "rome.layr=5"], "--method-opt rome: unknown key 'layr'"),
    (["--method-opt", "ft.steps=0"], "--method-opt ft: steps must be at least 1, got 0"),
    (["--method-opt", "rome.layer=40"],
     "--models smollm2-135m: rome: layer = 40 is outside this 30-layer model (no layer 40); use layers "
     "in 0..29 (--method-opt rome.layer=..."),
    (["--method-opt", "memit.layers=[28,29,30]"],
     "memit: layers = [28, 29, 30] is outside this 30-layer model (no layer 30)"),
    (["--method-opt", "memit.layers=[5,4]"], "memit: layers [5, 4] must be non-empty, increasing"),
    (["--models", "./no/such/model"], "'./no/such/model': no such directory"),
    (["--device", "cuda:7"], "--device 'cuda:7': this machine has cpu"),
    (["--device", "gpu0"], "--device 'gpu0' is not a device name"),
    (["--edits", "counterfact:/no/such/cf.json"],
     "no such file; pass the path of an existing CounterFact JSON file"),
    (["--verdict-mode", "strict"], "argument --verdict-mode: invalid choice: 'strict'"),
    (["--confidence", "95"], "--confidence: confidence 95.0 is not a number in [0.5, 1)"),
    (["--edited", "/tmp"], "--edited '/tmp' needs --base PATH_OR_ID"),
    (["--base", "smollm2-135m"], "--base is the model an --edited checkpoint was edited from"),
    (["--edited", "/tmp/x", "--base", "smollm2-135m", "--methods", "rome"],
     "no editor runs on a checkpoint edited elsewhere; leave out --methods"),
    (["--edited", "/tmp/x", "--base", "smollm2-135m", "--benchmarks", "efficacy"],
     "efficacy needs the facts that were edited; pass the edit file"),
    (["--edited", "/tmp/x", "--models", "smollm2-135m"], "give its base with --base, not --models"),
    (["--holm"], "--holm corrects ci-mode drop verdicts, and this run takes none"),
    (["--bench-opt", "mmlu.num_fewshot=6"],
     "--bench-opt mmlu: mmlu num_fewshot 6: each subject has 5 dev exemplars"),
    (["--bench-opt", "mmlu.subjects=virology,astronmy"],
     "'astronmy' is not an MMLU subject (did you mean 'astronomy'?)"),
    (["--preset", "paper-z"], "--preset 'paper-z' is not a preset; accepted: paper-a, paper-b"),
    (["--preset", "paper-a", "--benchmarks", "mmlu"], "--preset paper-a chooses the benchmarks"),
    (["--limit-all", "-2"], "--limit-all -2 must be 0 (all items) or a positive count"),
    (["--benchmarks", "nq_open"], "pass --bench-opt nq_open.path=FILE, a JSON Lines file"),
    (["--bench-opt", "closedbook.num_fewshot=9"], "closedbook num_fewshot 9: there are 8"),
    (["--backend", "tests.backends_for_tests:ScoringOnlyHF"],
     "it cannot generate text, and closedbook generate; use --backend hf"),
    (["--backend", "tests.backends_for_tests:ScoringOnlyHF", "--benchmarks", "facts,conll2003"],
     "it cannot generate text, and conll2003 generate; use --backend hf"),
    (["--method-opt", "rome.easyedit_yaml=/no/such/hparams.yaml"],
     "--method-opt rome.easyedit_yaml: '/no/such/hparams.yaml' is not a file"),
    (["--bench-opt", "facts.items=/no/such/ids.txt"],
     "--bench-opt facts: benchmark facts: item file '/no/such/ids.txt' does not exist"),
])
def test_bad_input_is_a_usage_error_that_names_the_value(pytester, args, message):
    result = run_inline(pytester, *args, "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
    assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize("visible, args, message", [
    ("", ["--gpus-per-worker", "2"], "--gpus-per-worker 2 shards each model over 2 accelerators, "
                                     "and this machine has none visible; leave --gpus-per-worker "
                                     "at 1"),
    ("0,1,2", ["--gpus-per-worker", "2"], "the 3 visible devices (CUDA_VISIBLE_DEVICES=0,1,2) do "
                                          "not split into groups of 2; use --gpus-per-worker 1 or 3"),
    ("0,1", ["--gpus-per-worker", "2", "--device", "cpu"], "--device cpu names one device; leave "
                                                          "--device at auto"),
    ("0,1", ["--gpus-per-worker", "0"], "--gpus-per-worker 0 must be at least 1"),
])
def test_gpus_per_worker_that_cannot_be_met_is_a_usage_error(pytester, monkeypatch, visible, args,
                                                             message):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    result = run_inline(pytester, *args, "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
    assert "Traceback" not in result.stderr.str()


def test_n_auto_starts_one_worker_per_group_of_k_devices_and_pins_each_to_its_group(
        pytester, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    pytester.makepyfile(pinrecorder="""
        import os
        from pathlib import Path

        def pytest_configure(config):  # after editguard's own (tryfirst) pinning
            worker = getattr(config, "workerinput", None)
            if worker is not None:
                Path(f"pinned-{worker['workerid']}.txt").write_text(
                    os.environ["CUDA_VISIBLE_DEVICES"])
    """)
    # workers start, pin and collect; the -k selects no case, so no model loads
    result = run(pytester, "-p", "pinrecorder", "-n", "auto", "--gpus-per-worker", "2",
                 "-k", "no-such-case", timeout=300)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, result.stderr.str()
    assert "created: 2/2 workers" in result.stdout.str()
    pinned = {p.stem: p.read_text() for p in pytester.path.glob("pinned-*.txt")}
    assert pinned == {"pinned-gw0": "4,5", "pinned-gw1": "6,7"}


def test_a_hub_id_offline_says_how_to_pass_a_local_directory(pytester, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = run(pytester, "--models", "meta-llama/Llama-2-7b-hf", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "meta-llama/Llama-2-7b-hf" in err and "--models DIR" in err


def test_an_unreachable_hub_is_named_at_once_without_retries(pytester, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: refused at once
    result = run(pytester, "--models", "acme/never-downloaded", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "the hub, http://127.0.0.1:9, cannot be reached from this machine" in err
    assert "not in the local hub cache" in err and "--models DIR" in err
    assert "Retrying" not in result.stdout.str() + err


def test_a_hub_id_in_the_local_hub_cache_runs_while_the_hub_is_unreachable(
        pytester, monkeypatch, tiny_dir, tmp_path):
    cache = tmp_path / "hub"  # the layout huggingface_hub writes: refs/main -> snapshots/<sha>
    repo = cache / "models--acme--tiny-llama"
    shutil.copytree(tiny_dir, repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    result = run(pytester, "--models", "acme/tiny-llama", "--methods", "ft", "--method-opt",
                 "ft.layer=1", "--n-edits", "1", "--benchmarks", "facts", "--bench-opt",
                 "facts.limit=5", "--max-drop", "facts=100", "--editguard-cache",
                 str(tmp_path / "c"), "-v")
    assert verdict(result, "tiny-llama-ft-n1-facts") == "PASSED", result.stdout.str()


def test_custom_code_that_is_not_run_is_said_at_start_up(pytester, tiny_dir, tmp_path):
    folder = tmp_path / "custom-code"
    shutil.copytree(tiny_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_acme.AcmeForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_acme.py").write_text("raise RuntimeError('the custom code ran')\n")
    result = run(pytester, "--models", str(folder), "--methods", "ft", "--method-opt",
                 "ft.layer=1", "--collect-only")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*RemoteCodeIgnored: model '*custom-code' asks for its own code "
                                 "(AutoModelForCausalLM in its config's auto_map); it was not "
                                 "run*--trust-remote-code*"])


def test_an_unsupported_architecture_is_refused_at_start_up(pytester, tmp_path):
    from transformers import BloomConfig

    folder = tmp_path / "tiny-bloom"
    BloomConfig(n_layer=1, hidden_size=8, n_head=1).save_pretrained(folder)
    result = run(pytester, "--models", str(folder), "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "'bloom'" in result.stderr.str() and "supported: " in result.stderr.str()


def test_a_failed_restore_is_blamed_on_its_group_and_the_next_group_gets_clean_weights(
        pytester, tiny_dir, tmp_path):
    common = ["--models", str(tiny_dir), "--n-edits", "1", "--benchmarks", "facts",
              "--bench-opt", "facts.limit=20", "--max-drop", "facts=100", "--method-opt",
              "ft.layer=1"]
    alone = run(pytester, *common, "--methods", "ft", "--editguard-cache", str(tmp_path / "c1"),
                "--report-dir", str(tmp_path / "r1"))
    after = run(pytester, *common, "--methods", "tests.editors_for_tests:Drift,ft",
                "--method-opt", "drift.layer=1", "--editguard-cache", str(tmp_path / "c2"),
                "--report-dir", str(tmp_path / "r2"), "-v")
    assert alone.ret == pytest.ExitCode.OK
    out = after.stdout.str()
    assert "tiny-llama-drift: restoring the model left 1 differences from the original" in out
    assert "model.norm.weight" in out
    key = ("tiny-llama", "ft", 1, "facts", "acc")
    assert rows(tmp_path / "r2")[key] == rows(tmp_path / "r1")[key]
    # no false PASS: the drifting editor's own rows carry the failure into the report
    assert verdict(after, "tiny-llama-drift-n1-facts") == "FAILED"
    assert "drift changed 1 parameters it does not declare" in out
    _, edited, passed, status = rows(tmp_path / "r2")[("tiny-llama", "drift", 1, "facts", "acc")]
    assert (edited, passed, status) == (None, False, "error")


def test_a_backend_given_by_import_path_scores_the_run(pytester, tiny_dir, tmp_path):
    common = ["--models", str(tiny_dir), "--methods", "ft", "--method-opt", "ft.layer=1",
              "--n-edits", "1", "--benchmarks", "facts", "--bench-opt", "facts.limit=10",
              "--max-drop", "facts=100", "--editguard-cache", str(tmp_path / "c")]
    default = run(pytester, *common, "--report-dir", str(tmp_path / "r1"))
    tagged = run(pytester, *common, "--backend", "tests.backends_for_tests:TaggedHF",
                 "--report-dir", str(tmp_path / "r2"))
    assert default.ret == tagged.ret == pytest.ExitCode.OK

    def backend(report: Path) -> dict:
        (row,) = json.loads((report / "results.json").read_text())["results"]
        return row["provenance"]["backend"]

    assert backend(tmp_path / "r1") == {"spec": "hf", "backend": "hf", "device_type": "cpu",
                                        "dtype": "torch.float32"}
    assert backend(tmp_path / "r2") == {"spec": "tests.backends_for_tests:TaggedHF",
                                        "backend": "tagged-hf", "device_type": "cpu",
                                        "dtype": "torch.float32", "tagged": True}
    # the same scores (it is HF underneath), from a baseline of its own: the key names the backend
    assert rows(tmp_path / "r1") == rows(tmp_path / "r2")
    assert len(list((tmp_path / "c" / "baselines").rglob("*.json"))) == 2


def test_an_unknown_backend_is_a_usage_error_with_a_suggestion(pytester):
    result = run(pytester, "--backend", "hff", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown backend 'hff'. Did you mean 'hf'?" in result.stderr.str()


@pytest.mark.parametrize("preset, missing", [
    ("paper-a", "  toxigen: its data is the hub dataset 'skg/toxigen-data'"),
    ("paper-b", "  samsum: its data is the hub dataset 'knkarthick/samsum'")])
def test_a_preset_collects_its_benchmarks_and_names_what_it_leaves_out(pytester, preset,
                                                                      missing, monkeypatch):
    from editguard.benchmarks import records

    monkeypatch.setattr(records, "_hub_ok", lambda: "this machine cannot reach the hub")
    result = run_inline(pytester, "--preset", preset, "--limit-all", "3", "--collect-only")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    out = result.stdout.str()
    assert f"editguard --preset {preset}:" in out and missing in out
    assert "efficacy]" in out


def test_methods_all_runs_every_registered_method(pytester):
    result = run_inline(pytester, "--methods", "all", "--benchmarks", "efficacy",
                        "--n-edits", "1", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    methods = {line.split("-")[2] for line in result.stdout.lines if "[smollm2-135m-" in line}
    assert methods == set(available()) and {"alphaedit", "ft", "memit", "rome"} <= methods


def test_an_easyedit_file_sets_the_methods_hyperparameters_and_names_the_rest(pytester, tmp_path):
    path = tmp_path / "rome.yaml"
    path.write_text("alg_name: ROME\nlayers: [6]\nv_num_grad_steps: 7\nv_loss_layer: 29\n")
    result = run_inline(pytester, "--methods", "rome", "--benchmarks", "efficacy", "--n-edits",
                        "1", "--method-opt", f"rome.easyedit_yaml={path}", "--method-opt",
                        "rome.v_steps=9", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    out = result.stdout.str()
    assert "EasyEdit keys with no editguard counterpart, not used: v_loss_layer" in out
    from editguard.run.matrix import _easyedit  # what the run does with the options

    options = {"rome": {"easyedit_yaml": str(path), "v_steps": 9}}
    files, notices = _easyedit(options)
    assert options == {"rome": {"layer": 6, "v_steps": 9}}  # --method-opt beside it wins
    assert files == {"rome": str(path)} and len(notices) == 1


THREAD_RECORDER = """
    from pathlib import Path

    import torch

    def pytest_configure(config):  # after editguard's own (tryfirst) set-up of the worker
        worker = getattr(config, "workerinput", None)
        if worker is not None:
            Path(f"threads-{worker['workerid']}.txt").write_text(str(torch.get_num_threads()))
"""


@pytest.mark.parametrize("chosen, methods", [(False, ()), (True, ()), (False, ("rome",))])
def test_cpu_workers_share_the_cores_unless_alone_or_the_caller_chose_a_thread_count(
        pytester, monkeypatch, chosen, methods):
    import torch

    from editguard.run.threads import CHOSEN, available_cores

    cores = available_cores()
    if cores < 2:
        pytest.skip("one core: every way of sharing it gives each worker 1 thread")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # CPU workers, whatever the machine has
    for name in CHOSEN:
        monkeypatch.delenv(name, raising=False)
    if chosen:  # every core per worker (torch caps the variable at the core count)
        monkeypatch.setenv(CHOSEN[0], str(cores))
    pytester.makepyfile(threadrecorder=THREAD_RECORDER)
    args = ("--methods", ",".join(methods)) if methods else ()
    result = run(pytester, "-p", "threadrecorder", "-n", "2", *args, "-k", "no-such-case",
                 timeout=300)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, result.stderr.str()
    recorded = {p.stem: p.read_text() for p in pytester.path.glob("threads-*.txt")}
    if chosen:
        expected = cores
    elif methods:  # one (model, method): one busy worker, which keeps torch's default
        expected = torch.get_num_threads()
    else:  # the default matrix's four methods on two workers: half the cores each
        expected = cores // 2
    assert recorded == {"threads-gw0": str(expected), "threads-gw1": str(expected)}
