"""validate, drift and profile --stream: a partitioned Parquet dataset read in bounded memory.

Known answers: on a dataset small enough to hold, the streamed verdicts equal the in-memory (exact)
ones — the same failed rules, the same drifted columns — and each sketched quantile is within the
KLL rank error of the exact one. Memory: a child process streams 4M rows × 8 float columns (259 MB
in memory); its peak RSS grows by less than 60 % of that over the same command on a tiny dataset,
while the in-memory command's grows by more than the data (so the measure can fail).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from conveyor.config import DriftSection
from conveyor.data import (
    DEFAULT_KLL_K,
    Schema,
    build_profile,
    detect_drift,
    kll_rank_error,
    reference_profile,
    scan_dataset,
    stream_drift,
    stream_profile,
    validate_table,
)
from conveyor.telemetry import TELEMETRY_OPT_OUT

SHIFTED = ("x0", "x1", "x2", "x3", "x4")  # their mean moves by 0.3 σ: 5 of 9 columns, dataset drift


def _table(n: int, seed: int, *, shift: float = 0.0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    columns = {f"x{i}": rng.normal(shift if f"x{i}" in SHIFTED else 0.0, 1.0, n) for i in range(8)}
    columns["event"] = rng.choice(["view", "cart", "buy"], n, p=[0.8, 0.15, 0.05])
    return pl.DataFrame(columns)


def _write_parts(folder: Path, rows: int, parts: int, *, shift: float) -> Path:
    (folder / "day=1").mkdir(parents=True)
    for p in range(parts):
        part = _table(rows // parts, 100 + p, shift=shift)
        part.write_parquet(folder / "day=1" / f"part-{p:03d}.parquet", row_group_size=65_536)
    return folder


def test_streamed_checks_agree_with_the_exact_ones(tmp_path: Path) -> None:
    reference = _table(60_000, 1)
    reference = reference.with_columns(
        pl.when(pl.int_range(pl.len()) % 50 == 0).then(None).otherwise(pl.col("x5")).alias("x5")
    )
    current = _write_parts(tmp_path / "current", 60_000, 3, shift=0.3)
    lazy = scan_dataset(current)
    eager = pl.read_parquet(current / "day=1")
    assert lazy.select(pl.len()).collect().item() == 60_000

    streamed_profile = stream_profile(reference.lazy())
    exact_profile = build_profile(reference, sample_size=None)
    assert list(streamed_profile.columns) == list(exact_profile.columns)
    error = kll_rank_error(DEFAULT_KLL_K)
    assert error < 0.002
    for name in ("x0", "x5"):
        exact = np.sort(reference.get_column(name).drop_nulls().to_numpy())
        sketch = streamed_profile.columns[name].sample  # type: ignore[union-attr]
        levels = (np.arange(len(sketch)) + 0.5) / len(sketch)
        ranks = np.searchsorted(exact, sketch, side="right") / len(exact)
        assert np.max(np.abs(ranks - levels)) <= error + 1 / len(exact)
    assert streamed_profile.columns["x5"].nulls == 1_200  # type: ignore[union-attr]

    settings = DriftSection()
    streamed = stream_drift(streamed_profile, lazy, settings)
    exact = detect_drift(reference_profile(reference, source="ref"), eager, settings)
    assert streamed.mode == "sketch"
    # x5 lost its 2 % of nulls: a null-rate drift (Cohen's h 0.28), on both sides of the comparison
    assert sorted(exact.drifted_columns) == [*SHIFTED, "x5"]
    assert sorted(streamed.drifted_columns) == sorted(exact.drifted_columns)
    for name, col in streamed.columns.items():
        assert abs(col.statistic - exact.columns[name].statistic) < 0.01, name

    schema = Schema.model_validate(
        {
            "columns": {
                "x0": {"type": "float", "min": -3.0, "max": 3.5},
                "event": {"categories": ["view", "cart"]},
            },
            "allow_extra_columns": True,
        }
    )
    assert validate_table(lazy, schema).to_dict() == validate_table(eager, schema).to_dict()
    assert {f.rule for f in validate_table(lazy, schema).failures} == {"min", "max", "categories"}


def test_cli_streams_a_glob_and_names_what_is_missing(cli, tmp_path: Path) -> None:
    current = _write_parts(tmp_path / "current", 20_000, 2, shift=0.3)
    profile = tmp_path / "ref.json"
    _table(20_000, 1).write_parquet(tmp_path / "ref.parquet")
    made = cli("profile", tmp_path / "ref.parquet", "--out", profile, "--stream", "--json")
    assert made.exit_code == 0, made.stderr
    assert made.json()["rows"] == 20_000
    drifted = cli("drift", profile, f"{current}/*/*.parquet", "--stream", "--json")
    assert drifted.exit_code == 1
    body = drifted.json()
    assert body["mode"] == "sketch"
    assert sorted(n for n, c in body["columns"].items() if c["drift"]) == list(SHIFTED)
    none = cli("drift", profile, f"{tmp_path}/nowhere/*.parquet", "--stream")
    assert none.exit_code == 2
    assert "no file matches this pattern" in none.stderr
    (tmp_path / "schema.yaml").write_text(
        "columns: {x0: {type: float, max: 10}}\nallow_extra_columns: true\n"
    )
    valid = cli("validate", current, "--schema", tmp_path / "schema.yaml", "--stream", "--json")
    assert valid.exit_code == 0, valid.stderr
    assert valid.json()["rows"] == 20_000


CHILD = """
import json, sys
import numpy as np, polars as pl, scipy.stats  # noqa: F401  (what every run imports, before the baseline)
from conveyor.cli import main
pl.DataFrame({"a": np.arange(10.0)}).lazy().select(pl.col("a").sum()).collect(engine="streaming")
code = main(sys.argv[1:])
peak = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")][0] * 1024
print(json.dumps({"code": code, "peak": peak}), file=sys.stderr)
"""


def _peak(*args: str | Path) -> tuple[int, int]:
    """Exit code and peak RSS (bytes) of `conveyor ARGS` in a child process (one Polars thread)."""
    env = {**os.environ, **TELEMETRY_OPT_OUT, "POLARS_MAX_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, args)], capture_output=True, text=True, env=env, timeout=600
    )
    last = json.loads(done.stderr.strip().splitlines()[-1])
    return int(last["code"]), int(last["peak"])


@pytest.mark.slow
def test_streamed_drift_holds_its_memory_bound(tmp_path: Path) -> None:
    reference = tmp_path / "ref.json"
    build_profile(_table(50_000, 1)).save(reference)
    tiny = _write_parts(tmp_path / "tiny", 1_000, 1, shift=0.3)
    big = _write_parts(tmp_path / "big", 4_000_000, 8, shift=0.3)
    in_memory = pl.scan_parquet(big / "day=1").collect().estimated_size()
    assert in_memory > 250 * 2**20

    code_tiny, baseline = _peak("drift", reference, tiny, "--stream", "--json")
    code_big, streamed = _peak("drift", reference, big, "--stream", "--json")
    assert (code_tiny, code_big) == (1, 1)  # the planted shift is found on both
    assert streamed - baseline < 0.6 * in_memory, (streamed - baseline, in_memory)
    code_eager, eager = _peak("drift", reference, big / "day=1", "--json")
    assert code_eager == 1
    assert eager - baseline > in_memory  # reading it whole costs more than the data: the bound binds
