"""The controller's side of the admin API: one environment's server, over HTTP.

Deployment never imports ``conveyor.serving``: it talks to the server as it
would in production (docs/serving.md, "Admin API"). The bearer token comes
from the environment's token file and is never put into a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx

from conveyor.errors import ServiceError

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

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ServerState:
        return cls(
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
        return next((v.share for v in self.versions if v.version == version), 0.0)

    def loaded(self, version: str) -> bool:
        return any(v.version == version for v in self.versions)

    @property
    def candidates(self) -> list[str]:
        return [v.version for v in self.versions if v.variant == "candidate"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "mode": self.mode,
            "primary": self.primary,
            "previous": self.previous,
            "versions": [v.__dict__ for v in self.versions],
        }


class ServerClient:
    """Admin and read calls to one server."""

    def __init__(self, base_url: str, token: str | None, *, environment: str) -> None:
        self.base_url = base_url
        self.token = token
        self.environment = environment
        self._client: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        # one client for all calls: a new httpx client per call builds a TLS context each time
        # (0.1-0.2 s on a busy machine) — a rollback makes four calls within its 1 s budget
        if self._client is None:
            self._client = httpx.Client(timeout=ADMIN_TIMEOUT_SECONDS, verify=tls_verify(self.base_url))
        return self._client

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
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

    # -- reads -------------------------------------------------------------------
    def state(self) -> ServerState:
        return ServerState.from_body(self._request("GET", "/version"))

    # -- admin ---------------------------------------------------------------------
    def load(self, version: str) -> ServerState:
        return ServerState.from_body(self._request("POST", "/admin/load", {"version": version}))

    def traffic(
        self,
        weights: dict[str, float],
        *,
        mode: Literal["weighted", "sticky"] = "weighted",
        salt: str | None = None,
    ) -> ServerState:
        body: dict[str, Any] = {"weights": weights, "mode": mode}
        if salt is not None:
            body["salt"] = salt
        return ServerState.from_body(self._request("POST", "/admin/traffic", body))

    def switch(self, version: str) -> ServerState:
        return ServerState.from_body(self._request("POST", "/admin/switch", {"version": version}))

    def rollback(self) -> ServerState:
        return ServerState.from_body(self._request("POST", "/admin/rollback"))

    def unload(self, version: str) -> ServerState:
        return ServerState.from_body(self._request("POST", "/admin/unload", {"version": version}))
