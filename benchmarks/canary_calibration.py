"""False-fail and power tables of the canary analysis, users as the unit, by simulation.

    python -m benchmarks.canary_calibration               # the tables in docs/statistics.md (a few minutes)
    python -m benchmarks.canary_calibration --runs 4000   # tighter A/A estimates, slower

The simulation — one analysis window of correlated requests (heavy-tailed requests per user,
a per-user error propensity, latency and click propensity), users assigned sticky to the
candidate at a 10 % share, judged by the canary's analysis on users and, on the same data, by
the same analysis counting every request as its own unit (what the canary did before) — is
:mod:`conveyor.deploy._canary_calibration`, the one ``tests/deploy/test_canary_users.py`` runs
in small cells.
"""

from __future__ import annotations

import argparse
import math
import statistics

from scipy import stats

from benchmarks._env import environment_header, load_line
from conveyor.config import CanarySection
from conveyor.deploy._canary_calibration import (
    METRICS,
    SHARE,
    USERS,
    Scenario,
    Window,
    failed,
    significant,
    window,
)

DEFAULT = CanarySection()  # alpha 0.05, +1 point of error rate tolerated, p99 ratio limit 1.5
STRICT = CanarySection(max_error_rate_increase=0.0)
EFFECTS = [
    ("error rate +2 points", Scenario(error_points=0.02)),
    ("error rate +3 points", Scenario(error_points=0.03)),
    ("error rate +5 points", Scenario(error_points=0.05)),
    ("latency ×1.25 (p99 ratio 1.25)", Scenario(latency_factor=1.25)),
    ("latency ×1.5 (p99 ratio 1.5, the limit)", Scenario(latency_factor=1.5)),
    ("latency ×2 (p99 ratio 2)", Scenario(latency_factor=2.0)),
]


def rate(hits: int, runs: int) -> str:
    ci = stats.binomtest(hits, runs).proportion_ci(0.99)
    return f"{hits / runs:.1%} ({ci.low:.1%}–{ci.high:.1%})"


def _aa_rows(label: str, windows: list[Window], settings: CanarySection) -> list[str]:
    runs = len(windows)
    rows = []
    for unit, pick in (
        ("users (`conveyor deploy`, `conveyor judge`)", "users"),
        ("requests (before)", "requests"),
    ):
        results = [getattr(w, pick) for w in windows]
        cells = [rate(sum(significant(r, m, settings.alpha) for r in results), runs) for m in METRICS]
        rows.append(
            f"| {label} | {unit} | {rate(sum(map(failed, results)), runs)} | " + " | ".join(cells) + " |"
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A/A and power tables of the per-user canary analysis")
    parser.add_argument("--runs", type=int, default=1000, help="simulated A/A windows per row")
    parser.add_argument("--power-runs", type=int, default=200, help="simulated windows per effect")
    args = parser.parse_args(argv)
    runs, power_runs = int(args.runs), int(args.power_runs)
    command = f"python -m benchmarks.canary_calibration --runs {runs} --power-runs {power_runs}"
    print(environment_header("canary calibration", command=command))

    aa = [window(seed, Scenario(), DEFAULT) for seed in range(runs)]
    strict = [window(seed, Scenario(), STRICT) for seed in range(runs)]
    effects = [
        (label, [window(1_000_000 * (i + 1) + seed, scenario, DEFAULT) for seed in range(power_runs)])
        for i, (label, scenario) in enumerate(EFFECTS)
    ]
    per_user = [w.users for w in aa]
    deff = statistics.median(
        m.extra["design_effect"] for r in per_user for m in r.metrics if m.name == "error_rate"
    )

    print(
        f"\n### Canary A/A on correlated requests ({runs} windows per row; 99 % exact binomial CI)\n\n"
        f"A window: {USERS:,} users, each on the candidate with probability {SHARE:.0%} (sticky); "
        "requests per user 1 + ⌊LogNormal(1, 1.2)⌋, error propensity Beta(0.02, 1.98) (mean 1 %), "
        "latency level LogNormal per user, click propensity Beta(0.5, 9.5). "
        f"Median design effect of the error-rate difference: {deff:.1f} "
        "(its variance over users ÷ the variance that counts requests as independent). "
        "A metric's column is how often its test was significant at its Bonferroni share of alpha "
        "(latency: the rank test alone, before the p99-ratio effect size).\n"
    )
    print(
        "| settings | unit | canary fails (target ≤ 5 %) | error rate | traffic share | latency test | CTR |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in _aa_rows(f"default (+{DEFAULT.max_error_rate_increase:g} tolerated)", aa, DEFAULT):
        print(row)
    for row in _aa_rows("no error increase tolerated", strict, STRICT):
        print(row)

    print(f"\n### Canary power on known effects ({power_runs} windows per row; default settings)\n")
    print("| candidate | fails, users (`conveyor deploy`) | fails, requests (before) |")
    print("|---|---:|---:|")
    for label, windows in effects:
        users = sum(failed(w.users) for w in windows)
        requests = sum(failed(w.requests) for w in windows)
        print(f"| {label} | {rate(users, power_runs)} | {rate(requests, power_runs)} |")
    print(
        "\nThe per-request column of the power table is not a comparison of power: that analysis "
        "fails healthy canaries above alpha (the A/A table), so its higher rates are bought with "
        "false fails. The p99 ratio at the limit is a coin flip by design (a threshold at the "
        f"effect is half power there); alpha {DEFAULT.alpha}, tolerance "
        f"{DEFAULT.max_error_rate_increase:g}, p99 limit {DEFAULT.max_p99_ratio:g}, "
        f"min requests {DEFAULT.min_requests}; {math.floor(USERS * SHARE)} candidate users expected."
    )
    print(f"\n{load_line('after')}")


if __name__ == "__main__":
    main()
