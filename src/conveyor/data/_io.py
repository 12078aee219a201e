"""Reading tables: CSV or Parquet into a Polars DataFrame, with one-line errors.

Every way a file can be unreadable — missing, a directory, empty, header only,
truncated or corrupt Parquet, binary garbage, invalid UTF-8, the wrong
delimiter — becomes an :class:`~conveyor.errors.InputError` whose message
names the file and what is wrong, so that the command line can print one line
and exit 2 instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from conveyor.errors import InputError

PARQUET_MAGIC = b"PAR1"
PARQUET_SUFFIXES = frozenset({".parquet", ".pq", ".parq"})
CSV_SUFFIXES = frozenset({".csv", ".txt"})
TSV_SUFFIXES = frozenset({".tsv", ".tab"})
# Rows Polars looks at to guess column types; a later row that does not fit
# makes us retry with the whole file (slower, but only for odd files).
INFER_SCHEMA_ROWS = 10_000
_SNIFF_BYTES = 64 * 1024
_OTHER_DELIMITERS = (";", "\t", "|")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].strip() if text else type(exc).__name__


def _check_file(path: Path) -> int:
    """The size of ``path``; InputError when it is no readable, non-empty file."""
    if not path.exists():
        raise InputError(f"{path}: no such file", path=str(path))
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}", path=str(path)) from exc
    if size == 0:
        raise InputError(f"{path}: empty file (0 bytes)", path=str(path))
    return size


def _head(path: Path, n: int = _SNIFF_BYTES) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}", path=str(path)) from exc


def _is_parquet_start(head: bytes) -> bool:
    return head[:4] == PARQUET_MAGIC


def _read_parquet(path: Path, size: int, columns: list[str] | None) -> pl.DataFrame:
    with path.open("rb") as fh:
        start = fh.read(4)
        fh.seek(max(size - 4, 0))
        end = fh.read(4)
    if start != PARQUET_MAGIC:
        raise InputError(f"{path}: not a Parquet file (no PAR1 header)", path=str(path))
    if size < 12 or end != PARQUET_MAGIC:
        raise InputError(f"{path}: truncated or corrupt Parquet file (no PAR1 footer)", path=str(path))
    try:
        return pl.read_parquet(path, columns=columns)
    except pl.exceptions.ColumnNotFoundError as exc:
        raise InputError(f"{path}: column not found: {_first_line(exc)}", path=str(path)) from exc
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise InputError(f"{path}: corrupt Parquet file: {_first_line(exc)}", path=str(path)) from exc


def _check_text(path: Path, head: bytes) -> None:
    if b"\x00" in head:
        raise InputError(f"{path}: binary data (NUL bytes), expected a CSV text file", path=str(path))
    try:
        # the last bytes may cut a multi-byte character in two: ignore that tail
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:
            raise InputError(
                f"{path}: not valid UTF-8 text (byte 0x{head[exc.start]:02x} at offset {exc.start})",
                path=str(path),
            ) from exc


def _polars_csv(path: Path, separator: str, columns: list[str] | None, infer: int | None) -> pl.DataFrame:
    return pl.read_csv(
        path,
        separator=separator,
        columns=columns,
        infer_schema_length=infer,
        try_parse_dates=True,
        encoding="utf8",
    )


def _read_csv(path: Path, separator: str, columns: list[str] | None) -> pl.DataFrame:
    head = _head(path)
    _check_text(path, head)
    try:
        try:
            df = _polars_csv(path, separator, columns, INFER_SCHEMA_ROWS)
        except pl.exceptions.ComputeError:
            # a value past the first rows did not fit the guessed type: look at every row
            df = _polars_csv(path, separator, columns, None)
    except pl.exceptions.NoDataError as exc:
        raise InputError(f"{path}: empty file (no header)", path=str(path)) from exc
    except pl.exceptions.ColumnNotFoundError as exc:
        raise InputError(f"{path}: column not found: {_first_line(exc)}", path=str(path)) from exc
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        message = _first_line(exc)
        if "utf-8" in message.lower() or "utf8" in message.lower():
            raise InputError(f"{path}: not valid UTF-8 text", path=str(path)) from exc
        raise InputError(f"{path}: malformed CSV: {message}", path=str(path)) from exc
    renamed = [c for c in df.columns if "_duplicated_" in c and c.rsplit("_duplicated_", 1)[0] in df.columns]
    if renamed:  # Polars renames a repeated header name to name_duplicated_0
        original = renamed[0].rsplit("_duplicated_", 1)[0]
        raise InputError(f"{path}: duplicate column name {original!r} in the header", path=str(path))
    if df.width == 1:
        name = df.columns[0]
        for other in _OTHER_DELIMITERS:
            if other != separator and other in name:
                shown = "\\t" if other == "\t" else other
                raise InputError(
                    f"{path}: one column only ({name[:60]!r}): the file seems delimited by "
                    f"{shown!r}, not {separator!r} — wrong delimiter",
                    path=str(path),
                )
    return df


def _read_folder(path: Path, columns: list[str] | None) -> pl.DataFrame:
    """A folder of table files (a partitioned dataset) read as one table, files in name order."""
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in PARQUET_SUFFIXES)
    if not files:
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in CSV_SUFFIXES)
    if not files:
        raise InputError(
            f"{path}: is a directory with no .parquet or .csv files, expected a CSV or Parquet file",
            path=str(path),
        )
    parts = [_read_file(f, columns) for f in files]
    try:
        return pl.concat(parts, how="vertical_relaxed")
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"{path}: files with different columns: {_first_line(exc)}", path=str(path)) from exc


def _read_file(path: Path, columns: list[str] | None) -> pl.DataFrame:
    size = _check_file(path)
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        df = _read_parquet(path, size, columns)
    elif suffix in CSV_SUFFIXES:
        df = _read_csv(path, ",", columns)
    elif suffix in TSV_SUFFIXES:
        df = _read_csv(path, "\t", columns)
    elif _is_parquet_start(_head(path, 4)):
        df = _read_parquet(path, size, columns)
    else:
        df = _read_csv(path, ",", columns)
    return df


def read_table(path: Path | str, *, columns: list[str] | None = None) -> pl.DataFrame:
    """Read a CSV or Parquet table (chosen by suffix, sniffed when unknown).

    A folder holding ``.parquet`` (or else ``.csv``) files is read as one table.
    Raises :class:`InputError` with one line naming the file and the problem.
    A table without data rows is an error too: there is nothing to check.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file", path=str(path))
    df = _read_folder(path, columns) if path.is_dir() else _read_file(path, columns)
    if df.height == 0:
        what = "a header but no data rows" if df.width else "no columns and no rows"
        raise InputError(f"{path}: {what}", path=str(path))
    return df


__all__ = ["read_table"]


def read_text_file(path: Path, *, name: str, expected: str) -> str:
    """The UTF-8 text of a small input file (schema, profile); one-line InputError otherwise.

    ``name`` is what the file is ("schema file"), ``expected`` what a directory was
    mistaken for ("a schema YAML file").
    """
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such {name}", path=str(path)) from exc
    except IsADirectoryError as exc:
        raise InputError(f"{path}: is a directory, expected {expected}", path=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: {name.removesuffix(' file')} is not valid UTF-8 text", path=str(path)
        ) from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}", path=str(path)) from exc
