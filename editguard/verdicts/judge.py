"""Edited vs baseline under the thresholds: report rows and the failure reasons of one test."""

from __future__ import annotations

from typing import Any

import numpy as np

from editguard.benchmarks.base import Benchmark
from editguard.case import Case, Outcome
from editguard.verdicts.paired import mean_interval, paired_difference
from editguard.verdicts.row import Row
from editguard.verdicts.thresholds import Evidence, ThresholdSet, p_damage


def _sd(values: list[float]) -> float | None:
    """The per-item standard deviation (population), or None for no items."""
    return float(np.std(values)) if values else None


def _texts(outcome: Outcome) -> list[dict[str, str]] | None:
    """Baseline and edited text per item (the items both have), when both results kept it."""
    edited, base = outcome.edited, outcome.baseline
    if edited is None or base is None or edited.texts is None or base.texts is None:
        return None
    before = dict(zip(base.item_ids, base.texts))
    return [{"id": i, "baseline": before[i], "edited": t}
            for i, t in zip(edited.item_ids, edited.texts) if i in before]


def judge(case: Case, bench: type[Benchmark], outcome: Outcome, thresholds: ThresholdSet,
          provenance: dict[str, Any]) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    failures: list[str] = []
    for metric in bench.metrics:
        common: dict[str, Any] = dict(model=case.model, method=case.method, n_edits=case.n_edits,
                      benchmark=case.benchmark, metric=metric.name, kind=bench.kind,
                      provenance=provenance)
        limits = thresholds.lookup(case.benchmark, metric.name, metric.primary)
        described = " and ".join(t.describe() for t in limits) or None
        common.update(limits={t.kind: t.limit for t in limits},
                      modes={t.kind: str(t.mode) for t in limits})
        if outcome.status != "ok" or outcome.edited is None or outcome.baseline is None:
            base = outcome.baseline.value(metric.name) if outcome.baseline else None
            rows.append(Row(**common, baseline=base, edited=None, threshold=described,
                            passed=False, status=outcome.status, message=outcome.message))
            if not failures:
                failures.append(f"{outcome.message} [{case.label}]")
            continue
        base = outcome.baseline.value(metric.name)
        edited = outcome.edited.value(metric.name)
        paired = paired_difference(outcome.baseline, outcome.edited, metric.name,
                                   thresholds.confidence)
        alone = mean_interval(outcome.edited, metric.name, thresholds.confidence)
        drop_limit = next((t.limit for t in limits if t.kind == "max_drop"), None)
        damage = (p_damage(paired.mean, paired.se, drop_limit)
                  if drop_limit is not None and paired.n else None)
        evidence = Evidence(paired.n, thresholds.confidence, paired.interval, alone.interval,
                            damage, thresholds.family if thresholds.holm else 0)
        verdicts = [t.check(base, edited, case.label, metric=metric.name, evidence=evidence)
                    for t in limits]
        bad = [v.reason for v in verdicts if not v.passed]
        failures += bad
        rows.append(Row(**common, baseline=base, edited=edited, threshold=described,
                        passed=(not bad) if verdicts else None, message="; ".join(bad),
                        stderr=outcome.edited.stderr(metric.name),
                        n_items=len(outcome.edited.defined(metric.name)),
                        interval=paired.interval,
                        confidence=paired.confidence if paired.n else None,
                        p_value=paired.p_value, delta_se=paired.se if paired.n else None,
                        edited_interval=alone.interval, p_damage=damage,
                        baseline_sd=_sd(outcome.baseline.defined(metric.name)),
                        truncated=outcome.edited.truncated,
                        texts=_texts(outcome) if metric.primary else None))
    return rows, failures
