"""The reference profile has one owner, the state store: a runner that never trained reads it there."""

from __future__ import annotations

import json
import math
import uuid

import polars as pl
import pytest

from conveyor.data import ReferenceProfile, build_profile, fetch_reference_profiles, publish_reference_profile
from conveyor.project import Project
from conveyor.state import open_store

SERVICES = [pytest.mark.services, pytest.mark.xdist_group("services")]


def _profiles(tmp_path, rows: int):
    frame = pl.DataFrame({"price": [float(i) for i in range(rows)], "category": ["a", "b"] * (rows // 2)})
    main, live = tmp_path / f"profile-{rows}.json", tmp_path / f"live-{rows}.json"
    build_profile(frame).save(main)
    build_profile(frame.head(rows // 2)).save(live)
    return main, live


@pytest.mark.parametrize("store", ["local", pytest.param("postgresql", marks=SERVICES)])
def test_a_runner_that_never_trained_reads_the_profile_of_the_one_that_did(
    store, request, make_project, tmp_path, monkeypatch
):
    if store == "postgresql":
        postgres = request.getfixturevalue("postgres")
        monkeypatch.setenv("CONVEYOR_STATE_URI", postgres.create_database(f"profile_{uuid.uuid4().hex[:8]}"))
    trainer = Project.load(make_project("project: {name: shop}\n", name="trainer"))
    fresh = Project.load(make_project("project: {name: shop}\n", name="fresh"))
    main, live = _profiles(tmp_path, 40)

    publish_reference_profile(trainer, main, live)
    assert trainer.reference_profile_path.read_text() == main.read_text()
    assert trainer.live_reference_profile_path.read_text() == live.read_text()

    found = fetch_reference_profiles(fresh)
    if store == "local":  # one laptop: the profile is the trainer's own file; another folder has none
        assert found is False
        assert not fresh.reference_profile_path.exists()
        return
    assert found is True
    assert fresh.reference_profile_path.read_text() == main.read_text()  # byte for byte
    assert fresh.live_reference_profile_path.read_text() == live.read_text()
    assert (
        ReferenceProfile.load(fresh.reference_profile_path).to_dict() == ReferenceProfile.load(main).to_dict()
    )

    # a newer training without feedback events: the live profile goes everywhere, the main one changes
    newer, _ = _profiles(tmp_path, 60)
    publish_reference_profile(trainer, newer, None)
    assert fetch_reference_profiles(fresh) is True
    assert fresh.reference_profile_path.read_text() == newer.read_text()
    assert not fresh.live_reference_profile_path.exists()
    assert open_store(fresh).get("profiles/reference-live") is None


@pytest.mark.services
@pytest.mark.xdist_group("services")
def test_nan_in_a_profile_survives_the_shared_store(postgres, make_project, tmp_path, monkeypatch):
    monkeypatch.setenv("CONVEYOR_STATE_URI", postgres.create_database(f"profile_{uuid.uuid4().hex[:8]}"))
    trainer = Project.load(make_project("project: {name: shop}\n", name="trainer"))
    fresh = Project.load(make_project("project: {name: shop}\n", name="fresh"))
    text = '{"note": NaN}\n'  # the profile file's JSON may hold NaN; the store's JSON has none
    source = tmp_path / "nan.json"
    source.write_text(text)
    publish_reference_profile(trainer, source, None)
    fetch_reference_profiles(fresh)
    assert fresh.reference_profile_path.read_text() == text
    assert math.isnan(json.loads(fresh.reference_profile_path.read_text())["note"])
