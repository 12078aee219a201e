"""Malformed tables never pass: `drift`, `validate` and `schema infer` over one table of bad files.

Every bad file is the "current" side of `conveyor drift GOOD BAD` and the data of
`conveyor validate BAD --schema good.yaml`: the answer is exit 1 (a check said no)
or 2 (unusable input) with one line on stderr naming the problem — never exit 0,
never a traceback. `schema infer` refuses what it cannot read (exit 2) and infers
a loadable schema from the rest (±inf, NaN, mixed types, all-null columns).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from conveyor.data import Schema

N = 400


def _good() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    return pl.DataFrame({"x": rng.normal(10, 2, N).round(3), "c": rng.choice(["p", "q", "r"], N)})


def _csv(rows: list[tuple[str, str]], header: str = "x,c") -> bytes:
    return ("\n".join([header, *(f"{x},{c}" for x, c in rows)]) + "\n").encode()


def _good_rows() -> list[tuple[str, str]]:
    return [(str(x), c) for x, c in _good().iter_rows()]


def _with_x(values: Callable[[int], str]) -> bytes:
    return _csv([(values(i), c) for i, (_, c) in enumerate(_good_rows())])


def _truncated_parquet(tmp: Path) -> bytes:
    _good().write_parquet(tmp / "whole.parquet")
    data = (tmp / "whole.parquet").read_bytes()
    return data[: len(data) // 2]


# name -> (file name, content maker, (drift exit, drift message part), (validate exit, validate message part))
CASES: dict[str, tuple[str, Callable[[Path], bytes], tuple[int, str], tuple[int, str]]] = {
    "empty file": ("e.csv", lambda t: b"", (2, "empty file"), (2, "empty file")),
    "header only": ("h.csv", lambda t: b"x,c\n", (2, "header but no data"), (2, "header but no data")),
    "binary garbage": (
        "g.csv",
        lambda t: np.random.default_rng(3).bytes(2048),
        (2, "binary data"),
        (2, "binary data"),
    ),
    "truncated parquet": ("t.parquet", _truncated_parquet, (2, "truncated"), (2, "truncated")),
    "wrong delimiter": (
        "d.csv",
        lambda t: _csv(_good_rows()).replace(b",", b";"),
        (2, "wrong delimiter"),
        (2, "wrong delimiter"),
    ),
    "duplicate column names": (
        "dup.csv",
        lambda t: _csv(_good_rows(), header="x,x"),
        (2, "duplicate column name 'x'"),
        (2, "duplicate column name 'x'"),
    ),
    "all-null column": (
        "null.csv",
        lambda t: _with_x(lambda i: ""),
        (2, "column 'x'"),
        (1, "not_null"),
    ),
    "±inf values": (
        "inf.csv",
        lambda t: _with_x(lambda i: "inf" if i % 7 == 0 else ("-inf" if i % 7 == 1 else "10.0")),
        (2, "infinite value"),
        (1, "max"),
    ),
    "all NaN": (
        "nan.csv",
        lambda t: _with_x(lambda i: "NaN"),
        (2, "every row is null or NaN"),
        (1, "not_null"),
    ),
    "NaN in 40 % of rows": (
        "somenan.csv",
        lambda t: _with_x(lambda i: "NaN" if i % 5 < 2 else "10.5"),
        (1, "dataset drift"),
        (1, "not_null"),
    ),
    "mixed types": (
        "mixed.csv",
        lambda t: _with_x(lambda i: "abc" if i == 17 else "10.25"),
        (2, "type changed: numeric in the reference, String in the current data (e.g. 'abc')"),
        (1, "type"),
    ),
}
READABLE = {"all-null column", "±inf values", "all NaN", "NaN in 40 % of rows", "mixed types"}


@pytest.fixture
def files(tmp_path: Path) -> Path:
    _good().write_parquet(tmp_path / "good.parquet")
    Schema.model_validate(
        {"columns": {"x": {"type": "float", "nullable": False, "min": 0, "max": 20}, "c": {"type": "string"}}}
    ).save(tmp_path / "good.yaml")
    return tmp_path


def _bad(files: Path, case: str) -> Path:
    name, make, _, _ = CASES[case]
    path = files / name
    path.write_bytes(make(files))
    return path


def _one_line(result, code: int) -> str:
    """The single stderr line of a command that exited ``code`` (asserted), for the caller to check."""
    assert result.exit_code == code, (result.exit_code, result.stdout[-300:], result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_drift_answers_every_malformed_table(cli, files, case):
    bad = _bad(files, case)
    code, needle = CASES[case][2]
    assert needle in _one_line(cli("drift", files / "good.parquet", bad), code)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_validate_answers_every_malformed_table(cli, files, case):
    bad = _bad(files, case)
    code, needle = CASES[case][3]
    assert needle in _one_line(cli("validate", bad, "--schema", files / "good.yaml"), code)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_schema_infer_reads_what_it_can_and_refuses_the_rest(cli, files, case):
    bad = _bad(files, case)
    out = files / "inferred.yaml"
    result = cli("schema", "infer", bad, "--out", out)
    if case not in READABLE:
        assert CASES[case][3][1] in _one_line(result, 2)
        return
    assert result.exit_code == 0, result.stderr
    Schema.load(out)  # a loadable schema: no inf/NaN bounds, no internal error
    assert cli("validate", bad, "--schema", out).exit_code == 0  # the data it came from passes it


def test_infinite_values_in_the_reference_are_refused(cli, files):
    inf = files / "inf.csv"
    inf.write_bytes(CASES["±inf values"][1](files))
    line = _one_line(cli("drift", inf, files / "good.parquet"), 2)
    assert "infinite value(s) (±inf) in the reference data" in line


def test_tables_without_a_shared_column_are_refused(cli, files):
    pl.DataFrame({"y": [1.0, 2.0, 3.0], "z": ["a", "b", "c"]}).write_parquet(files / "other.parquet")
    result = cli("drift", files / "good.parquet", files / "other.parquet")
    assert "no column in common with the reference" in _one_line(result, 2)
    assert "reference: x, c; current: y, z" in result.stderr


def test_schema_infer_on_infinities_and_nan_keeps_finite_bounds(cli, files):
    values = [float("inf"), -float("inf"), float("nan"), *np.linspace(1, 2, 97)]
    pl.DataFrame({"x": values}).write_parquet(files / "odd.parquet")
    assert cli("schema", "infer", files / "odd.parquet", "--out", files / "odd.yaml").exit_code == 0
    rule = Schema.load(files / "odd.yaml").columns["x"]
    assert (rule.min, rule.max) == (None, None)  # both infinities were seen: no bound on either side
    assert rule.nullable
    assert rule.observed_null_rate == pytest.approx(0.01)  # NaN counts as a null
