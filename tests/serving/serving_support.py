"""Small known-answer models and a live-uvicorn helper for the serving tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import numpy as np
import polars as pl
import uvicorn
from fastapi import FastAPI

from conveyor.models import Classifier, Model, Recommendation, Recommender
from conveyor.serving import uvicorn_config


class ToyClassifier(Classifier):
    """P(class "yes") = clip(x / 10 + shift); ``calls`` records each call's row count."""

    def __init__(self, shift: float = 0.0, delay: float = 0.0) -> None:
        self.shift = shift
        self.delay = delay
        self.calls: list[int] = []

    def fit(self, data: pl.DataFrame) -> Self:
        return self

    def _save_files(self, directory: Path) -> dict[str, Any]:
        return {"shift": self.shift}

    @classmethod
    def _load_files(cls, directory: Path, manifest: dict[str, Any]) -> Self:
        return cls(manifest["shift"])

    def is_fitted(self) -> bool:
        return True

    @property
    def feature_names(self) -> list[str]:
        return ["x", "y", "color"]

    @property
    def feature_types(self) -> dict[str, str]:
        return {"x": "numeric", "y": "numeric", "color": "categorical"}

    @property
    def classes(self) -> list[Any]:
        return ["no", "yes"]

    def predict_proba(self, rows: pl.DataFrame) -> np.ndarray:
        self.calls.append(rows.height)
        if self.delay:
            time.sleep(self.delay)
        p = np.clip(rows["x"].to_numpy() / 10.0 + self.shift, 0.0, 1.0)
        return np.column_stack([1.0 - p, p])


class ToyRecommender(Recommender):
    """Known users 0..9 get items u+1, u+2, ...; others the popular items 100, 101, ..."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def fit(self, data: pl.DataFrame) -> Self:
        return self

    def _save_files(self, directory: Path) -> dict[str, Any]:
        return {}

    @classmethod
    def _load_files(cls, directory: Path, manifest: dict[str, Any]) -> Self:
        return cls()

    def is_fitted(self) -> bool:
        return True

    def knows_user(self, user_id: int | str) -> bool:
        return isinstance(user_id, int) and 0 <= user_id < 10

    def popular(self, k: int) -> list[int | str]:
        return list(range(100, 100 + k))

    def recommend(
        self, user_ids: Sequence[int | str], k: int, *, exclude_seen: bool = True
    ) -> list[Recommendation]:
        self.calls.append(len(user_ids))
        out = []
        for u in user_ids:
            if self.knows_user(u):
                items: list[int | str] = [int(u) + 1 + i for i in range(k)]
                out.append(Recommendation(u, items, [1.0 / (i + 1) for i in range(k)], False))
            else:
                out.append(Recommendation(u, self.popular(k), [0.0] * k, True))
        return out


def register_production(root: Path, model: Model) -> None:
    """Save ``model`` under ``root/model`` and register it as version 1 with alias production."""
    import mlflow

    from conveyor.project import Project
    from conveyor.registry import Lineage, ensure_experiment, register_version

    model.save(root / "model")
    project = Project.load(root)
    experiment = ensure_experiment(project)
    with mlflow.start_run(experiment_id=experiment) as run:
        pass
    register_version(project, run.info.run_id, root / "model", lineage=Lineage(), alias="production")


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free 127.0.0.1 port in a thread; stop it on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app))  # the stack `conveyor serve` runs
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


class FailingToy(ToyClassifier):
    """ToyClassifier that raises for any row with ``x`` equal to ``fail_at`` (a model bug)."""

    def __init__(self, fail_at: float = 13.0) -> None:
        super().__init__()
        self.fail_at = fail_at

    def predict_proba(self, rows: pl.DataFrame) -> np.ndarray:
        if (rows["x"] == self.fail_at).any():
            raise ZeroDivisionError("division by zero in feature engineering")
        return super().predict_proba(rows)
