"""What each stage command leaves for ``conveyor report`` and the GitHub job summary.

Every stage command calls :func:`publish` once with its ``--json`` payload:
the payload is reshaped for the report's store (``conveyor.reports``) and the
stage's own Markdown part is appended to ``$GITHUB_STEP_SUMMARY`` when it is
set. Publishing never changes a command's outcome: a stage that cannot write
its result still reports its own verdict (the failure is one line on stderr).
"""

from __future__ import annotations

from typing import Any

from conveyor.cli._output import note
from conveyor.errors import ConveyorError
from conveyor.project import Project


def _evaluate(p: dict[str, Any]) -> dict[str, Any]:
    production = p.get("production") or {}
    return {
        "metrics": p.get("metrics") or {},
        "production_metrics": production.get("metrics"),
        "production_version": production.get("version"),
        "baseline_metrics": (p.get("baseline") or {}).get("metrics") or {},
        "primary_metric": p.get("primary_metric"),
        "model_type": p.get("model_type"),
        "run_id": p.get("run_id"),
        "version": None,  # the candidate is not registered yet
        "verdict": p.get("verdict"),
        "evaluated": p.get("evaluated"),
        "gates": [
            {"name": g.get("name"), "passed": g.get("verdict") == "pass", "verdict": g.get("verdict"),
             "reason": g.get("reason")}
            for g in p.get("gates") or []
        ],
    }  # fmt: skip


def _ab(p: dict[str, Any], status: str) -> dict[str, Any]:
    arms = p.get("arms") or {}
    control, variant = arms.get("control") or {}, arms.get("variant") or {}
    decision = p.get("decision") or {}
    test = decision.get("test") or {}
    required = [int(a["required_users"]) for a in (control, variant) if a.get("required_users")]
    planned = p.get("required_per_arm")  # `ab start`: the plan, before any impression
    if not required and isinstance(planned, dict):
        required = [int(v) for v in planned.values()]
    return {
        "status": status,
        "unit": "users",
        "control": {
            "ctr": control.get("ctr"),
            "n": control.get("users"),
            "impressions": control.get("impressions"),
        },
        "variant": {
            "ctr": variant.get("ctr"),
            "n": variant.get("users"),
            "impressions": variant.get("impressions"),
        },
        "lift": test.get("lift"),
        "ci": list(test.get("lift_ci") or []) or None,
        "p_value": test.get("p_value"),
        "required_n": max(required) if required else None,
        "decision": p.get("outcome", "running"),
        "reason": p.get("reason") or p.get("note"),
    }


def _flat(p: dict[str, Any]) -> dict[str, Any]:
    """Scalars only: other stages are shown as a small key/value table."""
    return {k: v for k, v in p.items() if isinstance(v, str | int | float | bool) or v is None}


def publish(project: Project | None, stage: str, payload: dict[str, Any]) -> None:
    """Record ``stage``'s result for the report and append its part to the job summary."""
    if project is None:
        return  # a stand-alone run outside a project: nothing to report into
    from conveyor.reports import append_step_summary, record_stage_result, render_markdown

    if stage == "evaluate":
        shaped = _evaluate(payload)
    elif stage == "ab":
        shaped = _ab(payload, "concluded" if "decision" in payload else "running")
    elif stage == "drift":
        shaped = {k: payload[k] for k in ("dataset_drift", "drift_share", "columns") if k in payload}
        if not shaped:
            shaped = _flat(payload)
    elif stage == "validate":  # the operations page lists the failures (docs/ui.md)
        shaped = {**_flat(payload), "failures": list(payload.get("failures") or [])}
    else:
        shaped = _flat(payload)
    try:
        record_stage_result(project, stage, shaped)
        # the stage's own part: the report without its title and overall verdict lines
        part = "\n".join(render_markdown(project, {stage: shaped}).splitlines()[4:])
        append_step_summary(f"#### conveyor {stage}\n\n{part}")
    except ConveyorError as exc:
        note(f"conveyor: the {stage} result was not recorded for the report: {exc}")
