"""The canary analysis counts users: known answers where counting requests would false-fail, planted
failures that still fail, the request log read per user, and sticky canary routing that is monotone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

from conveyor.config import CanarySection
from conveyor.deploy import ArmSample, CanaryVerdict, UserCounts, analyse, step_record
from conveyor.deploy._canary_calibration import Scenario, failed, per_request, window
from conveyor.deploy._observations import canary_samples
from conveyor.deploy._rollout import canary_salt
from conveyor.project import Project
from conveyor.serving import MODEL_ERROR, OK, PREDICTION_SCHEMA, Routing
from conveyor.serving._router import Served

SETTINGS = CanarySection()  # alpha 0.05, min 200 requests, +1 % errors tolerated, p99 ratio 1.5
STRICT = CanarySection(max_error_rate_increase=0.0)  # no increase of the error rate tolerated


def _arm(version: str, requests: list[int], errors: list[int], latency: list[list[float]]) -> ArmSample:
    """An arm of users with the given requests, errors and latencies of their successful answers."""
    medians = [float(np.median(values)) for values in latency if values]
    counts = UserCounts.of(requests, errors, medians)
    return ArmSample.from_users(version, counts, [x for values in latency for x in values])


def _users(version: str, n: int, per_user: int, rng: np.random.Generator, scale: float = 1.0) -> ArmSample:
    """``n`` healthy users of ``per_user`` requests each, latencies around 20 ms × ``scale``."""
    latency = [list(rng.lognormal(np.log(20 * scale), 0.2, per_user)) for _ in range(n)]
    return _arm(version, [per_user] * n, [0] * n, latency)


def _metric(result, name: str):
    return next(m for m in result.metrics if m.name == name)


def test_errors_of_one_heavy_user_fail_per_request_but_not_per_user() -> None:
    rng = np.random.default_rng(0)
    # stable: 2,000 users of 5 requests, 100 of them with one error (1 %); candidate: 200 users,
    # one of whom (a broken client) sends 30 requests that all fail — 2.9 % of its requests
    stable_errors = [1] * 100 + [0] * 1900
    stable = _arm("1", [5] * 2000, stable_errors,
                  [list(rng.normal(20, 2, 5 - e)) for e in stable_errors])  # fmt: skip
    candidate = _arm("2", [30] + [5] * 199, [30] + [0] * 199, [[]] + [list(rng.normal(20, 2, 5))] * 199)
    by_user = analyse(stable, candidate, STRICT)
    by_request = analyse(per_request(stable), per_request(candidate), STRICT)
    assert (candidate.requests, candidate.errors, candidate.users) == (1025, 30, 200)
    assert by_request.verdict is CanaryVerdict.FAIL  # 30 correlated failures read as 30 independent ones
    assert _metric(by_request, "error_rate").extra["increase_lower_bound"] > 0
    assert by_user.verdict is CanaryVerdict.PASS  # one user of 200: no evidence the candidate is worse
    error = _metric(by_user, "error_rate")
    assert error.extra["increase_lower_bound"] < 0
    assert error.extra["design_effect"] > 5  # the clustering the per-request test ignored
    assert "200 and 2000 users" in error.reason


def test_one_slow_heavy_user_fails_per_request_latency_but_not_per_user() -> None:
    rng = np.random.default_rng(1)
    stable = _users("1", 400, 5, rng)
    # candidate: 59 ordinary users and one with a huge history whose 500 requests take 200 ms
    ordinary = [list(rng.lognormal(np.log(20), 0.2, 5)) for _ in range(59)]
    heavy = list(rng.lognormal(np.log(200), 0.1, 500))
    candidate = _arm("2", [500] + [5] * 59, [0] * 60, [heavy, *ordinary])
    by_request = analyse(per_request(stable), per_request(candidate), SETTINGS)
    assert [m.name for m in by_request.metrics if m.verdict is CanaryVerdict.FAIL] == ["latency"]
    by_user = analyse(stable, candidate, SETTINGS)
    latency = _metric(by_user, "latency")
    assert latency.extra["p99_ratio"] > 5  # the same p99 effect ...
    assert latency.p_value is not None
    assert latency.p_value > 0.05  # ... but one user of 60 shows no shift of the users' latency
    assert by_user.verdict is CanaryVerdict.PASS


def test_a_heavy_user_on_stable_is_no_lost_share_but_unlogged_requests_are() -> None:
    rng = np.random.default_rng(2)
    # share 10 %: 360 stable users, one of them sending 6,000 requests; 40 candidate users
    stable = _arm("1", [6000] + [5] * 359, [0] * 360,
                  [list(rng.normal(20, 2, 6000))] + [list(rng.normal(20, 2, 5))] * 359)  # fmt: skip
    candidate = _users("2", 40, 5, rng)
    by_request = analyse(per_request(stable), per_request(candidate), SETTINGS, expected_share=0.1)
    assert [m.name for m in by_request.metrics if m.verdict is CanaryVerdict.FAIL] == ["traffic_share"]
    by_user = analyse(stable, candidate, SETTINGS, expected_share=0.1)
    assert by_user.verdict is CanaryVerdict.PASS, by_user.reason
    share = _metric(by_user, "traffic_share")
    assert share.extra["user_share"] == pytest.approx(0.1)
    # crashes before logging: every candidate user shows up, but with 1 of their 5 requests
    stable = _users("1", 1800, 5, rng)
    crashing = _users("2", 200, 1, rng)
    lost = analyse(stable, crashing, SETTINGS, expected_share=0.1)
    assert lost.verdict is CanaryVerdict.FAIL
    share = _metric(lost, "traffic_share")
    assert share.extra["user_share"] == pytest.approx(0.1)  # the users are all there ...
    assert share.extra["p_requests"] < 1e-6  # ... their requests are not
    assert "crashes" in lost.reason


def test_planted_failures_still_fail_per_user() -> None:
    rng = np.random.default_rng(3)
    stable = _users("1", 1000, 5, rng)
    # every candidate user sees 2 of their 5 requests fail (40 %)
    broken = _arm("2", [5] * 100, [2] * 100, [list(rng.normal(20, 2, 3))] * 100)
    result = analyse(stable, broken, SETTINGS, expected_share=0.1)
    assert result.verdict is CanaryVerdict.FAIL
    assert result.reason.startswith("error_rate")
    slow = _users("2", 100, 5, rng, scale=3.0)
    result = analyse(stable, slow, SETTINGS, expected_share=0.1)
    assert [m.name for m in result.metrics if m.verdict is CanaryVerdict.FAIL] == ["latency"]
    thin = analyse(stable, _users("2", 12, 30, rng), SETTINGS)  # 360 requests, but 12 users
    assert thin.verdict is CanaryVerdict.INCONCLUSIVE
    assert "too few users to judge: stable 1000, candidate 12" in thin.reason


def test_on_correlated_windows_per_user_holds_alpha_and_per_request_does_not() -> None:
    # a small run of the benchmark's A/A cell with no error increase tolerated
    # (benchmarks/canary_calibration.py; seconds)
    runs, scenario = 100, Scenario(users=2000)
    windows = [window(seed, scenario, STRICT) for seed in range(runs)]
    users = sum(failed(w.users) for w in windows)
    requests = sum(failed(w.requests) for w in windows)
    assert stats.binomtest(users, runs).proportion_ci(0.99).low <= STRICT.alpha, users / runs
    assert stats.binomtest(requests, runs).proportion_ci(0.99).low > STRICT.alpha, requests / runs


def test_known_effects_are_found_per_user() -> None:
    runs = 30
    errors = sum(failed(window(seed, Scenario(users=2000, error_points=0.05), SETTINGS).users)
                 for seed in range(runs))  # fmt: skip
    slow = sum(failed(window(seed, Scenario(users=2000, latency_factor=2.0), SETTINGS).users)
               for seed in range(runs))  # fmt: skip
    assert errors >= 0.9 * runs  # +5 points of error rate against a tolerance of 1 point
    assert slow >= 0.9 * runs  # twice as slow against a p99 limit of 1.5


def test_the_step_record_counts_users_and_widens_the_error_interval() -> None:
    clustered = _arm("2", [50] * 10 + [1] * 190, [25] * 2 + [0] * 198,
                     [[20.0] * 25] * 2 + [[20.0] * 50] * 8 + [[20.0]] * 190)  # fmt: skip
    independent = ArmSample("2", clustered.requests, clustered.errors, clustered.latencies_ms)
    result = analyse(clustered, clustered, CanarySection(min_requests=10))
    record = step_record(10, clustered, clustered, result, CanarySection(min_requests=10))
    arm = record["arms"]["candidate"]
    assert (arm["requests"], arm["users"], arm["errors"]) == (690, 200, 50)
    wide = arm["error_rate_ci"]
    narrow = step_record(10, independent, independent, result, CanarySection(min_requests=10))
    assert narrow["arms"]["candidate"]["users"] == 690  # without user ids: each request its own unit
    low, high = narrow["arms"]["candidate"]["error_rate_ci"]
    assert wide[0] < low < 50 / 690 < high < wide[1]


def test_canary_samples_are_read_per_user(make_project) -> None:
    root = make_project("project: {name: shop}\n")
    since = datetime.now(UTC) - timedelta(minutes=5)
    # stable "1": user a 3 answers, user b 2 (one model error); candidate "2": user c 4 answers
    # (latencies 10, 20, 30, 40), and 2 requests without a user id (each its own unit)
    rows_in = [("1", "a", OK, 5.0), ("1", "a", OK, 7.0), ("1", "a", OK, 6.0), ("1", "b", OK, 9.0),
               ("1", "b", MODEL_ERROR, 1.0), ("2", "c", OK, 10.0), ("2", "c", OK, 20.0), ("2", "c", OK, 30.0),
               ("2", "c", OK, 40.0), ("2", None, OK, 50.0), ("2", None, OK, 60.0)]  # fmt: skip
    n = len(rows_in)
    rows = {name: [None] * n for name in PREDICTION_SCHEMA}
    rows["ts"] = [since + timedelta(seconds=1 + i) for i in range(n)]
    rows["request_id"] = [f"r{i}" for i in range(n)]
    rows["model_version"] = [r[0] for r in rows_in]
    rows["user_id"] = [r[1] for r in rows_in]
    rows["outcome"] = [r[2] for r in rows_in]
    rows["status"] = [200 if r[2] == OK else 500 for r in rows_in]
    rows["endpoint"] = ["/recommend"] * n
    rows["latency_ms"] = [r[3] for r in rows_in]
    log = root / ".conveyor" / "requests" / "production"
    log.mkdir(parents=True)
    pl.DataFrame(rows, schema=PREDICTION_SCHEMA).write_parquet(log / "predictions-test.parquet")
    stable, candidate = canary_samples(Project.load(root), "production", since, "1", "2")
    assert (stable.requests, stable.errors, stable.users) == (5, 1, 2)
    assert sorted(zip(stable.units.requests.tolist(), stable.units.errors.tolist(), strict=True)) == [
        (2, 1), (3, 0)]  # fmt: skip
    assert sorted(stable.units.latency_ms.tolist()) == [6.0, 9.0]  # each user's median of its ok answers
    assert (candidate.requests, candidate.users) == (6, 3)
    assert sorted(candidate.units.latency_ms.tolist()) == [25.0, 50.0, 60.0]
    assert sorted(candidate.units.impressions.tolist()) == [1, 1, 4]


def test_sticky_canary_steps_keep_every_candidate_user_on_the_candidate() -> None:
    served = {v: Served(v, None, datetime.now(UTC), batcher=None) for v in ("7", "3")}  # type: ignore[arg-type]
    routing = Routing(served=served, primary="7", shares=(("7", 1.0),))  # the stable is version 7
    salt = canary_salt("3", datetime(2026, 11, 30, tzinfo=UTC))
    users = range(20_000)

    def on_candidate(share: float) -> set[int]:
        step = routing.with_traffic({"7": 1 - share, "3": share}, "sticky", salt)
        assert (step.mode, step.salt) == ("sticky", salt)
        return {u for u in users if step.choose(u).version == "3"}  # type: ignore[union-attr]

    at_5, at_25, at_50 = on_candidate(0.05), on_candidate(0.25), on_candidate(0.50)
    assert at_5 <= at_25 <= at_50  # monotone: raising the share never moves a user back to stable
    assert [abs(len(s) / len(users) - p) < 0.01 for s, p in ((at_5, 0.05), (at_25, 0.25), (at_50, 0.5))] == [
        True, True, True]  # fmt: skip
    other = canary_salt("3", datetime(2026, 12, 1, tzinfo=UTC))
    again = routing.with_traffic({"7": 0.75, "3": 0.25}, "sticky", other)
    assert {u for u in users if again.choose(u).version == "3"} != at_25  # a new rollout, new users
