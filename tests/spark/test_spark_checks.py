"""validate --spark and drift --spark: Spark's verdicts equal the streaming engine's and the exact ones.

One known-answer dataset, three Parquet files under a hive-style folder: the current side of a
reference with ``price`` shifted by 0.5 σ (the one drifted numeric column), ``event`` tilted
towards ``buy`` (the drifted categorical one), and planted schema violations — 7 quantities
above the maximum, 12 events outside the allowed categories, 5 null users, 3 order ids used
twice, 4 codes that are not numbers, a stale timestamp. Spark (one aggregation job, KLL sketches
read by `datasketches`), Polars streaming and Polars in memory (exact) must give the same failed
rules with the same row counts and the same drifted columns; the drift statistics of the two
sketch engines agree within the sketches' stated rank error.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from spark_support import SPARK_TESTS

from conveyor.config import DriftSection
from conveyor.data import (
    Schema,
    detect_drift,
    read_spark_source,
    reference_profile,
    scan_dataset,
    spark_drift,
    spark_validate,
    stream_drift,
    stream_profile,
    validate_table,
)
from conveyor.errors import InputError

pytestmark = SPARK_TESTS

ROWS = 12_000
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
SCHEMA = {
    "columns": {
        "order_id": {"type": "integer", "nullable": False, "unique": True},
        "user": {"type": "string", "nullable": False},
        "price": {"type": "float", "min": 0.0},
        "score": {"type": "float", "min": -6, "max": 6},
        "quantity": {"type": "integer", "min": 1, "max": 5},
        "event": {"type": "string", "categories": ["view", "cart", "buy"]},
        "code": {"type": "integer"},
        "at": {"type": "datetime"},
    },
    "key": ["order_id"],
    "freshness": {"column": "at", "max_age_hours": 24},
}
EXPECTED_FAILURES = [  # (rule, column, rows): type failures first, then the rules in the schema's order
    ("type", "code", 4),
    ("unique", "order_id", 6),
    ("not_null", "user", 5),
    ("max", "quantity", 7),
    ("categories", "event", 12),
    ("duplicate_key", "order_id", 6),
    ("freshness", "at", ROWS),
]


def _table(n: int, seed: int, *, current: bool) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    shares = [0.5, 0.3, 0.2] if current else [0.7, 0.2, 0.1]
    frame = pl.DataFrame(
        {
            "order_id": np.arange(n) + (0 if not current else 10 * n),
            "user": rng.choice(["ann", "bob", "cy", "dee"], n).astype(object),
            "price": rng.exponential(20.0, n) + (10.0 if current else 0.0),  # σ 20: a 0.5 σ shift
            "score": rng.normal(0.0, 1.0, n),
            "quantity": rng.integers(1, 6, n),
            "event": rng.choice(["view", "cart", "buy"], n, p=shares).astype(object),
            "code": rng.integers(100, 200, n).astype(str),
            "at": [datetime(2026, 11, 1) + timedelta(minutes=int(m)) for m in rng.integers(0, 20_000, n)],
        }
    )
    if not current:
        return frame
    row = pl.int_range(pl.len())
    return frame.with_columns(
        pl.when(row < 5).then(None).otherwise(pl.col("user")).alias("user"),
        pl.when(row.is_between(10, 16)).then(99).otherwise(pl.col("quantity")).alias("quantity"),
        pl.when(row.is_between(20, 31)).then(pl.lit("refund")).otherwise(pl.col("event")).alias("event"),
        pl.when(row.is_between(40, 42))
        .then(row - 40 + 10 * n)
        .otherwise(pl.col("order_id"))
        .alias("order_id"),
        pl.when(row.is_between(50, 53)).then(pl.lit("n/a")).otherwise(pl.col("code")).alias("code"),
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(reference.parquet, a folder of three current parts under day=2026-11-29/)."""
    root = tmp_path_factory.mktemp("spark-checks")
    _table(ROWS, 1, current=False).write_parquet(root / "reference.parquet")
    current = _table(ROWS, 2, current=True)
    (root / "current" / "day=2026-11-29").mkdir(parents=True)
    for i, part in enumerate(current.iter_slices(ROWS // 3)):
        part.write_parquet(root / "current" / "day=2026-11-29" / f"part-{i}.parquet")
    return root / "reference.parquet", root / "current"


def _verdicts(report: object) -> list[tuple[str, str | None, int]]:
    return [(f.rule, f.column, f.n_rows) for f in report.failures]  # type: ignore[attr-defined]


def test_spark_validation_equals_the_streamed_and_exact_ones(spark, dataset: tuple[Path, Path]) -> None:
    _, current = dataset
    schema = Schema.model_validate(SCHEMA)
    on_spark = spark_validate(read_spark_source(spark, [str(current)]), schema, now=NOW)
    streamed = validate_table(scan_dataset(current), schema, now=NOW)
    exact = validate_table(pl.read_parquet(current / "day=2026-11-29"), schema, now=NOW)
    assert _verdicts(exact) == EXPECTED_FAILURES
    assert _verdicts(on_spark) == _verdicts(streamed) == _verdicts(exact)
    assert [f.message for f in on_spark.failures] == [f.message for f in exact.failures]
    assert on_spark.rules_checked == exact.rules_checked
    assert on_spark.n_rows == exact.n_rows == ROWS
    examples = {f.rule: f.examples for f in on_spark.failures}
    assert examples["max"] == [99]
    assert examples["categories"] == ["refund"]
    assert sorted(examples["type"]) == ["n/a"]
    assert sorted(examples["unique"]) == [10 * ROWS, 10 * ROWS + 1, 10 * ROWS + 2]
    assert examples["not_null"] == []  # no row numbers in a distributed table


def test_spark_drift_equals_the_streamed_and_exact_ones(spark, dataset: tuple[Path, Path]) -> None:
    reference, current = dataset
    settings = DriftSection(columns=["price", "score", "quantity", "event"])
    profile = stream_profile(scan_dataset(reference))
    on_spark = spark_drift(profile, read_spark_source(spark, [f"{current}/*/*.parquet"]), settings)
    streamed = stream_drift(profile, scan_dataset(current), settings)
    exact = detect_drift(
        reference_profile(pl.read_parquet(reference), source="ref"),
        pl.read_parquet(current / "day=2026-11-29"),
        settings,
    )
    assert exact.drifted_columns == ["price", "event"]
    assert on_spark.drifted_columns == streamed.drifted_columns == exact.drifted_columns
    assert on_spark.mode == streamed.mode == "sketch"
    for name, col in on_spark.columns.items():
        assert col.statistic == pytest.approx(streamed.columns[name].statistic, abs=0.01), name
        assert col.statistic == pytest.approx(exact.columns[name].statistic, abs=0.01), name
        assert col.current_rows == exact.columns[name].current_rows, name
    assert on_spark.columns["event"].chi2 == pytest.approx(exact.columns["event"].chi2, rel=1e-9)


def test_cli_validate_and_drift_on_spark(spark, cli, dataset: tuple[Path, Path], tmp_path: Path) -> None:
    reference, current = dataset
    schema = tmp_path / "schema.yaml"
    Schema.model_validate({**SCHEMA, "freshness": None}).save(schema)
    checked = cli("validate", current, "--schema", schema, "--spark", "--json")
    assert checked.exit_code == 1, checked.stderr
    body = checked.json()
    assert body["engine"] == "spark"
    assert [(f["rule"], f["column"], f["n_rows"]) for f in body["failures"]] == EXPECTED_FAILURES[:-1]

    profile = tmp_path / "ref.json"
    stream_profile(scan_dataset(reference)).save(profile)
    spark.read.parquet(str(current)).createOrReplaceTempView("current_events")
    drifted = cli("drift", profile, "table:current_events", "--spark", "--json")
    assert drifted.exit_code == 0, drifted.stderr  # 2 of the 7 columns tested drift: under half
    body = drifted.json()
    assert body["engine"] == "spark"
    assert {n for n, c in body["columns"].items() if c["drift"]} == {"price", "event"}
    assert body["drift_share"] == pytest.approx(2 / 7)
    same = cli("drift", reference, reference, "--spark", "--json")  # the reference profiled on Spark too
    assert same.exit_code == 0, same.stderr
    assert same.json()["drift_share"] == 0.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--spark", "--stream"), "--stream and --spark are two engines for the same checks: choose one"),
        (("table:no_such_table", "--spark"), "table 'no_such_table': Spark cannot read it: "),
        (("nowhere/*.parquet", "--spark"), "nowhere/*.parquet: Spark cannot read it: "),
    ],
)
def test_bad_spark_input_is_one_line(spark, cli, tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    schema = tmp_path / "schema.yaml"
    Schema.model_validate(SCHEMA).save(schema)
    data = [a for a in args if not a.startswith("--")] or [str(tmp_path)]
    flags = [a for a in args if a.startswith("--")]
    done = cli("validate", *data, "--schema", schema, *flags)
    assert done.exit_code == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_table_and_paths_together_are_refused(spark) -> None:
    with pytest.raises(InputError, match="read one table, or Parquet paths, not both"):
        read_spark_source(spark, ["table:events", "more.parquet"])
