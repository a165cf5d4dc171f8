"""Progress lines of long phases (editguard.run.progress)."""

from __future__ import annotations

from editguard.run.progress import TerminalProgress, scoring


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_log_gets_whole_lines_at_the_start_each_quarter_and_the_end():
    out: list[str] = []
    clock = Clock()
    progress = TerminalProgress(out.append, in_place=False, prefix="[gw1] ", clock=clock)
    for done in range(0, 101):
        clock.now = done / 10
        progress("scoring mmlu", done, 100)
    assert out == ["[gw1] scoring mmlu: 0/100\n", "[gw1] scoring mmlu: 25/100 (10.0/s)\n",
                   "[gw1] scoring mmlu: 50/100 (10.0/s)\n", "[gw1] scoring mmlu: 75/100 (10.0/s)\n",
                   "[gw1] scoring mmlu: 100/100 in 10.0 s, 10.0/s\n"]
    assert not any("\r" in line for line in out)


def test_a_terminal_gets_one_line_rewritten_in_place_and_kept_when_done():
    out: list[str] = []
    clock = Clock()
    progress = TerminalProgress(out.append, in_place=True, clock=clock)
    for done in range(0, 11):
        clock.now = done * 0.05  # every 50 ms: redrawn at most every 200 ms
        progress("edits", done, 10)
    assert out[0] == "\nedits: 0/10\x1b[K"  # a line of its own, off pytest's line of dots
    assert all(line.startswith("\r") for line in out[1:]) and len(out) < 11
    assert out[-1] == "\redits: 10/10 in 0.5 s, 20.0/s\x1b[K\n"


def test_a_phase_that_resumes_counts_its_rate_from_where_it_resumed():
    out: list[str] = []
    clock = Clock()
    progress = TerminalProgress(out.append, in_place=False, clock=clock)
    progress("edits", 10, 30)
    clock.now = 4.0
    progress("edits", 30, 30)
    assert out[-1] == "edits: 30/30 in 4.0 s, 5.0/s\n"
    progress("memit edits", 0, 3)
    clock.now = 24.0
    progress("memit edits", 1, 3)
    assert out[-1] == "memit edits: 1/3 (20.0 s each)\n"  # slow steps: seconds each, not 0.0/s


def test_scoring_reports_a_backends_batches_and_detaches_after():
    class Backend:
        progress = None

    seen: list[tuple[str, int, int]] = []
    backend = Backend()
    with scoring(backend, lambda *a: seen.append(a), "scoring facts"):
        assert backend.progress is not None
        backend.progress(3, 9)
    assert seen == [("scoring facts", 3, 9)] and backend.progress is None
    with scoring(object(), lambda *a: seen.append(a), "x"):  # a backend without the hook
        pass


def test_the_hf_backend_reports_the_start_and_each_batch(tokenizer):
    # the start (0 done) sets the phase's clock before the forward passes, so "in N s" is the
    # call's time, also for a call that runs in one batch
    from editguard.backends.base import Generation
    from editguard.backends.hf import HFBackend
    from tests.tiny import tiny_model

    backend = HFBackend(tiny_model("llama", len(tokenizer)), tokenizer, max_batch=2)
    seen: list[tuple[int, int]] = []
    backend.progress = lambda done, total: seen.append((done, total))
    backend.loglikelihood([("a b", " c"), ("d e", " f"), ("g h i", " j")])
    assert seen[0] == (0, 3) and seen[-1] == (3, 3) and len(seen) == 3
    seen.clear()
    backend.generate([Generation("a b", 2, ()), Generation("c d", 2, ()), Generation("e", 2, ())])
    assert seen == [(0, 3), (2, 3), (3, 3)]
