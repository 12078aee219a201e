"""`conveyor data generate`: files, the JSON summary, and one-line refusals of bad values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

SMALL = ("--users", "200", "--items", "80", "--categories", "8", "--days", "3")


def test_shop_tables_are_written_and_summarised(cli: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "shop"
    result = cli("data", "generate", "--out", out, *SMALL, "--seed", "5", "--json")
    assert result.exit_code == 0, result.stderr
    summary = result.json()
    assert summary["ok"] is True
    assert summary["kind"] == "shop"
    assert summary["start"] == "2026-11-02"
    interactions = pl.read_parquet(out / "interactions.parquet")
    assert summary["files"]["interactions"] == {
        "path": str(out / "interactions.parquet"),
        "rows": interactions.height,
    }
    assert summary["files"]["products"]["rows"] == 80
    assert summary["files"]["users"]["rows"] == 200
    assert sum(summary["events"].values()) == interactions.height
    assert interactions.columns == [
        "user_id",
        "item_id",
        "timestamp",
        "event",
        "price",
        "category",
        "session_id",
    ]
    assert interactions["timestamp"].dt.date().n_unique() >= 3


def test_the_same_seed_writes_the_same_tables(cli: Callable[..., Any], tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert cli("data", "generate", "--out", tmp_path / name, *SMALL, "--seed", "9").exit_code == 0
    for table in ("interactions", "products", "users"):
        assert_frame_equal(
            pl.read_parquet(tmp_path / "a" / f"{table}.parquet"),
            pl.read_parquet(tmp_path / "b" / f"{table}.parquet"),
        )


def test_csv_with_drifts(cli: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "csv"
    result = cli(
        "data", "generate", "--out", out, *SMALL, "--format", "csv", "--start", "2027-01-04",
        "--drift", "new-category", "--drift", "price=2", "--drift", "broken-feed", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.json()["drift"] == ["new-category", "price=2", "broken-feed"]
    interactions = pl.read_csv(out / "interactions.csv")
    assert interactions["user_id"].null_count() > 0
    assert (interactions["price"] < 0).any()
    assert "smart_home" in set(interactions["category"])
    products = pl.read_csv(out / "products.csv")
    assert products.height > 80  # the new category's items are in the catalogue
    users = pl.read_csv(out / "users.csv")
    assert {"user_id", "segment", "taste_0", "taste_15"} <= set(users.columns)


def test_classification_table(cli: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "cls"
    result = cli("data", "generate", "--kind", "classification", "--out", out, "--rows", "300", "--json")
    assert result.exit_code == 0, result.stderr
    summary = result.json()
    assert summary["files"] == {"train": {"path": str(out / "train.parquet"), "rows": 300}}
    frame = pl.read_parquet(out / "train.parquet")
    assert frame.height == 300
    assert "label" in frame.columns
    assert 0 < summary["label_rate"] < 1
    drifted = cli(
        "data", "generate", "--kind", "classification", "--out", tmp_path / "d", "--drift", "covariate"
    )
    assert drifted.exit_code == 0, drifted.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--users", "-5"), "--users"),
        (("--items", "0"), "--items"),
        (("--days", "-1"), "--days"),
        (("--drift", "earthquake"), "unknown --drift 'earthquake'"),
        (("--drift", "popularity=1.5"), "0..1"),
        (("--drift", "price=-1"), "positive"),
        (("--drift", "price=abc"), "not a number"),
        (("--start", "2026-02-30"), "--start"),
        (("--format", "xlsx"), "--format"),
        (("--kind", "classification", "--drift", "new-category"), "covariate"),
        (("--categories", "50", "--items", "10"), "--categories"),
    ],
)
def test_bad_values_exit_2_with_one_line(
    cli: Callable[..., Any], tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = cli("data", "generate", "--out", tmp_path / "x", *args)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_an_unwritable_out_folder_exits_2(cli: Callable[..., Any], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = cli("data", "generate", "--out", blocker / "sub", *SMALL, "--json")
    assert result.exit_code == 2
    assert result.json()["ok"] is False
    assert "--out" in result.json()["error"]["message"]
