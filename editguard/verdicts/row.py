"""One line of a degradation report: a metric of one (model, method, n_edits, benchmark) case."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

Status = Literal["ok", "collapsed", "error"]

# The key under which tests attach their rows to ``item.user_properties``; the value is a list
# of ``Row.to_dict()`` records, JSON-serialisable so it survives the trip through xdist.
USER_PROPERTY = "editguard_rows"


@dataclasses.dataclass(frozen=True)
class Row:
    model: str
    method: str
    n_edits: int
    benchmark: str
    metric: str
    kind: str  # "efficacy" | "capability" | "safety"
    baseline: float | None
    edited: float | None
    threshold: str | None  # human-readable limit, e.g. "drop <= 5.0 pt" or ">= 0.90"
    passed: bool | None  # None when no threshold applies to this metric
    status: Status = "ok"
    message: str = ""
    stderr: float | None = None  # standard error of the edited score
    n_items: int = 0
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    # paired statistics of edited - baseline over the items both scored (verdicts.paired)
    interval: tuple[float, float] | None = None  # bootstrap interval of the delta
    confidence: float | None = None  # of ``interval``
    p_value: float | None = None  # exact McNemar, for 0/1 metrics
    delta_se: float | None = None  # bootstrap standard error of the delta
    baseline_sd: float | None = None  # per-item standard deviation of the baseline's scores
    # one-sided p-value that the drop is within the max_drop limit (normal approximation)
    p_damage: float | None = None
    edited_interval: tuple[float, float] | None = None  # bootstrap interval of the edited score
    # the verdict: the limits applied, by kind: {"max_drop": 5.0 (points), "min": 0.9}, and the
    # mode that decided each ("point", "ci", "noninferiority", "ci-holm")
    limits: dict[str, float] = dataclasses.field(default_factory=dict)
    modes: dict[str, str] = dataclasses.field(default_factory=dict)
    truncated: int = 0  # inputs of the edited run cut from the left to fit the model
    # generation benchmarks with keep_text, on the primary metric's row: per item
    # {"id", "baseline", "edited"} texts, to compare answers item by item
    texts: list[dict[str, str]] | None = None

    @property
    def mode(self) -> str | None:
        """The deciding modes, ``"ci"`` or ``"ci and point"``; None without a threshold."""
        return " and ".join(dict.fromkeys(self.modes.values())) or None

    @property
    def delta(self) -> float | None:
        """edited - baseline, in score units (multiply by 100 for points)."""
        if self.baseline is None or self.edited is None:
            return None
        return self.edited - self.baseline

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["delta"] = self.delta
        out["mode"] = self.mode
        for key in ("baseline", "edited", "delta", "stderr", "p_value", "delta_se",
                    "baseline_sd", "p_damage"):
            value = out[key]
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None  # JSON has no NaN; a collapsed model is told by ``status``
        for key in ("interval", "edited_interval"):
            if out[key] is not None:
                out[key] = list(out[key]) if all(map(math.isfinite, out[key])) else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Row":
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        for key in ("interval", "edited_interval"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)
