"""Operator actions: roll back, abort the running rollout, promote a canary, conclude the A/B test.

Read-only by default. Actions are possible only when the environment variable named in
``serving.admin_token_env`` is set for the ``conveyor ui`` process, and only for a request
that proves it knows that token:

* an operator enters it once on ``/unlock``; the answer sets a session cookie (HttpOnly,
  SameSite=Strict) holding a random id signed with a key made at start — never the token,
  which is never written into a page either;
* a script sends it in the ``X-Conveyor-Admin-Token`` header.

Every action is a confirmation form (GET ``/actions/<action>?env=…``, with the operator's
reason) whose POST carries a CSRF token bound to the session, the action and the
environment. The action calls the same function of :mod:`conveyor.deploy` as the CLI
(``rollback``, ``abort_rollout``, ``promote_canary``, ``ab_conclude``) inside
:func:`conveyor.deploy.acting_as`, so its ledger lines name ``ui`` as who and carry the
reason. Anything refused is one line with a 4xx.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from conveyor.config import secret_from_env
from conveyor.errors import ConveyorError, InputError, NoRolloutRunning, UsageError
from conveyor.project import Project

ACTIONS = {
    "rollback": "roll back",
    "abort": "abort the running rollout",
    "promote": "promote the running canary to 100 %",
    "conclude": "conclude the A/B test",
}
COOKIE = "conveyor_ui_session"
HEADER = "x-conveyor-admin-token"
ACTOR = "ui"


@dataclass(frozen=True)
class Guard:
    """Who may act: the expected token (None: actions are off) and this process's signing key."""

    token: str | None
    variable: str | None
    key: bytes

    @classmethod
    def of(cls, project: Project) -> Guard:
        variable = project.settings.serving.admin_token_env
        token = None
        if variable:
            try:
                token = secret_from_env(variable, purpose="the admin token that unlocks the page's actions")
            except UsageError:
                token = None
        return cls(token, variable, secrets.token_bytes(32))

    @property
    def enabled(self) -> bool:
        return self.token is not None

    @property
    def off_reason(self) -> str:
        if not self.variable:
            return "actions are off: serving.admin_token_env is empty"
        return f"actions are off: set {self.variable} for `conveyor ui` to enable them"

    def token_matches(self, given: str | None) -> bool:
        return bool(self.token and given) and hmac.compare_digest(
            str(given).encode(), str(self.token).encode()
        )

    def _sign(self, text: str) -> str:
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()

    def new_session(self) -> str:
        nonce = secrets.token_urlsafe(18)
        return f"{nonce}.{self._sign(nonce)}"

    def session(self, cookie: str | None) -> str | None:
        """The session id of a cookie this process signed (None otherwise)."""
        if not cookie or "." not in cookie:
            return None
        nonce, signature = cookie.rsplit(".", 1)
        return nonce if hmac.compare_digest(signature, self._sign(nonce)) else None

    def csrf(self, session: str, action: str, env: str) -> str:
        return self._sign(f"csrf:{session}:{action}:{env}")

    def csrf_matches(self, session: str, action: str, env: str, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given), self.csrf(session, action, env))


def check_request(project: Project, action: str, env: str, why: str) -> str:
    """The reason, trimmed; a UsageError (one line) for an unknown environment or no reason."""
    if action not in ACTIONS:
        raise UsageError(f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
    if env not in project.settings.deploy.environments:
        known = ", ".join(project.settings.deploy.environments)
        raise UsageError(f"env {env!r}: no such environment (known: {known})")
    from conveyor.deploy import operator_reason

    return operator_reason(why)


def run_action(project: Project, action: str, env: str, why: str) -> dict[str, Any]:
    """Run ``action`` on ``env`` through the CLI's own deploy function, recorded as by ``ui``."""
    from conveyor.deploy import ab_conclude, abort_rollout, acting_as, promote_canary, rollback

    reason = check_request(project, action, env, why)
    with acting_as(ACTOR, reason):
        if action == "conclude":
            return ab_conclude(project, env_name=env).to_dict()
        if action == "abort":
            return abort_rollout(project, env)
        if action == "promote":
            return promote_canary(project, env)
        return rollback(project, env).to_dict()


def http_status(exc: ConveyorError) -> int:
    """400 for a bad request, 409 for anything the deploy state refused or could not do."""
    if isinstance(exc, NoRolloutRunning):
        return 409  # the request is well formed; the environment has nothing to promote or abort
    return 400 if isinstance(exc, UsageError | InputError) else 409
