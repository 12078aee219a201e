"""`conveyor schema infer`, `validate` and `drift`: exit codes, JSON, project defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from conveyor.data import build_profile


def table(seed: int, n: int = 2_000, shift: float = 0.0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=n)
    return pl.DataFrame(
        {
            "order_id": np.arange(n),
            "price": rng.normal(50 + 10 * shift, 10, n),
            "qty": rng.poisson(3 + 3 * shift, n),
            "event": np.array(["view", "cart", "buy"])[
                rng.choice(3, n, p=[0.7 - 0.3 * shift, 0.2, 0.1 + 0.3 * shift])
            ],
            "ts": [start + timedelta(hours=i) for i in range(n)],
        }
    )


@pytest.fixture
def outside(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_schema_infer_then_validate_outside_a_project(cli, outside):
    table(1).write_parquet(outside / "ref.parquet")
    result = cli("schema", "infer", "ref.parquet", "--out", "schema.yaml", "--key", "order_id", "--json")
    assert result.exit_code == 0, result.stderr
    payload = result.json()
    assert payload == {
        "ok": True,
        "schema": "schema.yaml",
        "rows": 2000,
        "columns": 5,
        "key": ["order_id"],
        "freshness": "ts",
    }
    ok = cli("validate", "ref.parquet", "--schema", "schema.yaml", "--json")
    assert ok.exit_code == 0, ok.stderr
    assert ok.json()["ok"] is True

    # a new event type in 40 of 2,000 rows (2 %): beyond the 10 rows (0.5 %) the inferred `mostly` tolerates
    bad = table(2).with_columns(
        pl.when(pl.col("order_id") < 40).then(pl.lit("refund")).otherwise(pl.col("event")).alias("event")
    )
    bad.write_csv(outside / "bad.csv")
    failed = cli("validate", "bad.csv", "--schema", "schema.yaml", "--json")
    assert failed.exit_code == 1
    report = failed.json()
    assert report["ok"] is False
    (failure,) = report["failures"]
    assert failure["rule"] == "categories"
    assert failure["column"] == "event"
    assert failure["n_rows"] == 40
    assert failure["examples"] == ["refund"]
    assert failed.stderr.strip() == "conveyor: ValidationFailed: bad.csv: 1 rule(s) failed (categories)"


def test_validate_human_output_lists_failures(cli, outside):
    table(1).write_parquet(outside / "ref.parquet")
    cli("schema", "infer", "ref.parquet")
    table(1).head(10).write_parquet(outside / "few.parquet")
    result = cli("validate", "few.parquet", "--schema", "schema.yaml")
    assert result.exit_code == 1
    assert result.stdout.startswith("few.parquet: 2 rule(s) failed")  # then a table of the failures
    # the first ten hours of the table are long gone: stale, and too few rows
    expected = "conveyor: ValidationFailed: few.parquet: 2 rule(s) failed (freshness, row_count)"
    assert result.stderr.strip() == expected


def test_validate_outside_a_project_needs_a_schema(cli, outside):
    table(1).write_parquet(outside / "ref.parquet")
    result = cli("validate", "ref.parquet")
    assert result.exit_code == 2
    assert "outside a project pass --schema FILE" in result.stderr


def test_drift_between_tables_json_html_and_saved_profile(cli, outside):
    table(1).write_parquet(outside / "ref.parquet")
    table(2).write_parquet(outside / "same.parquet")
    table(3, shift=1.0).write_parquet(outside / "shifted.parquet")

    same = cli("drift", "ref.parquet", "same.parquet", "--json", "--save-profile", "ref.json")
    assert same.exit_code == 0, same.stderr
    payload = same.json()
    assert payload["dataset_drift"] is False
    assert payload["drift_share"] == 0.0
    # ts: compared as timestamps; order_id: an identifier, left out with the reason
    assert set(payload["columns"]) == {"price", "qty", "event", "ts"}
    assert payload["columns"]["ts"]["type"] == "datetime"
    assert payload["skipped"]["order_id"].startswith("identifier-like")
    assert payload["columns"]["qty"]["type"] == "categorical"  # an integer count with few values
    assert payload["mode"] == "exact"
    assert payload["rows_used"] == {"reference": 2_000, "current": 2_000}
    price = payload["columns"]["price"]
    assert price["type"] == "numeric"
    assert price["test"] == "wasserstein"
    assert price["threshold"] == 0.1
    assert (outside / "ref.json").is_file()

    shifted = cli("drift", "ref.json", "shifted.parquet", "--json", "--html", "report.html")
    assert shifted.exit_code == 1
    payload = shifted.json()
    assert payload["dataset_drift"] is True
    assert {n for n, c in payload["columns"].items() if c["drift"]} == {"price", "qty", "event"}
    assert payload["columns"]["event"]["type"] == "categorical"
    assert shifted.stderr.startswith("conveyor: DriftDetected: dataset drift: 3 of 4 columns drifted")
    html = (outside / "report.html").read_text()
    assert html.count("<svg") == 3
    assert "DATASET DRIFT" in html


def test_drift_profile_flag_prints_timings_on_stderr(cli, outside):
    table(1).write_parquet(outside / "a.parquet")
    result = cli("drift", "a.parquet", "a.parquet", "--profile", "--json")
    assert result.exit_code == 0
    assert "tests:" in result.stderr
    assert result.json()["drift_share"] == 0.0


def test_drift_needs_both_tables(cli, outside):
    table(1).write_parquet(outside / "a.parquet")
    result = cli("drift", "a.parquet")
    assert result.exit_code == 2
    assert "give both REFERENCE and CURRENT" in result.stderr


PROJECT_YAML = """
data:
  source: data/current.parquet
  drift: {numeric_threshold: %s}
