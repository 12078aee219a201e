"""Quality gates: each turns measurements into a verdict with its reason.

Verdicts are ``pass``, ``fail``, ``skip`` (the gate could not apply, e.g.
no model holds the ``production`` alias yet; a skipped gate does not fail the
evaluation) or ``inconclusive`` (too few held-out users or rows to decide:
"not enough evidence", which is neither a pass nor a fail). The statistics
behind the paired gates are described in ``docs/statistics.md`` ("Quality
gates").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from conveyor.evaluation._probe import DeterminismReport
from conveyor.evaluation._scoring import Difference, higher_is_better

Verdict = Literal["pass", "fail", "skip", "inconclusive"]
VERDICTS: tuple[Verdict, ...] = ("pass", "fail", "skip", "inconclusive")


@dataclass(frozen=True)
class GateResult:
    name: str
    verdict: Verdict
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.verdict == "fail"

    @property
    def inconclusive(self) -> bool:
        return self.verdict == "inconclusive"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "verdict": self.verdict, "reason": self.reason, "details": self.details}


def _fmt(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4g}"


def min_metric_gates(metrics: Mapping[str, float], minimums: Mapping[str, float]) -> list[GateResult]:
    """``metric >= minimum`` (for a lower-is-better metric such as log_loss: ``<=`` a ceiling)."""
    results = []
    for metric, bound in minimums.items():
        name = f"min:{metric}"
        value = metrics.get(metric, math.nan)
        if math.isnan(value):
            results.append(GateResult(name, "fail", f"{metric} could not be computed", {"bound": bound}))
            continue
        up = higher_is_better(metric)
        ok = value >= bound if up else value <= bound
        sign = (">=" if ok else "<") if up else ("<=" if ok else ">")
        results.append(
            GateResult(
                name,
                "pass" if ok else "fail",
                f"{metric} = {_fmt(value)} {sign} {_fmt(bound)}",
                {"value": value, "bound": bound, "higher_is_better": up},
            )
        )
    return results


def regression_gate(
    *,
    metric: str,
    candidate: float,
    production: float,
    difference: Difference | None,
    tolerance: float,
    mode: str,
    higher_is_better: bool,
    production_version: str,
) -> GateResult:
    """No regression beyond ``tolerance`` against production, judged on the paired bootstrap.

    The shortfall ``s`` is production − candidate when higher is better (the
    other way round otherwise). The gate fails when even the optimistic
    one-sided 95 % bound of ``s`` exceeds the tolerance — the test set shows
    a regression larger than allowed, beyond noise. With no interval (a
    single unit) it falls back to the point values.
    """
    allowed = tolerance * abs(production) if mode == "relative" else tolerance
    sign = 1.0 if higher_is_better else -1.0
    shortfall = sign * (production - candidate)
    details: dict[str, Any] = {
        "metric": metric,
        "candidate": candidate,
        "production": production,
        "production_version": production_version,
        "allowed_shortfall": allowed,
        "tolerance": tolerance,
        "mode": mode,
        "higher_is_better": higher_is_better,
    }
    if difference is not None and not math.isnan(difference.low):
        details["difference"] = difference.to_dict()
        # difference = candidate − production; the smallest plausible shortfall:
        best_case = -difference.high if higher_is_better else difference.low
        ok = best_case <= allowed
        judged = (
            f"shortfall {_fmt(shortfall)}; its optimistic bound {_fmt(best_case)} is "
            f"{'within' if ok else 'beyond'} the allowed {_fmt(allowed)} "
            f"(bootstrap {int(difference.confidence * 100)}% interval of candidate − production "
            f"[{_fmt(difference.low)}, {_fmt(difference.high)}])"
        )
    else:
        ok = shortfall <= allowed
        judged = (
            f"shortfall {_fmt(shortfall)} {'within' if ok else 'beyond'} the allowed {_fmt(allowed)} "
            "(point values: too few units to bootstrap)"
        )
    reason = f"{metric} {_fmt(candidate)} vs production v{production_version} {_fmt(production)}: {judged}"
    return GateResult("no_regression", "pass" if ok else "fail", reason, details)


def skipped(name: str, reason: str) -> GateResult:
    return GateResult(name, "skip", reason)


def _one_sided(difference: Difference) -> str:
    level = (1 + difference.confidence) / 2
    return f"one-sided {level:.0%} bound"


def baseline_gate(
    metric: str, value: float, baseline: float, baseline_name: str, difference: Difference | None
) -> GateResult:
    """The model beats its baseline beyond noise: a paired bootstrap on the same held-out units.

    Passes when the one-sided bound of candidate − baseline nearest to zero
    (the lower bound when higher is better) is on the right side of zero, so a
    model no better than the baseline passes at most at the one-sided error rate.
    """
    up = higher_is_better(metric)
    details: dict[str, Any] = {"metric": metric, "value": value, "baseline": baseline}
    if math.isnan(value) or math.isnan(baseline):
        return GateResult("beat_baseline", "fail", f"{metric} could not be computed", details)
    if difference is None or math.isnan(difference.low):
        reason = f"{metric} {_fmt(value)} vs {baseline_name} {_fmt(baseline)}: too few units to bootstrap"
        return GateResult("beat_baseline", "inconclusive", reason, details)
    details["difference"] = difference.to_dict()
    bound = difference.low if up else difference.high
    ok = bound > 0 if up else bound < 0
    lift = f", {difference.estimate / abs(baseline):+.1%}" if baseline else ""
    reason = (
        f"{metric} {_fmt(value)} {'beats' if ok else 'does not beat'} the {baseline_name} baseline "
        f"{_fmt(baseline)}: difference {difference.estimate:+.4g}{lift}, "
        f"{round(difference.confidence * 100)}% paired bootstrap interval "
        f"[{difference.low:+.4g}, {difference.high:+.4g}] over {difference.units:,} units "
        f"({_one_sided(difference)} {bound:+.4g} {'clears' if ok else 'does not clear'} 0)"
    )
    return GateResult("beat_baseline", "pass" if ok else "fail", reason, details)


def evidence_gate(units: int, pairs: int, minimum: int, *, unit: str) -> GateResult:
    """Enough held-out units for the paired gates to mean anything; else "not enough evidence"."""
    what = f"{units:,} {unit} scored" + (f" ({pairs:,} held-out pairs)" if unit == "users" else "")
    details = {"units": units, "pairs": pairs, "minimum": minimum, "unit": unit}
    if units >= minimum:
        return GateResult("evidence", "pass", f"{what}, at least {minimum:,} needed", details)
    reason = f"not enough evidence: {what}, at least {minimum:,} needed (evaluation.min_evaluated)"
    return GateResult("evidence", "inconclusive", reason, details)


def not_enough_evidence(name: str, evidence: GateResult) -> GateResult:
    """A statistical gate left undecided because ``evidence`` is inconclusive."""
    return GateResult(name, "inconclusive", f"not decided: {evidence.reason}")


def determinism_gate(report: DeterminismReport) -> GateResult:
    parts = [
        f"repeat {'same' if report.repeat else 'DIFFERENT'}",
        f"save/load {'same' if report.round_trip else 'DIFFERENT'}",
        {True: "second process same", False: "second process DIFFERENT", None: "second process not run"}[
            report.process
        ],
    ]
    if report.problem:
        parts.append(report.problem)
    return GateResult("determinism", "pass" if report.passed else "fail", "; ".join(parts), report.to_dict())


def latency_gate(p95_ms: float, budget_ms: float) -> GateResult:
    ok = p95_ms <= budget_ms
    return GateResult(
        "latency",
        "pass" if ok else "fail",
        f"p95 single-request latency {p95_ms:.2f} ms {'<=' if ok else '>'} budget {budget_ms:g} ms",
        {"p95_ms": p95_ms, "budget_ms": budget_ms},
    )


def size_gate(size_bytes: int, limit_mb: float) -> GateResult:
    size_mb = size_bytes / 1e6
    ok = size_mb <= limit_mb
    return GateResult(
        "artifact_size",
        "pass" if ok else "fail",
        f"artifact {size_mb:.2f} MB {'<=' if ok else '>'} limit {limit_mb:g} MB",
        {"bytes": size_bytes, "limit_mb": limit_mb},
    )
