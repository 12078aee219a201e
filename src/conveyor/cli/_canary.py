"""``conveyor canary promote|abort``: an operator's hand on a canary (docs/deploy.md).

``promote`` tells the running canary (``conveyor deploy --strategy canary``, another
process) to skip its remaining steps and switch to 100 % now, or finishes a canary
whose process was killed; ``abort`` stops the running rollout (a rollback during it).
Both record who (the CI actor or the git author) and ``--why`` in the ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from conveyor.cli._deploy import EnvOpt, _render_result
from conveyor.cli._options import JsonOpt, ProjectOpt, load_project, start
from conveyor.cli._output import emit, note

canary_app = typer.Typer(
    help="Act on a canary by hand: promote it to 100 % now, or abort it.", no_args_is_help=True
)
WhyOpt = Annotated[str, typer.Option("--why", help="Why you act (goes into the ledger).", show_default=False)]


def _operator_command(name: str, function: str, summary: str) -> None:
    """Add ``conveyor canary <name>``: ``conveyor.deploy.<function>`` on ``--env``, run as the current
    actor with ``--why`` (both go into the ledger); its result printed like a deploy's."""

    def command(
        env: EnvOpt = "production", why: WhyOpt = "", json_out: JsonOpt = False, project: ProjectOpt = None
    ) -> None:
        start(json_out)
        import conveyor.deploy  # lazily, like every command: the deploy package loads on first use
        from conveyor.deploy import DeployResult, acting_as, current_actor, operator_reason

        action: Callable[..., dict[str, Any]] = getattr(conveyor.deploy, function)
        reason = operator_reason(why, name="--why")
        proj = load_project(project)
        with acting_as(current_actor(), reason):
            result = action(proj, env, progress=note)
        emit({"ok": True, **result}, _render_result(DeployResult.from_report({"environment": env, **result})))

    command.__doc__ = summary
    canary_app.command(name)(command)


_operator_command(
    "promote",
    "promote_canary",
    "Skip the running canary's remaining steps: its candidate takes 100 % of the traffic now.",
)
_operator_command(
    "abort",
    "abort_rollout",
    "Stop the running rollout: the candidate's traffic goes back to 0 % (a rollback during it).",
)


def register(app: typer.Typer) -> None:
    app.add_typer(canary_app, name="canary")
