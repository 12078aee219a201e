"""Bringing your own data to ``conveyor init --data FILE``: column mapping and timestamps.

A recommender project needs, one row per interaction:

=============  ============  ========  ================================================
column         option        required  holds
=============  ============  ========  ================================================
``user_id``    ``--user``    yes       who (integer or string id)
``item_id``    ``--item``    yes       what (integer or string id)
``timestamp``  ``--timestamp`` yes     when: a datetime, an ISO 8601 string, or epoch
                                       seconds / milliseconds (integers or floats)
``event``      ``--event``   no        the interaction type (view, add_to_cart, ...)
``weight``     ``--weight``  no        an explicit confidence weight (a number)
=============  ============  ========  ================================================

The options name *your* columns; the mapping goes to ``data.columns`` in
``conveyor.yaml``. Timestamps that are not datetimes already are converted once,
here, and the data is written as Parquet with a datetime column, so every later
stage reads one type. The form is detected and stated: epoch numbers by their
magnitude (seconds below 10^11, i.e. before the year 5138; milliseconds below
10^14), strings by parsing them as ISO 8601 (every non-empty value must parse).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from conveyor.errors import InputError, UsageError

EPOCH_SECONDS_BELOW = 1e11  # 10^11 s is the year 5138; 10^11 ms is 1973
EPOCH_MILLIS_BELOW = 1e14  # 10^14 ms is the year 5138
DATETIME = "datetime"
ISO_STRINGS = "ISO 8601 strings"
EPOCH_SECONDS = "epoch seconds"
EPOCH_MILLIS = "epoch milliseconds"
MAX_EVENT_TYPES = 50
DEFAULT_EVENT_WEIGHT = 1.0


@dataclass(frozen=True)
class ColumnMapping:
    """Which of the file's columns hold the user, item, timestamp, event and weight.

    ``event`` and ``weight`` None: use a column named ``event`` / none when absent.
    ``given`` lists the options the user passed (to refuse them for a classifier).
    """

    user: str = "user_id"
    item: str = "item_id"
    timestamp: str = "timestamp"
    event: str | None = None
    weight: str | None = None
    given: tuple[str, ...] = ()

    @classmethod
    def from_options(
        cls,
        *,
        user: str | None = None,
        item: str | None = None,
        timestamp: str | None = None,
        event: str | None = None,
        weight: str | None = None,
    ) -> ColumnMapping:
        options = {
            "--user": user,
            "--item": item,
            "--timestamp": timestamp,
            "--event": event,
            "--weight": weight,
        }
        for flag, value in options.items():
            if value is not None and not value.strip():
                raise UsageError(f"{flag}: empty column name")
        defaults = cls()
        return cls(
            user=user or defaults.user,
            item=item or defaults.item,
            timestamp=timestamp or defaults.timestamp,
            event=event,
            weight=weight,
            given=tuple(flag for flag, value in options.items() if value is not None),
        )


@dataclass(frozen=True)
class PreparedData:
    """The user's interactions, ready to write: the frame, the mapping to record, what was done."""

    frame: pl.DataFrame
    columns: dict[str, str | None]  # data.columns of conveyor.yaml
    timestamp_format: str  # one of DATETIME, ISO_STRINGS, EPOCH_SECONDS, EPOCH_MILLIS
    converted: bool  # the timestamp column was converted (write Parquet, not a copy)
    event_weights: dict[str, float] | None  # set when the events are not the default types


def expected_columns_text(mapping: ColumnMapping) -> str:
    """The one-line description of the columns a recommender needs (for error messages)."""
    return (
        f"user {mapping.user!r} (--user COL), item {mapping.item!r} (--item COL), "
        f"timestamp {mapping.timestamp!r} (--timestamp COL: datetimes, ISO 8601 strings, epoch s or ms); "
        "optional: --event COL, --weight COL"
    )


def prepare_interactions(
    frame: pl.DataFrame, mapping: ColumnMapping, path: Path, default_weights: dict[str, float]
) -> PreparedData:
    """Check the mapped columns of ``frame`` and convert its timestamps; InputError names the fix."""
    required = [mapping.user, mapping.item, mapping.timestamp]
    optional = [c for c in (mapping.event, mapping.weight) if c is not None]
    missing = [c for c in [*required, *optional] if c not in frame.columns]
    if missing:
        raise InputError(
            f"--data {path}: the recommender needs columns {', '.join(required)} "
            f"(missing: {', '.join(missing)}; has: {', '.join(frame.columns)}); "
            f"map yours: {expected_columns_text(mapping)}",
            path=str(path),
        )
    if len(set(required + optional)) != len(required + optional):
        raise UsageError(f"--data {path}: one column mapped to two roles ({', '.join(required + optional)})")
    if frame.height == 0:
        raise InputError(f"--data {path}: no rows", path=str(path))
    event = mapping.event or ("event" if "event" in frame.columns else None)
    weight = mapping.weight
    if weight is not None and not frame.schema[weight].is_numeric():
        raise InputError(
            f"--weight {weight}: column is {frame.schema[weight]}, expected numbers", path=str(path)
        )
    text_file = path.suffix.lower() == ".csv"
    stamps, form = parse_timestamps(
        frame[mapping.timestamp], f"--timestamp {mapping.timestamp}", text_file=text_file
    )
    converted = form != DATETIME or stamps.dtype != frame.schema[mapping.timestamp]
    if converted:
        frame = frame.with_columns(stamps.alias(mapping.timestamp))
    return PreparedData(
        frame=frame,
        columns={
            "user": mapping.user,
            "item": mapping.item,
            "timestamp": mapping.timestamp,
            "event": event,
            "weight": weight,
        },
        timestamp_format=form,
        converted=converted,
        event_weights=_event_weights(frame, event, weight, default_weights),
    )


