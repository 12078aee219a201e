"""One line per demo step, and the closing summary table."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from conveyor.demo._scenario import Demo
    from conveyor.demo._steps import StepResult


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _find(payload: Any, key: str) -> Any:
    """The first value under ``key`` anywhere in a nested JSON object."""
    if isinstance(payload, dict):
        if key in payload:
            return payload[key]
        for value in payload.values():
            found = _find(value, key)
            if found is not None:
                return found
    elif isinstance(payload, list):
        for value in payload:
            found = _find(value, key)
            if found is not None:
                return found
    return None


def describe(stage: str, payload: dict[str, Any]) -> str:
    """A short outcome line for a step's JSON answer."""
    if stage == "validate":
        failures = payload.get("failures") or []
        if failures:
            rules = sorted({f"{f.get('rule')}({f.get('column')})" for f in failures})
            return f"{len(failures)} rule(s) failed: {', '.join(rules[:4])}"
        return f"{payload.get('rows', '?')} rows valid"
    if stage == "drift":
        if payload.get("note"):
            return str(payload["note"])
        drifted = [n for n, c in (payload.get("columns") or {}).items() if c.get("drift")]
        return f"drift share {_num(payload.get('drift_share'))}; drifted: {', '.join(drifted) or 'none'}"
    if stage == "train":
        reused = payload.get("reused")
        run = payload.get("run_id") or _find(payload, "run_id")
        model = payload.get("model_type") or _find(payload, "model_type")
        return f"{'reused' if reused else 'trained'} {model or ''} run {str(run)[:8]}"
    if stage == "evaluate":
        metrics = payload.get("metrics") or {}
        baseline = (payload.get("baseline") or {}).get("metrics") or {}
        baseline_name = (payload.get("baseline") or {}).get("name") or "baseline"
        gates = payload.get("gates") or []
        verdicts = Counter(str(g.get("verdict")) for g in gates)
        passed = verdicts.pop("pass", 0)
        key = next((k for k in ("ndcg_at_10", "roc_auc", "f1") if k in metrics), None)
        head = ""
        if key:
            head = f"{key} {_num(metrics[key])}"
            if isinstance(baseline, dict) and key in baseline:
                head += f" ({baseline_name} {_num(baseline[key])})"
        others = ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items()))
        return f"{head}; gates {passed}/{len(gates)} passed" + (f" ({others})" if others else "")
    if stage == "register":
        return f"version {payload.get('version')} sha256 {str(payload.get('sha256', ''))[:12]}"
    if stage in ("deploy-staging", "deploy-production", "deploy"):
        return str(payload.get("reason") or payload.get("outcome") or "deployed")
    if stage == "rollback":
        reason = payload.get("reason") or payload.get("outcome") or "rolled back"
        return f"{reason} ({_num(payload.get('switch_ms'))} ms)"
    if stage == "smoke":
        checks = payload.get("checks") or []
        failed = [c.get("name") for c in checks if not c.get("ok")]
        text = f"{len(checks) - len(failed)}/{len(checks)} checks passed"
        return text + (f" (failed: {', '.join(map(str, failed))})" if failed else "")
    if stage.startswith("ab"):
        return str(payload.get("reason") or payload.get("outcome") or "")
    if stage == "monitor":
        failed = [c.get("name") for c in payload.get("checks") or [] if c.get("status") == "fail"]
        retrain = payload.get("retrain") or {}
        text = f"failed checks: {', '.join(map(str, failed))}" if failed else "all checks pass"
        if isinstance(retrain, dict) and retrain.get("status") not in (None, "not-needed"):
            text += f"; retraining {retrain.get('status')}"
        return text
    if stage == "status":
        envs = payload.get("environments") or {}
        if isinstance(envs, dict):
            return "; ".join(f"{n}: {_serving(e)}" for n, e in envs.items())
        return "ok"
    return "ok"


def _serving(env: Any) -> str:
    if not isinstance(env, dict):
        return "?"
    server = env.get("server") or {}
    versions = server.get("versions") if isinstance(server, dict) else None
    if versions:
        return ", ".join(f"v{v.get('version')} {v.get('share', 0):.0%}" for v in versions if v.get("share"))
    return str(env.get("primary") or env.get("state") or "not running")


@dataclass
class DemoSummary:
    """Every step of one demo run; ``ok`` only when the whole story happened as planned.

    A step is as planned when it exits as the scenario expects — a planted
    failure (the broken feed's validation, week 3's monitor) must fail, with
    exit 1 — and the story is complete when each of its ``required`` checks
    was reached. A demo that stopped early, or in which a planted failure did
    not fail, is not ok.
    """

    seconds: float
    project: str
    steps: list[StepResult]
    facts: dict[str, Any] = field(default_factory=dict)
    required: tuple[str, ...] = ()  # "phase/step" names the story must reach

    @property
    def unexpected(self) -> list[str]:
        """The steps that did not end as planned, then the required checks never reached."""
        seen = {f"{s.phase}/{s.name}" for s in self.steps}
        broken = [f"{s.phase}/{s.name}" for s in self.steps if not (s.as_expected and s.outcome)]
        return broken + [f"{name} (not reached)" for name in self.required if name not in seen]

    @property
    def ok(self) -> bool:
        return bool(self.steps) and not self.unexpected

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "unexpected": self.unexpected,
            "seconds": round(self.seconds, 1),
            "project": self.project,
            "facts": self.facts,
            "steps": [
                {
                    "phase": s.phase,
                    "step": s.name,
                    "command": s.command,
                    "exit_code": s.exit_code,
                    "expected_exit_code": s.expected_exit,
                    "seconds": round(s.seconds, 2),
                    "outcome": s.outcome,
                }
                for s in self.steps
            ],
        }

    def render(self, console: Console) -> None:
        table = Table(title=f"Conveyor demo — {self.seconds:.0f} s")
        for column in ("phase", "step", "exit", "time", "outcome"):
            table.add_column(column, overflow="fold")
        for s in self.steps:
            exit_code = str(s.exit_code) if s.as_expected else f"[red]{s.exit_code} (unexpected)[/red]"
            table.add_row(s.phase, s.name, exit_code, f"{s.seconds:.1f} s", s.outcome)
        console.print(table)


def summarise(demo: Demo, seconds: float) -> DemoSummary:
    return DemoSummary(seconds, str(demo.project), demo.steps.results, demo.facts, demo.required)
