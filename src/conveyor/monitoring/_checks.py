"""The checks of a monitor run, each a verdict with its evidence.

Verdicts: ``pass``, ``fail``, or ``insufficient_data`` when fewer than
``monitoring.min_requests`` requests (or rows) back the measurement — too few
to say either way, so neither a pass nor a failure (``skipped`` when the
check cannot run at all, e.g. no reference profile yet).

- **errors**: share of server errors (HTTP 5xx, model errors included: a
  model that raises is answered 500 ``model_error``; client errors are the
  caller's) against ``monitoring.slo.error_rate``, overall and per version;
  the model errors' own share is named in the summary;
- **input warnings**: share of answered ``/predict`` requests whose features
  were flagged (unseen category, out of range) — reported, not judged;
- **latency**: p50/p95/p99 of successful requests; p99 against
  ``monitoring.slo.p99_latency_ms``, per version;
- **input drift** / **prediction drift**: the drift engine of ``conveyor
  drift`` (:func:`conveyor.data.detect_drift`) on the live window;
- **online metric**: click-through rate (recommender: clicked answers /
  answers served — the same proportion the A/B test decides on) or
  accuracy (classifier, once labels arrive) per model version, against the
  version's baseline (its first measured window);
  a drop of more than ``monitoring.retrain.metric_drop_pct`` % fails.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from conveyor.config import DriftSection, SLOSection
from conveyor.requestlog import MODEL_ERROR

if TYPE_CHECKING:
    from conveyor.data import DriftReport, ReferenceProfile

CheckStatus = Literal["pass", "fail", "insufficient_data", "skipped"]
SERVER_ERROR = 500
CLIENT_ERROR = 400

PERCENTILES = (50, 95, 99)


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict, a one-line summary and the numbers behind it."""

    name: str
    status: CheckStatus
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


# -- traffic -------------------------------------------------------------------------
def traffic_table(predictions: pl.DataFrame, feedback: pl.DataFrame) -> pl.DataFrame:
    """Per (model_version, variant): requests, errors, latency percentiles, clicks, ctr."""
    ok = pl.col("status") < CLIENT_ERROR
    lat = pl.col("latency_ms").filter(ok)
    grouped = (
        predictions.group_by("model_version", "variant")
        .agg(
            pl.len().alias("requests"),
            (pl.col("status") >= SERVER_ERROR).sum().alias("server_errors"),
            (pl.col("outcome") == MODEL_ERROR).sum().alias("model_errors"),
            ((pl.col("status") >= CLIENT_ERROR) & (pl.col("status") < SERVER_ERROR))
            .sum()
            .alias("client_errors"),
            *[lat.quantile(p / 100, "linear").alias(f"p{p}_ms") for p in PERCENTILES],
            (ok & (pl.col("endpoint") == "/recommend")).sum().alias("served"),
        )
        .with_columns((pl.col("server_errors") / pl.col("requests")).alias("error_rate"))
    )
    # clicked answers, as the A/B test counts them: a request with three clicks is one
    # clicked answer (click-through rate stays a proportion); clicks known only by user count once each
    clicks = (
        feedback.filter(pl.col("event") == "click")
        .group_by("model_version", "variant")
        .agg(
            (pl.col("request_id").drop_nulls().n_unique() + pl.col("request_id").is_null().sum()).alias(
                "clicks"
            )
        )
    )
    table = grouped.join(clicks, on=["model_version", "variant"], how="left", nulls_equal=True)
    table = table.with_columns(pl.col("clicks").fill_null(0)).with_columns(
        pl.when(pl.col("served") > 0)
        .then(pl.min_horizontal(pl.col("clicks"), pl.col("served")) / pl.col("served"))
        .otherwise(None)
        .alias("ctr")
    )
    return table.sort("requests", descending=True)


def _versions(table: pl.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (_r(v) if isinstance(v, float) else v) for k, v in row.items()}
        for row in table.filter(pl.col("model_version").is_not_null()).iter_rows(named=True)
    ]


