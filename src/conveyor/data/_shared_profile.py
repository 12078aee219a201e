"""Where the reference profile lives: one owner, the project's state store.

``conveyor train`` makes the best run's data profile the project's reference profile;
``conveyor drift`` and the monitor's input-drift check compare against it. A CI runner
is disposable and a teammate's laptop never trained, so with a shared state store
(PostgreSQL, ``state.uri_env``) the profile is a document of that store, written by
``train`` and read by every runner:

- ``profiles/reference`` — the training data's profile;
- ``profiles/reference-live`` — a recommender's profile of the training events that also
  arrive as feedback (absent when training had none).

Each document holds the profile file's text unchanged (its ``NaN`` and exact floats
survive; the store's JSON has neither). The files under ``.conveyor/``
(:attr:`~conveyor.project.Project.reference_profile_path`) are then this runner's copies,
refreshed from the store before each read (:func:`fetch_reference_profiles`). With the
local folder as the store, those files are the profile, as they always were.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from conveyor.project import Project
from conveyor.state import LocalStore, StateStore, open_store

REFERENCE_KEY = "profiles/reference"
LIVE_KEY = "profiles/reference-live"
_TEXT = "profile_json"  # the document's one field: the profile file's text


def _shared_store(project: Project) -> StateStore | None:
    """The project's store when it is shared (not the local folder), else None."""
    store = open_store(project)
    return None if isinstance(store, LocalStore) else store


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def publish_reference_profile(project: Project, profile: Path, live: Path | None) -> None:
    """Make ``profile`` (and a recommender's ``live`` profile, or none) the project's reference:
    the shared store's documents first (when the store is shared), then this runner's files."""
    text = profile.read_text(encoding="utf-8")
    live_text = live.read_text(encoding="utf-8") if live is not None else None
    store = _shared_store(project)
    if store is not None:
        store.put(REFERENCE_KEY, {_TEXT: text})
        if live_text is not None:
            store.put(LIVE_KEY, {_TEXT: live_text})
        else:
            store.delete(LIVE_KEY)
    _write_atomic(project.reference_profile_path, text)
    if live_text is not None:
        _write_atomic(project.live_reference_profile_path, live_text)
    else:
        project.live_reference_profile_path.unlink(missing_ok=True)


def fetch_reference_profiles(project: Project) -> bool:
    """Refresh this runner's profile files from the shared store; True when the store had one.

    A no-op (False) with the local folder as the store, or when nobody trained against the
    shared store yet (a file already here is then left as it is).
    """
    store = _shared_store(project)
    if store is None:
        return False
    found = store.get(REFERENCE_KEY)
    if found is None or not isinstance(found.data.get(_TEXT), str):
        return False
    _write_atomic(project.reference_profile_path, found.data[_TEXT])
    live = store.get(LIVE_KEY)
    if live is not None and isinstance(live.data.get(_TEXT), str):
        _write_atomic(project.live_reference_profile_path, live.data[_TEXT])
    else:
        project.live_reference_profile_path.unlink(missing_ok=True)
    return True


__all__ = ["LIVE_KEY", "REFERENCE_KEY", "fetch_reference_profiles", "publish_reference_profile"]
