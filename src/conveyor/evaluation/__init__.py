"""Metrics (classification, ranking) and quality gates."""

from conveyor.evaluation._classification import (
    CLASSIFICATION_METRICS,
    classification_score,
    classification_scores,
    encode_labels,
)
from conveyor.evaluation._gates import (
    GateResult,
    baseline_gate,
    determinism_gate,
    latency_gate,
    min_metric_gates,
    regression_gate,
    size_gate,
    skipped,
)
from conveyor.evaluation._probe import (
    DeterminismReport,
    Probe,
    artifact_bytes,
    check_determinism,
    latency_p95_ms,
    output_digest,
)
from conveyor.evaluation._ranking import RANKING_METRICS, RankingScores, ranking_scores, user_scores
from conveyor.evaluation._scoring import (
    Difference,
    HoldoutSet,
    Scored,
    higher_is_better,
    paired_difference,
    score,
)

__all__ = [
    "CLASSIFICATION_METRICS",
    "RANKING_METRICS",
    "DeterminismReport",
    "Difference",
    "GateResult",
    "HoldoutSet",
    "Probe",
    "RankingScores",
    "Scored",
    "artifact_bytes",
    "baseline_gate",
    "check_determinism",
    "classification_score",
    "classification_scores",
    "determinism_gate",
    "encode_labels",
    "higher_is_better",
    "latency_gate",
    "latency_p95_ms",
    "min_metric_gates",
    "output_digest",
    "paired_difference",
    "ranking_scores",
    "regression_gate",
    "score",
    "size_gate",
    "skipped",
    "user_scores",
]
