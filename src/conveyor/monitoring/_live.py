"""The live window a monitor run looks at: the request log between two instants.

The serving request log (Parquet files in the format of ``docs/serving.md``)
is scanned lazily for the rows of the window ``(since, until]`` — left-open,
so that consecutive runs whose windows touch never count a request twice — and turns the JSON columns into the
tables the checks need:

- recommender: the interactions (feedback events, with each item's category
  and price from the training data) and the recommended items;
- classifier: the input rows and the predicted labels and probabilities.

Distribution checks run on a uniform, seeded sample of at most
``MAX_DRIFT_REQUESTS`` requests: at 200,000 rows the sampling error of a
distance is far below the 0.1 threshold, and decoding the JSON of a million
requests would cost more than the whole rest of the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from conveyor.errors import InputError
from conveyor.project import Project
from conveyor.requestlog import request_log_location

MAX_DRIFT_REQUESTS = 200_000
MAX_RECOMMENDATIONS = 50_000  # requests; each holds k items (500,000 items at k = 10)
SAMPLE_SEED = 20_240_601
UNKNOWN_ITEM = "(unknown item)"
RECOMMEND = "/recommend"
PREDICT = "/predict"


@dataclass(frozen=True)
class LiveWindow:
    """Rows of the request log inside ``(since, until]``."""

    since: datetime | None
    until: datetime
    predictions: pl.DataFrame
    feedback: pl.DataFrame


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_PREDICTION_COLUMNS = ("ts", "model_version", "variant", "endpoint", "request_id", "features", "output",
                       "latency_ms", "status", "outcome", "warnings")  # fmt: skip
_FEEDBACK_COLUMNS = ("ts", "request_id", "item_id", "event", "model_version", "variant")


def load_window(project: Project, env: str, since: datetime | None, until: datetime) -> LiveWindow:
    """The request log of ``env`` in ``(since, until]`` (the format of docs/serving.md)."""
    # conveyor.requestlog owns the format; its reader pushes the window and the
    # columns down into the Parquet scan (imported here: polars only, no web framework)
    from conveyor.requestlog import FEEDBACK, PREDICTIONS, scan_request_log

    directory = request_log_location(project, env)
    since = _utc(since) if since is not None else None
    until = _utc(until)
    return LiveWindow(
        since,
        until,
        scan_request_log(directory, PREDICTIONS, _PREDICTION_COLUMNS, since=since, until=until),
        scan_request_log(directory, FEEDBACK, _FEEDBACK_COLUMNS, since=since, until=until),
    )


def sample(frame: pl.DataFrame, limit: int = MAX_DRIFT_REQUESTS) -> pl.DataFrame:
    """At most ``limit`` rows, drawn uniformly with a fixed seed (all rows when fewer)."""
    if frame.height <= limit:
        return frame
    return frame.sample(n=limit, seed=SAMPLE_SEED)


# -- recommender -------------------------------------------------------------------
def item_catalogue(project: Project) -> pl.DataFrame | None:
    """item_id (string) → category, price, from the training data (None when unreadable)."""
    from conveyor.data import read_table

    cols = project.settings.data.columns
    wanted = [cols.item, "category", "price"]
    try:
        data = read_table(project.data_source)
    except InputError:
        return None
    present = [c for c in wanted if c in data.columns]
    if cols.item not in present or len(present) == 1:
        return None
    return (
        data.select(present)
        .drop_nulls(cols.item)
        .unique(subset=cols.item, keep="last")
        .with_columns(pl.col(cols.item).cast(pl.String).alias("item_id"))
        .select(["item_id", *[c for c in present if c != cols.item]])
    )


def interactions(feedback: pl.DataFrame, catalogue: pl.DataFrame | None) -> pl.DataFrame:
    """The category and price of the items users interacted with (unknown items named).

    Only item attributes are compared with the training data: the events
    themselves differ by design (the shop logs views, the server logs clicks
    on recommendations), and ids are not distributions.
    """
    if catalogue is None:
        return pl.DataFrame()
    # Clicks land on items the model chose, so their mix follows the model, not the
    # shoppers (prediction drift covers that); the shop's own events (add-to-cart,
    # purchase) are the live counterpart of the training interactions. Clicks are
    # used only when the shop forwards nothing else.
    organic = feedback.filter(pl.col("event") != "click")
    if organic.height:
        feedback = organic
    joined = feedback.select("item_id").join(catalogue, on="item_id", how="left").drop("item_id")
    if "category" in joined.columns:
        joined = joined.with_columns(pl.col("category").cast(pl.String).fill_null(UNKNOWN_ITEM))
    return joined


def recommendations(predictions: pl.DataFrame, catalogue: pl.DataFrame | None) -> pl.DataFrame:
    """One row per recommended item: recommended_category, fallback (sampled requests)."""
    served = sample(
        predictions.filter((pl.col("endpoint") == RECOMMEND) & (pl.col("status") < 400)), MAX_RECOMMENDATIONS
    )
    dtype = pl.Struct({"items": pl.List(pl.String), "fallback": pl.Boolean})
    decoded = served.select(pl.col("output").str.json_decode(dtype).alias("o")).unnest("o")
    items = decoded.explode("items").rename({"items": "item_id"}).drop_nulls("item_id")
    items = items.with_columns(pl.col("fallback").cast(pl.String))
    if catalogue is not None and "category" in catalogue.columns:
        items = items.join(catalogue.select("item_id", "category"), on="item_id", how="left").with_columns(
            pl.col("category").fill_null(UNKNOWN_ITEM)
        )
        items = items.rename({"category": "recommended_category"})
    return items.drop("item_id")


# -- classifier --------------------------------------------------------------------
def input_rows(predictions: pl.DataFrame) -> pl.DataFrame:
    """The input rows of sampled ``/predict`` requests, one column per feature."""
    served = sample(predictions.filter(pl.col("endpoint") == PREDICT))
    if served.height == 0:
        return pl.DataFrame()
    rows = served["features"].str.json_decode(infer_schema_length=1000).alias("r").to_frame()
    if not isinstance(rows.schema["r"], pl.List):
        return pl.DataFrame()
    return rows.explode("r").drop_nulls("r").unnest("r")


def predicted(predictions: pl.DataFrame) -> pl.DataFrame:
    """prediction and probability (of the predicted class) of sampled ``/predict`` answers."""
    served = sample(predictions.filter((pl.col("endpoint") == PREDICT) & (pl.col("status") < 400)))
    if served.height == 0:
        return pl.DataFrame({"prediction": [], "probability": []})
    out = served["output"].str.json_decode(infer_schema_length=1000).alias("o").to_frame().unnest("o")
    if "predictions" not in out.columns:
        return pl.DataFrame({"prediction": [], "probability": []})
    cols = [pl.col("predictions").alias("prediction")]
    if "probabilities" in out.columns:
        cols.append(pl.col("probabilities").alias("probability"))
    exploded = out.select(cols).explode(["prediction", *(["probability"] if len(cols) > 1 else [])])
    if "probability" in exploded.columns:
        exploded = exploded.with_columns(pl.col("probability").list.max())
    return exploded.with_columns(pl.col("prediction").cast(pl.String))
