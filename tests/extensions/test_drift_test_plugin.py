"""A drift test from a separate package is chosen in conveyor.yaml and decides its columns.

The toy test ``mean_shift`` (tests/extensions/toy_plugin) flags a moved mean only. On the data
below ``moved`` has its mean shifted by one standard deviation and ``wider`` keeps its mean but
doubles its spread: the built-in Wasserstein test flags both, ``mean_shift`` only ``moved``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from plugin_site import conveyor, install_toy_plugin

pytestmark = pytest.mark.xdist_group("extensions")

ROWS = 3000


def _tables(root: Path) -> None:
    rng = np.random.default_rng(7)
    reference = pl.DataFrame({"moved": rng.normal(0, 1, ROWS), "wider": rng.normal(0, 1, ROWS)})
    current = pl.DataFrame({"moved": rng.normal(1, 1, ROWS), "wider": rng.normal(0, 2, ROWS)})
    reference.write_parquet(root / "ref.parquet")
    current.write_parquet(root / "cur.parquet")


def _drift(site: Path | None, root: Path, drift: str) -> tuple[int, dict, str]:
    (root / "conveyor.yaml").write_text(f"data:\n  drift: {drift}\n")
    done = conveyor(site, root, "drift", "ref.parquet", "cur.parquet", "--json")
    return done.returncode, json.loads(done.stdout) if done.stdout else {}, done.stderr


def test_a_plugin_drift_test_decides_the_columns_it_is_chosen_for(tmp_path):
    site = install_toy_plugin(tmp_path)
    _tables(tmp_path)

    schema = json.loads(conveyor(site, tmp_path, "config", "schema").stdout)["$defs"]["DriftTests"]
    assert schema["properties"]["numeric"]["enum"] == ["jensen_shannon", "mean_shift", "wasserstein"]

    _, builtin, _ = _drift(site, tmp_path, "{}")
    assert {n: c["test"] for n, c in builtin["columns"].items()} == {
        "moved": "wasserstein",
        "wider": "wasserstein",
    }
    assert [n for n, c in builtin["columns"].items() if c["drift"]] == ["moved", "wider"]

    _, toy, err = _drift(site, tmp_path, "{tests: {numeric: mean_shift}}")
    moved, wider = toy["columns"]["moved"], toy["columns"]["wider"]
    assert (moved["test"], wider["test"]) == ("mean_shift", "mean_shift"), err
    assert moved["drift"]
    assert not wider["drift"]
    assert moved["statistic"] == pytest.approx(1.0, abs=0.08)  # one reference standard deviation
    assert moved["mean_shift"] == moved["statistic"]
    assert wider["statistic"] < 0.1

    # one column only, and the p-value method names the test's own significance test
    _, mixed, _ = _drift(site, tmp_path, "{column_tests: {wider: mean_shift}, method: pvalue}")
    assert mixed["columns"]["moved"]["test"] == "ks"
    assert mixed["columns"]["wider"]["test"] == "welch_t"
    assert [n for n, c in mixed["columns"].items() if c["drift"]] == ["moved"]


def test_a_drift_test_for_the_wrong_kind_or_not_installed_is_one_line(tmp_path):
    site = install_toy_plugin(tmp_path)
    _tables(tmp_path)
    code, _, err = _drift(site, tmp_path, "{tests: {categorical: mean_shift}}")
    assert code == 2
    assert err.strip().endswith(
        "data.drift.tests.categorical: drift test 'mean_shift' does not compare categorical columns"
    )
    code, _, err = _drift(None, tmp_path, "{column_tests: {wider: mean_shift}}")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert (
        "data.drift.column_tests.wider: unknown drift test 'mean_shift' "
        "(installed: jensen_shannon, wasserstein" in line
    )
