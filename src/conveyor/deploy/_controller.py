"""The controller's side of the admin API: one server (one replica of an environment), over HTTP.

Deployment never imports ``conveyor.serving``: it talks to the server as it
would in production (docs/serving.md, "Admin API"). The bearer token comes
from the environment's token file (a local environment) or from the
environment variable the configuration names (replicas given by URL) and is
never put into a message.

Identity, not ports: every answer of ``/version`` and of the admin API names
the project and the environment the server belongs to; a server of another
project or environment is refused with one line (:class:`~conveyor.errors.UsageError`)
before anything is changed on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from conveyor.errors import ServiceError, UsageError

Mode = Literal["weighted", "sticky"]  # routing modes of POST /admin/traffic
ADMIN_TIMEOUT_SECONDS = 120.0  # loading a large model can take a while


def tls_verify(url: str) -> bool:
    """Verify certificates for https; plain http needs no CA bundle (loading it costs ~0.1 s)."""
    return url.startswith("https://")


@dataclass(frozen=True)
class ServedVersion:
    version: str
    variant: str  # primary, candidate or idle
    share: float
    loaded_at: str


@dataclass(frozen=True)
class ServerState:
    """The body of ``GET /version``."""

    env: str
    kind: str | None
    mode: str
    salt: str
    primary: str | None
    previous: str | None
    versions: list[ServedVersion]
    project: str | None = None
    # an environment of several replicas: each one's state, by URL (conveyor.deploy._fleet)
    replicas: tuple[tuple[str, ServerState], ...] = field(default=(), compare=False)

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ServerState:
        return cls(
            project=None if body.get("project") is None else str(body["project"]),
            env=str(body.get("env", "")),
            kind=body.get("kind"),
            mode=str(body.get("mode", "weighted")),
            salt=str(body.get("salt", "")),
            primary=None if body.get("primary") is None else str(body["primary"]),
            previous=None if body.get("previous") is None else str(body["previous"]),
            versions=[
                ServedVersion(
                    str(v["version"]), str(v["variant"]), float(v["share"]), str(v.get("loaded_at", ""))
                )
                for v in body.get("versions", [])
            ],
        )

    def share(self, version: str) -> float:
        """The version's share (of several replicas: the smallest)."""
        if self.replicas:
            return min(state.share(version) for _, state in self.replicas)
        return next((v.share for v in self.versions if v.version == version), 0.0)

    def loaded(self, version: str) -> bool:
        """Whether the version is loaded (of several replicas: on every one)."""
        if self.replicas:
            return all(state.loaded(version) for _, state in self.replicas)
        return any(v.version == version for v in self.versions)

    @property
    def candidates(self) -> list[str]:
        """Versions with traffic beside the primary (of several replicas: on any one)."""
        if self.replicas:
            found = {v for _, state in self.replicas for v in state.candidates}
            return sorted(found)
        return [v.version for v in self.versions if v.variant == "candidate"]

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": self.kind,
            "mode": self.mode,
            "primary": self.primary,
            "previous": self.previous,
            "versions": [v.__dict__ for v in self.versions],
        }
        if self.replicas:
            body["replicas"] = [{"url": url, **state.to_dict()} for url, state in self.replicas]
        return body


class ServerClient:
    """Admin and read calls to one server."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        environment: str,
        project_id: str | None = None,
        token_env: str | None = None,
    ) -> None:
        self.base_url = base_url
        self.token = token
        self.environment = environment
        self.project_id = project_id  # None: the server's identity is not checked (side servers)
        self.token_env = token_env  # where the token should have come from, for the error
        self._client: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        # one client for all calls: a new httpx client per call builds a TLS context each time
        # (0.1-0.2 s on a busy machine) — a rollback makes four calls within its 1 s budget
        if self._client is None:
            self._client = httpx.Client(timeout=ADMIN_TIMEOUT_SECONDS, verify=tls_verify(self.base_url))
        return self._client

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if method != "GET" and not self.token and self.token_env:
            raise UsageError(
                f"environment variable {self.token_env} (the admin token of the {self.environment} "
                "replicas) is not set",
                environment=self.environment,
                variable=self.token_env,
            )
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = self._http().request(method, self.base_url + path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ServiceError(
                f"the {self.environment} server at {self.base_url} did not answer {method} {path}: "
                f"{type(exc).__name__}",
                environment=self.environment,
            ) from exc
        if response.status_code >= 400:
            try:
                detail = str(response.json().get("detail", ""))
            except ValueError:
                detail = response.text[:200]
            if response.status_code == 401:
                detail = "the admin token was refused (is the server running with another token?)"
            raise ServiceError(
                f"the {self.environment} server refused {method} {path}: "
                f"HTTP {response.status_code}: {detail}",
                environment=self.environment,
                status=response.status_code,
            )
        try:
            data = response.json()
        except ValueError as exc:
            raise ServiceError(f"the {self.environment} server answered {path} with invalid JSON") from exc
        return data if isinstance(data, dict) else {}

    def _state(self, method: str, path: str, body: dict[str, Any] | None = None) -> ServerState:
        state = ServerState.from_body(self._request(method, path, body))
        self.check_identity(state)
        return state

    def check_identity(self, state: ServerState) -> None:
        """Refuse (UsageError, one line) a server of another project or environment."""
        if self.project_id is None:
            return
        where = f"the server at {self.base_url}"
        if state.project != self.project_id:
            owner = f"project {state.project!r}" if state.project else "no project id (not this Conveyor?)"
            raise UsageError(
                f"{where} belongs to {owner}, not to this project ({self.project_id!r}); "
                f"check deploy.environments.{self.environment}",
                environment=self.environment,
                url=self.base_url,
            )
        if state.env != self.environment:
            raise UsageError(
                f"{where} serves environment {state.env!r}, not {self.environment!r}; "
                f"check deploy.environments.{self.environment}",
                environment=self.environment,
                url=self.base_url,
            )

    # -- reads -------------------------------------------------------------------
    def state(self) -> ServerState:
        return self._state("GET", "/version")

    def ready(self) -> bool:
        """Whether ``GET /ready`` answers 200 (False when the server does not answer)."""
        try:
            return self._http().get(self.base_url + "/ready", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    # -- admin ---------------------------------------------------------------------
    def load(self, version: str) -> ServerState:
        return self._state("POST", "/admin/load", {"version": version})

    def traffic(
        self,
        weights: dict[str, float],
        *,
        mode: Mode = "weighted",
        salt: str | None = None,
    ) -> ServerState:
        body: dict[str, Any] = {"weights": weights, "mode": mode}
        if salt is not None:
            body["salt"] = salt
        return self._state("POST", "/admin/traffic", body)

    def switch(self, version: str) -> ServerState:
        return self._state("POST", "/admin/switch", {"version": version})

    def rollback(self) -> ServerState:
        return self._state("POST", "/admin/rollback")

    def unload(self, version: str) -> ServerState:
        return self._state("POST", "/admin/unload", {"version": version})
