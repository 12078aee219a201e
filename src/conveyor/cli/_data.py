"""Data-check commands: ``schema infer``, ``validate``, ``drift``."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from conveyor.cli._options import JsonOpt, ProjectOpt, load_project, start
from conveyor.cli._output import emit, note
from conveyor.cli._results import publish
from conveyor.config import DriftSection
from conveyor.errors import DriftDetected, InputError, ProjectNotFoundError, UsageError, ValidationFailed

if TYPE_CHECKING:
    import polars as pl
    from pyspark.sql import SparkSession

    from conveyor.data import DriftReport, ReferenceProfile, Schema, ValidationReport
    from conveyor.project import Project

schema_app = typer.Typer(help="Infer and edit data schemas.", no_args_is_help=True)

NO_REFERENCE_NOTE = "no reference profile yet — first training run sets it"
PROFILE_SUFFIXES = (".json",)


def _optional_project(project: Path | None) -> Project | None:
    """The project when there is one; None outside any project (a broken conveyor.yaml still fails)."""
    try:
        return load_project(project)
    except ProjectNotFoundError:
        if project is not None:
            raise
        return None


StreamOpt = Annotated[
    bool,
    typer.Option(
        "--stream",
        help="Read a Parquet file, folder or quoted glob in bounded memory (Polars streaming engine; "
        "numeric quantiles from KLL sketches).",
    ),
]


SparkOpt = Annotated[
    bool,
    typer.Option(
        "--spark",
        help="Compute it on Spark where the data lives (spark.master of the project): Parquet paths, "
        "folders or globs (local, hdfs://, s3a://…), or table:NAME for a table of Spark's catalog.",
    ),
]


def _one_engine(stream: bool, on_spark: bool) -> None:
    if stream and on_spark:
        raise UsageError("--stream and --spark are two engines for the same checks: choose one")


@contextlib.contextmanager
def _spark(project: Path | None) -> Iterator[SparkSession]:
    """The Spark session of the project's ``spark`` section (the defaults outside a project)."""
    from conveyor.config import SparkSection
    from conveyor.spark import spark_session

    proj = _optional_project(project)
    with spark_session(proj.settings.spark if proj is not None else SparkSection()) as session:
        yield session


def _split_keys(keys: list[str] | None) -> list[str] | None:
    names = [k.strip() for raw in keys or [] for k in raw.split(",") if k.strip()]
    return names or None


