"""Spark ``local[2]`` against one process on the same data: the engine's cost on one box.

Printed by ``python -m benchmarks.spark`` (docs/benchmarks.md, "Past one machine").

1. ALS: Spark MLlib against implicit on the same 5M interactions (the issue's size). Both fit the
   same confidence matrix (``SparkALSRecommender`` builds it exactly as ``ImplicitRecommender``
   does) with the same parameters. ALS's cost is linear in its iterations, and ten Spark
   iterations at 5M would hold this shared 2-core machine for over an hour, so both run
   ``ITERATIONS`` (``--iterations`` changes it): the ratio is the figure; precision@10 on each
   user's last interaction is a sanity check that both learned the same thing.
2. XGBoost: ``xgboost.spark`` (two workers) against ``XGBClassifier`` on the same encoded table
   (``--rows``), with the held-out AUC of each.

The Spark session starts once (the JVM) and is reported apart from the fits.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from benchmarks._env import environment_header, load_line
from conveyor.config import SparkSection
from conveyor.evaluation import HoldoutSet, score
from conveyor.models import (
    ImplicitRecommender,
    SparkALSRecommender,
    SparkXGBoostModel,
    TabularClassifier,
    XGBoostModel,
)

INTERACTIONS = 5_000_000
ITERATIONS = 3
ROWS = 300_000
FACTORS = 64
XGB_PARAMS = {"n_estimators": 100, "max_depth": 6, "learning_rate": 0.1}
SPARK = SparkSection(
    master="local[2]",
    conf={"spark.sql.shuffle.partitions": 2, "spark.ui.enabled": False, "spark.driver.memory": "6g"},
)


def interactions(n: int, seed: int = 0) -> pl.DataFrame:
    """Users with a taste group (10 groups); 80 % of their items in it, long-tailed popularity."""
    rng = np.random.default_rng(seed)
    n_users, n_items, groups = max(n // 25, 100), max(n // 100, 50), 10
    users = rng.integers(0, n_users, n)
    pop = 1.0 / np.arange(1, n_items // groups + 1) ** 0.8
    pop /= pop.sum()
    in_group = rng.choice(n_items // groups, n, p=pop) * groups + users % groups
    items = np.where(rng.random(n) < 0.8, in_group, rng.integers(0, n_items, n))
    return pl.DataFrame({"user_id": users, "item_id": items, "step": np.arange(n)})


def split(data: pl.DataFrame) -> tuple[pl.DataFrame, HoldoutSet]:
    last = data.group_by("user_id").agg(pl.col("step").max().alias("last"))
    marked = data.join(last, on="user_id").with_columns(test=pl.col("step") == pl.col("last"))
    train = marked.filter(~pl.col("test")).drop("last", "test")
    truth = marked.filter(pl.col("test")).select("user_id", "item_id")
    truth = truth.join(train.select("user_id", "item_id").unique(), on=["user_id", "item_id"], how="anti")
    return train, HoldoutSet.from_truth(truth, k=10, max_users=5_000, seed=0)


def table(n: int, seed: int = 0) -> pl.DataFrame:
    """18 numeric features and a 5-level category; the label drawn from a known logistic model."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 18))
    colour = rng.choice(["a", "b", "c", "d", "e"], n)
    logit = x[:, :6] @ np.array([1.5, -1.0, 0.8, 0.5, -0.5, 0.3]) + 1.0 * (colour == "a") - 0.3
    label = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pl.DataFrame({**{f"x{j}": x[:, j] for j in range(18)}, "colour": colour, "label": label})


def _fit(model: object, data: pl.DataFrame) -> float:
    start = time.perf_counter()
    model.fit(data)  # type: ignore[attr-defined]
    return time.perf_counter() - start


def _auc(model: TabularClassifier, rows: pl.DataFrame) -> float:
    yes = model.classes.index("yes")
    return float(roc_auc_score(rows["label"].to_numpy() == "yes", model.predict_proba(rows)[:, yes]))


def _print_rows(rows: list[tuple[str, float, float]], metric: str) -> None:
    print(f"| engine | fit (s) | × one process | {metric} |")
    print("|---|---:|---:|---:|")
    for name, seconds, value in rows:
        print(f"| {name} | {seconds:.1f} | {seconds / rows[0][1]:.1f} | {value:.3f} |")


def _als_table(n: int, iterations: int, started: float) -> None:
    train, test = split(interactions(n))
    params = {"factors": FACTORS, "iterations": iterations, "regularization": 0.01, "alpha": 1.0}
    als: list[tuple[str, float, float]] = []
    for name, recommender in (
        ("implicit ALS (this process)", ImplicitRecommender(params=params)),
        ("Spark MLlib ALS (local[2])", SparkALSRecommender(params=params, spark=SPARK)),
    ):
        seconds = _fit(recommender, train)
        als.append((name, seconds, score(recommender, test).metrics["precision_at_10"]))
    print(
        f"\n### ALS: {train.height:,} training interactions, {FACTORS} factors, {iterations} "
        f"iterations (Spark session start: {started:.1f} s, not in the fits)\n"
    )
    _print_rows(als, "precision@10")


def _xgboost_table(n: int) -> None:
    rows = table(n)
    fit_rows, held_out = rows.head(n * 4 // 5), rows.tail(n // 5)
    xgb: list[tuple[str, float, float]] = []
    for name, classifier in (
        ("XGBClassifier (this process)", XGBoostModel(target="label", params=XGB_PARAMS)),
        (
            "xgboost.spark (local[2], 2 workers)",
            SparkXGBoostModel(target="label", params=XGB_PARAMS, spark=SPARK),
        ),
    ):
        seconds = _fit(classifier, fit_rows)
        xgb.append((name, seconds, _auc(classifier, held_out)))
    print(
        f"\n### XGBoost: {fit_rows.height:,} training rows × 19 features, "
        f"{XGB_PARAMS['n_estimators']} trees of depth {XGB_PARAMS['max_depth']}\n"
    )
    _print_rows(xgb, "AUC")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--interactions", type=int, default=INTERACTIONS)
    parser.add_argument("--iterations", type=int, default=ITERATIONS)
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--only", choices=("als", "xgboost"), help="run one of the two tables")
    args = parser.parse_args(argv)
    command = " ".join(["python -m benchmarks.spark", *(argv if argv is not None else sys.argv[1:])])
    print(environment_header("Spark local[2] vs one process (ALS, XGBoost)", command=command))
    from conveyor.spark import start_session

    start = time.perf_counter()
    session = start_session(SPARK)
    started = time.perf_counter() - start

    if args.only != "xgboost":
        _als_table(args.interactions, args.iterations, started)
    if args.only != "als":
        _xgboost_table(args.rows)
    session.stop()
    print()
    print(load_line("after"))


if __name__ == "__main__":
    main()
