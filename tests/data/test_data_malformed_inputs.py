"""Every unreadable input gives exit 2 and one line naming the file and the problem — no traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from conveyor.data import read_table
from conveyor.errors import InputError

GOOD_SCHEMA = "version: 1\ncolumns:\n  a: {type: integer}\n  b: {type: string}\n"


def _good_parquet(path: Path) -> Path:
    pl.DataFrame({"a": list(range(100)), "b": ["x", "y"] * 50}).write_parquet(path)
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# name -> (make the data file in tmp, schema text or None for the good schema, expected message part)
def _empty(tmp: Path) -> Path:
    return _write(tmp / "empty.csv", b"")


def _header_only(tmp: Path) -> Path:
    return _write(tmp / "header.csv", b"a,b\n")


def _truncated_parquet(tmp: Path) -> Path:
    data = _good_parquet(tmp / "good.parquet").read_bytes()
    return _write(tmp / "truncated.parquet", data[: len(data) // 2])


def _corrupt_parquet(tmp: Path) -> Path:
    data = bytearray(_good_parquet(tmp / "good.parquet").read_bytes())
    data[8:-8] = bytes(len(data) - 16)  # header and footer magic kept, the inside zeroed
    return _write(tmp / "corrupt.parquet", bytes(data))


def _random_bytes(tmp: Path) -> Path:
    return _write(tmp / "noise.bin", np.random.default_rng(0).bytes(4096))


def _random_bytes_as_parquet(tmp: Path) -> Path:
    return _write(tmp / "noise.parquet", np.random.default_rng(1).bytes(4096))


def _wrong_delimiter(tmp: Path) -> Path:
    return _write(tmp / "semi.csv", b"a;b\n1;x\n2;y\n")


def _wrong_delimiter_unknown(tmp: Path) -> Path:
    return _write(tmp / "space.csv", b"a b\n1 x\n2 y\n")


def _directory(tmp: Path) -> Path:
    (tmp / "folder").mkdir()
    return tmp / "folder"


def _missing(tmp: Path) -> Path:
    return tmp / "nowhere.csv"


def _invalid_utf8(tmp: Path) -> Path:
    return _write(tmp / "latin1.csv", "a,b\n1,café\n2,naïve\n".encode("latin-1"))


def _ragged_csv(tmp: Path) -> Path:
    return _write(tmp / "ragged.csv", b"a,b\n1,x\n2,y,extra,more\n3\n")


def _parquet_suffix_but_csv(tmp: Path) -> Path:
    return _write(tmp / "liar.parquet", b"a,b\n1,x\n")


def _nul_bytes_csv(tmp: Path) -> Path:
    return _write(tmp / "nul.csv", b"a,b\n1,\x00\x00\n")


DATA_CASES = {
    "empty file": (_empty, "empty file"),
    "header only": (_header_only, "a header but no data rows"),
    "truncated parquet": (_truncated_parquet, "truncated or corrupt Parquet file"),
    "corrupt parquet": (_corrupt_parquet, "corrupt Parquet file"),
    "random bytes": (_random_bytes, "binary data"),
    "random bytes named .parquet": (_random_bytes_as_parquet, "not a Parquet file"),
    "wrong delimiter": (_wrong_delimiter, "wrong delimiter"),
    "unknown delimiter, schema expects two columns": (_wrong_delimiter_unknown, "wrong delimiter?"),
    "directory without tables": (_directory, "is a directory"),
    "missing path": (_missing, "no such file"),
    "invalid UTF-8": (_invalid_utf8, "not valid UTF-8"),
    "ragged CSV rows": (_ragged_csv, "malformed CSV"),
    "CSV named .parquet": (_parquet_suffix_but_csv, "not a Parquet file"),
    "NUL bytes in CSV": (_nul_bytes_csv, "binary data"),
}

SCHEMA_CASES = {
    "bad schema YAML": ("columns: [a, b\n", "invalid YAML"),
    "schema with an unknown rule": (
        "columns:\n  a: {type: integer, maximum: 3}\n",
        "columns.a.maximum: unknown rule",
    ),
    "schema with an unknown type": ("columns:\n  a: {type: complex}\n", "columns.a.type"),
    "schema that is a list": ("- a\n- b\n", "expected a schema mapping"),
    "empty schema file": ("", "got an empty file"),
    "schema key not a column": ("columns:\n  a: {type: integer}\nkey: [zz]\n", "key: column 'zz'"),
    "schema with a bad null rate": ("columns:\n  a: {max_null_rate: 2}\n", "columns.a.max_null_rate"),
}


def _one_line_error(result) -> str:
    """The single stderr line of an exit-2 InputError (asserted), for the caller to check."""
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("conveyor: InputError: "), lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


@pytest.mark.parametrize("case", list(DATA_CASES), ids=list(DATA_CASES))
def test_unreadable_data_exits_2_with_one_line(case, cli, tmp_path):
    make, needle = DATA_CASES[case]
    data = make(tmp_path)
    schema = tmp_path / "schema.yaml"
    schema.write_text(GOOD_SCHEMA)
    result = cli("validate", data, "--schema", schema)
    assert needle in _one_line_error(result)
    assert str(data) in result.stderr


@pytest.mark.parametrize("case", list(SCHEMA_CASES), ids=list(SCHEMA_CASES))
def test_broken_schema_exits_2_with_one_line(case, cli, tmp_path):
    text, needle = SCHEMA_CASES[case]
    data = _good_parquet(tmp_path / "good.parquet")
    schema = tmp_path / "schema.yaml"
    schema.write_text(text)
    result = cli("validate", data, "--schema", schema)
    assert needle in _one_line_error(result)
    assert str(schema) in result.stderr


def test_json_mode_prints_one_error_object(cli, tmp_path):
    schema = tmp_path / "schema.yaml"
    schema.write_text(GOOD_SCHEMA)
    result = cli("validate", _empty(tmp_path), "--schema", schema, "--json")
    assert result.exit_code == 2
    payload = result.json()
    assert payload["ok"] is False
    assert payload["error"]["type"] == "InputError"
    assert "empty file" in payload["error"]["message"]


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("garbage.json", b"{not json", "not valid JSON"),
        ("other.json", b'{"a": 1}', "not a Conveyor reference profile"),
        ("wrong.json", b'{"format": "conveyor-reference-profile", "version": 1, "n_rows": "x"}', "corrupt"),
    ],
)
def test_unreadable_reference_profile_exits_2(cli, tmp_path, name, content, needle):
    profile = _write(tmp_path / name, content)
    result = cli("drift", profile, _good_parquet(tmp_path / "cur.parquet"))
    assert needle in _one_line_error(result)


def test_drift_on_unreadable_current_exits_2(cli, tmp_path):
    good = _good_parquet(tmp_path / "ref.parquet")
    assert "truncated" in _one_line_error(cli("drift", good, _truncated_parquet(tmp_path)))


def test_schema_infer_on_unreadable_data_exits_2(cli, tmp_path):
    result = cli("schema", "infer", _header_only(tmp_path), "--out", tmp_path / "s.yaml")
    assert "header" in _one_line_error(result)


def test_read_table_reads_csv_tsv_parquet_and_folders(tmp_path):
    frame = pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    frame.write_csv(tmp_path / "t.csv")
    frame.write_csv(tmp_path / "t.tsv", separator="\t")
    frame.write_parquet(tmp_path / "t.parquet")
    frame.write_parquet(tmp_path / "t.data")  # unknown suffix: sniffed
    for name in ("t.csv", "t.tsv", "t.parquet", "t.data"):
        assert read_table(tmp_path / name).equals(frame)
    assert read_table(tmp_path / "t.parquet", columns=["b"]).columns == ["b"]
    parts = tmp_path / "parts"
    parts.mkdir()
    frame.write_parquet(parts / "0.parquet")
    frame.write_parquet(parts / "1.parquet")
    assert read_table(parts).height == 6
    with pytest.raises(InputError, match="column not found"):
        read_table(tmp_path / "t.parquet", columns=["nope"])


def test_read_table_reads_late_type_changes(tmp_path):
    # the first 10,000 rows look like integers; a float comes later
    lines = ["x"] + ["1"] * 10_500 + ["2.5"]
    (tmp_path / "late.csv").write_text("\n".join(lines) + "\n")
    df = read_table(tmp_path / "late.csv")
    assert df.schema["x"] == pl.Float64
    assert df.height == 10_501
