"""A monitor run: the live window since the last check, its checks, report, alert and policy.

``run_monitor`` reads the request log of one environment in ``(since, now]``
— ``since`` is the end of the previous run's window (kept in
the state document ``monitoring/last-check``) unless a duration is given — runs
the checks of :mod:`conveyor.monitoring._checks` and the readiness of every
deployed environment (:mod:`conveyor.monitoring._readiness`), writes the report, exports
the monitor's gauges for Prometheus (a textfile-collector file), and, when a
check fails, sends one alert naming what failed (incident-keyed, so a run
within the cooldown stays silent). The retraining policy is evaluated on
every run. The caller decides the exit code from ``MonitorResult.ok``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from conveyor.config import Template
from conveyor.errors import UsageError
from conveyor.monitoring import _live
from conveyor.monitoring._alerts import send_alert
from conveyor.monitoring._checks import (
    CheckResult,
    accuracy_table,
    drift_check,
    error_check,
    input_warning_check,
    latency_check,
    online_metric_check,
    traffic_table,
)
from conveyor.monitoring._policy import PolicySignals, apply_policy
from conveyor.monitoring._promfile import write_monitor_metrics
from conveyor.monitoring._readiness import readiness_check
from conveyor.monitoring._report import write_reports
from conveyor.monitoring._state import (
    CHECKS_FILE,
    monitoring_dir,
    parse_time,
    read_state,
    utcnow,
    write_state,
)
from conveyor.project import Project
from conveyor.requestlog import publish_reports

if TYPE_CHECKING:
    from conveyor.data import DriftReport, ReferenceProfile

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``"6h"``, ``"7d"``, ``"30m"``, ``"90s"``, ``"2w"`` → a timedelta; UsageError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"--since {text!r}: expected a duration such as 30m, 6h, 7d or 2w")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


@dataclass(frozen=True)
class MonitorResult:
    """The report (JSON-ready) and where its files are."""

    report: dict[str, Any]
    files: dict[str, str]

    @property
    def ok(self) -> bool:
        return bool(self.report["ok"])

    @property
    def failed_checks(self) -> list[str]:
        return [c["name"] for c in self.report["checks"] if c["status"] == "fail"]


def _profile(project: Project) -> ReferenceProfile | None:
    from conveyor.data import ReferenceProfile, fetch_reference_profiles

    fetch_reference_profiles(project)  # a team's profile is in the shared store (this runner never trained)
    path = project.reference_profile_path
    live = project.live_reference_profile_path
    if project.settings.project.template is Template.RECOMMENDER and live.is_file():
        return ReferenceProfile.load(live)  # the training events that also arrive as feedback
    return ReferenceProfile.load(path) if path.is_file() else None


def _prediction_drift(
    project: Project, env: str, version: str | None, frame: pl.DataFrame, min_rows: int
) -> tuple[CheckResult, DriftReport | None]:
    """This window's predictions against the first window the version served (its baseline)."""
    from conveyor.data import ReferenceProfile, build_profile

    drift = project.settings.data.drift
    if version is None or frame.height == 0:
        return CheckResult("prediction_drift", "insufficient_data", "no successful predictions"), None
    path = monitoring_dir(project) / "baselines" / env / f"predictions-{version}.json"
    if not path.is_file():
        if frame.height < min_rows:
            return CheckResult(
                "prediction_drift", "insufficient_data", f"{frame.height} rows (< {min_rows})"
            ), None
        build_profile(frame).save(path)
        summary = f"baseline recorded: first window of version {version} ({frame.height} rows)"
        return CheckResult("prediction_drift", "skipped", summary, {"baseline": str(path)}), None
    settings = drift.model_copy(update={"columns": None, "ignore": []})
    return drift_check("prediction_drift", ReferenceProfile.load(path), frame, settings, min_rows)


def _model_age_days(project: Project, version: str | None, now: datetime) -> tuple[float | None, str | None]:
    """Age of the registered ``version`` (None, and why, when it cannot be known)."""
    if version is None:
        return None, "no model version served"
    if project.settings.registry.tracking_uri is None and not (project.state_dir / "mlflow.db").is_file():
        return None, "no model registry yet"
    from conveyor.registry import tracking_client

    try:
        created = tracking_client(project).get_model_version(project.model_name, version).creation_timestamp
    except Exception as exc:  # MLflow raises its own and its drivers' errors alike
        return None, f"registry lookup failed: {type(exc).__name__}"
    if not created:
        return None, "registry has no creation time"
    return (now.timestamp() - created / 1000) / 86400, None


