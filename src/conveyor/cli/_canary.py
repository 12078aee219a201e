"""``conveyor canary promote|abort``: an operator's hand on a canary (docs/deploy.md).

``promote`` tells the running canary (``conveyor deploy --strategy canary``, another
process) to skip its remaining steps and switch to 100 % now, or finishes a canary
whose process was killed; ``abort`` stops the running rollout (a rollback during it).
Both record who (the CI actor or the git author) and ``--why`` in the ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from conveyor.cli._deploy import EnvOpt, _render_result
from conveyor.cli._options import JsonOpt, ProjectOpt, load_project, start
from conveyor.cli._output import emit, note

canary_app = typer.Typer(
    help="Act on a canary by hand: promote it to 100 % now, or abort it.", no_args_is_help=True
)
WhyOpt = Annotated[str, typer.Option("--why", help="Why you act (goes into the ledger).", show_default=False)]


def _act(action: Callable[..., dict[str, Any]], env: str, why: str, project: Path | None) -> None:
    """Run ``action`` on ``env`` as the current actor with the reason ``why``; print its result."""
    from conveyor.deploy import DeployResult, acting_as, current_actor, operator_reason

    reason = operator_reason(why, name="--why")
    proj = load_project(project)
    with acting_as(current_actor(), reason):
        result = action(proj, env, progress=note)
    emit({"ok": True, **result}, _render_result(DeployResult.from_report({"environment": env, **result})))


@canary_app.command("promote")
def promote(
    env: EnvOpt = "production", why: WhyOpt = "", json_out: JsonOpt = False, project: ProjectOpt = None
) -> None:
    """Skip the running canary's remaining steps: its candidate takes 100 % of the traffic now."""
    start(json_out)
    from conveyor.deploy import promote_canary

    _act(promote_canary, env, why, project)


@canary_app.command("abort")
def abort(
    env: EnvOpt = "production", why: WhyOpt = "", json_out: JsonOpt = False, project: ProjectOpt = None
) -> None:
    """Stop the running rollout: the candidate's traffic goes back to 0 % (a rollback during it)."""
    start(json_out)
    from conveyor.deploy import abort_rollout

    _act(abort_rollout, env, why, project)


def register(app: typer.Typer) -> None:
    app.add_typer(canary_app, name="canary")
