"""The Databricks job as a one-time run, followed to its end (``conveyor spark databricks-run``).

The calls are made by Databricks' own SDK (``databricks-sdk``, installed with
MLflow, which depends on it): ``jobs.submit`` (``jobs/runs/submit``) with the
body of :func:`runs_submit_body`, ``jobs.get_run`` polled every ``poll``
seconds until the run's life cycle ends, and ``jobs.cancel_run`` when the
wait ends first — the timeout, Ctrl-C, or the SIGTERM of a cancelled
workflow: a run this command started does not outlive it.

Authentication is a personal access token (``auth_type="pat"``), read by the
caller from the variable ``spark.databricks.token_env`` names; it is never in
a message (the SDK's own messages show it as ``***``; Conveyor writes its own
lines and masks it again). A host that refuses connections is found before
the SDK is asked (its retries would wait minutes for an answer that will not
come); later failures are retried by the SDK for ``RETRY_SECONDS``.

Which code the cluster runs: with ``spark.databricks.upload: false`` the run
trains whatever ``spark.databricks.project_dir`` holds (a Git folder on
``main`` trains ``main``, not the pull request under test). With
``upload: true`` the command first uploads the files Git tracks to
``<project_dir>/code-<digest>`` (``_databricks_upload``) and the run's
``--project`` is that folder.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

from conveyor.errors import OperationError, ServiceError, UsageError

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.jobs import Run

RETRY_SECONDS = 60  # the SDK retries 429, 503 and lost connections for this long, then gives up
HTTP_SECONDS = 30  # one request
CONNECT_SECONDS = 10  # the first connection to the host
# the life cycle states after which a run changes no more (Jobs API RunLifeCycleState)
TERMINAL = frozenset({"TERMINATED", "SKIPPED", "INTERNAL_ERROR"})


@dataclass(frozen=True)
class RunStatus:
    """What ``jobs/runs/get`` says of a run: its life cycle, its result once it has one, and why."""

    run_id: int
    life_cycle_state: str
    result_state: str | None
    state_message: str
    run_page_url: str | None

    @property
    def done(self) -> bool:
        return self.life_cycle_state in TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.result_state == "SUCCESS"

    @property
    def line(self) -> str:
        """``run 7: TERMINATED FAILED: the message`` — one line per state the run goes through."""
        state = " ".join(s for s in (self.life_cycle_state, self.result_state) if s)
        return f"run {self.run_id}: {state}" + (f": {self.state_message}" if self.state_message else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run_page_url": self.run_page_url,
            "life_cycle_state": self.life_cycle_state,
            "result_state": self.result_state,
            "state_message": self.state_message,
        }


def _status(run_id: int, run: Run) -> RunStatus:
    life, result, message = "PENDING", None, ""
    if run.state is not None:
        life = run.state.life_cycle_state.value if run.state.life_cycle_state else life
        result = run.state.result_state.value if run.state.result_state else None
        message = run.state.state_message or ""
    if not message and run.status is not None and run.status.termination_details is not None:
        message = run.status.termination_details.message or ""
    return RunStatus(run_id, life, result, " ".join(message.split()), run.run_page_url)


def workspace_url(host: str) -> str:
    """``DATABRICKS_HOST`` as a URL: ``https://`` added when there is no scheme (as the Databricks CLI
    does); UsageError for anything that is not ``http(s)://host[:port]``."""
    url = host.strip().rstrip("/")
    if "://" not in url:
        url = f"https://{url}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
    ):
        raise UsageError(
            f"DATABRICKS_HOST {host!r} is not a workspace URL (e.g. https://dbc-1234.cloud.databricks.com)"
        )
    return url


def _reachable(url: str) -> None:
    """UsageError, one line, when nothing accepts a connection at ``url``'s host and port (unless a
    proxy carries the requests: then the SDK's bounded retries are the check)."""
    parts = urlsplit(url)
    if parts.scheme in getproxies() and not proxy_bypass(parts.netloc):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=CONNECT_SECONDS):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"cannot reach Databricks at {url}: {reason} (check DATABRICKS_HOST)") from None


@contextlib.contextmanager
def _sdk_quiet() -> Iterator[None]:
    """The SDK logs what it falls back on (a host without its metadata endpoint, retries); the
    outcome reaches the user as Conveyor's one line instead."""
    sdk_logger = logging.getLogger("databricks.sdk")
    level = sdk_logger.level
    sdk_logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        sdk_logger.setLevel(level)