def error_check(
    predictions: pl.DataFrame, table: pl.DataFrame, slo: SLOSection, min_requests: int
) -> CheckResult:
    n = predictions.height
    errors = int((predictions["status"] >= SERVER_ERROR).sum()) if n else 0
    model_errors = int((predictions["outcome"] == MODEL_ERROR).sum()) if n else 0
    rate = errors / n if n else None
    details: dict[str, Any] = {
        "requests": n,
        "server_errors": errors,
        "model_errors": model_errors,
        "error_rate": _r(rate),
        "model_error_rate": _r(model_errors / n if n else None),
        "slo": slo.error_rate,
    }
    if n < min_requests:
        return CheckResult("errors", "insufficient_data", f"{n} requests (< {min_requests})", details)
    breaches = [
        v
        for v in _versions(table)
        if v["requests"] >= min_requests and (v["error_rate"] or 0) > slo.error_rate
    ]
    details["breaching_versions"] = [v["model_version"] for v in breaches]
    failed = (rate or 0.0) > slo.error_rate or bool(breaches)
    summary = f"server error rate {100 * (rate or 0):.2f} % (SLO {100 * slo.error_rate:.2f} %)"
    if model_errors:
        summary += f", model errors {100 * model_errors / n:.2f} % ({model_errors} of {n})"
    return CheckResult("errors", "fail" if failed else "pass", summary, details)


def input_warning_check(predictions: pl.DataFrame, min_requests: int) -> CheckResult:
    """The share of answered ``/predict`` requests whose features were flagged by the server.

    Reported, not judged (``pass`` whatever the share): a new category or an unusual
    value is a fact about the traffic; whether it matters is the input-drift check's call.
    """
    answered = predictions.filter((pl.col("endpoint") == "/predict") & (pl.col("status") < CLIENT_ERROR))
    n = answered.height
    flagged = answered.filter(pl.col("warnings").is_not_null() & ~pl.col("warnings").is_in(["null", "[]"]))
    kinds: dict[str, int] = {}
    features: dict[str, int] = {}
    if flagged.height:
        dtype = pl.List(pl.Struct({"feature": pl.String, "kind": pl.String}))
        items = flagged.select(pl.col("warnings").str.json_decode(dtype).alias("w")).explode("w").unnest("w")
        kinds = {str(k): int(c) for k, c in items.group_by("kind").len().iter_rows()}
        features = {str(f): int(c) for f, c in items.group_by("feature").len().sort("feature").iter_rows()}
    share = flagged.height / n if n else None
    details: dict[str, Any] = {
        "requests": n,
        "flagged_requests": flagged.height,
        "share": _r(share),
        "by_kind": dict(sorted(kinds.items())),
        "by_feature": features,
    }
    if n < min_requests:
        return CheckResult(
            "input_warnings", "insufficient_data", f"{n} answered requests (< {min_requests})", details
        )
    by_kind = ", ".join(f"{k} {c}" for k, c in sorted(kinds.items()))
    summary = f"{100 * (share or 0):.2f} % of answered requests flagged ({flagged.height} of {n})"
    return CheckResult("input_warnings", "pass", summary + (f": {by_kind}" if by_kind else ""), details)


def latency_check(
    predictions: pl.DataFrame, table: pl.DataFrame, slo: SLOSection, min_requests: int
) -> CheckResult:
    ok = predictions.filter(pl.col("status") < CLIENT_ERROR)["latency_ms"]
    details: dict[str, Any] = {"requests": ok.len(), "slo_p99_ms": slo.p99_latency_ms}
    if ok.len() < min_requests:
        return CheckResult(
            "latency", "insufficient_data", f"{ok.len()} successful requests (< {min_requests})", details
        )
    for p in PERCENTILES:
        details[f"p{p}_ms"] = _r(ok.quantile(p / 100, "linear"), 3)
    versions = [v for v in _versions(table) if v["requests"] >= min_requests]
    breaches = [v["model_version"] for v in versions if (v["p99_ms"] or 0) > slo.p99_latency_ms]
    details["breaching_versions"] = breaches
    failed = (details["p99_ms"] or 0) > slo.p99_latency_ms or bool(breaches)
    summary = f"p99 {details['p99_ms']:.1f} ms (SLO {slo.p99_latency_ms:g} ms)"
    return CheckResult("latency", "fail" if failed else "pass", summary, details)


