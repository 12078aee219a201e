"""Schema inference that passes fresh clean data and still catches planted violations."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest

from conveyor.data import Schema, infer_schema, validate_table
from conveyor.data._schema_infer import tail_bounds


def test_tail_bounds_known_answers():
    # k = min(50, 101 // 10) = 10 extreme values; their mean excess over the 11th is 5.5; 8 × 5.5 = 44
    assert tail_bounds(np.arange(-50, 51, dtype=float)) == (-94.0, 94.0)
    # non-negative: min clipped at 0; upper tail on log(1 + x): 8 × mean log excess → 160
    assert tail_bounds(np.arange(1, 101, dtype=float)) == (0.0, 160.0)
    # a share stays within [0, 1]
    assert tail_bounds(np.linspace(0, 0.98, 500)) == (0.0, 1.0)


def test_bounds_are_rounded_for_humans(tmp_path):
    rng = np.random.default_rng(4)
    df = pl.DataFrame({f"x{i}": rng.normal(-11.2 * i, 0.1 + i, 5_000) for i in range(8)})
    path = tmp_path / "schema.yaml"
    infer_schema(df).save(path)
    text = path.read_text()
    assert not re.search(r"\d\.\d*0000\d|\d\.\d*9999\d|e-\d", text), text  # no float noise
    for name, rule in Schema.load(path).columns.items():
        values = df.get_column(name)
        assert rule.min is not None
        assert rule.max is not None
        assert rule.min < values.min() < values.max() < rule.max  # type: ignore[operator]
        assert re.fullmatch(r"-?\d+(\.\d{1,4})?", str(rule.max)), rule.max


def _draws(rng: np.random.Generator, n: int, start: int) -> pl.DataFrame:
    levels = np.array([f"L{i}" for i in range(15)])
    p = np.array([0.5, 0.2, 0.1, 0.1, 0.05] + [0.005] * 10)
    nullable = rng.normal(0, 1, n).round(3)
    return pl.DataFrame(
        {
            "order_id": np.arange(start, start + n),
            "amount": np.exp(rng.normal(3, 1, n)).round(2),
            "score": rng.normal(50, 10, n).round(2),
            "items": rng.negative_binomial(2, 0.3, n),
            "city": levels[rng.choice(15, n, p=p)],
            "coupon": pl.Series(nullable).set(pl.Series(rng.random(n) < 0.1), None),
        }
    )


def _rules(df: pl.DataFrame, schema: Schema) -> set[str]:
    return {f.rule for f in validate_table(df, schema).failures if f.rule != "row_count"}


def test_fresh_clean_batches_pass_and_planted_violations_are_caught():
    """A small version of benchmarks/schema_inference.py: 15 runs of 2,000 rows."""
    for run in range(15):
        rng = np.random.default_rng([7, run])
        schema = infer_schema(_draws(rng, 2_000, 0))
        fresh = _draws(rng, 2_000, 2_000)
        assert _rules(fresh, schema) == set(), run
        i = int(rng.integers(2_000))
        planted = {
            "min": fresh.with_columns(fresh["amount"].scatter(i, -1.0)),  # below the physical 0
            "max": fresh.with_columns(fresh["score"].scatter(i, 250.0)),  # mean + 20σ
            "categories": fresh.with_columns(
                pl.when(pl.int_range(2_000) % 20 == 0)
                .then(pl.lit("never-seen"))
                .otherwise("city")
                .alias("city")
            ),  # a new category in 5 % of the rows
            "not_null": fresh.with_columns(fresh["items"].scatter(i, None)),
            "unique": fresh.with_columns(fresh["order_id"].scatter(i, fresh["order_id"][i - 1])),
            "type": fresh.with_columns(fresh["score"].cast(pl.String).scatter(i, "n/a")),
        }
        for rule, bad in planted.items():
            assert rule in _rules(bad, schema), (run, rule)


def test_keys_identifiers_and_uniqueness():
    n = 500
    rng = np.random.default_rng(1)
    df = pl.DataFrame(
        {
            "event_no": np.arange(n),  # named like an id
            "ticket": [f"T{i:05d}" for i in rng.permutation(n)],  # distinct strings
            "seq": rng.permutation(n) + 10_000,  # an unnamed all-distinct integer key
            "qty": rng.poisson(3, n),  # a count: ties
            "price": rng.normal(10, 1, n),  # distinct floats are no key
        }
    )
    cols = infer_schema(df).columns
    assert {c for c, r in cols.items() if r.unique} == {"event_no", "ticket", "seq"}
    assert {c for c, r in cols.items() if r.identifier} == {"event_no", "ticket", "seq"}
    assert (cols["seq"].min, cols["seq"].max) == (0, None)  # ids grow: only their sign is a rule
    assert cols["ticket"].categories is None
    dup = df.with_columns(df["ticket"].scatter(3, df["ticket"][4]))
    assert _rules(dup, infer_schema(df)) == {"unique"}


def test_mostly_tolerates_its_share_and_no_more():
    schema = Schema.model_validate(
        {"columns": {"c": {"type": "string", "categories": ["a", "b"], "mostly": 0.9}, "x": {"max": 1}}}
    )
    few = pl.DataFrame({"c": ["a"] * 91 + ["z"] * 9, "x": [0] * 100})  # 9 % outside: tolerated
    many = pl.DataFrame({"c": ["a"] * 89 + ["z"] * 11, "x": [0] * 100})  # 11 %: not
    assert validate_table(few, schema).ok
    (failure,) = validate_table(many, schema).failures
    assert failure.rule == "categories"
    assert failure.n_rows == 11
    assert "11 of 100 values, more than the 10 allowed (mostly 0.9)" in failure.message


def test_nan_counts_as_null_and_escapes_no_range():
    schema = Schema.model_validate({"columns": {"x": {"type": "float", "nullable": False, "max": 5}}})
    report = validate_table(pl.DataFrame({"x": [1.0, float("nan"), 2.0]}), schema)
    assert [(f.rule, f.n_rows) for f in report.failures] == [("not_null", 1)]  # NaN is no "value above 5"
    rate = Schema.model_validate({"columns": {"x": {"type": "float", "max_null_rate": 0.2}}})
    assert [
        f.rule for f in validate_table(pl.DataFrame({"x": [float("nan"), None, 1.0]}), rate).failures
    ] == ["null_rate"]


def test_null_rate_bound_known_answer():
    nan_rows = np.zeros(20_000, dtype=bool)
    nan_rows[::20] = True  # exactly 5 %
    df = pl.DataFrame({"x": np.where(nan_rows, np.nan, 1.0)})
    rule = infer_schema(df).columns["x"]
    assert rule.observed_null_rate == pytest.approx(0.05)
    # 0.05 + 4·√(2·0.05·0.95/20,000) + 1/20,000 = 0.05877, rounded up to 0.059
    assert rule.max_null_rate == 0.059