def connect(host: str, token: str) -> WorkspaceClient:
    """A client of the workspace at ``host`` with the personal access token ``token``."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    url = workspace_url(host)
    _reachable(url)
    try:
        with _sdk_quiet():
            config = Config(
                host=url,
                token=token,
                auth_type="pat",
                retry_timeout_seconds=RETRY_SECONDS,
                http_timeout_seconds=HTTP_SECONDS,
            )
            return WorkspaceClient(config=config)
    except ValueError as exc:  # the SDK's refusal of its settings (other DATABRICKS_* variables, say)
        raise UsageError(f"the Databricks SDK refused the settings: {_refusal(exc, token)}") from None


def _refusal(exc: Exception, token: str) -> str:
    """The server's own words (error_code: message), first line, without the SDK's config dump."""
    from databricks.sdk.errors.base import DatabricksError

    text = str(exc).split(". Config: ")[0]  # the SDK appends "Config: host=…, token=***" on auth errors
    text = " ".join(text.split()).replace(token, "***") if token else text
    code = exc.error_code if isinstance(exc, DatabricksError) else None
    return f"{code}: {text}" if code else text or type(exc).__name__


def token_refused(exc: Exception, token: str) -> UsageError:
    """The one line of a 401: the token in ``spark.databricks.token_env`` is not valid."""
    return UsageError(
        f"Databricks refused the token ({_refusal(exc, token)}): set a valid personal access token "
        "in the variable spark.databricks.token_env names"
    )


@contextlib.contextmanager
def workspace_errors(
    token: str, *, refused: str, permission: str, failed: str, note: str = "", bad_request: str | None = None
) -> Iterator[None]:
    """The SDK's errors during one workspace call, as one line without the token: a refused token
    (401) or permission (403) — and, with ``bad_request``, a refused body (400) — is a UsageError
    (exit 2); anything else (5xx, a connection lost after the SDK's retries) a ServiceError (exit 1):
    the workspace failed, not the user's input."""
    import requests
    from databricks.sdk.errors.base import DatabricksError
    from databricks.sdk.errors.platform import BadRequest, PermissionDenied, Unauthenticated

    try:
        with _sdk_quiet():
            yield
    except Unauthenticated as exc:
        raise token_refused(exc, token) from None
    except PermissionDenied as exc:
        raise UsageError(f"{refused} ({_refusal(exc, token)}): {permission}") from None
    except (DatabricksError, TimeoutError, requests.RequestException) as exc:
        if bad_request is not None and isinstance(exc, BadRequest):
            raise UsageError(f"{bad_request} ({_refusal(exc, token)})") from None
        raise ServiceError(f"{failed}: {_refusal(exc, token)}{note}") from None


def submit(client: WorkspaceClient, body: dict[str, Any], token: str) -> int:
    """``jobs/runs/submit``; the new run's id. A refused token or body is a UsageError (exit 2)."""
    from databricks.sdk.service.jobs import SubmitRunResponse, SubmitTask

    tasks = [SubmitTask.from_dict(task) for task in body["tasks"]]
    with workspace_errors(
        token,
        refused="Databricks refused the run to this token",
        permission="its user needs the permission to create clusters and run jobs",
        bad_request="Databricks refused the run",
        failed="Databricks did not take the run",
    ):
        # the idempotency token makes a submit the SDK retries start one run, not two
        waiter = client.jobs.submit(
            run_name=body["run_name"], tasks=tasks, idempotency_token=uuid.uuid4().hex
        )
    response: SubmitRunResponse = waiter.response  # the SDK's Wait types it as any
    run_id = response.run_id
    if run_id is None:
        raise OperationError("Databricks answered the submit without a run id")
    return int(run_id)


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a cancelled workflow's runner sends it) handled as Ctrl-C: the run is cancelled."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM while a run was followed; ``cancelled``: whether Databricks took the cancel."""

    def __init__(self, run_id: int, cancelled: bool) -> None:
        super().__init__(run_id, cancelled)
        self.run_id = run_id
        self.cancelled = cancelled


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _cancel(client: WorkspaceClient, run_id: int) -> bool:
    """``jobs/runs/cancel``, best effort: whether Databricks took it."""
    import requests
    from databricks.sdk.errors.base import DatabricksError

    try:
        with _sdk_quiet():
            client.jobs.cancel_run(run_id)
    except (DatabricksError, TimeoutError, requests.RequestException):
        return False
    return True


def follow(
    client: WorkspaceClient,
    run_id: int,
    *,
    timeout: float,
    poll: float,
    token: str,
    on_change: Callable[[RunStatus], None],
) -> RunStatus:
    """Poll run ``run_id`` until it ends (calling ``on_change`` at each new state); its last status.

    The run is cancelled when ``timeout`` seconds pass first (OperationError), on Ctrl-C or SIGTERM
    (RunInterrupted, a KeyboardInterrupt), or when Databricks stops answering (OperationError).
    """
    import requests
    from databricks.sdk.errors.base import DatabricksError

    deadline = time.monotonic() + timeout
    last: RunStatus | None = None
    with _sigterm_interrupts():
        try:
            while True:
                with _sdk_quiet():
                    status = _status(run_id, client.jobs.get_run(run_id))
                if last is None or (status.life_cycle_state, status.result_state) != (
                    last.life_cycle_state,
                    last.result_state,
                ):
                    on_change(status)
                last = status
                if status.done:
                    return status
                left = deadline - time.monotonic()
                if left <= 0:
                    cancelled = _cancel(client, run_id)
                    raise OperationError(
                        f"Databricks run {run_id} did not finish within {timeout:g} s: "
                        + ("cancelled" if cancelled else "could not cancel it, cancel it in the workspace"),
                        run_id=run_id,
                        run_page_url=status.run_page_url,
                    )
                time.sleep(min(poll, left))
        except KeyboardInterrupt as exc:
            raise RunInterrupted(run_id, _cancel(client, run_id)) from exc
        except (DatabricksError, TimeoutError, requests.RequestException) as exc:
            cancelled = _cancel(client, run_id)
            raise OperationError(
                f"lost Databricks run {run_id} ({_refusal(exc, token)}); "
                + ("cancelled" if cancelled else "it may still run: see the workspace"),
                run_id=run_id,
            ) from None


__all__ = ["RunInterrupted", "RunStatus", "connect", "follow", "submit", "workspace_url"]