def parse_timestamps(column: pl.Series, what: str, *, text_file: bool = False) -> tuple[pl.Series, str]:
    """``column`` as microsecond datetimes (naive UTC when converted), and the form it was in.

    ``text_file``: the column comes from a CSV file, whose reader already turned ISO 8601
    text into datetimes; the form stated is then the text's.
    """
    dtype = column.dtype
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        if not text_file:
            return (column if dtype != pl.Date else column.cast(pl.Datetime("us"))), DATETIME
        return _naive_utc(column.cast(pl.Datetime("us", getattr(dtype, "time_zone", None)))), ISO_STRINGS
    if dtype.is_numeric() and dtype != pl.Boolean:
        values = column.cast(pl.Float64).fill_nan(None)
        present = values.drop_nulls()
        if present.len() == 0:
            raise InputError(f"{what}: no timestamp values")
        smallest = float(present.min())  # type: ignore[arg-type]
        if smallest < 0:
            raise InputError(f"{what}: negative epoch values (e.g. {smallest:g}); expected times after 1970")
        largest = float(present.max())  # type: ignore[arg-type]
        if largest < EPOCH_SECONDS_BELOW:
            unit, factor = EPOCH_SECONDS, 1_000_000
        elif largest < EPOCH_MILLIS_BELOW:
            unit, factor = EPOCH_MILLIS, 1_000
        else:
            raise InputError(
                f"{what}: epoch values up to {largest:.0f} are neither seconds nor milliseconds "
                "(microseconds or nanoseconds? divide them first)"
            )
        micros = (values * factor).round(0).cast(pl.Int64)
        return micros.cast(pl.Datetime("us")).alias(column.name), unit
    if dtype == pl.String:
        return _parse_iso(column, what), ISO_STRINGS
    raise InputError(
        f"{what}: column is {dtype}; expected datetimes, ISO 8601 strings or epoch seconds/milliseconds"
    )


def _naive_utc(column: pl.Series) -> pl.Series:
    dtype = column.dtype
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return column.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return column


def _parse_iso(column: pl.Series, what: str) -> pl.Series:
    """ISO 8601 text → datetimes; values with an offset are converted to UTC (naive UTC out).

    Parsed value by value with :meth:`datetime.fromisoformat` (Python 3.11 reads every
    ISO 8601 form a log holds, ``Z`` included), because polars infers one format from
    the first value and fails on a column that mixes forms.
    """
    parsed: list[datetime | None] = []
    bad: list[str] = []
    for text in column.to_list():
        if text is None or not text.strip():
            parsed.append(None)
            continue
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            bad.append(text)
            parsed.append(None)
            continue
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        parsed.append(moment)
    if bad:
        raise InputError(f"{what}: {len(bad)} value(s) are not ISO 8601 timestamps (e.g. {bad[0]!r})")
    return pl.Series(column.name, parsed, dtype=pl.Datetime("us"))


def _event_weights(
    frame: pl.DataFrame, event: str | None, weight: str | None, defaults: dict[str, float]
) -> dict[str, float] | None:
    """Event weights for event types the defaults do not know (each counts 1), else None."""
    if event is None or weight is not None:
        return None
    kinds = frame[event].cast(pl.String).drop_nulls().unique().sort().to_list()
    if all(k in defaults for k in kinds):
        return None
    if len(kinds) > MAX_EVENT_TYPES:
        raise InputError(
            f"--event {event}: {len(kinds)} distinct values; an event column holds a few interaction "
            "types (view, add_to_cart, purchase); pass --weight COL for a numeric weight instead"
        )
    return {k: defaults.get(k, DEFAULT_EVENT_WEIGHT) for k in kinds}


def mapping_summary(prepared: PreparedData) -> dict[str, Any]:
    """What init tells the user about their data."""
    return {"columns": dict(prepared.columns), "timestamps": prepared.timestamp_format}
