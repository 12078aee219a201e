"""validate, drift and profile --stream: a partitioned Parquet dataset read in bounded memory.

Known answers: on a dataset small enough to hold, the streamed verdicts equal the in-memory (exact)
ones — the same failed rules, the same drifted columns — and each sketched quantile is within the
KLL rank error of the exact one. Memory: `drift --stream` and `validate --stream` run in a child
process whose heap may grow by 240 MB at most (RLIMIT_DATA, set by the child after its imports)
over 6M rows × 9 columns that take 389 MB in memory; their verdicts equal the exact ones computed
in this process, and the same `drift` reading the data whole fails under the same limit (so the
limit binds).
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


LIMITED_CHILD = """
import json, resource, sys
import numpy as np, polars as pl, scipy.stats  # noqa: F401  (what every run imports, before the limit)
from conveyor.cli import main
pl.DataFrame({"a": np.arange(10.0)}).lazy().select(pl.col("a").sum()).collect(engine="streaming")
def status(key):
    return [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key)][0] * 1024
limit = status("VmData") + int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
rss = status("VmRSS")
code = main(sys.argv[2:])
print(json.dumps({"code": code, "rss_growth": status("VmHWM") - rss}), file=sys.stderr)
sys.exit(code)
"""
BUDGET = 240 * 2**20  # the heap the child may add to what its imports took: smaller than the data


def _limited(*args: str | Path) -> tuple[subprocess.CompletedProcess[str], dict[str, int]]:
    """`conveyor ARGS` in a child whose data segment may grow by BUDGET bytes at most (RLIMIT_DATA).

    RLIMIT_DATA counts the heap and every private writable mapping — the memory a process uses for
    data — but not the Parquet files Polars maps read-only. jemalloc (Polars' allocator) is told not
    to keep freed address space reserved (``retain:false``): reserved, unused space would count too.
    One Polars thread: the bound is per process, not per core.
    """
    env = {**os.environ, **TELEMETRY_OPT_OUT, "POLARS_MAX_THREADS": "1", "MALLOC_ARENA_MAX": "1"}
    env["_RJEM_MALLOC_CONF"] = "retain:false"
    done = subprocess.run(
        [sys.executable, "-c", LIMITED_CHILD, str(BUDGET), *map(str, args)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    last = (done.stderr.strip().splitlines() or ["{}"])[-1]
    return done, json.loads(last) if last.startswith("{") else {}


@pytest.mark.slow
def test_streamed_checks_run_under_a_memory_limit_smaller_than_the_data(tmp_path: Path) -> None:
    reference_table = _table(50_000, 1)
    reference = tmp_path / "ref.json"
    build_profile(reference_table).save(reference)
    big = _write_parts(tmp_path / "big", 6_000_000, 12, shift=0.3)
    whole = pl.read_parquet(big / "day=1")
    in_memory = whole.estimated_size()
    assert in_memory > 1.5 * BUDGET  # 389 MB: the data does not fit in what the child may add
    exact_drift = detect_drift(reference_profile(reference_table, source="ref"), whole, DriftSection())
    schema = tmp_path / "schema.yaml"
    schema.write_text("columns: {x0: {type: float, min: -4, max: 4}, event: {categories: [view, cart]}}\n"
                      "allow_extra_columns: true\n")  # fmt: skip
    exact_validation = validate_table(whole, Schema.load(schema))
    del whole

    drifted, used = _limited("drift", reference, big, "--stream", "--json")
    assert drifted.returncode == 1, drifted.stderr[-2000:]  # the planted shift, found under the limit
    assert sorted(n for n, c in json.loads(drifted.stdout)["columns"].items() if c["drift"]) == sorted(
        exact_drift.drifted_columns
    )
    assert sorted(exact_drift.drifted_columns) == list(SHIFTED)
    assert used["rss_growth"] < BUDGET < in_memory
    checked, _ = _limited("validate", big, "--schema", schema, "--stream", "--json")
    assert checked.returncode == 1, checked.stderr[-2000:]
    failures = [(f["rule"], f["column"], f["n_rows"]) for f in json.loads(checked.stdout)["failures"]]
    assert failures == [(f.rule, f.column, f.n_rows) for f in exact_validation.failures]
    assert {rule for rule, _, _ in failures} == {"min", "max", "categories"}

    eager, _ = _limited("drift", reference, big / "day=1", "--json")  # the same data read whole: no room
    assert eager.returncode not in (0, 1), eager.stderr[-2000:]
    assert "memory allocation" in eager.stderr or "MemoryError" in eager.stderr, eager.stderr[-2000:]
