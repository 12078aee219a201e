"""Traffic routing between the versions one server holds.

The routing state is one immutable :class:`Routing` value; every change (load,
traffic, switch, rollback, unload) builds a new value and the server swaps the
reference in one assignment. A request reads the reference once and keeps the
version it got until it answers, so a switch (blue-green) drops nothing in flight.

Modes: ``weighted`` draws each request at random by the shares (canary); ``sticky``
maps ``sha256(salt:user_id)`` to [0, 1) against the cumulative shares, so a user
always lands on the same arm (A/B). Shares are ordered primary first, then the
other versions by number, so the mapping is the same in every process.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from conveyor.errors import OperationError
from conveyor.models import FeatureSpec, Model

Mode = Literal["weighted", "sticky"]
PRIMARY = "primary"
CANDIDATE = "candidate"
IDLE = "idle"
DEFAULT_SALT = "conveyor"
_TWO_64 = float(2**64)


class RoutingConflict(OperationError):
    """The requested routing change contradicts the current state (HTTP 409)."""


@dataclass(frozen=True)
class Served:
    """One loaded version: its model and its micro-batcher."""

    version: str
    model: Model
    loaded_at: datetime
    batcher: Any
    feature_types: Mapping[str, str] | None = None  # classifiers: the input types
    feature_specs: Mapping[str, FeatureSpec] | None = None  # classifiers: the input schema


def version_key(version: str) -> tuple[int, int, str]:
    """Numeric versions sort by number, others after them by name."""
    return (0, int(version), "") if version.isdigit() else (1, 0, version)


def sticky_point(salt: str, user_id: int | str) -> float:
    """The user's fixed point in [0, 1) for this salt."""
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _TWO_64


@dataclass(frozen=True)
class Routing:
    """Who is loaded, who is primary, and how traffic splits. Never mutated."""

    served: Mapping[str, Served] = field(default_factory=dict)
    primary: str | None = None
    previous: str | None = None
    shares: tuple[tuple[str, float], ...] = ()
    mode: Mode = "weighted"
    salt: str = DEFAULT_SALT

    # -- reading ------------------------------------------------------------------
    @property
    def kind(self) -> str | None:
        return next((s.model.kind for s in self.served.values()), None)

    def share(self, version: str) -> float:
        return dict(self.shares).get(version, 0.0)

    def variant(self, version: str) -> str:
        if version == self.primary:
            return PRIMARY
        return CANDIDATE if self.share(version) > 0 else IDLE

    def choose(self, user_id: int | str | None) -> Served | None:
        """The version this request goes to (None when nothing has traffic)."""
        if not self.shares:
            return None
        if len(self.shares) == 1:
            return self.served[self.shares[0][0]]
        if self.mode == "sticky" and user_id is not None:
            point = sticky_point(self.salt, user_id)
        else:
            point = random.random()
        total = 0.0
        for version, share in self.shares:
            total += share
            if point < total:
                return self.served[version]
        return self.served[self.shares[-1][0]]

    def describe(self, env: str, project: str | None = None) -> dict[str, Any]:
        """The body of ``GET /version``: whose server (project, environment) and what it serves."""
        versions = sorted(self.served, key=lambda v: (v != self.primary, version_key(v)))
        return {
            "project": project,
            "env": env,
            "kind": self.kind,
            "mode": self.mode,
            "salt": self.salt,
            "primary": self.primary,
            "previous": self.previous,
            "versions": [
                {
                    "version": v,
                    "variant": self.variant(v),
                    "share": self.share(v),
                    "kind": self.served[v].model.kind,
                    "loaded_at": self.served[v].loaded_at.isoformat(),
                }
                for v in versions
            ],
        }

    # -- changing (each returns a new value) -------------------------------------------
    def with_loaded(self, served: Served) -> Routing:
        if served.version in self.served:
            raise RoutingConflict(f"version {served.version} is already loaded")
        kind = self.kind
        if kind is not None and served.model.kind != kind:
            raise RoutingConflict(
                f"version {served.version} is a {served.model.kind}; this server serves {kind} models"
            )
        loaded = {**self.served, served.version: served}
        if self.primary is None:
            return replace(self, served=loaded, primary=served.version, shares=((served.version, 1.0),))
        return replace(self, served=loaded)

    def with_traffic(self, weights: Mapping[str, float], mode: Mode, salt: str | None) -> Routing:
        for version in weights:
            if version not in self.served:
                raise RoutingConflict(f"weights: version {version} is not loaded")
        total = sum(weights.values())
        if total <= 0:
            raise RoutingConflict("weights: at least one share must be positive")
        if self.primary is None:
            raise RoutingConflict("weights: no primary version is loaded")
        order = sorted(
            (v for v, w in weights.items() if w > 0), key=lambda v: (v != self.primary, version_key(v))
        )
        shares = tuple((v, weights[v] / total) for v in order)
        return replace(self, shares=shares, mode=mode, salt=self.salt if salt is None else salt)

    def with_switch(self, version: str) -> Routing:
        if version not in self.served:
            raise RoutingConflict(f"version {version} is not loaded; load it first")
        previous = self.primary if self.primary != version else self.previous
        return replace(self, primary=version, previous=previous, shares=((version, 1.0),))

    def with_rollback(self) -> Routing:
        if self.primary is not None and any(v != self.primary for v, _ in self.shares):
            return replace(self, shares=((self.primary, 1.0),))
        if self.previous is None or self.previous not in self.served:
            raise RoutingConflict("nothing to roll back to: no previous version is loaded")
        back = self.previous
        return replace(self, primary=back, previous=self.primary, shares=((back, 1.0),))

    def without(self, version: str) -> Routing:
        if version not in self.served:
            raise RoutingConflict(f"version {version} is not loaded")
        if version == self.primary or self.share(version) > 0:
            raise RoutingConflict(f"version {version} serves traffic; move its traffic away first")
        loaded = {v: s for v, s in self.served.items() if v != version}
        previous = None if self.previous == version else self.previous
        return replace(self, served=loaded, previous=previous)
