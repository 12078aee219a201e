"""Evaluation that holds on real-shaped data, end to end through the CLI.

- a majority-class model on a 5 %-positive table fails the gates (and is warned about);
- too few held-out users is "not enough evidence": exit 1 unless configured, counts printed;
- a one-off ``train --model-type bpr`` does not make ``conveyor run`` skip training the
  configured ALS, nor register BPR.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from conftest import RECOMMENDER_YAML, planted_interactions
from conveyor.pipeline._runs import RunIndex
from conveyor.project import Project
from conveyor.registry import get_version

RARE_YAML = """\
project: {name: fraud, template: classifier}
data: {source: data/raw/train.parquet, target: label}
model: {type: random-forest, primary_metric: roc_auc, params: {n_estimators: 30}, test_size: 0.3}
gates: {no_regression: {metric: roc_auc}, determinism: false, latency_p95_ms: null}
"""


def rare_rows(n: int, *, signal: bool, seed: int = 0) -> pl.DataFrame:
    """5 % positives; with ``signal`` x predicts them, else every feature is noise."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=np.int64)
    y[rng.choice(n, n // 20, replace=False)] = 1
    x = rng.normal(size=n) + (2.5 * y if signal else 0.0)
    return pl.DataFrame({"x": x, "z": rng.normal(size=n), "label": y})


@pytest.fixture
def evaluate_rare(tmp_path, cli):
    """Train on a 5 %-positive table (with or without signal), then `evaluate --json`."""

    def run(*, signal: bool):
        root = tmp_path / ("signal" if signal else "noise")
        (root / "data" / "raw").mkdir(parents=True)
        (root / "conveyor.yaml").write_text(RARE_YAML)
        rare_rows(2_000, signal=signal).write_parquet(root / "data" / "raw" / "train.parquet")
        assert cli("--project", root, "train", "--json").exit_code == 0
        return cli("--project", root, "evaluate", "--json")

    return run


def test_a_majority_class_model_fails_on_a_five_percent_table(evaluate_rare):
    result = evaluate_rare(signal=False)
    assert result.exit_code == 1, result.stdout
    payload = result.json()
    metrics = payload["metrics"]
    assert metrics["accuracy"] == pytest.approx(0.95, abs=0.01)  # the prior's accuracy: says nothing
    assert metrics["balanced_accuracy"] == pytest.approx(0.5, abs=0.01)  # ~ the majority class for every row
    assert metrics["f1"] <= 0.05  # the positive (minority) class is (almost) never found
    gates = {g["name"]: g for g in payload["gates"]}
    assert gates["beat_baseline"]["verdict"] == "fail"
    assert "average_precision" in gates["beat_baseline"]["reason"]
    assert payload["failed_gates"] == ["beat_baseline"]
    assert payload["evaluated"]["positive_class"] == 1
    assert payload["evaluated"]["minority_share"] == pytest.approx(0.05, abs=0.01)
    assert any("minority class is 5.0%" in w for w in payload["warnings"])
    assert "quality gate(s) failed: beat_baseline" in result.stderr


def test_a_model_that_finds_the_rare_class_beats_the_prior(evaluate_rare):
    result = evaluate_rare(signal=True)
    assert result.exit_code == 0, result.stderr
    payload = result.json()
    gates = {g["name"]: g for g in payload["gates"]}
    assert "beats the class-prior baseline" in gates["beat_baseline"]["reason"]
    assert payload["metrics"]["average_precision"] > 0.5 > payload["baseline"]["metrics"]["average_precision"]
    assert any("minority class is 5.0% of the held-out rows" in w for w in payload["warnings"])


def _recommender(root, extra: str = "") -> None:
    (root / "data" / "raw").mkdir(parents=True)
    (root / "conveyor.yaml").write_text(RECOMMENDER_YAML + extra)
    planted_interactions(n_users=120).write_parquet(root / "data" / "raw" / "interactions.parquet")


FAST_GATES = "  determinism: false\n"


def test_too_few_users_is_not_enough_evidence(cli, tmp_path):
    root = tmp_path / "few"
    _recommender(root, FAST_GATES + "evaluation:\n  min_evaluated: 500\n")
    assert cli("--project", root, "train", "--json").exit_code == 0
    result = cli("--project", root, "evaluate", "--json")
    assert result.exit_code == 1
    payload = result.json()
    assert payload["verdict"] == "not enough evidence"
    assert payload["passed"] is False
    assert payload["failed_gates"] == []
    gates = {g["name"]: g["verdict"] for g in payload["gates"]}
    assert gates["evidence"] == gates["beat_baseline"] == "inconclusive"
    message = result.stderr
    assert "not enough evidence: 120 users scored (" in message
    assert "at least 500 needed" in message
    assert "inf" not in message
    refused = cli("--project", root, "register", "--json")
    assert refused.exit_code == 1
    assert "not enough evidence" in refused.json()["error"]["message"]
    # the human output says how many users and pairs were scored
    human = cli("--project", root, "evaluate")
    assert "evaluated on 120 users (" in human.stdout
    assert "held-out pairs)" in human.stdout

    # configured to go on: the same verdict, exit 0, and the model may be registered
    yaml = (root / "conveyor.yaml").read_text() + "  not_enough_evidence: continue\n"
    (root / "conveyor.yaml").write_text(yaml)
    assert cli("--project", root, "train", "--json").exit_code == 0
    going_on = cli("--project", root, "evaluate")
    assert going_on.exit_code == 0, going_on.stderr
    assert "not enough evidence (" in going_on.stdout
    assert "the pipeline goes on" in going_on.stdout
    assert cli("--project", root, "register", "--json").exit_code == 0


@pytest.mark.slow
def test_a_one_off_train_does_not_change_what_run_trains_and_registers(cli, tmp_path):
    root = tmp_path / "reuse"
    _recommender(root, FAST_GATES)
    first = cli("--project", root, "run", "--until", "train", "--json")
    assert first.exit_code == 0, first.stderr
    project = Project.load(root)
    als_run = RunIndex(project).latest()
    assert als_run.model_type == "als"

    one_off = cli("--project", root, "train", "--model-type", "bpr", "--json")
    assert one_off.exit_code == 0
    assert RunIndex(project).latest().model_type == "bpr"

    result = cli("--project", root, "run", "--until", "register", "--json")
    assert result.exit_code == 0, result.stderr
    status = {s["stage"]: s["status"] for s in result.json()["stages"]}
    assert status["train"] == "ok"  # not "up to date": the latest run was not the configured model's
    latest = RunIndex(project).latest()
    assert (latest.model_type, latest.run_id) == ("als", als_run.run_id)  # reused, not retrained
    assert latest.registered_version is not None
    assert get_version(project, latest.registered_version).run_id == als_run.run_id
