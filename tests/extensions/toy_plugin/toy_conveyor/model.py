"""A model type: recommend the items the most distinct users touched (a known answer for tests)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import polars as pl

from conveyor.models import Recommendation, Recommender, popularity_baseline


class MostUsers(Recommender):
    """Items ranked by their number of distinct users (ties: the smaller id), minus what a user saw."""

    def __init__(self, user: str = "user_id", item: str = "item_id", min_users: int = 1) -> None:
        self.user = user
        self.item = item
        self.min_users = min_users

    def fit(self, data: pl.DataFrame) -> Self:
        counts = (
            data.group_by(self.item)
            .agg(pl.col(self.user).n_unique().alias("users"))
            .filter(pl.col("users") >= self.min_users)
            .sort(["users", self.item], descending=[True, False])
        )
        self.items_ = counts.get_column(self.item).to_list()
        self.users_ = counts.get_column("users").to_list()
        seen = data.group_by(self.user).agg(pl.col(self.item).unique())
        self.seen_ = {u: set(items) for u, items in seen.iter_rows()}
        return self

    def is_fitted(self) -> bool:
        return hasattr(self, "items_")

    def _save_files(self, directory: Path) -> dict[str, Any]:
        state = {
            "items": self.items_,
            "users": self.users_,
            "seen": [[u, sorted(s)] for u, s in self.seen_.items()],
        }
        (directory / "most-users.json").write_text(json.dumps(state))
        return {"user": self.user, "item": self.item, "min_users": self.min_users}

    @classmethod
    def _load_files(cls, directory: Path, manifest: dict[str, Any]) -> Self:
        state = json.loads((directory / "most-users.json").read_text())
        model = cls(manifest["user"], manifest["item"], manifest["min_users"])
        model.items_, model.users_ = state["items"], state["users"]
        model.seen_ = {u: set(items) for u, items in state["seen"]}
        return model

    def knows_user(self, user_id: int | str) -> bool:
        return user_id in self.seen_

    def popular(self, k: int) -> list[int | str]:
        self.check_fitted()
        return list(self.items_[:k])

    def recommend(
        self, user_ids: Sequence[int | str], k: int, *, exclude_seen: bool = True
    ) -> list[Recommendation]:
        self.check_fitted()
        out = []
        for user in user_ids:
            seen = self.seen_.get(user, set()) if exclude_seen else set()
            ranked = [(i, n) for i, n in zip(self.items_, self.users_, strict=True) if i not in seen][:k]
            out.append(
                Recommendation(
                    user, [i for i, _ in ranked], [float(n) for _, n in ranked], user not in self.seen_
                )
            )
        return out


class MostUsersType:
    """The model type ``most-users`` (conveyor.models.ModelTypeSpec)."""

    kind = "recommender"
    engines = ("local",)

    def params(self, given: Mapping[str, Any], settings: Any) -> dict[str, Any]:
        return {"min_users": 1, **given}

    def create(self, params: Mapping[str, Any], settings: Any) -> MostUsers:
        columns = settings.data.columns
        return MostUsers(user=columns.user, item=columns.item, min_users=int(params["min_users"]))

    def baseline(self, settings: Any) -> Any:
        return popularity_baseline(settings)


MOST_USERS = MostUsersType()
