"""Request logs for tests, written in the documented Parquet format (docs/serving.md)."""

from __future__ import annotations

PREDICTION_COLUMNS = {
    "ts": None,
    "request_id": "str",
    "env": "str",
    "model_version": "str",
    "variant": "str",
    "endpoint": "str",
    "user_id": "str",
    "features": "str",
    "output": "str",
    "latency_ms": "f64",
    "status": "i32",
}


def write_request_log(folder, predictions=None, feedback=None, *, part: int = 0) -> None:
    """Write polars frames as predictions-*/feedback-*.parquet files with the documented types."""
    import polars as pl

    folder.mkdir(parents=True, exist_ok=True)
    ts = pl.col("ts").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if predictions is not None:
        frame = predictions.with_columns(
            ts,
            pl.col("latency_ms").cast(pl.Float64),
            pl.col("status").cast(pl.Int32),
            *[
                pl.col(c).cast(pl.String)
                for c in ("request_id", "env", "model_version", "variant", "user_id")
            ],
        ).select(list(PREDICTION_COLUMNS))
        frame.write_parquet(folder / f"predictions-20260101T000000Z-{part:06d}.parquet")
    if feedback is not None:
        cols = ["ts", "request_id", "user_id", "item_id", "event", "model_version", "variant"]
        frame = feedback.with_columns(ts, *[pl.col(c).cast(pl.String) for c in cols[1:]]).select(cols)
        frame.write_parquet(folder / f"feedback-20260101T000000Z-{part:06d}.parquet")
