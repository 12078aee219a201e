"""Drift and validation side by side: Conveyor, Evidently, pandera (pandas and Polars), Great Expectations.

Two Parquet tables of N rows × 21 columns (15 numeric, 5 categorical, one
nullable); in the current one 5 numeric columns are shifted by 0.5σ, 2
categorical ones re-weighted, and the nullable column's null rate goes from
2 % to 6 % (its values unchanged). Every tool runs in a fresh process, so
that its import time counts and its peak memory (the child's maximum resident
set) is its own; every tool runs the same number of times (``--runs``,
default 3) and the median run is reported.

- drift, like for like: ``conveyor drift REF CUR --json`` — exact mode, every
  row of both tables (the default up to 1,000,000 rows) — against Evidently's
  ``Report([DataDriftPreset()])`` on the same files, with an explicit
  ``DataDefinition`` of the numerical and categorical columns (as Evidently's
  docs recommend) and its default tests, which on more than 1,000 rows are
  Wasserstein distance (normed) for numeric and Jensen–Shannon distance for
  categorical columns, threshold 0.1 — the same statistics as Conveyor's
  default. Evidently uses every row too. Verdicts are compared column by
  column.
- validation of the current table with the same rules — dtype, not null,
  numeric range, allowed categories on every column but the nullable one —
  timing the validation call alone (reading the file is the same for all).

    python -m benchmarks.drift_validation                 # 100k rows, every tool 3 runs
    python -m benchmarks.drift_validation --rows 1000000  # 1M rows (Evidently: minutes a run)
    python -m benchmarks.drift_validation --validate-only # the validation table alone
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from benchmarks._env import environment_header, load_line

N_NUMERIC, N_CATEGORICAL = 15, 5
SHIFTED = {f"num_{i}" for i in range(5)} | {"cat_0", "cat_1"}
NULLABLE = "nullable"  # null rate 2 % in the reference, 6 % in the current table; values unchanged
CHANGED = SHIFTED | {NULLABLE}
CATEGORY_COUNTS = (8, 12, 20, 30, 50)
ENV = {
    **os.environ,
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "false",
}


def make_table(n: int, seed: int, shifted: bool) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    for i in range(N_NUMERIC):
        x = rng.normal(0, 1, n) if i % 3 else rng.exponential(1, n)
        cols[f"num_{i}"] = x + (0.5 if shifted and f"num_{i}" in SHIFTED else 0.0)
    for i, k in enumerate(CATEGORY_COUNTS):
        p = np.ones(k)
        if shifted and f"cat_{i}" in SHIFTED:
            p = np.linspace(1, 3, k)
        names = np.array([f"v{j:02d}" for j in range(k)])
        cols[f"cat_{i}"] = names[rng.choice(k, n, p=p / p.sum())]
    null_rate = 0.06 if shifted else 0.02
    cols[NULLABLE] = pl.Series(rng.normal(0, 1, n)).set(pl.Series(rng.random(n) < null_rate), None)
    return pl.DataFrame(cols)


_WRAPPER = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
out = {"wall": wall, "peak_mb": peak, "code": p.returncode, "stdout": p.stdout, "stderr": p.stderr}
print(json.dumps(out))
"""


def median_of(runs: int, argv: list[str]) -> dict[str, Any]:
    """The run with the median wall time of ``runs`` (every tool gets the same number of runs)."""
    results = sorted((measured(argv) for _ in range(runs)), key=lambda r: r["wall"] or float("inf"))
    return results[len(results) // 2]


def measured(argv: list[str], timeout: float = 1800) -> dict[str, Any]:
    """Wall time and peak resident memory (MB) of one fresh process running ``argv``.

    A small wrapper process runs it, so that RUSAGE_CHILDREN holds that one process alone.
    """
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _WRAPPER, *argv], capture_output=True, text=True, env=ENV, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"wall": None, "peak_mb": None, "code": None, "stdout": "", "stderr": "timeout"}
    return dict(json.loads(proc.stdout))


def conveyor_bin() -> str:
    candidate = Path(sys.executable).parent / "conveyor"
    return str(candidate) if candidate.exists() else "conveyor"


