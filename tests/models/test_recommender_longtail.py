"""Done-when of issue 12: on a realistic long-tail log, ALS with the DEFAULT settings is evaluated
on at least 500 users and beats popularity with a printed interval (``conveyor train`` then
``conveyor evaluate``, an empty model configuration)."""

from __future__ import annotations

import re

import pytest
from longtail_log import longtail_log


@pytest.mark.slow
def test_default_als_beats_popularity_on_a_long_tail_log(cli, tmp_path):
    root = tmp_path / "shop"
    (root / "data" / "raw").mkdir(parents=True)
    (root / "conveyor.yaml").write_text("project:\n  name: shop\n")  # every other setting: the default
    log = longtail_log()
    assert log.group_by("user_id").len()["len"].max() == 2_000  # a long tail of users: 1 … 2,000
    log.write_parquet(root / "data" / "raw" / "interactions.parquet")
    trained = cli("--project", root, "train", "--json")
    assert trained.exit_code == 0, trained.stderr
    assert trained.json()["best"]["model_type"] == "als"

    result = cli("--project", root, "evaluate", "--json")
    assert result.exit_code == 0, result.stderr
    payload = result.json()
    evaluated = payload["evaluated"]
    assert evaluated["units"] >= 500
    assert evaluated["split"]["split"] == "per-user"
    assert evaluated["split"]["users_too_short"] > 0  # kept out of the test set, and counted
    reason = {g["name"]: g for g in payload["gates"]}["beat_baseline"]["reason"]  # the printed reason
    beat = re.search(
        r"ndcg_at_10 ([\d.]+) beats the popularity baseline ([\d.]+): difference \+([\d.]+).*"
        r"interval \[\+([\d.]+), \+([\d.]+)\]",
        reason,
    )
    assert beat, reason
    als, popularity, _, low, high = (float(g) for g in beat.groups())
    assert als > popularity
    assert 0 < low < high