@schema_app.command("infer")
def schema_infer(
    data: Annotated[Path, typer.Argument(help="Reference table: CSV or Parquet.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the YAML schema.")] = Path(
        "schema.yaml"
    ),
    key: Annotated[
        list[str] | None,
        typer.Option("--key", help="Key column(s) that must be unique together (repeat or comma-separate)."),
    ] = None,
    timestamp: Annotated[
        str | None, typer.Option("--timestamp", help="Timestamp column for the freshness rule.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Infer a schema from a reference table (CSV or Parquet). Works outside a project."""
    start(json_out)
    from conveyor.data import infer_schema, read_table

    df = read_table(data)
    schema = infer_schema(df, key=_split_keys(key), timestamp=timestamp)
    schema.save(out)
    payload = {
        "ok": True,
        "schema": str(out),
        "rows": df.height,
        "columns": len(schema.columns),
        "key": schema.key,
        "freshness": schema.freshness.column if schema.freshness else None,
    }
    emit(
        payload,
        lambda c: c.print(f"wrote {out}: {len(schema.columns)} columns from {df.height} rows of {data}"),
    )


def _check_width(columns: list[str], schema: Schema, data: Path) -> None:
    """A one-column table where the schema expects several: the delimiter is wrong."""
    if len(columns) == 1 and len(schema.columns) > 1 and columns[0] not in schema.columns:
        raise InputError(
            f"{data}: one column only ({columns[0][:60]!r}) but the schema expects "
            f"{len(schema.columns)} — wrong delimiter?",
            path=str(data),
        )


def _render_validation(report: ValidationReport, data: Path) -> Any:
    def human(console: Console) -> None:
        if report.ok:
            console.print(
                f"[green]valid[/]: {data} passes {report.rules_checked} rules ({report.n_rows} rows)"
            )
            return
        table = Table(title=f"{data}: {len(report.failures)} rule(s) failed")
        for name in ("rule", "column", "rows", "problem", "examples"):
            table.add_column(name)
        for f in report.failures:
            examples = ", ".join(repr(e) for e in f.plain_examples)
            table.add_row(f.rule, str(f.column or "–"), str(f.n_rows), f.message, examples)
        console.print(table)

    return human


def validate(
    data: Annotated[
        str | None,
        typer.Argument(help="Table to check (default in a project: data.source).", show_default=False),
    ] = None,
    schema: Annotated[
        Path | None,
        typer.Option("--schema", help="Schema YAML (default in a project: data.schema).", show_default=False),
    ] = None,
    project: ProjectOpt = None,
    stream: StreamOpt = False,
    on_spark: SparkOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Check a table against its schema; exit 1 when a rule fails, 2 when the input is unreadable."""
    start(json_out)
    from conveyor.data import Schema, infer_schema, read_table, scan_dataset, validate_table

    _one_engine(stream, on_spark)
    proj = _optional_project(project) if data is None or schema is None or project else None
    if data is not None:
        data_path = Path(data)
    elif proj is not None:
        data_path = proj.data_source
    else:
        raise UsageError("no DATA given and not in a project: run `conveyor validate DATA --schema FILE`")
    if schema is not None:
        schema_path = schema
    elif proj is not None:
        schema_path = proj.schema_path
    else:
        raise UsageError("outside a project pass --schema FILE (make one with `conveyor schema infer DATA`)")
    if stream or on_spark:
        if not schema_path.exists():
            engine = "--stream" if stream else "--spark"
            raise UsageError(f"{engine} checks against an existing schema; {schema_path} does not exist")
        rules = Schema.load(schema_path)
    if on_spark:
        from conveyor.data import read_spark_source, spark_validate

        with _spark(project) as session:
            frame = read_spark_source(session, [data if data is not None else str(data_path)])
            _check_width(frame.columns, rules, data_path)
            report = spark_validate(frame, rules)
        _validated(proj, data_path, schema_path, report, engine="spark")
        return
    if stream:
        lazy = scan_dataset(data_path)
        _check_width(lazy.collect_schema().names(), rules, data_path)
        _validated(proj, data_path, schema_path, validate_table(lazy, rules))
        return
    df = read_table(data_path)
    if schema is None and proj is not None and not schema_path.exists():
        # first run of a project: the data it starts from defines the schema (reviewable YAML)
        columns = proj.settings.data.columns
        stamp = columns.timestamp if columns.timestamp in df.columns else None
        inferred = infer_schema(df, timestamp=stamp if stamp and df.schema[stamp].is_temporal() else None)
        inferred.save(schema_path)
        message = f"no schema yet — inferred one from {data_path} and wrote {schema_path}; review it"
        note(message)
        payload = {"ok": True, "data": str(data_path), "schema": str(schema_path), "note": message}
        emit(payload, lambda c: c.print(message))
        return
    rules = Schema.load(schema_path)
    _check_width(df.columns, rules, data_path)
    _validated(proj, data_path, schema_path, validate_table(df, rules))


def _validated(
    proj: Project | None,
    data_path: Path,
    schema_path: Path,
    report: ValidationReport,
    *,
    engine: str | None = None,
) -> None:
    payload = {"data": str(data_path), "schema": str(schema_path), **report.to_dict()}
    if engine is not None:
        payload["engine"] = engine
    emit(payload, _render_validation(report, data_path))
    publish(proj, "validate", payload)
    if not report.ok:
        rules_failed = sorted({f.rule for f in report.failures})
        raise ValidationFailed(
            f"{data_path}: {len(report.failures)} rule(s) failed ({', '.join(rules_failed)})", report=payload
        )


def _load_reference(path: Path, columns: list[str] | None) -> tuple[ReferenceProfile, pl.DataFrame | None]:
    """The reference profile: loaded (.json), or built from a table (exact up to EXACT_MAX_ROWS rows).

    The table is returned too (for --save-profile)."""
    from conveyor.data import ReferenceProfile, read_table, reference_profile

    if path.suffix.lower() in PROFILE_SUFFIXES:
        return ReferenceProfile.load(path), None
    df = read_table(path)
    names = [c for c in columns if c in df.columns] if columns is not None else None
    return reference_profile(df, names, source=str(path)), df


def _check_comparable(
    report: DriftReport, profile: ReferenceProfile, columns: list[str], reference: Path, current: Path
) -> None:
    """Exit 2 (one line) when the two tables cannot be compared honestly."""
    known = [*profile.columns, *profile.skipped]
    if not any(c in known for c in columns):
        raise InputError(
            f"{current}: no column in common with the reference {reference} "
            f"(reference: {_names(known)}; current: {_names(columns)})",
            path=str(current),
        )
    if report.problems:
        name, problem = next(iter(report.problems.items()))
        more = len(report.problems) - 1
        tail = f" (and {more} more column{'s' if more > 1 else ''})" if more else ""
        raise InputError(f"{current}: column {name!r}: {problem}{tail}", path=str(current))
    if not report.columns:
        reasons = "; ".join(f"{n}: {r}" for n, r in list(report.skipped.items())[:3])
        raise InputError(f"{current}: no shared column can be tested ({reasons})", path=str(current))


def _names(columns: list[str]) -> str:
    shown = ", ".join(columns[:5])
    return shown + (f", … ({len(columns)} columns)" if len(columns) > 5 else "")


def _project_columns(proj: Project, settings: DriftSection) -> DriftSection:
    """In a project, drift.columns defaults to the schema's columns minus its key and identifiers.

    A recommender's event time is left out too: an event log's timestamps move forward by
    construction, and a reference profile of the training rows against the whole log (or a later
    window) would flag them on every run.
    """
    from conveyor.config import Template
    from conveyor.data import Schema

    if settings.columns is not None or not proj.schema_path.exists():
        return settings
    schema = Schema.load(proj.schema_path)
    left_out = set(schema.key or [])
    if proj.settings.project.template is Template.RECOMMENDER:
        left_out.add(proj.settings.data.columns.timestamp)
    columns = [c for c, rule in schema.columns.items() if c not in left_out and not rule.identifier]
    return settings.model_copy(update={"columns": columns})


def _render_drift(report: DriftReport, rank_error: float) -> Any:
    def human(console: Console) -> None:
        table = Table(title="drift by column")
        for name in (
            "column",
            "type",
            "test",
            "statistic",
            "threshold",
            "p-value",
            "PSI",
            "null rate",
            "drift",
        ):
            table.add_column(name)

        def f(v: Any) -> str:
            return "–" if v is None else f"{v:.4g}"

        for name, col in report.columns.items():
            mark = "no"
            if col.drift:
                mark = "[red]yes[/]" if col.distribution_drift else "[red]yes (null rate)[/]"
            nulls = "–"
            ref_rate, cur_rate = col.null_rate_reference or 0.0, col.null_rate_current or 0.0
            if ref_rate or cur_rate:
                nulls = f"{100 * ref_rate:.3g} % → {100 * cur_rate:.3g} %"
            table.add_row(
                name, col.type, col.test, f(col.statistic), f(col.threshold), f(col.p_value), f(col.psi),
                nulls, mark,
            )  # fmt: skip
        console.print(table)
        console.print(_mode_line(report, rank_error))
        for name, reason in report.skipped.items():
            console.print(f"not tested: {name}: {reason}")
        for side, only in (("reference", report.only_in_reference), ("current", report.only_in_current)):
            if only:
                console.print(f"only in the {side}: {', '.join(only)}")
        verdict = "[red]DATASET DRIFT[/]" if report.dataset_drift else "[green]no dataset drift[/]"
        console.print(f"{verdict}: drift share {report.drift_share:.2f}")

    return human


def _mode_line(report: DriftReport, rank_error: float) -> str:
    rows, used = report.table_rows, report.rows_used
    if report.mode == "exact":
        return f"mode: exact (every row: {rows['reference']:,} reference, {rows['current']:,} current)"
    if report.mode == "sketch":
        return (
            f"mode: sketch (streamed: {rows['current']:,} current rows; numeric tests on KLL sketches of "
            f"rank error {rank_error:.2%}; counts, categories and null rates exact)"
        )
    return (
        f"mode: sampled (numeric tests on {used['reference']:,} of {rows['reference']:,} reference rows "
        f"and {used['current']:,} of {rows['current']:,} current rows; categories and null rates: every row)"
    )


def drift(
    reference_arg: Annotated[
        str | None,
        typer.Argument(
            metavar="REFERENCE",
            help="Reference table (CSV/Parquet) or saved profile (.json). "
            "Default in a project: the stored reference profile.",
            show_default=False,
        ),
    ] = None,
    current_arg: Annotated[
        str | None,
        typer.Argument(
            metavar="CURRENT", help="Current table (default in a project: data.source).", show_default=False
        ),
    ] = None,
    *,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write an HTML report here.", show_default=False)
    ] = None,
    timings: Annotated[
        bool, typer.Option("--profile", help="Print the time of each phase on stderr.")
    ] = False,
    save_profile: Annotated[
        Path | None,
        typer.Option("--save-profile", help="Save the reference's profile (JSON) here.", show_default=False),
    ] = None,
    project: ProjectOpt = None,
    stream: StreamOpt = False,
    on_spark: SparkOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Per-column drift between a reference and a current table; exit 1 on dataset drift."""
    start(json_out)
    _one_engine(stream, on_spark)
    reference = Path(reference_arg) if reference_arg is not None else None
    current = Path(current_arg) if current_arg is not None else None
    from conveyor.data import build_profile, detect_drift, fetch_reference_profiles, read_table, warm_up

    warm_up()  # scipy.stats imports while the tables are read

    clock = [time.perf_counter()]

    def lap(phase: str) -> None:
        now = time.perf_counter()
        if timings:
            note(f"{phase}: {now - clock[0]:.3f} s")
        clock[0] = now

    if (reference is None) != (current is None):
        raise UsageError("give both REFERENCE and CURRENT, or neither (inside a project)")
    proj = _optional_project(project)
    settings = proj.settings.data.drift if proj is not None else DriftSection()
    if reference is None or current is None:
        if proj is None:
            raise UsageError("no REFERENCE and CURRENT given and not in a project")
        settings = _project_columns(proj, settings)
        fetch_reference_profiles(proj)  # a team's profile is in the shared state store
        reference, current = proj.reference_profile_path, proj.data_source
        if not reference.exists():
            note(NO_REFERENCE_NOTE)
            payload = {"dataset_drift": False, "drift_share": 0.0, "columns": {}, "note": NO_REFERENCE_NOTE}
            emit(payload, lambda c: c.print(NO_REFERENCE_NOTE))
            return
    if stream:
        _stream_drift(proj, settings, reference, current, html=html, save_profile=save_profile)
        return
    if on_spark:
        sources = (reference_arg or str(reference), current_arg or str(current))
        _spark_drift(project, proj, settings, sources, html=html, save_profile=save_profile)
        return
    profile, ref_table = _load_reference(reference, settings.columns)
    lap(f"reference ({reference})")
    if save_profile is not None:
        # a saved profile is a sketch (10,000 order statistics per column), not every value
        names = [*profile.columns, *profile.skipped]
        (profile if ref_table is None else build_profile(ref_table, names)).save(save_profile)
    df = read_table(current)
    lap(f"read current ({current}: {df.height} rows)")
    report = detect_drift(profile, df, settings)
    _check_comparable(report, profile, df.columns, reference, current)
    lap("tests")
    _drift_outcome(proj, report, html)


def _stream_drift(
    proj: Project | None,
    settings: DriftSection,
    reference: Path,
    current: Path,
    *,
    html: Path | None,
    save_profile: Path | None,
) -> None:
    """``drift --stream``: both sides read in bounded memory (see conveyor.data.stream_drift)."""
    from conveyor.data import ReferenceProfile, scan_dataset, stream_drift, stream_profile

    if reference.suffix.lower() in PROFILE_SUFFIXES:
        profile = ReferenceProfile.load(reference)
    else:
        ref_scan = scan_dataset(reference)
        names = ref_scan.collect_schema().names()
        wanted = [c for c in settings.columns if c in names] if settings.columns is not None else None
        profile = stream_profile(ref_scan, wanted)
    if save_profile is not None:
        profile.save(save_profile)
    lazy = scan_dataset(current)
    report = stream_drift(profile, lazy, settings)
    _check_comparable(report, profile, lazy.collect_schema().names(), reference, current)
    _drift_outcome(proj, report, html)


def _spark_drift(
    project: Path | None,
    proj: Project | None,
    settings: DriftSection,
    sources: tuple[str, str],
    *,
    html: Path | None,
    save_profile: Path | None,
) -> None:
    """``drift --spark``: the current side (and a reference table) aggregated on Spark."""
    from conveyor.data import ReferenceProfile, read_spark_source, spark_drift, spark_profile

    reference, current = sources
    with _spark(project) as session:
        if Path(reference).suffix.lower() in PROFILE_SUFFIXES:
            profile = ReferenceProfile.load(Path(reference))
        else:
            names = read_spark_source(session, [reference]).columns
            wanted = [c for c in settings.columns if c in names] if settings.columns is not None else None
            profile = spark_profile(session, [reference], wanted)
        if save_profile is not None:
            profile.save(save_profile)
        frame = read_spark_source(session, [current])
        report = spark_drift(profile, frame, settings)
        columns = frame.columns
    _check_comparable(report, profile, columns, Path(reference), Path(current))
    _drift_outcome(proj, report, html, engine="spark")


def _drift_outcome(
    proj: Project | None, report: DriftReport, html: Path | None, *, engine: str | None = None
) -> None:
    from conveyor.data import kll_rank_error, write_drift_html

    payload = report.to_dict()
    rank_error = kll_rank_error() if report.mode == "sketch" else 0.0
    if engine is not None:
        payload["engine"] = engine
    if report.mode == "sketch":
        payload["rank_error"] = rank_error
    if report.skipped:
        payload["skipped"] = report.skipped
    if html is not None:
        payload["html"] = str(write_drift_html(report, html))
    emit(payload, _render_drift(report, rank_error))
    publish(proj, "drift", payload)
    if report.dataset_drift:
        raise DriftDetected(
            f"dataset drift: {len(report.drifted_columns)} of {len(report.columns)} columns drifted "
            f"({', '.join(report.drifted_columns)})",
            report=payload,
        )


def profile(
    data_arg: Annotated[
        str,
        typer.Argument(
            metavar="DATA",
            help="Table: CSV or Parquet file, a folder, or (with --stream, --spark) a quoted glob.",
            show_default=False,
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the profile (JSON).")] = Path(
        "reference-profile.json"
    ),
    stream: StreamOpt = False,
    on_spark: SparkOpt = False,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Write the reference profile of a table (what `drift` compares against). Works outside a project."""
    start(json_out)
    from conveyor.data import build_profile, read_table, scan_dataset, spark_profile, stream_profile

    _one_engine(stream, on_spark)
    data = Path(data_arg)
    if on_spark:
        with _spark(project) as session:
            built = spark_profile(session, [data_arg])
    else:
        built = stream_profile(scan_dataset(data)) if stream else build_profile(read_table(data))
    built.save(out)
    payload = {
        "ok": True,
        "profile": str(out),
        "rows": built.n_rows,
        "columns": list(built.columns),
        "skipped": built.skipped,
        "mode": "spark" if on_spark else "sketch" if stream else "in-memory",
    }
    emit(
        payload,
        lambda c: c.print(f"wrote {out}: {len(built.columns)} columns profiled from {built.n_rows:,} rows"),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(schema_app, name="schema")
    app.command("validate")(validate)
    app.command("drift")(drift)
    app.command("profile")(profile)
