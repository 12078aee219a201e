"""Spark ``local[2]`` ALS against implicit's ALS on the same interactions: the engine's cost on one box.

Printed by ``python -m benchmarks.spark`` (docs/benchmarks.md, "Past one machine").

Both fit the same confidence matrix (``SparkALSRecommender`` builds it exactly as
``ImplicitRecommender`` does) with the same parameters; the table gives the session start (the
JVM, once per process), each fit's wall time, and precision@10 on the last interactions of each
user held out. The issue asks for 5M interactions; the default here is ``INTERACTIONS`` (scaled
down so that the run fits a shared 2-core machine: pass ``--interactions 5000000`` for the full
size).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl

from benchmarks._env import environment_header, load_line
from conveyor.config import SparkSection
from conveyor.evaluation import HoldoutSet, score
from conveyor.models import ImplicitRecommender, SparkALSRecommender

INTERACTIONS = 1_000_000
PARAMS = {"factors": 64, "iterations": 10, "regularization": 0.01, "alpha": 1.0}
SPARK = SparkSection(
    master="local[2]",
    conf={"spark.sql.shuffle.partitions": 2, "spark.ui.enabled": False, "spark.driver.memory": "4g"},
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--interactions", type=int, default=INTERACTIONS)
    args = parser.parse_args(argv)
    print(environment_header("Spark local[2] ALS vs implicit ALS", command="python -m benchmarks.spark"))
    train, test = split(interactions(args.interactions))
    from conveyor.spark import start_session

    start = time.perf_counter()
    session = start_session(SPARK)
    started = time.perf_counter() - start
    rows = []
    for name, model in (
        ("implicit ALS (this process)", ImplicitRecommender(params=PARAMS)),
        ("Spark MLlib ALS (local[2])", SparkALSRecommender(params=PARAMS, spark=SPARK)),
    ):
        start = time.perf_counter()
        model.fit(train)
        seconds = time.perf_counter() - start
        rows.append((name, seconds, score(model, test).metrics["precision_at_10"]))
    session.stop()
    print(
        f"\n### {train.height:,} training interactions, {PARAMS['factors']} factors, "
        f"{PARAMS['iterations']} iterations (Spark session start: {started:.1f} s, not in the fit)\n"
    )
    print("| engine | fit (s) | × implicit | precision@10 |")
    print("|---|---:|---:|---:|")
    for name, seconds, precision in rows:
        print(f"| {name} | {seconds:.1f} | {seconds / rows[0][1]:.1f} | {precision:.3f} |")
    print()
    print(load_line("after"))


if __name__ == "__main__":
    main()
