"""Model commands: ``train``, ``evaluate``, ``register``.

Thin: parse options, call :mod:`conveyor.pipeline`, render. Heavy modules
(MLflow, the model libraries) are imported inside the commands, so that the
reuse answer of ``train`` stays fast.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from conveyor.cli._options import JsonOpt, ProjectOpt, load_project, start
from conveyor.cli._output import emit, note
from conveyor.cli._results import publish
from conveyor.config import ModelType
from conveyor.errors import GateFailed, UsageError

VERDICT_LABELS = (
    ("pass", "passed"),
    ("fail", "failed"),
    ("inconclusive", "inconclusive"),
    ("skip", "skipped"),
)

if TYPE_CHECKING:
    from conveyor.pipeline import EvaluationResult, TrainResult


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.4f}"
    return str(value)


def parse_params(pairs: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values are read as YAML scalars (numbers, booleans, null, strings)."""
    import yaml

    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--param {pair!r}: expected KEY=VALUE, e.g. --param n_estimators=300")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, dict | list):
            raise UsageError(f"--param {pair!r}: the value must be a single number, boolean or string")
        params[key] = value
    return params


def _render_train(result: TrainResult) -> Any:
    def render(c: Console) -> None:
        for line in result.notes:
            c.print(f"note: {line}", highlight=False)
        metric = result.best.record.primary_metric
        table = Table(title="training runs" if result.matrix else "training run")
        for col in ("model", "run", "status", metric, f"baseline {metric}", "seconds"):
            table.add_column(col)
        for outcome in result.runs:
            r = outcome.record
            mark = " (best)" if result.matrix and r.run_id == result.best.record.run_id else ""
            table.add_row(
                r.model_type + mark,
                r.run_id,
                "reused (data, code and parameters unchanged)" if outcome.reused else "trained",
                _fmt(r.metrics.get(metric, math.nan)),
                _fmt(r.baseline_metrics.get(metric, math.nan)),
                f"{outcome.seconds:.1f}",
            )
        c.print(table)
        if all(o.reused for o in result.runs):
            c.print("nothing changed: reused the earlier run (use --force to retrain)")

    return render


def train(
    *,
    data: Annotated[
        Path | None, typer.Option("--data", help="Data file (default: data.source of conveyor.yaml).")
    ] = None,
    model_type: Annotated[
        ModelType | None, typer.Option("--model-type", help="Model type (default: model.type).")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="Model parameter KEY=VALUE (repeatable).")
    ] = None,
    embedding_dim: Annotated[
        int | None, typer.Option("--embedding-dim", min=1, help="Recommender: embedding size (factors).")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="Recommender: training epochs (iterations).")
    ] = None,
    matrix: Annotated[
        bool, typer.Option("--matrix", help="Train every entry of model.matrix; pick the best.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Retrain even when nothing changed.")] = False,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train (tracked in MLflow); reuses an identical earlier run unless --force."""
    start(json_out)
    from conveyor.pipeline import TrainOptions
    from conveyor.pipeline import train as run_train

    proj = load_project(project)
    options = TrainOptions(
        data=data,
        model_type=model_type,
        params=parse_params(param),
        embedding_dim=embedding_dim,
        epochs=epochs,
        matrix=matrix,
        force=force,
    )
    result = run_train(proj, options)
    emit(result.to_dict(), _render_train(result))
    publish(proj, "train", result.to_dict())


def _render_evaluation(result: EvaluationResult) -> Any:
    def render(c: Console) -> None:
        metrics = Table(title=f"metrics of run {result.run_id} ({result.model_type})")
        for col in ("metric", "model", result.baseline_name, "production"):
            metrics.add_column(col)
        for name, value in result.metrics.items():
            metrics.add_row(
                name,
                _fmt(value),
                _fmt(result.baseline_metrics.get(name, math.nan)),
                _fmt(result.production_metrics.get(name, math.nan)) if result.production_metrics else "–",
            )
        c.print(metrics)
        gates = Table(title="quality gates")
        for col in ("gate", "verdict", "reason"):
            gates.add_column(col)
        colour = {"pass": "green", "fail": "red", "skip": "yellow", "inconclusive": "yellow"}
        for gate in result.gates:
            gates.add_row(gate.name, f"[{colour[gate.verdict]}]{gate.verdict}[/]", gate.reason)
        c.print(gates)
        ev = result.evaluated
        line = f"evaluated on {ev.get('units', 0):,} {ev.get('unit', 'units')}"
        if ev.get("unit") == "users":
            line += f" ({ev.get('pairs', 0):,} held-out pairs)"
        split = ev.get("split") or {}
        if split.get("users_too_short"):
            line += (
                f"; {split['users_too_short']:,} users with fewer than "
                f"{split.get('min_user_interactions')} distinct items kept out of the test set"
            )
        c.print(line, highlight=False)
        for warning in result.warnings:
            c.print(f"[yellow]warning:[/] {warning}", highlight=False)
        c.print(_verdict_line(result), highlight=False)

    return render


def _verdict_line(result: EvaluationResult) -> str:
    counts = result.counts()
    parts = [f"{counts[v]} {label}" for v, label in VERDICT_LABELS if counts.get(v)]
    tally = ", ".join(parts)
    if result.verdict == "failed":
        failed = ", ".join(g.name for g in result.gates if g.failed)
        return f"[red]quality gates failed[/] ({tally}; failing: {failed})"
    if result.verdict == "not enough evidence":
        then = "the pipeline goes on (configured)" if result.proceed else "the pipeline stops"
        return f"[yellow]not enough evidence[/] ({tally}); {then}"
    return f"quality gates passed ({tally})"


def evaluate(project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """Compute metrics and quality gates of the latest run; exit 1 when a gate fails."""
    start(json_out)
    from conveyor.pipeline import evaluate_latest

    proj = load_project(project)
    note("evaluating the latest training run …")
    result = evaluate_latest(proj)
    payload = result.to_dict()
    emit(payload, _render_evaluation(result))
    publish(proj, "evaluate", payload)
    if result.verdict == "failed":
        failed = [g.name for g in result.gates if g.failed]
        raise GateFailed(f"quality gate(s) failed: {', '.join(failed)}", report=payload)
    if not result.proceed:
        evidence = next((g.reason for g in result.gates if g.name == "evidence" and g.inconclusive), "")
        raise GateFailed(evidence or "not enough evidence to decide the quality gates", report=payload)


def register_model(project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """Register the gated model of the latest run as a new version with its lineage."""
    start(json_out)
    from conveyor.pipeline import register_latest

    proj = load_project(project)
    version, reused = register_latest(proj)
    payload = {"ok": True, "already_registered": reused, **version.to_dict()}
    aliases = ", ".join(version.aliases) or "–"
    emit(
        payload,
        lambda c: c.print(
            f"{'already registered as' if reused else 'registered'} {version.name} v{version.version} "
            f"(run {version.run_id}, sha256 {version.sha256[:12]}…, aliases {aliases})"
        ),
    )
    publish(proj, "register", payload)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("register")(register_model)
