"""``conveyor train``: validated data → a tracked, reusable training run (or a matrix of them).

1. Plan: one model type and its parameters, or every entry of ``model.matrix``.
2. Reuse: a run whose key (data fingerprint + code version + parameters and
   settings) matches is reused — decided from the local run index, without
   reading the data or importing MLflow.
3. Otherwise read and validate the data (a failed validation stops here with
   exit 1), split it, fit the model and its baseline, score both on the
   held-out part, and log everything to MLflow: parameters, metrics, the
   model files, the schema and the reference profile, lineage tags.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor import __version__
from conveyor.config import Engine, ModelType, Settings, Template, spark_refusal
from conveyor.errors import UsageError, ValidationFailed
from conveyor.evaluation import higher_is_better
from conveyor.pipeline._fingerprint import DataFingerprint, canonical_hash, code_version, data_fingerprint
from conveyor.pipeline._run_logging import TrackingOpener, finish_parent, finite, log_run, start_parent
from conveyor.pipeline._runs import (
    INPUT_EXAMPLE_FILE,
    LIVE_PROFILE_FILE,
    PROFILE_FILE,
    SCHEMA_FILE,
    RunIndex,
    RunOutcome,
    RunRecord,
    run_dir,
    runs_root,
)
from conveyor.pipeline._split import Split, load_test_set, split_interactions, split_notes, split_stratified
from conveyor.project import Project

if TYPE_CHECKING:
    import polars as pl

LIVE_FEEDBACK_EVENTS = ("add_to_cart", "purchase")  # the shop events the server's /feedback takes


@dataclass(frozen=True)
class TrainOptions:
    data: Path | None = None
    model_type: ModelType | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    embedding_dim: int | None = None
    epochs: int | None = None
    matrix: bool = False
    force: bool = False


@dataclass(frozen=True)
class Entry:
    """One model to train: its type, its parameters, and the key that identifies the run."""

    model_type: ModelType
    params: dict[str, Any]
    key: str = ""


@dataclass(frozen=True)
class TrainResult:
    runs: list[RunOutcome]
    best: RunOutcome
    matrix: bool
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "run_id": self.best.record.run_id,
            "reused": all(r.reused for r in self.runs),
            "matrix": self.matrix,
            "best": self.best.to_dict(),
            "runs": [r.to_dict() for r in self.runs],
            "notes": self.notes,
        }


# -- planning ------------------------------------------------------------------------
def _check_fits_template(settings: Settings, model_type: ModelType, where: str) -> None:
    recommender = settings.project.template is Template.RECOMMENDER
    if model_type.is_recommender != recommender:
        raise UsageError(
            f"{where}: '{model_type.value}' does not fit template '{settings.project.template.value}'"
        )


def plan(settings: Settings, options: TrainOptions) -> list[Entry]:
    """The models to train, with parameters resolved (config < --param < --embedding-dim/--epochs)."""
    from conveyor.models import model_type_spec

    cfg = settings.model
    if options.matrix:
        if options.model_type is not None:
            raise UsageError("--matrix trains the types listed in model.matrix; drop --model-type")
        entries = [(m.type, dict(m.params)) for m in cfg.matrix]
        if not entries:  # every registered type of the template's kind
            entries = [(t, {}) for t in ModelType if t.kind == settings.project.template.value]
    else:
        model_type = options.model_type or cfg.type
        _check_fits_template(settings, model_type, "--model-type")
        entries = [(model_type, dict(cfg.params) if model_type is cfg.type else {})]
    if cfg.engine is Engine.SPARK:
        for model_type, _ in entries:
            refusal = spark_refusal(model_type)
            if refusal is not None:
                raise UsageError(f"--model-type {model_type.value}: {refusal}")
    planned = []
    for model_type, configured in entries:
        params = {**configured, **options.params}
        if options.embedding_dim is not None or options.epochs is not None:
            if not model_type.is_recommender:
                raise UsageError("--embedding-dim and --epochs apply to recommender models only")
            if options.embedding_dim is not None:
                params["factors"] = options.embedding_dim
            if options.epochs is not None:
                params["iterations"] = options.epochs
        params = model_type_spec(model_type).params(params, settings)
        planned.append(Entry(model_type, params))
    return planned


def _settings_for_key(settings: Settings) -> dict[str, Any]:
    """What besides the parameters shapes the model and its metrics."""
    d = settings.data
    m = settings.model
    return {
        "template": settings.project.template.value,
        "columns": d.columns.model_dump(),
        "event_weights": d.event_weights,
        "target": d.target,
        "window_days": d.window_days,
        "seed": m.seed,
        "test_size": m.test_size,
        "holdout_days": m.holdout_days,
        "k": m.k,
        "eval_users": m.eval_users,
        "primary_metric": m.primary_metric,
        "evaluation": settings.evaluation.model_dump(mode="json"),
        # a local run is not reused for a Spark one (and keys of local runs stay as they were)
        **({"engine": m.engine.value} if m.engine is not Engine.LOCAL else {}),
    }


def _schema_hash(project: Project) -> str:
    path = project.schema_path
    return canonical_hash(path.read_text(errors="replace")) if path.is_file() else ""


def run_key(
    entry: Entry, fingerprint: DataFingerprint, code: Mapping[str, str], context: Mapping[str, Any]
) -> str:
    return canonical_hash(
        {
            "model_type": entry.model_type.value,
            "params": entry.params,
            "data": fingerprint.value,
            "code": dict(code),
            "context": dict(context),
        }
    )


# -- the data ------------------------------------------------------------------------
@dataclass(frozen=True)
class Prepared:
    split: Split
    schema_yaml: str
    profile_path: Path
    notes: list[str]


def _prepare(project: Project, data_path: Path, scratch: Path) -> Prepared:
    """Read, validate (exit 1 on failure), split, and profile the training part."""
    from conveyor.data import Schema, build_profile, infer_schema, read_table, validate_table

    settings = project.settings
    df = read_table(data_path)
    notes: list[str] = []
    schema_path = project.schema_path
    if schema_path.is_file():
        schema = Schema.load(schema_path)
        report = validate_table(df, schema)
        if not report.ok:
            payload = {
                "ok": False,
                "stage": "validate",
                "data": str(data_path),
                "validation": report.to_dict(),
            }
            raise ValidationFailed(
                f"{data_path}: {len(report.failures)} schema rule(s) failed; training stopped "
                "(see `conveyor validate`)",
                report=payload,
            )
    else:
        timestamp = (
            settings.data.columns.timestamp if settings.project.template is Template.RECOMMENDER else None
        )
        schema = infer_schema(df, timestamp=timestamp if timestamp in df.columns else None)
        notes.append(f"no schema file at {schema_path}; logged a schema inferred from this data")
    recommender = settings.project.template is Template.RECOMMENDER
    split = split_interactions(df, settings) if recommender else split_stratified(df, settings)
    notes.extend(split_notes(split.description))
    schema_file = scratch / SCHEMA_FILE
    schema.save(schema_file)
    profile_path = scratch / PROFILE_FILE
    build_profile(split.train).save(profile_path)
    event = settings.data.columns.event
    if recommender and event and event in split.train.columns:
        # Live feedback carries the shop's add-to-cart and purchase events (clicks follow
        # the model): monitoring compares them with the same events of the training data.
        import polars as pl

        organic = split.train.filter(pl.col(event).is_in(list(LIVE_FEEDBACK_EVENTS)))
        if organic.height:
            build_profile(organic).save(scratch / LIVE_PROFILE_FILE)
    return Prepared(split=split, schema_yaml=schema_file.read_text(), profile_path=profile_path, notes=notes)


# -- one run ---------------------------------------------------------------------------
def _fit_and_score(settings: Settings, entry: Entry, prepared: Prepared, folder: Path) -> dict[str, Any]:
    from conveyor.evaluation import score
    from conveyor.models import MatrixRecommender, PopularityRecommender, make_baseline, make_model

    recommender = entry.model_type.is_recommender
    model = make_model(entry.model_type, entry.params, settings)
    start = time.perf_counter()
    model.fit(prepared.split.train)
    fit_seconds = time.perf_counter() - start
    baseline = make_baseline(entry.model_type, settings)
    if (
        isinstance(baseline, PopularityRecommender)
        and isinstance(model, MatrixRecommender)
        and (baseline.columns, baseline.event_weights) == (model.columns, model.event_weights)
    ):
        baseline.fit_like(model)  # the matrix the model learned from: no second build
    else:
        baseline.fit(prepared.split.train)
    model.save(folder / "model")
    baseline.save(folder / "baseline")
    prepared.split.save(folder / "test", recommender=recommender)
    shutil.copy(prepared.profile_path, folder / PROFILE_FILE)
    live_profile = prepared.profile_path.with_name(LIVE_PROFILE_FILE)
    if live_profile.is_file():
        shutil.copy(live_profile, folder / LIVE_PROFILE_FILE)
    (folder / SCHEMA_FILE).write_text(prepared.schema_yaml)
    test = load_test_set(folder / "test", settings, recommender=recommender)
    metrics = score(model, test).metrics
    baseline_metrics = score(baseline, test).metrics
    effective = getattr(model, "effective_params", None)
    return {
        "params": effective() if callable(effective) else entry.params,
        "metrics": metrics,
        "baseline_metrics": baseline_metrics,
        "fit_seconds": fit_seconds,
    }


def _input_example(settings: Settings, train: pl.DataFrame, rows: int = 5) -> pl.DataFrame:
    """A few inputs as the registered pyfunc takes them: feature rows, or ``user_id`` values."""
    if settings.project.template is Template.RECOMMENDER:
        users = train.get_column(settings.data.columns.user).unique(maintain_order=True).head(rows)
        return users.to_frame("user_id")
    return train.drop(settings.data.target or [], strict=False).head(rows)


def _train_one(
    project: Project,
    *,
    entry: Entry,
    prepared: Prepared,
    identity: dict[str, Any],
    tracking: TrackingOpener,
    parent_run_id: str,
) -> RunOutcome:
    start = time.perf_counter()
    settings = project.settings
    root = runs_root(project)
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="training-", dir=root))
    try:
        fitted = _fit_and_score(settings, entry, prepared, folder)
        _input_example(settings, prepared.split.train).to_pandas().to_json(
            folder / INPUT_EXAMPLE_FILE, orient="split", index=False
        )
        experiment_id = tracking.experiment_id()  # opened in the background meanwhile
        draft = RunRecord(
            run_id="",
            key=entry.key,
            model_type=entry.model_type.value,
            params=fitted["params"],
            primary_metric=settings.model.primary_metric,
            metrics=fitted["metrics"],
            baseline_metrics=fitted["baseline_metrics"],
            experiment_id=experiment_id,
            parent_run_id=parent_run_id,
            **identity,
        )
        extra = {"split": prepared.split.description, "fit_seconds": fitted["fit_seconds"]}
        if settings.model.engine is not Engine.LOCAL:
            extra["engine"] = settings.model.engine.value
        run_id = log_run(
            project,
            experiment_id=experiment_id,
            record=draft,
            folder=folder,
            extra=extra,
            parent_run_id=parent_run_id,
            train_frame=prepared.split.train,
            target=settings.data.target if settings.project.template is Template.CLASSIFIER else None,
        )
        target = run_dir(project, run_id)
        folder.rename(target)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    record = RunRecord.from_dict({**draft.to_dict(), "run_id": run_id})
    RunIndex(project).put(record)
    return RunOutcome(record=record, reused=False, seconds=time.perf_counter() - start)


# -- the command -------------------------------------------------------------------------
def _metric_value(record: RunRecord) -> float:
    value = record.metrics.get(record.primary_metric, math.nan)
    if not finite(value):
        return -math.inf
    return value if higher_is_better(record.primary_metric) else -value


def _publish(project: Project, best: RunRecord) -> None:
    """Make ``best`` the latest run and its training profile the project's reference profile
    (in the shared state store when there is one: every runner's drift checks read it there)."""
    from conveyor.data import publish_reference_profile

    RunIndex(project).set_latest(best.run_id)
    live = run_dir(project, best.run_id) / LIVE_PROFILE_FILE
    publish_reference_profile(
        project, run_dir(project, best.run_id) / PROFILE_FILE, live if live.is_file() else None
    )


def train(project: Project, options: TrainOptions) -> TrainResult:
    """Train (or reuse) every planned model; the best by ``model.primary_metric`` becomes the latest."""
    start = time.perf_counter()
    settings = project.settings
    data_path = project.path(options.data) if options.data is not None else project.data_source
    fingerprint = data_fingerprint(data_path)
    code = code_version(project.root)
    context = {**_settings_for_key(settings), "schema": _schema_hash(project)}
    entries = [
        Entry(e.model_type, e.params, run_key(e, fingerprint, code, context)) for e in plan(settings, options)
    ]
    index = RunIndex(project)
    reusable = {e.key: index.find_reusable(e.key) for e in entries} if not options.force else {}
    outcomes: list[RunOutcome | None] = [
        RunOutcome(record=r, reused=True, seconds=time.perf_counter() - start)
        if (r := reusable.get(e.key)) is not None
        else None
        for e in entries
    ]
    notes: list[str] = []
    if any(o is None for o in outcomes) and settings.model.engine is Engine.SPARK:
        from conveyor.spark import preflight

        preflight(settings.spark)  # PySpark, Java, the master: one line before the data is read
    if any(o is None for o in outcomes):
        identity = {
            # project-relative: the same on every clone and runner
            "data_path": (
                data_path.relative_to(project.root).as_posix()
                if data_path.is_relative_to(project.root)
                else str(data_path)
            ),
            "data_fingerprint": fingerprint.value,
            "dvc_tracked": fingerprint.dvc_tracked,
            "git_commit": code["git_commit"],
            "conveyor_version": __version__,
            "config_hash": canonical_hash(settings.model_dump(mode="json")),
        }
        outcomes = _train_missing(
            project,
            data_path=data_path,
            entries=entries,
            outcomes=outcomes,
            identity=identity,
            matrix=options.matrix,
            notes=notes,
        )
    done = [o for o in outcomes if o is not None]
    best = max(done, key=lambda o: _metric_value(o.record))
    _publish(project, best.record)
    return TrainResult(runs=done, best=best, matrix=options.matrix, notes=notes)


def _train_missing(
    project: Project,
    *,
    data_path: Path,
    entries: list[Entry],
    outcomes: list[RunOutcome | None],
    identity: dict[str, Any],
    matrix: bool,
    notes: list[str],
) -> list[RunOutcome | None]:
    scratch_dir = tempfile.TemporaryDirectory(prefix="conveyor-train-")
    with TrackingOpener(project) as tracking, scratch_dir as scratch:
        tracking.start_import()
        prepared = _prepare(project, data_path, Path(scratch))
        notes.extend(prepared.notes)
        tracking.open_experiment()
        parent = start_parent(project, tracking.experiment_id()) if matrix else ""
        result = list(outcomes)
        try:
            for j, entry in enumerate(entries):
                if result[j] is None:
                    result[j] = _train_one(
                        project,
                        entry=entry,
                        prepared=prepared,
                        identity=identity,
                        tracking=tracking,
                        parent_run_id=parent,
                    )
        finally:
            if parent:
                done = [o for o in result if o is not None]
                finish_parent(project, parent, done, key=lambda o: _metric_value(o.record))
    return result