# -- drift -------------------------------------------------------------------------
def drift_check(
    name: str,
    profile: ReferenceProfile | None,
    current: pl.DataFrame,
    settings: DriftSection,
    min_rows: int,
    *,
    missing_reason: str = "no reference profile",
) -> tuple[CheckResult, DriftReport | None]:
    """The drift engine on ``current`` against ``profile``, restricted to their shared columns."""
    from conveyor.data import detect_drift

    if profile is None:
        return CheckResult(name, "skipped", missing_reason), None
    wanted = settings.columns if settings.columns is not None else list(profile.columns)
    columns = [
        c for c in wanted if c in current.columns and c in profile.columns and c not in settings.ignore
    ]
    details: dict[str, Any] = {"rows": current.height, "columns": columns}
    if not columns:
        return CheckResult(name, "skipped", "no column in common with the reference", details), None
    if current.height < min_rows:
        return CheckResult(name, "insufficient_data", f"{current.height} rows (< {min_rows})", details), None
    report = detect_drift(profile, current.select(columns), settings.model_copy(update={"columns": columns}))
    drifted = report.drifted_columns
    details.update(report.to_dict())
    details["drifted_columns"] = drifted
    if report.dataset_drift:
        summary = f"drift in {', '.join(drifted)} ({100 * report.drift_share:.0f} % of columns)"
        return CheckResult(name, "fail", summary, details), report
    summary = f"{len(drifted)} of {len(report.columns)} columns drifted" + (
        f" ({', '.join(drifted)})" if drifted else ""
    )
    return CheckResult(name, "pass", summary, details), report


# -- online metric -----------------------------------------------------------------
def accuracy_table(predictions: pl.DataFrame, feedback: pl.DataFrame) -> pl.DataFrame:
    """Per version: labelled predictions and accuracy (labels: feedback ``event == "label"``)."""
    labels = feedback.filter((pl.col("event") == "label") & pl.col("request_id").is_not_null()).select(
        "request_id", pl.col("item_id").alias("label")
    )
    if labels.height == 0:
        return pl.DataFrame(
            schema={
                "model_version": pl.String,
                "variant": pl.String,
                "labelled": pl.UInt32,
                "accuracy": pl.Float64,
            }
        )
    answered = predictions.filter(pl.col("endpoint") == "/predict").join(labels, on="request_id", how="inner")
    decoded = answered.with_columns(
        pl.col("output")
        .str.json_decode(pl.Struct({"predictions": pl.List(pl.String)}))
        .struct.field("predictions")
        .list.first()
        .alias("predicted")
    )
    return decoded.group_by("model_version", "variant").agg(
        pl.len().alias("labelled"), (pl.col("predicted") == pl.col("label")).mean().alias("accuracy")
    )


def online_metric_check(
    metric: str,
    rows: list[dict[str, Any]],
    baselines: dict[str, float],
    drop_pct: float | None,
    min_requests: int,
) -> CheckResult:
    """``rows``: per version {model_version, variant, n, value}; fails on a drop beyond ``drop_pct``."""
    measured = [r for r in rows if r["n"] >= min_requests and r["value"] is not None]
    details: dict[str, Any] = {"metric": metric, "versions": rows, "drop_threshold_pct": drop_pct}
    if not measured:
        return CheckResult(
            "online_metric",
            "insufficient_data",
            f"no version with {min_requests} {metric} observations",
            details,
        )
    drops = []
    for r in measured:
        base = baselines.get(str(r["model_version"]))
        r["baseline"] = base
        r["drop_pct"] = _r(100 * (base - r["value"]) / base, 2) if base else None
        drops.append(r)
    worst = max(drops, key=lambda r: r["drop_pct"] if r["drop_pct"] is not None else float("-inf"))
    details["worst"] = worst
    failed = drop_pct is not None and worst["drop_pct"] is not None and worst["drop_pct"] > drop_pct
    main = measured[0]
    summary = f"{metric} {main['value']:.4f} (version {main['model_version']}, {main['variant']})"
    if worst["drop_pct"] is not None:
        summary += f"; largest drop {worst['drop_pct']:.1f} % vs baseline"
    return CheckResult("online_metric", "fail" if failed else "pass", summary, details)
