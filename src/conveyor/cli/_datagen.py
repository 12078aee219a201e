"""``conveyor data generate``: the shop data generator and the tabular one. Works outside a project."""

from __future__ import annotations

import math
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from conveyor.cli._options import JsonOpt, ProjectOpt, load_project, start
from conveyor.cli._output import emit, note
from conveyor.errors import UsageError

if TYPE_CHECKING:
    import polars as pl
    from rich.console import Console

    from conveyor.data import ShopDrift

data_app = typer.Typer(help="Data utilities (the shop data generator, the DVC remote).", no_args_is_help=True)

DEFAULT_POPULARITY_SHIFT = 0.8
DEFAULT_PRICE_SHIFT = 1.3
SHOP_DRIFTS = ("new-category", "popularity[=SHARE]", "price[=FACTOR]", "broken-feed")
CLASSIFICATION_DRIFTS = ("covariate",)


class Kind(StrEnum):
    shop = "shop"
    classification = "classification"


class Format(StrEnum):
    parquet = "parquet"
    csv = "csv"


@data_app.command("generate")
def data_generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the tables into (created).")],
    kind: Annotated[Kind, typer.Option("--kind", help="Shop event log, or a tabular classification set.")] = (
        Kind.shop
    ),
    users: Annotated[int, typer.Option("--users", min=1, help="Shop: number of users.")] = 2000,
    items: Annotated[int, typer.Option("--items", min=1, help="Shop: number of products.")] = 1000,
    categories: Annotated[int, typer.Option("--categories", min=1, help="Shop: product categories.")] = 20,
    days: Annotated[int, typer.Option("--days", min=1, help="Shop: days of events.")] = 28,
    start_day: Annotated[
        str | None, typer.Option("--start", help="Shop: first day, YYYY-MM-DD. Default: 2026-11-02.")
    ] = None,
    sessions_per_week: Annotated[
        float, typer.Option("--sessions-per-week", min=0.0, help="Shop: sessions per user and week (mean).")
    ] = 3.0,
    rows: Annotated[int, typer.Option("--rows", min=1, help="Classification: number of rows.")] = 10_000,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Random seed: the same seed, the same tables.")
    ] = 0,
    fmt: Annotated[Format, typer.Option("--format", help="File format.")] = Format.parquet,
    drift: Annotated[
        list[str] | None,
        typer.Option(
            "--drift",
            help="Repeatable. Shop: new-category, popularity[=SHARE 0..1], price[=FACTOR], broken-feed. "
            "Classification: covariate.",
            show_default=False,
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Generate shop interactions (with products and users) or a classification table, by seed."""
    start(json_out)
    drifts = [d.strip() for d in drift or [] if d.strip()]
    _prepare(out)
    if kind is Kind.shop:
        start_date = _parse_date(start_day)
        shop_drift = parse_shop_drift(drifts)
        tables, summary = _shop_tables(
            users, items, categories, days, start_date, sessions_per_week, seed, shop_drift
        )
    else:
        unknown = [d for d in drifts if d not in CLASSIFICATION_DRIFTS]
        if unknown:
            raise UsageError(
                f"unknown --drift {unknown[0]!r} for --kind classification (valid: covariate)",
                valid=list(CLASSIFICATION_DRIFTS),
            )
        from conveyor.data import generate_classification

        frame = generate_classification(rows, seed=seed, drift=bool(drifts))
        tables = {"train": frame}
        positives = int(frame["label"].sum())
        summary = {"rows": rows, "label_rate": round(positives / frame.height, 4)}

    paths = _write(out, tables, fmt)
    payload: dict[str, Any] = {
        "ok": True,
        "kind": kind.value,
        "out": str(out),
        "format": fmt.value,
        "seed": seed,
        "drift": drifts,
        "files": {name: {"path": str(paths[name]), "rows": t.height} for name, t in tables.items()},
        **summary,
    }

    def human(console: Console) -> None:
        for name, table in tables.items():
            console.print(f"wrote {paths[name]} ({table.height:,} rows)")

    emit(payload, human)


def parse_shop_drift(values: list[str]) -> ShopDrift:
    """``new-category``, ``popularity[=SHARE]``, ``price[=FACTOR]``, ``broken-feed`` → a ShopDrift."""
    from conveyor.data import ShopDrift

    fields: dict[str, Any] = {}
    for raw in values:
        name, _, value = raw.partition("=")
        name = name.strip().lower()
        if name in ("new-category", "broken-feed") and not value:
            fields[name.replace("-", "_")] = True
        elif name == "popularity":
            fields["popularity_shift"] = _number(raw, value, DEFAULT_POPULARITY_SHIFT)
        elif name == "price":
            fields["price_shift"] = _number(raw, value, DEFAULT_PRICE_SHIFT)
        else:
            raise UsageError(
                f"unknown --drift {raw!r} (valid: {', '.join(SHOP_DRIFTS)})", valid=list(SHOP_DRIFTS)
            )
    shift = fields.get("popularity_shift", 0.0)
    if not 0.0 <= shift <= 1.0:
        raise UsageError(f"--drift popularity={shift:g}: the share must lie in 0..1")
    factor = fields.get("price_shift", 1.0)
    if not factor > 0:
        raise UsageError(f"--drift price={factor:g}: the factor must be positive")
    return ShopDrift(**fields)


def _number(raw: str, value: str, default: float) -> float:
    if not value:
        return default
    try:
        number = float(value)
    except ValueError as exc:
        raise UsageError(f"--drift {raw!r}: {value!r} is not a number") from exc
    if not math.isfinite(number):
        raise UsageError(f"--drift {raw!r}: {value!r} is not a finite number")
    return number


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise UsageError(f"--start must be a date YYYY-MM-DD, got {value!r}") from exc


def _shop_tables(
    users: int,
    items: int,
    categories: int,
    days: int,
    start_date: date | None,
    sessions_per_week: float,
    seed: int,
    drift: ShopDrift,
) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
    from conveyor.data import ShopConfig, ShopWorld

    if categories > items:
        raise UsageError(f"--categories ({categories}) must not exceed --items ({items})")
    config = ShopConfig(
        n_users=users,
        n_items=items,
        n_categories=categories,
        seed=seed,
        sessions_per_user_per_week=sessions_per_week,
    )
    first = start_date or config.start
    world = ShopWorld.create(config)
    note(f"simulating {days} days of a shop with {users:,} users and {items:,} products …")
    interactions = world.simulate(first, days, drift=drift)
    tables = {"interactions": interactions, "products": world.catalogue(drift), "users": world.users}
    events: dict[str, int] = {}
    if not drift.broken_feed:
        events = {str(k): int(v) for k, v in interactions["event"].value_counts().iter_rows()}
    summary = {"users": users, "items": items, "days": days, "start": first.isoformat(), "events": events}
    return tables, summary


def _prepare(out: Path) -> None:
    """Create the output folder before any work, so that a bad --out fails at once."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --out {out}: {exc.strerror or exc}") from exc
    if not out.is_dir():
        raise UsageError(f"--out {out} is not a folder")


def _write(out: Path, tables: dict[str, pl.DataFrame], fmt: Format) -> dict[str, Path]:
    import polars as pl

    paths: dict[str, Path] = {}
    for name, table in tables.items():
        path = out / f"{name}.{fmt.value}"
        frame = table
        if fmt is Format.csv:  # CSV has no vector type: a taste vector becomes one column per dimension
            for column, dtype in table.schema.items():
                if isinstance(dtype, pl.Array):
                    parts = [pl.col(column).arr.get(i).alias(f"{column}_{i}") for i in range(dtype.size)]
                    frame = frame.with_columns(parts).drop(column)
        try:
            if fmt is Format.csv:
                frame.write_csv(path)
            else:
                frame.write_parquet(path)
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
        paths[name] = path
    return paths


@data_app.command("remote")
def data_remote(
    project: ProjectOpt = None,
    push: Annotated[bool, typer.Option("--push/--no-push", help="Push the tracked data there too.")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Make data.remote (s3://bucket/prefix) the project's DVC remote, and push the data there."""
    start(json_out)
    from conveyor.pipeline import use_data_remote

    proj = load_project(project)
    remote = use_data_remote(proj, push=push)
    emit({"ok": True, "remote": remote, "pushed": push}, lambda c: c.print(f"DVC remote: {remote}"))


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
