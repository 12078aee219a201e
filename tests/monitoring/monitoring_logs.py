"""Request logs for tests, in the format :mod:`conveyor.requestlog` owns (docs/serving.md).

Columns and types come from the owner's schemas; the parts are written without the columns a
later Conveyor added (``outcome``, ``warnings``), as an older server wrote them — the reader
must fill those in.
"""

from __future__ import annotations

from conveyor.requestlog import FEEDBACK, FEEDBACK_SCHEMA, PREDICTION_SCHEMA, PREDICTIONS

ADDED_LATER = ("outcome", "warnings")  # prediction columns an older server's parts do not have


def write_request_log(folder, predictions=None, feedback=None, *, part: int = 0) -> None:
    """Write polars frames as predictions-*/feedback-*.parquet parts with the owner's column types."""
    import polars as pl

    folder.mkdir(parents=True, exist_ok=True)
    ts = pl.col("ts").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    for kind, frame, schema in (
        (PREDICTIONS, predictions, PREDICTION_SCHEMA),
        (FEEDBACK, feedback, FEEDBACK_SCHEMA),
    ):
        if frame is None:
            continue
        columns = [c for c in schema if c not in ADDED_LATER]
        typed = frame.with_columns(ts, *[pl.col(c).cast(schema[c]) for c in columns if c != "ts"])
        typed.select(columns).write_parquet(folder / f"{kind}-20260101T000000Z-{part:06d}.parquet")
