"""What the versions did: canary samples and A/B arms from an environment's request log.

The server appends every answer and feedback event to Parquet files
(docs/serving.md, "Request log"); this module turns a window of them into the
inputs of the canary analysis and the A/B test.

An *error* is an answer with status ≥ 400. Under weighted routing both arms
see the same mix of requests, so client errors hit them alike and only a
difference counts — a candidate that rejects inputs the stable version
accepts (422 "model rejected the input") shows up as a higher error rate.
A *click* is a ``click`` feedback event attributed to the version; the
click-through rate is clicked impressions over ``/recommend`` answers.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from conveyor.deploy._abtest import Arm
from conveyor.deploy._canary import ArmSample
from conveyor.project import Project
from conveyor.requestlog import read_request_log, request_log_dir


def _read(project: Project, env: str, since: datetime | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    predictions, feedback = read_request_log(request_log_dir(project, env), since)
    return predictions, feedback


def _clicks(feedback: pl.DataFrame, impressions: pl.DataFrame, version: str) -> int:
    clicks = feedback.filter((pl.col("event") == "click") & (pl.col("model_version") == version))
    answered = set(impressions.filter(pl.col("model_version") == version).get_column("request_id").to_list())
    by_request = {r for r in clicks.get_column("request_id").to_list() if r is not None and r in answered}
    by_user_only = clicks.filter(pl.col("request_id").is_null()).height
    return len(by_request) + by_user_only


def canary_samples(
    project: Project, env: str, since: datetime, stable: str, candidate: str
) -> tuple[ArmSample, ArmSample]:
    """The stable and candidate samples of the window starting at ``since``."""
    predictions, feedback = _read(project, env, since)
    impressions = predictions.filter((pl.col("endpoint") == "/recommend") & (pl.col("status") == 200))
    samples = []
    for version in (stable, candidate):
        rows = predictions.filter(pl.col("model_version") == version)
        ok = rows.filter(pl.col("status") < 400)
        shown = impressions.filter(pl.col("model_version") == version).height
        samples.append(
            ArmSample(
                version=version,
                requests=rows.height,
                errors=rows.height - ok.height,
                latencies_ms=ok.get_column("latency_ms").to_list(),
                impressions=shown,
                clicks=min(shown, _clicks(feedback, impressions, version)),
            )
        )
    return samples[0], samples[1]


def ab_arms(project: Project, env: str, since: datetime, control: str, variant: str) -> tuple[Arm, Arm]:
    """Users, impressions and clicked impressions of each arm since the experiment started."""
    predictions, feedback = _read(project, env, since)
    impressions = predictions.filter((pl.col("endpoint") == "/recommend") & (pl.col("status") == 200))
    arms = []
    for name, version in (("control", control), ("variant", variant)):
        shown = impressions.filter(pl.col("model_version") == version)
        users = shown.get_column("user_id").drop_nulls().n_unique()
        arms.append(
            Arm(name, users, shown.height, min(shown.height, _clicks(feedback, impressions, version)))
        )
    return arms[0], arms[1]


def baseline_ctr(project: Project, env: str, since: datetime) -> tuple[float | None, int]:
    """The click-through rate of all of ``env``'s recent traffic, and its impressions."""
    predictions, feedback = _read(project, env, since)
    impressions = predictions.filter((pl.col("endpoint") == "/recommend") & (pl.col("status") == 200))
    if impressions.height == 0:
        return None, 0
    answered = set(impressions.get_column("request_id").to_list())
    clicked = feedback.filter((pl.col("event") == "click") & pl.col("request_id").is_in(list(answered)))
    return clicked.get_column("request_id").n_unique() / impressions.height, impressions.height
