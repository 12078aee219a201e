"""ALS with the default settings against popularity on a realistic long-tail log, as `evaluate` judges it.

    python -m benchmarks.recommender_holdout

The log (``tests/models/longtail_log.py``): 4,000 users with 1–2,000
interactions each over two years (median 8), a Zipf-like item tail, 20 planted
taste groups. Each hold-out is made as ``conveyor train`` makes it, the models
are the ones ``conveyor train`` fits with an empty ``conveyor.yaml`` (ALS, 128
factors, 15 iterations; the popularity baseline), and the beat-baseline gate is
the one ``conveyor evaluate`` runs (paired bootstrap, 1,000 resamples, one-sided
95 %). Printed for the default per-user hold-out and for the old default, the
last 7 days of the whole log (``evaluation.split: global-time``).
"""

from __future__ import annotations

import time

from tests.models.longtail_log import longtail_log

from benchmarks._env import environment_header, load_line
from conveyor.config import ModelType, Settings, parse_settings
from conveyor.evaluation import (
    GateResult,
    HoldoutSet,
    baseline_gate,
    evidence_gate,
    paired_difference,
    score,
)
from conveyor.models import make_baseline, make_model
from conveyor.pipeline._split import split_interactions  # not re-exported: keeps `conveyor.pipeline` light

METRIC = "ndcg_at_10"


def judge(settings: Settings, log) -> tuple[dict[str, object], float, float, GateResult, GateResult]:
    """Split, fit ALS and popularity, score both on the held-out users, decide the gates."""
    split = split_interactions(log, settings)
    model = make_model(ModelType.ALS, {}, settings)  # as `conveyor train` with no model.params
    model.fit(split.train)
    baseline = make_baseline(ModelType.ALS, settings)
    baseline.fit(split.train)
    m = settings.model
    test = HoldoutSet.from_truth(split.test, k=m.k, max_users=m.eval_users, seed=m.seed)
    candidate, base = score(model, test), score(baseline, test)
    evidence = evidence_gate(candidate.units, test.pairs, settings.evaluation.min_evaluated, unit="users")
    confidence = 2 * settings.evaluation.confidence - 1
    diff = paired_difference(METRIC, candidate, base, seed=m.seed, confidence=confidence)
    gate = baseline_gate(METRIC, candidate.metrics[METRIC], base.metrics[METRIC], "popularity", diff)
    return split.description, candidate.metrics[METRIC], base.metrics[METRIC], evidence, gate


def main(argv: list[str] | None = None) -> None:
    print(environment_header("recommender hold-out", command="python -m benchmarks.recommender_holdout"))
    log = longtail_log()
    per_user = log.group_by("user_id").len()["len"]
    print(
        f"log: {log.height:,} interactions, {per_user.len():,} users with "
        f"{per_user.min()}–{per_user.max():,} interactions (median {per_user.median():g}), "
        f"{log['item_id'].n_unique():,} items\n"
    )
    print("| hold-out | users scored | held-out pairs | ALS NDCG@10 | popularity | ALS − popularity "
          "(90 % paired bootstrap) | evidence | beat_baseline | seconds |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---|---|---|---:|")
    for label, raw in (
        ("per-user, last 20 % (default)", {}),
        ("global, last 7 days (`global-time`)", {"evaluation": {"split": "global-time"}}),
    ):
        start = time.perf_counter()
        split, als, pop, evidence, gate = judge(parse_settings(raw), log)
        d = gate.details.get("difference") or {}
        interval = f"{d['estimate']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]" if d else "–"
        print(
            f"| {label} | {evidence.details['units']:,} | {evidence.details['pairs']:,} "
            f"| {als:.4f} | {pop:.4f} | {interval} | {evidence.verdict} | {gate.verdict} "
            f"| {time.perf_counter() - start:.1f} |"
        )
        if split.get("users_too_short"):
            print(f"|  ↳ {split['users_too_short']:,} users with < 5 distinct items kept out of the test set "
                  "| | | | | | | | |")  # fmt: skip
    print(f"\n{load_line('after')}")


if __name__ == "__main__":
    main()
