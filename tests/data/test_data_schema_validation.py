"""Schema inference and validation with known answers: each rule fails exactly where it should."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from conveyor.data import Schema, infer_schema, validate_table
from conveyor.data._schema import ColumnType, Freshness

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def reference() -> pl.DataFrame:
    n = 100
    return pl.DataFrame(
        {
            "order_id": list(range(n)),
            "price": [10.0 + i for i in range(n)],  # 10 .. 109
            "event": ["view", "add_to_cart", "purchase", "view"] * 25,
            "coupon": [None if i % 5 == 0 else "C1" for i in range(n)],  # 20 % nulls
            "ts": [datetime(2025, 5, 31) + timedelta(minutes=i) for i in range(n)],
        }
    )


def test_inferred_schema_has_types_nulls_ranges_categories_key_rows_freshness():
    schema = infer_schema(reference(), key=["order_id"], timestamp="ts")
    cols = schema.columns
    assert cols["order_id"].type is ColumnType.INTEGER
    assert cols["order_id"].unique
    assert cols["price"].type is ColumnType.FLOAT
    assert not cols["price"].nullable
    assert cols["price"].min <= 10.0
    assert cols["price"].min >= 0
    assert cols["price"].max >= 109.0
    assert cols["event"].categories == ["add_to_cart", "purchase", "view"]
    assert cols["coupon"].nullable
    assert cols["coupon"].observed_null_rate == pytest.approx(0.2)
    assert cols["coupon"].max_null_rate > 0.2
    assert schema.key == ["order_id"]
    assert schema.rows.min == 50
    assert schema.rows.max == 1000
    assert schema.freshness is not None
    assert schema.freshness.column == "ts"


def test_identifier_columns_get_no_range():
    df = pl.DataFrame(
        {"user_id": [3, 7, 900], "sessionId": [10**14, 10**14 + 5, 10**14 + 9], "n": [3, 7, 900]}
    )
    cols = infer_schema(df).columns
    assert (cols["user_id"].min, cols["user_id"].max) == (0, None)  # new users get higher ids
    assert (cols["sessionId"].min, cols["sessionId"].max) == (0, None)
    # a measurement: its range widened by 8 tail scales (900 − 7 = 893 → +7,144, rounded up), min 0 kept
    assert (cols["n"].min, cols["n"].max) == (0, 8100)
    assert [c for c, rule in cols.items() if rule.identifier] == ["user_id", "sessionId"]


def test_reference_passes_its_own_schema_and_round_trips_yaml(tmp_path):
    df = reference()
    schema = infer_schema(df, key=["order_id"], timestamp="ts")
    schema.save(tmp_path / "schema.yaml")
    text = (tmp_path / "schema.yaml").read_text()
    assert text.startswith("# Conveyor data schema")
    assert "categories: [add_to_cart, purchase, view]" in text
    loaded = Schema.load(tmp_path / "schema.yaml")
    assert loaded == schema
    report = validate_table(df, loaded)
    assert report.ok, report.to_dict()
    assert report.rules_checked > 10


def _failures(df: pl.DataFrame, schema: Schema, now: datetime = NOW) -> dict[tuple[str, str | None], dict]:
    report = validate_table(df, schema, now=now)
    assert not report.ok
    return {(f.rule, f.column): f.to_dict() for f in report.failures}


def test_each_rule_reports_rows_and_examples():
    schema = infer_schema(reference(), key=["order_id"], timestamp="ts")
    bad = reference().with_columns(
        pl.when(pl.col("order_id") < 3).then(-5.0).otherwise(pl.col("price")).alias("price"),
        # a new category in 30 % of the rows: beyond what the inferred `mostly` tolerates
        pl.when(pl.col("order_id") < 30).then(pl.lit("refund")).otherwise(pl.col("event")).alias("event"),
        pl.when(pl.col("order_id") < 60).then(None).otherwise(pl.col("coupon")).alias("coupon"),
        pl.when(pl.col("order_id") == 99).then(98).otherwise(pl.col("order_id")).alias("order_id"),
    )
    failures = _failures(bad, schema, now=datetime(2025, 6, 1, tzinfo=UTC))
    assert failures[("min", "price")]["n_rows"] == 3
    assert failures[("min", "price")]["examples"] == [-5.0]
    assert failures[("categories", "event")]["n_rows"] == 30
    assert failures[("categories", "event")]["examples"] == ["refund"]
    assert failures[("null_rate", "coupon")]["n_rows"] == 68  # 60 forced + 8 of the later 40
    assert failures[("unique", "order_id")]["n_rows"] == 2
    dup = failures[("duplicate_key", "order_id")]
    assert dup["n_rows"] == 2
    assert dup["examples"] == [{"row": 98, "order_id": 98}, {"row": 99, "order_id": 98}]
    assert set(failures) == {
        ("min", "price"),
        ("categories", "event"),
        ("null_rate", "coupon"),
        ("unique", "order_id"),
        ("duplicate_key", "order_id"),
    }


def test_structure_types_rows_and_staleness():
    schema = infer_schema(reference(), key=["order_id"], timestamp="ts")
    schema = schema.model_copy(update={"freshness": Freshness(column="ts", max_age_hours=48)})
    bad = (
        reference()
        .head(10)
        .drop("event")
        .with_columns(pl.col("order_id").cast(pl.String) + "x", pl.lit(1).alias("surprise"))
    )
    assert validate_table(reference(), schema, now=NOW).ok  # 36 h old: fresh enough
    failures = _failures(bad, schema, now=NOW + timedelta(days=30))
    assert failures[("missing_column", "event")]["n_rows"] == 10
    assert failures[("extra_column", "surprise")]["examples"] == [1]
    type_failure = failures[("type", "order_id")]
    assert type_failure["n_rows"] == 10
    assert "expected integer" in type_failure["message"]
    assert type_failure["examples"][:2] == ["0x", "1x"]
    assert failures[("row_count", None)]["message"].startswith("10 rows, fewer than the minimum 50")
    stale = failures[("freshness", "ts")]
    assert "stale data" in stale["message"]
    assert stale["examples"] == ["2025-05-31T00:09:00"]


def test_not_null_max_and_float_in_integer_column():
    schema = Schema.model_validate(
        {"columns": {"n": {"type": "integer", "nullable": False, "max": 10}, "x": {"type": "float"}}}
    )
    df = pl.DataFrame({"n": [1.0, 2.5, None, 12.0], "x": [1, 2, 3, 4]})  # ints are fine for float
    failures = _failures(df, schema)
    assert failures[("not_null", "n")]["n_rows"] == 1
    assert failures[("not_null", "n")]["examples"] == [{"row": 2}]
    assert failures[("type", "n")]["n_rows"] == 1
    assert failures[("type", "n")]["examples"] == [2.5]
    assert ("max", "n") not in failures  # value rules are skipped on a column of the wrong type
    assert set(failures) == {("not_null", "n"), ("type", "n")}


def test_extra_columns_can_be_allowed():
    schema = Schema.model_validate({"columns": {"a": {"type": "integer"}}, "allow_extra_columns": True})
    assert validate_table(pl.DataFrame({"a": [1], "b": [2]}), schema).ok


def test_validation_of_a_million_rows_is_one_pass(tmp_path):
    # correctness at scale (speed is measured by benchmarks/, not asserted here)
    n = 1_000_000
    df = pl.DataFrame({"id": pl.int_range(n, eager=True), "v": pl.int_range(n, eager=True) % 97})
    schema = infer_schema(df, key=["id"])
    assert validate_table(df, schema).ok
    broken = df.with_columns(pl.when(pl.col("id") == 5).then(500).otherwise(pl.col("v")).alias("v"))
    failures = {(f.rule, f.column): f for f in validate_table(broken, schema).failures}
    assert failures[("max", "v")].n_rows == 1
    assert failures[("max", "v")].examples == [500]
