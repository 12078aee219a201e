"""The deployment drill's fault injector: seeded, so a loaded copy fails the same calls on every run,
and kept out of conveyor.deploy's public names (it is a test double, not API)."""

from __future__ import annotations

import polars as pl
import pytest

import conveyor.deploy
from conveyor.deploy._drill import FaultyRecommender
from conveyor.models import PopularityRecommender, load_model

CALLS = 200


def _failures(model: FaultyRecommender) -> list[int]:
    failed = []
    for call in range(1, CALLS + 1):
        try:
            model.recommend([1], 2)
        except ValueError:
            failed.append(call)
    return failed


def test_a_loaded_drill_model_fails_the_same_calls_every_time(tmp_path):
    data = pl.DataFrame({"user_id": [1, 1, 2, 3], "item_id": [10, 11, 10, 12], "event": ["view"] * 4})
    inner = PopularityRecommender().fit(data)
    FaultyRecommender(inner, error_rate=0.5, healthy_calls=20, seed=7).save(tmp_path / "drill")

    first, second = (_failures(load_model(tmp_path / "drill")) for _ in range(2))  # type: ignore[arg-type]
    assert first == second
    assert min(first) > 20  # the healthy calls all succeed
    assert 0.35 < len(first) / (CALLS - 20) < 0.65
    other_seed = FaultyRecommender(inner, error_rate=0.5, healthy_calls=20, seed=8)
    assert _failures(other_seed) != first
    assert load_model(tmp_path / "drill").recommend([1], 2)[0].items == inner.recommend([1], 2)[0].items


def test_the_drill_model_is_not_public_api():
    assert "FaultyRecommender" not in conveyor.deploy.__all__
    with pytest.raises(AttributeError):
        _ = conveyor.deploy.FaultyRecommender