# -- children ---------------------------------------------------------------------------------
EVIDENTLY = """
import json, sys, time
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
t = time.perf_counter()
definition = DataDefinition(
    numerical_columns=[c for c in ref.columns if not c.startswith("cat_")],
    categorical_columns=[c for c in ref.columns if c.startswith("cat_")],
)
ref_ds = Dataset.from_pandas(ref, data_definition=definition)
cur_ds = Dataset.from_pandas(cur, data_definition=definition)
snapshot = Report([DataDriftPreset()]).run(current_data=cur_ds, reference_data=ref_ds)
seconds = time.perf_counter() - t
columns = {}
for m in snapshot.dict()["metrics"]:
    cfg = m["config"]
    if cfg.get("type", "").endswith("ValueDrift"):
        value, thr = float(m["value"]), float(cfg["threshold"])
        drift = (value < thr) if "p_value" in cfg["method"] else (value >= thr)
        columns[cfg["column"]] = {"method": cfg["method"], "statistic": value, "drift": drift}
print(json.dumps({"seconds": seconds, "columns": columns}))
"""

RULES = """
import json, sys, time
rules = json.loads(sys.argv[2])
"""

CONVEYOR_VALIDATE = (
    RULES
    + """
import polars as pl
from conveyor.data import Schema, validate_table
df = pl.read_parquet(sys.argv[1])
schema = Schema.model_validate({"columns": {
    c: ({"type": "float", "nullable": False, "min": r[0], "max": r[1]} if isinstance(r, list) and len(r) == 2
        and not isinstance(r[0], str) else {"type": "string", "nullable": False, "categories": r})
    for c, r in rules.items()}})
t = time.perf_counter()
report = validate_table(df, schema)
print(json.dumps({"seconds": time.perf_counter() - t, "ok": report.ok}))
"""
)

PANDERA_POLARS = (
    RULES
    + """
import polars as pl
import pandera.polars as pa
df = pl.read_parquet(sys.argv[1])
cols = {}
for c, r in rules.items():
    if not isinstance(r[0], str):
        cols[c] = pa.Column(pl.Float64, pa.Check.in_range(r[0], r[1]), nullable=False)
    else:
        cols[c] = pa.Column(pl.String, pa.Check.isin(r), nullable=False)
schema = pa.DataFrameSchema(cols, strict=True)
t = time.perf_counter()
ok = True
try:
    schema.validate(df, lazy=True)
except pa.errors.SchemaErrors:
    ok = False
print(json.dumps({"seconds": time.perf_counter() - t, "ok": ok}))
"""
)

PANDERA_PANDAS = (
    RULES
    + """
import pandas as pd
import pandera.pandas as pa
df = pd.read_parquet(sys.argv[1])
cols = {}
for c, r in rules.items():
    if not isinstance(r[0], str):
        cols[c] = pa.Column(float, pa.Check.in_range(r[0], r[1]), nullable=False)
    else:
        cols[c] = pa.Column(str, pa.Check.isin(r), nullable=False)
schema = pa.DataFrameSchema(cols, strict=True)
t = time.perf_counter()
ok = True
try:
    schema.validate(df, lazy=True)
except pa.errors.SchemaErrors:
    ok = False
print(json.dumps({"seconds": time.perf_counter() - t, "ok": ok}))
"""
)

GREAT_EXPECTATIONS = (
    RULES
    + """
import logging
logging.disable(logging.WARNING)
import pandas as pd
import great_expectations as gx
import great_expectations.expectations as gxe
df = pd.read_parquet(sys.argv[1])
context = gx.get_context(mode="ephemeral")
batch = (context.data_sources.add_pandas("bench").add_dataframe_asset("table")
         .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": df}))
suite = context.suites.add(gx.ExpectationSuite(name="rules"))
for c, r in rules.items():
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=c))
    if not isinstance(r[0], str):
        suite.add_expectation(gxe.ExpectColumnValuesToBeOfType(column=c, type_="float64"))
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=c, min_value=r[0], max_value=r[1]))
    else:
        suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=c, value_set=r))
t = time.perf_counter()
result = batch.validate(suite)
print(json.dumps({"seconds": time.perf_counter() - t, "ok": bool(result.success)}))
"""
)


def rules_for(ref: pl.DataFrame) -> dict[str, list[Any]]:
    """The same rules for every tool: numeric ranges with a margin, the categories seen."""
    rules: dict[str, list[Any]] = {}
    for c in ref.columns:
        if ref.schema[c] == pl.String:
            rules[c] = sorted(ref.get_column(c).unique().to_list())
        else:
            lo, hi = float(ref.get_column(c).min()), float(ref.get_column(c).max())  # type: ignore[arg-type]
            margin = 0.5 * (hi - lo)
            rules[c] = [lo - margin, hi + margin]
    return rules


