"""An environment's replicas driven as one: every admin call fans out, and a failure is undone.

An environment is one or more ``conveyor serve`` replicas: the local
supervised server is the one-replica case, replicas given by URL
(``deploy.environments.<env>.replicas``) the general one. :class:`FleetClient`
has the interface of :class:`~conveyor.deploy._controller.ServerClient`, so
every strategy, the rollback and the recovery run the same code for one
replica or ten:

* ``state()`` reads every replica (a replica that does not answer is a
  :class:`~conveyor.errors.ServiceError` naming it) and merges them: the
  primary and previous version when the replicas agree (``None`` when they do
  not — a rollout interrupted half-way), a version counts as loaded when it
  is loaded everywhere, a candidate when it has traffic anywhere;
* ``load`` is phase one of a blue-green rollout (every replica loads and warms
  the candidate; a failure unloads it where it was loaded and raises);
* ``switch`` is phase two (every replica switches at once, in parallel; a
  replica that fails makes the others switch back to their own previous
  primary, then raises — so every replica stays on the old version);
* ``traffic`` sets the same weights, mode and sticky salt on every replica
  (the router hashes ``salt:user_id``, so a user lands on the same version
  whichever replica answers); a failure puts every candidate back to 0 %;
* ``rollback`` and ``unload`` apply to every replica that needs them and
  raise after trying them all.

The calls go out in parallel (a thread per replica): a switch across three
replicas takes about as long as one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from conveyor.deploy._controller import Mode, ServedVersion, ServerClient, ServerState
from conveyor.errors import ConveyorError, ServiceError, UsageError

T = TypeVar("T")


def merge_states(states: Sequence[tuple[str, ServerState]]) -> ServerState:
    """One view of several replicas' states (the replica's own state when there is one)."""
    if len(states) == 1:
        return states[0][1]
    first = states[0][1]

    def common(values: list[str | None]) -> str | None:
        return values[0] if len(set(values)) == 1 else None

    primary = common([s.primary for _, s in states])
    previous = common([s.previous for _, s in states])
    everywhere = [v for v in first.versions if all(s.loaded(v.version) for _, s in states[1:])]
    versions = []
    for served in everywhere:
        shares = {s.share(served.version) for _, s in states}
        variants = {next(v.variant for v in s.versions if v.version == served.version) for _, s in states}
        versions.append(
            ServedVersion(
                served.version,
                variants.pop() if len(variants) == 1 else "mixed",
                min(shares),
                served.loaded_at,
            )
        )
    return ServerState(
        env=first.env,
        kind=first.kind,
        mode=first.mode if len({s.mode for _, s in states}) == 1 else "mixed",
        salt=first.salt,
        primary=primary,
        previous=previous,
        versions=versions,
        project=first.project,
        replicas=tuple(states),
    )


class FleetClient:
    """The admin client of an environment: every call on every replica."""

    def __init__(self, clients: Sequence[ServerClient], *, environment: str) -> None:
        if not clients:
            raise ValueError("an environment has at least one replica")
        self.clients = list(clients)
        self.environment = environment

    @property
    def urls(self) -> list[str]:
        return [c.base_url for c in self.clients]

    @property
    def base_url(self) -> str:
        """The first replica's URL (the only one of a local environment)."""
        return self.clients[0].base_url

    def __len__(self) -> int:
        return len(self.clients)

    # -- fan-out ---------------------------------------------------------------------------
    def _each(
        self, call: Callable[[ServerClient], T], clients: Sequence[ServerClient] | None = None
    ) -> list[tuple[ServerClient, T | None, ConveyorError | None]]:
        """``call`` on each client, in parallel; (client, result, error) in the clients' order."""
        targets = list(self.clients if clients is None else clients)

        def one(client: ServerClient) -> tuple[ServerClient, T | None, ConveyorError | None]:
            try:
                return client, call(client), None
            except ConveyorError as exc:
                return client, None, exc

        if len(targets) <= 1:
            return [one(c) for c in targets]
        with ThreadPoolExecutor(len(targets), thread_name_prefix="conveyor-fleet") as pool:
            return list(pool.map(one, targets))

    def _failed(
        self, what: str, results: Sequence[tuple[ServerClient, object, ConveyorError | None]]
    ) -> None:
        """Raise for the first failed replica (its own error when there is one replica)."""
        failed = [(c, e) for c, _, e in results if e is not None]
        if not failed:
            return
        failed.sort(key=lambda pair: not isinstance(pair[1], UsageError))  # a foreign server first
        client, error = failed[0]
        if len(self.clients) == 1 or isinstance(error, UsageError):
            raise error  # its own line: a foreign server or a missing token names the replica already
        others = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise ServiceError(
            f"{what}: replica {client.base_url} failed{others}: {error}",
            environment=self.environment,
            replica=client.base_url,
        ) from error

    def states(self) -> list[tuple[ServerClient, ServerState]]:
        """Every replica's state; a replica that does not answer raises (ServiceError naming it)."""
        results = self._each(lambda c: c.state())
        self._failed(f"reading the {self.environment} replicas", results)
        return [(c, s) for c, s, _ in results if s is not None]

    def answering(self) -> tuple[FleetClient, list[str]]:
        """The replicas that answer, as a fleet, and the URLs of those that do not.

        A rollback uses it: one dead replica must not keep the others on a bad version
        (its load balancer has taken it out; it comes back with what its platform starts).
        A replica of another project or environment still refuses the whole command.
        """
        results = self._each(lambda c: c.state())
        up = [c for c, _, e in results if e is None]
        if not up or any(isinstance(e, UsageError) for _, _, e in results):
            self._failed(f"reading the {self.environment} replicas", results)
        down = [c.base_url for c, _, e in results if e is not None]
        return FleetClient(up, environment=self.environment), down

    def _merged(self, states: Sequence[tuple[ServerClient, ServerState]]) -> ServerState:
        return merge_states([(c.base_url, s) for c, s in states])

    # -- the ServerClient interface ----------------------------------------------------------
    def state(self) -> ServerState:
        return self._merged(self.states())

    def load(self, version: str) -> ServerState:
        """Phase one: load (and warm) ``version`` on every replica; undone on a failure."""
        before = self.states()
        todo = [c for c, s in before if not s.loaded(version)]
        results = self._each(lambda c: c.load(version), todo)
        if any(e is not None for _, _, e in results):
            for client, _, error in results:
                if error is None:
                    with contextlib.suppress(ConveyorError):
                        client.unload(version)
            self._failed(f"loading version {version}", results)
        return self.state()

    def switch(self, version: str) -> ServerState:
        """Phase two: every replica switches to ``version``; a failure switches the others back."""
        before = self.states()
        todo = [(c, s) for c, s in before if s.primary != version or s.share(version) < 1.0]
        results = self._each(lambda c: c.switch(version), [c for c, _ in todo])
        if any(e is not None for _, _, e in results):
            old = {c.base_url: s.primary for c, s in todo}
            for client, _, error in results:
                back = old.get(client.base_url)
                if error is None and back is not None and back != version:
                    with contextlib.suppress(ConveyorError):
                        client.switch(back)
            self._failed(f"switching to version {version} (every replica switched back)", results)
        return self.state()

    def traffic(
        self, weights: dict[str, float], *, mode: Mode = "weighted", salt: str | None = None
    ) -> ServerState:
        """The same weights, mode and salt on every replica; a failure puts candidates back to 0 %."""
        results = self._each(lambda c: c.traffic(weights, mode=mode, salt=salt))
        if any(e is not None for _, _, e in results):
            for client, _, error in results:
                if error is None:
                    with contextlib.suppress(ConveyorError):
                        client.rollback()
            self._failed("setting the traffic split (candidates back to 0 %)", results)
        return self.state()

    def rollback(self) -> ServerState:
        """Candidates back to 0 % where they have traffic; else every replica back to its previous."""
        before = self.states()
        with_candidates = [c for c, s in before if s.candidates]
        if with_candidates:
            targets = with_candidates
        else:
            merged = self._merged(before)
            if len(before) > 1 and merged.primary is None:
                raise ServiceError(
                    f"the {self.environment} replicas serve different versions "
                    f"({', '.join(sorted({str(s.primary) for _, s in before}))}); "
                    "switch them to one version first",
                    environment=self.environment,
                )
            targets = [c for c, _ in before]
        results = self._each(lambda c: c.rollback(), targets)
        self._failed("rolling back", results)
        return self.state()

    def unload(self, version: str) -> ServerState:
        """Free ``version`` on every replica that holds it without traffic."""
        before = self.states()
        todo = [c for c, s in before if s.loaded(version) and s.primary != version and not s.share(version)]
        results = self._each(lambda c: c.unload(version), todo)
        self._failed(f"unloading version {version}", results)
        return self.state()

    # -- per replica --------------------------------------------------------------------------
    def readiness(self) -> list[tuple[str, bool]]:
        """Each replica's URL and whether it answers ``/ready`` with 200."""
        return [(c.base_url, bool(ok)) for c, ok, _ in self._each(lambda c: c.ready())]
