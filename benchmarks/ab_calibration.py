"""False-winner and power tables of the A/B test, users as the unit, by simulation.

    python -m benchmarks.ab_calibration              # the tables in docs/statistics.md (about a minute)
    python -m benchmarks.ab_calibration --runs 5000  # tighter estimates, slower

Correlated impressions with a known answer: user u has a click propensity
p_u ~ Beta(0.5, 9.5) (mean 0.05, intra-user correlation 1/11) and sees
n_u = 1 + Poisson(19) recommendations (mean 20); each answer is clicked with
probability p_u. A variant with a true relative lift L multiplies every
propensity by 1 + L, so its expected CTR is exactly (1 + L) × 0.05. The
variant gets 10 % of the users.

Each experiment is planned as ``conveyor ab start`` plans it (a baseline of
10,000 users of the same law → :func:`conveyor.deploy.plan_from_baseline`,
MDE 0.2, alpha 0.05, power 0.8) and decided as ``conveyor ab conclude``
decides it (:func:`conveyor.deploy.decide`, the delta-method test on users).
The impression-level two-proportion test — the test Conveyor used before,
which counts every impression as independent — is run on the same data for
comparison. Peeking: 20 equally spaced looks at the always-valid p-value
(``ab status``) and at the fixed-horizon p-value.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

from benchmarks._env import environment_header, load_line
from conveyor.deploy import (
    Arm,
    Verdict,
    always_valid_p,
    decide,
    plan_from_baseline,
    ratio_test,
    two_proportion_test,
)

ALPHA, POWER, MDE, RATIO = 0.05, 0.8, 0.2, 0.1
BASE, CONCENTRATION, MEAN_IMPRESSIONS = 0.05, 10.0, 20
LOOKS = 20


def draw_users(rng: np.random.Generator, users: int, lift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-user (impressions, clicked impressions) of ``users`` correlated users."""
    propensity = rng.beta(BASE * CONCENTRATION, (1 - BASE) * CONCENTRATION, users) * (1 + lift)
    impressions = 1 + rng.poisson(MEAN_IMPRESSIONS - 1, users)
    return impressions, rng.binomial(impressions, np.minimum(propensity, 1.0))


def plan(seed: int = 0) -> dict[str, int]:
    """The users per arm ``ab start`` plans from a 10,000-user baseline."""
    baseline = Arm.from_users("baseline", *draw_users(np.random.default_rng(seed), 10_000))
    planned = plan_from_baseline(baseline, MDE, alpha=ALPHA, power=POWER, variant_ratio=RATIO)
    if planned is None:
        raise SystemExit("the baseline gave no plan")
    return planned


def experiment(seed: int, need: dict[str, int], lift: float) -> dict[str, bool]:
    """One experiment at the planned size: what each test says."""
    rng = np.random.default_rng(seed)
    control = Arm.from_users("control", *draw_users(rng, need["control"]))
    variant = Arm.from_users("variant", *draw_users(rng, need["variant"], lift))
    decision = decide(control, variant, alpha=ALPHA, variant_ratio=RATIO, required_per_arm=need)
    return {
        "users_significant": ratio_test(control, variant, alpha=ALPHA).significant,
        "users_promote": decision.verdict is Verdict.PROMOTE,
        "impressions_significant": two_proportion_test(control, variant, alpha=ALPHA).significant,
    }


def peeking(seed: int, need: dict[str, int]) -> tuple[bool, bool]:
    """A/A with ``LOOKS`` looks: (fixed-horizon p ever < alpha, always-valid p ever < alpha)."""
    rng = np.random.default_rng(seed)
    c_n, c_c = draw_users(rng, need["control"])
    v_n, v_c = draw_users(rng, need["variant"])
    naive = valid = False
    for look in range(1, LOOKS + 1):
        kc, kv = need["control"] * look // LOOKS, need["variant"] * look // LOOKS
        control, variant = Arm.from_users("c", c_n[:kc], c_c[:kc]), Arm.from_users("v", v_n[:kv], v_c[:kv])
        naive |= ratio_test(control, variant, alpha=ALPHA).significant
        valid |= always_valid_p(control, variant, tau=BASE * MDE) < ALPHA
    return naive, valid


def rate(hits: int, runs: int) -> str:
    ci = stats.binomtest(hits, runs).proportion_ci(0.99)
    return f"{hits / runs:.1%} ({ci.low:.1%}–{ci.high:.1%})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A/A and power tables of the per-user A/B test")
    parser.add_argument("--runs", type=int, default=2000, help="simulated experiments per row")
    args = parser.parse_args(argv)
    runs: int = args.runs
    print(environment_header("A/B calibration", command=f"python -m benchmarks.ab_calibration --runs {runs}"))
    need = plan()
    baseline = Arm.from_users("baseline", *draw_users(np.random.default_rng(0), 10_000))
    rows = {}
    for lift in (0.0, MDE):
        outcomes = [experiment(1_000_000 * (lift > 0) + seed, need, lift) for seed in range(runs)]
        rows[lift] = {key: sum(o[key] for o in outcomes) for key in outcomes[0]}
    peeks = [peeking(2_000_000 + seed, need) for seed in range(max(runs // 4, 1))]

    print(
        f"\n### A/B test on correlated impressions ({runs} experiments per row; 99 % exact binomial CI)\n\n"
        f"{load_line('after')}\n\n"
        f"Users: propensity Beta({BASE * CONCENTRATION:g}, {(1 - BASE) * CONCENTRATION:g}) "
        f"(mean CTR {BASE:g}), 1 + Poisson({MEAN_IMPRESSIONS - 1}) impressions each; "
        f"baseline design effect {baseline.design_effect:.2f}. Plan (MDE {MDE:.0%}, alpha {ALPHA}, "
        f"power {POWER}, variant {RATIO:.0%}): {need['variant']:,} variant and {need['control']:,} "
        "control users.\n"
    )
    print("| test (unit) | A/A: significant (target ≤ 5 %) | true +20 % lift: promoted (target 80 %) |")
    print("|---|---:|---:|")
    aa, lift = rows[0.0], rows[MDE]
    print(
        f"| delta method, users (`conveyor ab conclude`) | {rate(aa['users_significant'], runs)} "
        f"| {rate(lift['users_promote'], runs)} |"
    )
    print(
        f"| two-proportion z, impressions (before) | {rate(aa['impressions_significant'], runs)} "
        f"| {rate(lift['impressions_significant'], runs)} (significant) |"
    )
    print(
        f"| A/A promoted by the decision (one-sided, target ≤ 2.5 %) | {rate(aa['users_promote'], runs)} | |"
    )
    print(
        f"\n{len(peeks)} A/A experiments, {LOOKS} looks each: stopping at the first fixed-horizon "
        f"p < {ALPHA} declares a winner in {rate(sum(n for n, _ in peeks), len(peeks))}; "
        f"at the first always-valid p < {ALPHA} in {rate(sum(v for _, v in peeks), len(peeks))}."
    )


if __name__ == "__main__":
    main()