def _online_rows(
    template: Template, table: pl.DataFrame, predictions: pl.DataFrame, feedback: pl.DataFrame
) -> tuple[str, list[dict[str, Any]]]:
    if template is Template.RECOMMENDER:
        rows = [
            {
                "model_version": r["model_version"],
                "variant": r["variant"],
                "n": r["served"],
                "value": r["ctr"],
            }
            for r in table.iter_rows(named=True)
            if r["model_version"] is not None
        ]
        return "ctr", rows
    acc = accuracy_table(predictions, feedback).sort("labelled", descending=True)
    rows = [
        {
            "model_version": r["model_version"],
            "variant": r["variant"],
            "n": r["labelled"],
            "value": r["accuracy"],
        }
        for r in acc.iter_rows(named=True)
    ]
    return "accuracy", rows


def _plots(reports: dict[str, DriftReport | None], versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    plots: list[dict[str, Any]] = []
    for check, report in reports.items():
        if report is None:
            continue
        for column, dist in report.distributions.items():
            labels = [str(x) for x in dist.labels]
            plots.append({
                "title": f"{check}: {column}" + (" (drifted)" if report.columns[column].drift else ""),
                "kind": dist.kind, "labels": labels,
                "series": {"reference": dist.reference, "current": dist.current},
            })  # fmt: skip
    if versions:
        labels = [f"v{v['model_version']} {v['variant']}" for v in versions]
        plots.append({
            "title": "latency by version (ms)", "kind": "categorical", "labels": labels, "unit": " ms",
            "series": {p: [v[f"{p}_ms"] for v in versions] for p in ("p50", "p95", "p99")},
        })  # fmt: skip
        if any(v.get("ctr") is not None for v in versions):
            plots.append({"title": "click-through rate by version", "kind": "categorical", "labels": labels,
                          "series": {"ctr": [v.get("ctr") for v in versions]}})  # fmt: skip
    return plots


def run_monitor(
    project: Project,
    *,
    env: str = "production",
    since: timedelta | None = None,
    now: datetime | None = None,
    report_dir: Path | None = None,
    deployed: Mapping[str, str] | None = None,
) -> MonitorResult:
    """One monitor run over the window since the last one (or the last ``since``).

    ``deployed`` (environment -> primary version, from the deploy ledger) feeds the
    readiness check; without it that check is skipped.
    """
    if env not in project.settings.deploy.environments:
        known = ", ".join(project.settings.deploy.environments)
        raise UsageError(f"--env {env}: no such environment in deploy.environments (known: {known})")
    settings = project.settings
    now = now or utcnow()
    state = read_state(project, CHECKS_FILE)
    env_state: dict[str, Any] = dict(state.get(env, {}))
    start = now - since if since is not None else parse_time(env_state.get("until"))
    window = _live.load_window(project, env, start, now)
    preds, feedback = window.predictions, window.feedback
    min_n = settings.monitoring.min_requests
    slo = settings.monitoring.slo

    table = traffic_table(preds, feedback)
    versions = [
        {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
        for row in table.filter(pl.col("model_version").is_not_null()).iter_rows(named=True)
    ]
    main_version: str | None = str(versions[0]["model_version"]) if versions else None
    checks = [error_check(preds, table, slo, min_n), latency_check(preds, table, slo, min_n)]

    profile = _profile(project)
    template = settings.project.template
    if template is Template.RECOMMENDER:
        catalogue = _live.item_catalogue(project)
        live_inputs = _live.interactions(_live.sample(feedback), catalogue)
        main_preds = preds.filter(pl.col("model_version") == main_version) if main_version else preds.clear()
        live_outputs = _live.recommendations(main_preds, catalogue)
    else:
        checks.append(input_warning_check(preds, min_n))
        live_inputs = _live.input_rows(preds)
        main_preds = preds.filter(pl.col("model_version") == main_version) if main_version else preds.clear()
        live_outputs = _live.predicted(main_preds)
    input_check, input_report = drift_check(
        "input_drift", profile, live_inputs, settings.data.drift, min_n,
        missing_reason=f"no reference profile at {project.reference_profile_path}",
    )  # fmt: skip
    pred_check, pred_report = _prediction_drift(project, env, main_version, live_outputs, min_n)
    checks += [input_check, pred_check]

    metric, rows = _online_rows(template, table, preds, feedback)
    baselines: dict[str, float] = {str(k): float(v) for k, v in env_state.get("metric_baselines", {}).items()}
    online = online_metric_check(metric, rows, baselines, settings.monitoring.retrain.metric_drop_pct, min_n)
    checks.append(online)
    checks.append(readiness_check(project, deployed))  # every deployed environment, not only this window's
    for r in rows:
        if r["n"] >= min_n and r["value"] is not None and str(r["model_version"]) not in baselines:
            baselines[str(r["model_version"])] = float(r["value"])

    failed = [c for c in checks if c.status == "fail"]
    drifted = list(input_check.details.get("drifted_columns", [])) if input_check.status == "fail" else []
    age, age_note = _model_age_days(project, main_version, now) if main_version else (None, None)
    main_drop = next((r.get("drop_pct") for r in rows if r["model_version"] == main_version), None)
    signals = PolicySignals(
        dataset_drift=input_check.status == "fail", drifted_columns=tuple(drifted), metric=metric,
        metric_drop_pct=main_drop, model_version=main_version, model_age_days=age,
    )  # fmt: skip
    report: dict[str, Any] = {
        "ok": not failed,
        "project": settings.project.name,
        "env": env,
        "template": template.value,
        "window": {"since": window.since.isoformat() if window.since else None, "until": now.isoformat()},
        "counts": {"requests": preds.height, "feedback": feedback.height},
        "checks": [c.to_dict() for c in checks],
        "failed_checks": [c.name for c in failed],
        "drifted_columns": drifted,
        "versions": versions,
        "model": {"version": main_version, "age_days": age, "age_note": age_note},
        "plots": _plots({"input_drift": input_report, "prediction_drift": pred_report}, versions),
    }
    if failed:
        fields = {c.name: c.summary for c in failed}
        if drifted:
            fields["drifted columns"] = ", ".join(drifted)
        text = f"{len(failed)} check(s) failed in {env} over {preds.height} requests: " + ", ".join(
            c.name for c in failed
        )
        deliveries = send_alert(
            project, f"Conveyor: degradation in {settings.project.name} ({env})", text, fields,
            incident=f"monitor:{env}:" + ",".join(sorted(c.name for c in failed)),
        )  # fmt: skip
        report["alert"] = {"deliveries": [d.to_dict() for d in deliveries]}
    report["retrain"] = apply_policy(
        project, signals, now=now, reason_prefix=f"conveyor monitor ({env}): "
    ).to_dict()

    stamp = _run_stamp(monitoring_dir(project) / env, now)
    folder = report_dir if report_dir is not None else monitoring_dir(project) / env / stamp
    input_share = input_report.drift_share if input_report is not None else None
    prom = write_monitor_metrics(project, env, report, input_share, now)
    report["files"] = {"json": str(folder / "report.json"), "md": str(folder / "report.md"),
                       "html": str(folder / "report.html"), "prometheus": str(prom)}  # fmt: skip
    files = write_reports(report, folder)
    # a team's request log is in S3: the reports go beside it (the runner is disposable)
    uploaded = publish_reports(
        project, env, stamp, {Path(f).name: Path(f).read_bytes() for f in files.values()}
    )
    if uploaded:
        report["files"]["uploaded"] = uploaded
    env_state.update({"until": now.isoformat(), "metric_baselines": baselines, "last_report": files["json"]})
    state[env] = env_state
    write_state(project, CHECKS_FILE, state)
    return MonitorResult(report, {**files, "prometheus": str(prom)})


def _run_stamp(folder: Path, now: datetime) -> str:
    """A run folder's name: its UTC time to the microsecond, so names sort in time order and two
    runs in one second keep both reports; a name already taken (a fixed ``now``) gets ``-2``, ``-3``…"""
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    taken = 1
    while (folder / (stamp if taken == 1 else f"{stamp}-{taken}")).exists():
        taken += 1
    return stamp if taken == 1 else f"{stamp}-{taken}"
