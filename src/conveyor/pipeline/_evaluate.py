"""``conveyor evaluate``: the latest run's metrics beside its baseline and production, and the gates.

Every model is scored on the held-out set the run saved, so the candidate,
the baseline and the production model see the same users or rows and the
regression gate can compare them pair by pair.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from conveyor.config import InsufficientEvidence, Settings
from conveyor.errors import ConfigError, ConveyorError, ServiceError
from conveyor.evaluation import (
    MINORITY_WARNING_SHARE,
    Difference,
    GateResult,
    HoldoutSet,
    Probe,
    Scored,
    artifact_bytes,
    baseline_gate,
    check_determinism,
    determinism_gate,
    evidence_gate,
    latency_gate,
    latency_p95_ms,
    min_metric_gates,
    not_enough_evidence,
    paired_difference,
    regression_gate,
    score,
    skipped,
)
from conveyor.models import Model, load_model
from conveyor.pipeline._runs import RunIndex, RunRecord, run_dir
from conveyor.pipeline._split import load_split_description, load_test_set
from conveyor.project import Project

PRODUCTION = "production"
PASSED, FAILED, NOT_ENOUGH_EVIDENCE = "passed", "failed", "not enough evidence"
CLASSIFIER_BASELINE_METRIC = "average_precision"  # a constant predictor scores the prevalence
PROBE_SIZE = 100
UNKNOWN_USER = "__conveyor_unknown_user__"


@dataclass(frozen=True)
class EvaluationResult:
    run_id: str
    model_type: str
    primary_metric: str
    metrics: dict[str, float]
    baseline_name: str
    baseline_metrics: dict[str, float]
    gates: list[GateResult]
    production_version: str | None = None
    production_metrics: dict[str, float] = field(default_factory=dict)
    sha256: str = ""
    evaluated: dict[str, Any] = field(default_factory=dict)  # units, pairs, split description
    warnings: list[str] = field(default_factory=list)
    continue_without_evidence: bool = False  # evaluation.not_enough_evidence: continue

    @property
    def verdict(self) -> str:
        """``passed``, ``failed`` or ``not enough evidence`` (neither a pass nor a fail)."""
        if any(g.failed for g in self.gates):
            return FAILED
        if any(g.inconclusive for g in self.gates):
            return NOT_ENOUGH_EVIDENCE
        return PASSED

    @property
    def passed(self) -> bool:
        return self.verdict == PASSED

    @property
    def proceed(self) -> bool:
        """Whether the pipeline goes on (register): passed, or inconclusive when so configured."""
        return self.passed or (self.verdict == NOT_ENOUGH_EVIDENCE and self.continue_without_evidence)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for gate in self.gates:
            out[gate.verdict] = out.get(gate.verdict, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.proceed,
            "passed": self.passed,
            "verdict": self.verdict,
            "proceed": self.proceed,
            "counts": self.counts(),
            "failed_gates": [g.name for g in self.gates if g.failed],
            "evaluated": self.evaluated,
            "warnings": self.warnings,
            "run_id": self.run_id,
            "model_type": self.model_type,
            "primary_metric": self.primary_metric,
            "metrics": self.metrics,
            "baseline": {"name": self.baseline_name, "metrics": self.baseline_metrics},
            "production": {"version": self.production_version, "metrics": self.production_metrics},
            "gates": [g.to_dict() for g in self.gates],
            "sha256": self.sha256,
        }


def _check_metric_names(settings: Settings, available: dict[str, float]) -> None:
    names = sorted(available)
    for metric in settings.gates.min_metrics:
        if metric not in available:
            raise ConfigError(
                "conveyor.yaml", f"gates.min_metrics.{metric}", f"unknown metric; use one of {names}"
            )
    spec = settings.gates.no_regression
    if spec is not None and spec.metric not in available:
        raise ConfigError(
            "conveyor.yaml",
            "gates.no_regression.metric",
            f"unknown metric {spec.metric!r}; use one of {names}",
        )
    if settings.model.primary_metric not in available:
        raise ConfigError(
            "conveyor.yaml",
            "model.primary_metric",
            f"unknown metric {settings.model.primary_metric!r}; use one of {names}",
        )


def _probe(test: HoldoutSet) -> Probe:
    if test.kind == "recommender":
        return Probe(user_ids=[*test.users[:PROBE_SIZE], UNKNOWN_USER], k=test.k)
    rows = test.rows.head(PROBE_SIZE) if test.rows is not None else None
    if rows is not None and test.target in rows.columns:
        rows = rows.drop(str(test.target))
    return Probe(rows=rows)


def _confidence(settings: Settings) -> float:
    """The two-sided level whose bounds are the configured one-sided ones."""
    return 2 * settings.evaluation.confidence - 1


def _regression(
    project: Project, model: Model, candidate: Scored, test: HoldoutSet, evidence: GateResult
) -> tuple[GateResult, str | None, dict[str, float]]:
    from conveyor.registry import get_version_by_alias, load_verified

    settings = project.settings
    spec = settings.gates.no_regression
    if spec is None:
        return skipped("no_regression", "gate disabled (gates.no_regression is null)"), None, {}
    production = get_version_by_alias(project, PRODUCTION)
    if production is None:
        return skipped("no_regression", f"no model holds the {PRODUCTION!r} alias yet"), None, {}
    prod_model = load_verified(production)  # a tampered production artifact stops here
    if prod_model.kind != model.kind:
        reason = f"production v{production.version} is a {prod_model.kind}, the candidate a {model.kind}"
        return skipped("no_regression", reason), production.version, {}
    prod = score(prod_model, test)
    if evidence.inconclusive:
        return not_enough_evidence("no_regression", evidence), production.version, prod.metrics
    difference = paired_difference(
        spec.metric, candidate, prod, seed=settings.model.seed, confidence=_confidence(settings)
    )
    gate = regression_gate(
        metric=spec.metric,
        candidate=candidate.metrics[spec.metric],
        production=prod.metrics[spec.metric],
        difference=difference,
        tolerance=spec.tolerance,
        mode=spec.mode,
        higher_is_better=spec.higher_is_better,
        production_version=production.version,
    )
    return gate, production.version, prod.metrics


def _baseline_metric(settings: Settings, recommender: bool, available: dict[str, float]) -> str:
    configured = settings.evaluation.baseline_metric
    metric = configured or (settings.model.primary_metric if recommender else CLASSIFIER_BASELINE_METRIC)
    if metric not in available:
        names = sorted(available)
        raise ConfigError(
            "conveyor.yaml", "evaluation.baseline_metric", f"unknown metric {metric!r}; use one of {names}"
        )
    return metric


def _warnings(candidate: Scored) -> list[str]:
    share = candidate.info.get("minority_share")
    if isinstance(share, float) and not math.isnan(share) and share < MINORITY_WARNING_SHARE:
        return [
            f"the minority class is {share:.1%} of the held-out rows (under "
            f"{MINORITY_WARNING_SHARE:.0%}): accuracy says little; judge balanced_accuracy, "
            f"average_precision and the F1 of the positive class ({candidate.info.get('positive_class')!r})"
        ]
    return []


def _beat_baseline(
    settings: Settings, metric: str, candidate: Scored, base: Scored, baseline_name: str, evidence: GateResult
) -> GateResult:
    if evidence.inconclusive:
        return not_enough_evidence("beat_baseline", evidence)
    difference: Difference = paired_difference(
        metric, candidate, base, seed=settings.model.seed, confidence=_confidence(settings)
    )
    return baseline_gate(metric, candidate.metrics[metric], base.metrics[metric], baseline_name, difference)


def evaluate_run(project: Project, record: RunRecord) -> EvaluationResult:
    """Score one run and decide every configured gate."""
    from conveyor.registry import directory_sha256

    settings = project.settings
    gates_cfg = settings.gates
    folder = run_dir(project, record.run_id)
    model = load_model(folder / "model")
    baseline = load_model(folder / "baseline")
    recommender = model.kind == "recommender"
    test = load_test_set(folder / "test", settings, recommender=recommender)
    candidate = score(model, test)
    base = score(baseline, test)
    _check_metric_names(settings, candidate.metrics)
    primary = settings.model.primary_metric
    baseline_name = "popularity" if recommender else "class-prior"
    unit = "users" if recommender else "rows"
    pairs = test.pairs if recommender else candidate.units
    evidence = evidence_gate(candidate.units, pairs, settings.evaluation.min_evaluated, unit=unit)

    gates: list[GateResult] = [evidence, *min_metric_gates(candidate.metrics, gates_cfg.min_metrics)]
    regression, prod_version, prod_metrics = _regression(project, model, candidate, test, evidence)
    gates.append(regression)
    if gates_cfg.beat_baseline:
        metric = _baseline_metric(settings, recommender, candidate.metrics)
        gates.append(_beat_baseline(settings, metric, candidate, base, baseline_name, evidence))
    probe = _probe(test)
    if gates_cfg.determinism:
        gates.append(determinism_gate(check_determinism(model, probe)))
    if gates_cfg.latency_p95_ms is not None:
        gates.append(latency_gate(latency_p95_ms(model, probe), gates_cfg.latency_p95_ms))
    if gates_cfg.max_artifact_mb is not None:
        from conveyor.evaluation import size_gate

        gates.append(size_gate(artifact_bytes(folder / "model"), gates_cfg.max_artifact_mb))
    evaluated = {
        "unit": unit,
        "units": candidate.units,
        "pairs": pairs,
        "minimum": settings.evaluation.min_evaluated,
        "split": load_split_description(folder / "test"),
        **{k: v for k, v in candidate.info.items() if k in ("positive_class", "minority_share")},
    }
    return EvaluationResult(
        run_id=record.run_id,
        model_type=record.model_type,
        primary_metric=primary,
        metrics=candidate.metrics,
        baseline_name=baseline_name,
        baseline_metrics=base.metrics,
        gates=gates,
        production_version=prod_version,
        production_metrics=prod_metrics,
        sha256=directory_sha256(folder / "model"),
        evaluated=evaluated,
        warnings=_warnings(candidate),
        continue_without_evidence=settings.evaluation.not_enough_evidence is InsufficientEvidence.CONTINUE,
    )


def _log_verdict(project: Project, result: EvaluationResult) -> None:
    """Tags ``conveyor.gates`` and ``conveyor.gate.<name>``, and ``evaluation.json`` on the run."""
    from mlflow.entities import Metric, RunTag

    from conveyor.registry import tracking_client

    client = tracking_client(project)
    tags = [RunTag("conveyor.gates", result.verdict.replace(" ", "-"))]
    tags.append(RunTag("conveyor.proceed", "true" if result.proceed else "false"))
    tags += [RunTag(f"conveyor.gate.{g.name}", g.verdict) for g in result.gates]
    now = 0
    metrics = [Metric(f"eval_{k}", float(v), now, 0) for k, v in result.metrics.items() if math.isfinite(v)]
    try:
        client.log_batch(result.run_id, metrics=metrics, tags=tags)
        client.log_text(result.run_id, json.dumps(result.to_dict(), indent=2, default=str), "evaluation.json")
    except ConveyorError:
        raise
    except Exception as exc:  # MLflow raises MlflowException and store errors alike
        raise ServiceError(
            f"logging the verdict to run {result.run_id} failed: {type(exc).__name__}: {exc}"
        ) from exc


def evaluate_latest(project: Project) -> EvaluationResult:
    """Evaluate the latest training run; the verdict goes to MLflow and the local index."""
    index = RunIndex(project)
    record = index.latest()
    result = evaluate_run(project, record)
    _log_verdict(project, result)
    index.update(
        record.run_id,
        evaluation={
            "passed": result.passed,
            "verdict": result.verdict,
            "proceed": result.proceed,
            "sha256": result.sha256,
            "gates": [g.to_dict() for g in result.gates],
        },
    )
    return result