"""


def test_project_defaults_first_run_and_thresholds(cli, make_project):
    root = make_project(PROJECT_YAML % "0.1")
    (root / "data").mkdir()
    table(1).write_parquet(root / "data" / "current.parquet")

    first = cli("--project", root, "drift", "--json")
    assert first.exit_code == 0
    assert first.json()["note"] == "no reference profile yet — first training run sets it"

    validated = cli("--project", root, "validate", "--json")  # no schema yet: inferred and written
    assert validated.exit_code == 0, validated.stderr
    assert (root / "schema.yaml").is_file()
    assert cli("--project", root, "validate").exit_code == 0

    build_profile(table(1)).save(root / ".conveyor" / "reference-profile.json")
    assert cli("--project", root, "drift").exit_code == 0

    table(3, shift=1.0).write_parquet(root / "data" / "current.parquet")
    drifted = cli("--project", root, "drift", "--json")
    assert drifted.exit_code == 1
    assert drifted.json()["columns"]["price"]["drift"] is True

    (root / "conveyor.yaml").write_text(PROJECT_YAML % "5.0")  # a huge numeric threshold
    relaxed = cli("--project", root, "drift", "--json").json()
    assert relaxed["columns"]["price"]["threshold"] == 5.0
    assert relaxed["columns"]["price"]["drift"] is False


def test_project_drift_leaves_identifiers_out_and_reports_null_rates(cli, make_project):
    root = make_project(PROJECT_YAML % "0.1")
    (root / "data").mkdir()
    ref = table(1, n=20_000)
    ref.write_parquet(root / "data" / "current.parquet")
    assert cli("--project", root, "validate").exit_code == 0  # infers schema.yaml: order_id an identifier
    assert "identifier: true" in (root / "schema.yaml").read_text().split("order_id:")[1].splitlines()[0]
    build_profile(ref).save(root / ".conveyor" / "reference-profile.json")
    # the same table with 5 % of the prices missing: the values did not move, the null rate did
    rng = np.random.default_rng(0)
    fresh = table(2, n=20_000)
    holes = fresh.with_columns(fresh["price"].set(pl.Series(rng.random(20_000) < 0.05), None))  # type: ignore[arg-type]
    holes.write_parquet(root / "data" / "current.parquet")
    result = cli("--project", root, "drift", "--json")
    payload = result.json()
    assert "order_id" not in payload["columns"]  # the schema's identifier: not even skipped, not asked for
    price = payload["columns"]["price"]
    assert price["null_rate_drift"] is True
    assert price["distribution_drift"] is False
    assert payload["mode"] == "sampled"  # a stored profile is a sketch of 10,000 order statistics
    assert payload["rows_used"] == {"reference": 10_000, "current": 20_000}
    assert result.exit_code == 0  # 1 of 4 columns: under the dataset share
