"""How fast ``conveyor ui`` answers on a project with a year of history.

Writes a year into a fresh project, then starts the real ``conveyor ui`` (a child process
on a free loopback port, as an operator runs it) and times every page over HTTP: the first
request after the start (cold), then ``--requests`` more, median and 95th percentile.

The year (defaults), written through the public writers with each entry dated on its day:

* **ledger** (``conveyor.deploy.Ledger.append``): ``--staging-per-day`` staging deploys a
  day, each with its ``aliases`` line; a production canary a week (two ``canary-step``
  lines, a ``canary-analysis`` per step whose details are ``conveyor.deploy.step_record``
  of a real ``analyse`` of two arms, the ``deploy`` line and its ``aliases`` line; one in
  eight is rolled back at 10 %); an A/B test every fourth week (``ab-start``,
  ``ab-conclude`` with its test); an operator's rollback a month;
* **monitor runs**: a daily production run for 365 days, each a ``report.json`` in
  ``.conveyor/monitoring/production/<stamp>/``, the file the monitor writes (its writer is
  internal to ``conveyor.monitoring``; the report's checks are ``CheckResult``s and its
  input drift a real ``conveyor.data.detect_drift`` of 11 columns, drifting over the year,
  with the distributions the monitor plots);
* **pipeline results** (``conveyor.reports.record_stage_result``): validate, drift and
  evaluate once a week;
* **registry**: a version a week, registered with MLflow's client on the project's
  SQLite store (``conveyor.registry.tracking_client``), ``production`` and ``previous``
  aliases.

No environment runs (the page's readiness calls find a closed port at once). No tool
side by side: no other open tool serves this page (docs/ui.md).

    .venv/bin/python -m benchmarks.ui_pages [--requests 10] [--staging-per-day 6]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks._env import environment_header, load_line
from conveyor.deploy import free_port
from conveyor.telemetry import TELEMETRY_OPT_OUT

PAGES = ("environments", "rollouts", "models", "data")
DAYS = 365
SLOW_MS = 1000.0  # the page's budget: an operator waits no longer than a second
DRIFT_VARIANTS = 12  # distinct drift reports, from no shift to a large one, reused over the year


def _day(start: datetime, day: int, hour: int = 9, minute: int = 0) -> str:
    return (start + timedelta(days=day, hours=hour, minutes=minute)).isoformat(timespec="milliseconds")


def write_ledger(root: Path, start: datetime, staging_per_day: int) -> int:
    """A year of deployments; the number of lines written."""
    from conveyor.deploy import ArmSample, Ledger, LedgerEntry, analyse, step_record
    from conveyor.project import Project

    project = Project.load(root)
    ledger = Ledger.of(project)
    settings = project.settings.deploy.canary
    rng = np.random.default_rng(0)
    lines = 0

    def add(day: int, minute: int, env: str, action: str, outcome: str, version: str, strategy: str | None,
            reason: str, details: dict[str, Any] | None = None) -> None:  # fmt: skip
        nonlocal lines
        when = _day(start, day, 9, minute)
        ledger.append(
            LedgerEntry(env, action, outcome, version, strategy, reason, "ci-bot", when, details or {})
        )
        lines += 1

    version = 1
    for day in range(DAYS):
        for i in range(staging_per_day):
            add(day, i * 7, "staging", "deploy", "ok", str(version), "direct", f"switched to {version}",
                details={"previous": str(max(version - 1, 1)), "switch_ms": 3.1})  # fmt: skip
            add(day, i * 7 + 1, "staging", "aliases", "ok", str(version), None, "aliases follow the ledger")
        if day % 7 == 6:  # the week's production canary
            stable, version = str(version), version + 1
            candidate = str(version)
            bad = day % 56 == 6
            for n, step in enumerate((10, 50)):
                add(day, 40 + 10 * n, "production", "canary-step", "ok", candidate, "canary",
                    f"{step} % to {candidate}")  # fmt: skip
                stable_arm, candidate_arm = (
                    ArmSample(v, n_, int(rng.binomial(n_, p)), rng.gamma(4, 3, n_).tolist())
                    for v, n_, p in ((stable, 4000 - 40 * step, 0.002),
                                     (candidate, 40 * step, 0.08 if bad else 0.002))
                )  # fmt: skip
                result = analyse(stable_arm, candidate_arm, settings, expected_share=step / 100)
                add(day, 45 + 10 * n, "production", "canary-analysis", result.verdict.value, candidate,
                    "canary", f"{step} %: {result.reason}",
                    details=step_record(step, stable_arm, candidate_arm, result, settings))  # fmt: skip
                if result.verdict.value != "pass":
                    add(day, 50 + 10 * n, "production", "deploy", "rolled-back", candidate, "canary",
                        f"canary analysis failed at {step} %; {candidate} back to 0 %")  # fmt: skip
                    version -= 1
                    break
            else:
                add(day, 70, "production", "deploy", "ok", candidate, "canary",
                    f"canary passed 2 analyses; promoted {candidate} over {stable}",
                    details={"previous": stable, "switch_ms": 2.4})  # fmt: skip
                add(day, 71, "production", "aliases", "ok", candidate, None, "aliases follow the ledger")
        if day % 28 == 20:  # an A/B test, concluded a week later
            experiment = f"ab-{day}"
            add(day, 80, "production", "ab-start", "ok", str(version), "ab", f"A/B test {experiment}",
                details={"experiment": experiment})  # fmt: skip
            test = {"control_users": 9000 + day, "variant_users": 1000 + day // 10, "lift": 0.021,
                    "lift_ci": [-0.01, 0.05], "p_value": 0.19}  # fmt: skip
            add(min(day + 7, DAYS - 1), 81, "production", "ab-conclude", "kept-control", str(version), "ab",
                "no significant lift", details={"experiment": experiment, "test": test})  # fmt: skip
        if day % 30 == 15:
            add(day, 90, "production", "rollback", "ok", str(max(version - 1, 1)), None,
                f"switched back from {version} to {max(version - 1, 1)}",
                details={"previous": str(version), "switch_ms": 1.9})  # fmt: skip
            add(day, 91, "production", "rollback", "ok", str(version), None,
                f"switched back from {max(version - 1, 1)} to {version}",
                details={"previous": str(max(version - 1, 1)), "switch_ms": 1.8})  # fmt: skip
    return lines


def _drift_reports(root: Path) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """``DRIFT_VARIANTS`` (details, plots) of the input-drift check, from no shift to a large one."""
    import polars as pl

    from conveyor.data import build_profile, detect_drift, generate_classification
    from conveyor.project import Project

    settings = Project.load(root).settings.data.drift
    reference = generate_classification(5000, seed=0).drop("label")
    profile = build_profile(reference)
    found = []
    for k in range(DRIFT_VARIANTS):
        current = generate_classification(3000, seed=100 + k).drop("label")
        shift = 0.04 * k
        current = current.with_columns(
            [(pl.col(c) + shift * (i + 1)) for i, c in enumerate(("f0", "f1", "f2"))]
        )
        report = detect_drift(profile, current, settings)
        details = {"rows": current.height, **report.to_dict(), "drifted_columns": report.drifted_columns}
        plots = [
            {"title": f"input_drift: {column}" + (" (drifted)" if report.columns[column].drift else ""),
             "kind": dist.kind, "labels": [str(x) for x in dist.labels],
             "series": {"reference": dist.reference, "current": dist.current}}
            for column, dist in report.distributions.items()
        ]  # fmt: skip
        found.append((json.loads(json.dumps(details, default=str)), plots))
    return found


def write_monitor_runs(root: Path, start: datetime) -> int:
    """A daily production monitor run for a year: each run's ``report.json``; the number written."""
    from conveyor.monitoring import CheckResult
    from conveyor.project import Project

    folder = Project.load(root).state_dir / "monitoring" / "production"
    variants = _drift_reports(root)
    for day in range(DAYS):
        details, plots = variants[min(DRIFT_VARIANTS - 1, day * DRIFT_VARIANTS // DAYS)]
        until = start + timedelta(days=day, hours=6)
        drifted = bool(details.get("dataset_drift"))
        checks = [
            CheckResult("error_rate", "pass", "error rate 0.0012 (SLO 0.01)", {"rate": 0.0012}),
            CheckResult("latency", "pass", "p99 41 ms (SLO 500 ms)", {"p99_ms": 41.0}),
            CheckResult("input_warnings", "pass", "1.1 % of requests out of schema",
                        {"requests": 5000, "flagged_requests": 55, "share": 0.011,
                         "by_kind": {"unseen_category": 55}, "by_feature": {"c0": 55}}),
            CheckResult("input_drift", "fail" if drifted else "pass",
                        f"{len(details['drifted_columns'])} columns drifted", details),
        ]  # fmt: skip
        report = {
            "ok": not drifted, "project": "year", "env": "production", "template": "classifier",
            "window": {"since": (until - timedelta(days=1)).isoformat(), "until": until.isoformat()},
            "counts": {"requests": 5000, "feedback": 400}, "checks": [c.to_dict() for c in checks],
            "failed_checks": ["input_drift"] if drifted else [],
            "drifted_columns": details["drifted_columns"],
            "plots": plots,
        }  # fmt: skip
        run = folder / until.strftime("%Y%m%dT%H%M%SZ")
        run.mkdir(parents=True)
        (run / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return DAYS


def write_stage_results(root: Path) -> int:
    """Validate, drift and evaluate once a week; the number of records."""
    from conveyor.project import Project
    from conveyor.reports import record_stage_result

    project = Project.load(root)
    details, _ = _drift_reports(root)[1]
    for week in range(52):
        run = f"run-{week:02d}"
        record_stage_result(project, "validate", {"ok": True, "rows": 5000, "failures": []}, pipeline_run=run)
        record_stage_result(project, "drift", {"ok": True, **details}, pipeline_run=run)
        metrics = {"roc_auc": 0.81 + week / 5000, "f1": 0.62}
        record_stage_result(project, "evaluate", {"metrics": metrics, "gates": [
            {"name": "min_roc_auc", "verdict": "pass", "reason": f"roc_auc {metrics['roc_auc']:.3f}"}]},
            pipeline_run=run)  # fmt: skip
    return 52 * 3


def register_versions(root: Path) -> int:
    """A registered version a week (MLflow's client on the project's store), with aliases."""
    from conveyor.project import Project
    from conveyor.registry import tracking_client

    project = Project.load(root)
    client = tracking_client(project)
    client.create_registered_model(project.model_name)
    source = root / "models"
    source.mkdir()
    # the pyfunc package's MLmodel, as `conveyor register` writes it (the page reads where the model is)
    (source / "MLmodel").write_text(
        "flavors:\n  python_function:\n    artifacts:\n      model: {path: artifacts/model}\n"
    )
    for _ in range(52):
        client.create_model_version(project.model_name, source=str(source),
                                    tags={"conveyor.model_type": "random_forest"})  # fmt: skip
    client.set_registered_model_alias(project.model_name, "production", "52")
    client.set_registered_model_alias(project.model_name, "previous", "51")
    return 52


def start_ui(root: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``conveyor ui --port 0`` in its own process (its log in ``log``); the process and its address."""
    env = {**os.environ, **TELEMETRY_OPT_OUT}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "conveyor", "--project", str(root), "ui", "--port", "0"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:  # bounded: the address comes first
        found = re.search(r"on (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
        if found:
            return process, found[1]
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"conveyor ui did not start: {log.read_text(errors='replace')[-500:]}")


def time_pages(url: str, requests: int) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=url, timeout=120) as client:
        for page in PAGES:
            started = time.perf_counter()
            answer = client.get(f"/{page}")
            cold = (time.perf_counter() - started) * 1000
            results[page] = {"cold_ms": cold, "status": answer.status_code, "kb": len(answer.content) / 1024,
                             "problems": re.findall(r"data-problem>([^<]*)<", answer.text)}  # fmt: skip
        for page in PAGES:
            times = []
            for _ in range(requests):
                started = time.perf_counter()
                answer = client.get(f"/{page}")
                times.append((time.perf_counter() - started) * 1000)
                if answer.status_code != 200:
                    results[page]["status"] = answer.status_code
            times.sort()
            results[page].update(
                median_ms=statistics.median(times),
                p95_ms=times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
            )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ui_pages", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--requests", type=int, default=10, help="timed requests per page after the cold one")
    parser.add_argument("--staging-per-day", type=int, default=6, help="staging deploys a day in the ledger")
    args = parser.parse_args(argv)
    print(
        environment_header(
            "ui_pages",
            command="python -m benchmarks.ui_pages "
            f"--requests {args.requests} --staging-per-day {args.staging_per_day}",
        ),
        flush=True,
    )
    os.environ.update(TELEMETRY_OPT_OUT)
    with tempfile.TemporaryDirectory(prefix="conveyor-ui-year-") as tmp:
        root = Path(tmp) / "year"
        root.mkdir()
        (root / "conveyor.yaml").write_text(
            "project: {name: year, template: classifier}\nmodel: {type: random-forest}\n"
            "deploy:\n  environments:\n"
            f"    staging: {{port: {free_port()}}}\n    production: {{port: {free_port()}}}\n"
        )
        start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=DAYS)
        began = time.perf_counter()
        volume = {
            "ledger lines": write_ledger(root, start, args.staging_per_day),
            "monitor runs": write_monitor_runs(root, start),
            "stage results": write_stage_results(root),
            "registered versions": register_versions(root),
        }
        print(f"a year written in {time.perf_counter() - began:.0f} s: "
              + ", ".join(f"{n} {what}" for what, n in volume.items()), flush=True)  # fmt: skip
        process, url = start_ui(root, Path(tmp) / "ui.log")
        try:
            results = time_pages(url, args.requests)
        except httpx.HTTPError as exc:
            log = (Path(tmp) / "ui.log").read_text(errors="replace")
            raise SystemExit(f"the page did not answer: {exc}; conveyor ui said: {log[-2000:]}") from exc
        finally:
            process.terminate()
            process.wait(timeout=30)
    print()
    print(f"| page | first request (ms) | median of {args.requests} (ms) | p95 (ms) | size (kB) | status |")
    print("|---|---:|---:|---:|---:|---:|")
    for page, r in results.items():
        print(f"| /{page} | {r['cold_ms']:.0f} | {r['median_ms']:.0f} | {r['p95_ms']:.0f} | {r['kb']:.0f} "
              f"| {r['status']} |")  # fmt: skip
    for page, r in results.items():
        for line in r["problems"]:
            print(f"/{page} says: {line}")
    slow = [p for p, r in results.items() if r["median_ms"] > SLOW_MS]
    verdict = "yes" if not slow else f"no ({', '.join(slow)})"
    print(f"\nevery page's median under {SLOW_MS:.0f} ms: {verdict}")
    print(load_line("after"), flush=True)
    print(
        json.dumps(
            {
                "benchmark": "ui_pages",
                "volume": volume,
                "pages": {p: {k: v for k, v in r.items() if k != "problems"} for p, r in results.items()},
            }
        )
    )
    return 0 if all(r["status"] == 200 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
