"""What the versions did: canary samples and A/B arms from an environment's request log.

The server appends every answer and feedback event to Parquet files
(docs/serving.md, "Request log"); this module turns a window of them into the
inputs of the canary analysis and the A/B test.

An *error* is an answer whose logged ``outcome`` is not ``ok``: a model
error (the model raised: 500 ``model_error``), another server error, or a
client error. Routing is sticky by a salted hash of the user id, independent
of what a user asks, so both arms see the same mix of requests and users,
client errors hit them alike and only a difference counts — a candidate whose
model fails where the stable one answers shows up as a higher error rate.
Both analyses count users: a canary arm keeps each user's requests, errors
and median latency, an A/B arm each user's answers and clicked answers (a
request without a user id is its own unit). The log is read through
:mod:`conveyor.requestlog`, which owns its format. A *click* is a ``click``
feedback event attributed to the version; the click-through rate is clicked
answers over ``/recommend`` answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from conveyor.deploy._abtest import Arm
from conveyor.deploy._canary import ArmSample, UserCounts
from conveyor.project import Project
from conveyor.requestlog import OK, read_request_logs, request_log_locations


def _read(project: Project, env: str, since: datetime | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    predictions, feedback = read_request_logs(request_log_locations(project, env), since)
    return predictions, feedback


def _unit() -> pl.Expr:
    """The analysis unit of a logged row: its user, or the request itself when it has no user id."""
    return pl.coalesce(
        pl.lit("u:") + pl.col("user_id"),
        pl.lit("r:") + pl.col("request_id"),
        pl.lit("row:") + pl.int_range(pl.len()).cast(pl.String),
    )


def served_versions(project: Project, env: str, since: datetime) -> dict[str, int]:
    """How many logged requests each version answered in ``env`` since ``since``, most first."""
    predictions, _ = _read(project, env, since)
    counts = (
        predictions.drop_nulls("model_version").group_by("model_version").len().sort("len", descending=True)
    )
    return dict(
        zip(counts.get_column("model_version").to_list(), counts.get_column("len").to_list(), strict=True)
    )


def _per_user_requests(rows: pl.DataFrame) -> pl.DataFrame:
    """Per unit: requests, errors (outcome not ``ok``) and the median latency of its ``ok`` answers."""
    ok = (pl.col("outcome") == OK).fill_null(False)
    return (
        rows.select(_unit().alias("unit"), ok.alias("ok"), pl.col("latency_ms"))
        .group_by("unit")
        .agg(
            pl.len().alias("requests"),
            (pl.len() - pl.col("ok").sum()).alias("errors"),
            pl.col("latency_ms").filter(pl.col("ok")).median().alias("latency"),
        )
    )


def canary_samples(
    project: Project, env: str, since: datetime, stable: str, candidate: str
) -> tuple[ArmSample, ArmSample]:
    """The stable and candidate samples of the window starting at ``since``, per user."""
    predictions, feedback = _read(project, env, since)
    impressions = predictions.filter((pl.col("endpoint") == "/recommend") & (pl.col("status") == 200))
    samples = []
    for version in (stable, candidate):
        rows = predictions.filter(pl.col("model_version") == version)
        per_unit = _per_user_requests(rows)
        shown, clicked = _per_user(impressions, feedback, version)
        counts = UserCounts.of(
            per_unit.get_column("requests").to_numpy(),
            per_unit.get_column("errors").to_numpy(),
            per_unit.get_column("latency").drop_nulls().to_numpy(),
            shown,
            clicked,
        )
        ok = rows.filter((pl.col("outcome") == OK).fill_null(False))
        samples.append(ArmSample.from_users(version, counts, ok.get_column("latency_ms").to_list()))
    return samples[0], samples[1]


def _per_user(impressions: pl.DataFrame, feedback: pl.DataFrame, version: str | None) -> tuple[Any, Any]:
    """Per-user answers and clicked answers (of ``version``, or of all versions).

    The unit is the user (a request without a user id is its own unit). A
    click with a request id marks that answer as clicked; a click without one
    counts for its user. A user's clicked answers never exceed their answers.
    """
    shown = impressions if version is None else impressions.filter(pl.col("model_version") == version)
    clicks = feedback.filter(pl.col("event") == "click")
    if version is not None:
        clicks = clicks.filter(pl.col("model_version") == version)
    clicked_ids = clicks.get_column("request_id").drop_nulls().unique()
    per_user = (
        shown.select(
            _unit().alias("unit"), pl.col("request_id").is_in(clicked_ids.implode()).alias("clicked")
        )
        .group_by("unit")
        .agg(pl.len().alias("n"), pl.col("clicked").sum().alias("c"))
    )
    by_user_only = (
        clicks.filter(pl.col("request_id").is_null() & pl.col("user_id").is_not_null())
        .group_by((pl.lit("u:") + pl.col("user_id")).alias("unit"))
        .agg(pl.len().alias("extra"))
    )
    per_user = per_user.join(by_user_only, on="unit", how="left").with_columns(
        pl.min_horizontal(pl.col("n"), pl.col("c") + pl.col("extra").fill_null(0)).alias("c")
    )
    return per_user.get_column("n").to_numpy(), per_user.get_column("c").to_numpy()


def ab_arms(project: Project, env: str, since: datetime, control: str, variant: str) -> tuple[Arm, Arm]:
    """Each arm's users with their answers and clicked answers since the experiment started."""
    predictions, feedback = _read(project, env, since)
    impressions = predictions.filter((pl.col("endpoint") == "/recommend") & (pl.col("status") == 200))
    control_arm = Arm.from_users("control", *_per_user(impressions, feedback, control))
    variant_arm = Arm.from_users("variant", *_per_user(impressions, feedback, variant))
    return control_arm, variant_arm


def baseline_users(project: Project, env: str, since: datetime) -> Arm:
    """All of ``env``'s recent ``/recommend`` traffic, per user: the sample-size plan's baseline."""
    predictions, feedback = _read(project, env, since)
    impressions = predictions.filter((pl.col("endpoint") == "/recommend") & (pl.col("status") == 200))
    return Arm.from_users("baseline", *_per_user(impressions, feedback, None))