def _child_result(res: dict[str, Any]) -> dict[str, Any]:
    if res["code"] != 0 or not res["stdout"].strip():
        tail = (res["stderr"] or "").strip().splitlines()[-1:] or ["?"]
        return {"error": tail[0][:200]}
    return dict(json.loads(res["stdout"].strip().splitlines()[-1]))


def write_tables(n: int, folder: Path) -> tuple[pl.DataFrame, Path, Path]:
    ref_path, cur_path = folder / f"ref_{n}.parquet", folder / f"cur_{n}.parquet"
    ref = make_table(n, 1, shifted=False)
    ref.write_parquet(ref_path)
    make_table(n, 2, shifted=True).write_parquet(cur_path)
    return ref, ref_path, cur_path


def bench_drift(n: int, folder: Path, runs: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Timing rows of both drift tools for one size, and the column-by-column comparison as table lines."""
    ref, ref_path, cur_path = write_tables(n, folder)
    rows: list[dict[str, Any]] = []

    res = median_of(runs, [conveyor_bin(), "drift", str(ref_path), str(cur_path), "--json"])
    payload = json.loads(res["stdout"]) if res["stdout"].strip() else {}
    ours = payload.get("columns", {})
    drifted = sorted(c for c, v in ours.items() if v["drift"])
    rows.append(
        {"task": "drift", "tool": f"conveyor ({payload.get('mode', '?')})", "rows": n, "wall": res["wall"],
         "peak_mb": res["peak_mb"], "drifted": drifted}
    )  # fmt: skip
    res = median_of(runs, [sys.executable, "-c", EVIDENTLY, str(ref_path), str(cur_path)])
    out = _child_result(res)
    theirs = out.get("columns", {})
    rows.append(
        {"task": "drift", "tool": "evidently DataDriftPreset", "rows": n, "wall": res["wall"],
         "peak_mb": res["peak_mb"], "drifted": sorted(c for c, v in theirs.items() if v["drift"]),
         "seconds": out.get("seconds"), "error": out.get("error")}
    )  # fmt: skip
    lines = [
        "| column | changed | Conveyor test | Conveyor statistic | Conveyor null rate | Conveyor drift "
        "| Evidently test | Evidently statistic | Evidently drift | agree |",
        "|---|---|---|---:|---|---|---|---:|---|---|",
    ]
    same_value = same_verdict = 0
    for name in ref.columns:
        mine, other = ours.get(name, {}), theirs.get(name, {})
        same_verdict += mine.get("drift") == other.get("drift")
        both = (mine.get("statistic"), other.get("statistic"))
        same_value += None not in both and f"{both[0]:.4f}" == f"{both[1]:.4f}"
        nulls = (
            f"{mine['null_rate_reference']:.1%} → {mine['null_rate_current']:.1%}"
            if mine.get("null_rate_reference") or mine.get("null_rate_current")
            else "–"
        )
        agree = "yes" if mine.get("drift") == other.get("drift") else "**no**"
        lines.append(
            f"| {name} | {'yes' if name in CHANGED else 'no'} | {mine.get('test', '–')} "
            f"| {_fmt(mine.get('statistic'), '.4f')} | {nulls} | {_yes(mine.get('drift'))} "
            f"| {other.get('method', '–')} | {_fmt(other.get('statistic'), '.4f')} "
            f"| {_yes(other.get('drift'))} | {agree} |"
        )
    mine_row, their_row = rows
    lines.append(
        f"\nOn {len(ref.columns)} columns: the two tools' statistics agree to four decimals on {same_value}, "
        f"their verdicts on {same_verdict}."
    )
    if mine_row["wall"] and their_row["wall"] and not their_row.get("error"):
        mine_s, their_s = mine_row["wall"], their_row["wall"]
        lines.append(
            f"Median process wall time: Conveyor {mine_s:.2f} s, Evidently {their_s:.2f} s "
            f"({their_s / mine_s:.1f} × Conveyor's); peak memory {mine_row['peak_mb']:.0f} MB "
            f"against {their_row['peak_mb']:.0f} MB."
        )
    return rows, lines


def bench_validate(n: int, folder: Path, runs: int) -> list[dict[str, Any]]:
    ref, _, cur_path = write_tables(n, folder)
    # the same non-null rules in every tool: the nullable column (a drift case) is left out
    ref = ref.drop(NULLABLE)
    pl.read_parquet(cur_path).drop(NULLABLE).write_parquet(cur_path)
    rows: list[dict[str, Any]] = []
    rules = json.dumps(rules_for(ref))
    for tool, script in (
        ("conveyor", CONVEYOR_VALIDATE),
        ("pandera (polars)", PANDERA_POLARS),
        ("pandera (pandas)", PANDERA_PANDAS),
        ("great expectations", GREAT_EXPECTATIONS),
    ):
        res = median_of(runs, [sys.executable, "-c", script, str(cur_path), rules])
        out = _child_result(res)
        rows.append(
            {"task": "validate", "tool": tool, "rows": n, "wall": res["wall"], "peak_mb": res["peak_mb"],
             "seconds": out.get("seconds"), "ok": out.get("ok"), "error": out.get("error")}
        )  # fmt: skip
    return rows


def _yes(flag: object) -> str:
    return "–" if flag is None else ("yes" if flag else "no")


def _fmt(v: float | None, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def print_table(rows: list[dict[str, Any]]) -> None:
    print("| task | rows | tool | time (s) | process wall (s) | peak memory (MB) | × Conveyor | verdict |")
    # drift: time = the whole process (read, profile, tests, JSON); validate: the validate call alone
    print("|---|---:|---|---:|---:|---:|---:|---|")
    for r in rows:
        timed = r["wall"] if r["task"] == "drift" else r.get("seconds")
        base = next(
            (
                b
                for b in rows
                if b["task"] == r["task"] and b["rows"] == r["rows"] and b["tool"].startswith("conveyor")
            ),
            r,
        )
        base_t = base["wall"] if r["task"] == "drift" else base.get("seconds")
        ratio = timed / base_t if timed and base_t else None
        if r.get("error"):
            verdict = f"error: {r['error']}"
        elif r["task"] == "drift":
            verdict = f"flags {len(r['drifted'])}: {', '.join(r['drifted'])}"
        else:
            verdict = "valid" if r["ok"] else "INVALID"
        print(
            f"| {r['task']} | {r['rows']:,} | {r['tool']} | {_fmt(timed, '.2f')} | {_fmt(r['wall'], '.2f')} "
            f"| {_fmt(r['peak_mb'], '.0f')} | {_fmt(ratio, '.1f')} | {verdict} |"
        )


def tool_versions() -> str:
    """The versions of the compared tools installed in this environment."""
    found = []
    for dist in ("conveyor-ml", "polars", "evidently", "pandas", "pandera", "great-expectations"):
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            found.append(f"{dist} not installed")
    return "tools: " + ", ".join(found)


def print_validation(n: int, folder: Path, runs: int) -> None:
    print(f"\n### Validation, {n:,} rows: every tool {runs} runs, the median shown\n")
    rows = bench_validate(n, folder, runs)
    print_table(rows)
    base = rows[0].get("seconds")
    verdicts = {
        r["tool"]: ("valid" if r.get("ok") else "error" if r.get("error") else "invalid") for r in rows
    }
    if base:
        ratios = ", ".join(f"{r['tool']} {r['seconds'] / base:.1f} ×" for r in rows[1:] if r.get("seconds"))
        print(f"\nValidation call against Conveyor's ({base:.2f} s): {ratios}.")
    agree = "all tools agree" if len(set(verdicts.values())) == 1 else "tools DISAGREE"
    print(f"Verdicts: {', '.join(f'{t} {v}' for t, v in verdicts.items())} ({agree}).", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="table sizes (default 100000)")
    parser.add_argument(
        "--runs", type=int, default=3, help="runs of every tool; the median is shown (default 3)"
    )
    parser.add_argument("--validate-only", action="store_true", help="only the validation table")
    args = parser.parse_args(argv)
    sizes = args.rows or [100_000]
    command = "python -m benchmarks.drift_validation " + " ".join(
        [*(f"--rows {n}" for n in sizes), f"--runs {args.runs}", *(["--validate-only"] * args.validate_only)]
    )
    print(environment_header("drift and validation", command=command), flush=True)
    print(tool_versions(), flush=True)
    # each table is printed as soon as it is measured (a loaded machine may take a while)
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
        for n in sizes if not args.validate_only else []:
            rows, lines = bench_drift(n, Path(tmp), args.runs)
            print(f"\n### Drift, {n:,} rows: every tool {args.runs} runs, the median shown\n")
            print_table(rows)
            print(f"\n### Drift verdicts column by column, {n:,} rows\n")
            print("\n".join(lines), flush=True)
        for n in sizes:
            print_validation(n, Path(tmp), args.runs)
    print(f"\n{load_line('after')}")


if __name__ == "__main__":
    main()
