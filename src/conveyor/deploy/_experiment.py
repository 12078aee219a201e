"""A/B tests in production: start, interim status, and the one decision at conclude.

``ab start`` loads the candidate beside the production version and routes
``variant_ratio`` of the users to it, sticky per user by a salted hash with a
new salt per experiment. The experiment's plan — arms, salt, ratio, the
baseline click-through rate, its design effect and impressions per user, and
the **users** per arm needed for the configured minimum detectable effect — is
written to the state document ``envs/production/ab`` (``ab.json`` in the local folder).

The unit is the user throughout: the sample size, the sample-ratio check, the
interim always-valid p-value and the decision all treat users as independent
and a user's answers as correlated (``conveyor.deploy._abtest``).

``ab status`` shows interim numbers and an always-valid (mixture SPRT)
p-value; they are not a decision. ``ab conclude`` decides once, with the
fixed-horizon delta-method test on users: the variant is promoted only when it wins
significantly (and the split shows no sample ratio mismatch); otherwise the
control keeps all traffic. Both are written to the ledger.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from statistics import NormalDist
from typing import Any

from conveyor.deploy._abtest import (
    MIN_USERS_PER_ARM,
    SRM_ALPHA,
    UNIT,
    Arm,
    Verdict,
    always_valid_p,
    decide,
    plan_from_baseline,
    ratio_test,
    sample_ratio_test,
)
from conveyor.deploy._ledger import LedgerEntry
from conveyor.deploy._observations import ab_arms, baseline_users
from conveyor.deploy._results import ABResult, ArmResult
from conveyor.deploy._strategies import (
    PRODUCTION,
    Environment,
    Progress,
    align_aliases,
    promote,
    quiet,
    record,
    recover,
)
from conveyor.deploy._versions import check_version, latest_version
from conveyor.errors import DeployConflict, UsageError
from conveyor.project import Project

BASELINE_DAYS = 7
INTERIM_NOTE = (
    "interim numbers, not a decision: the test is decided once by `conveyor ab conclude`; "
    "only the always-valid p-value may be read at every look"
)


def _plan_sample_size(project: Project, baseline: Arm, variant_ratio: float) -> dict[str, int] | None:
    """Users per arm for the configured effect, from per-user traffic (``None``: too little of it)."""
    ab = project.settings.deploy.ab
    return plan_from_baseline(
        baseline, ab.min_detectable_effect, alpha=ab.alpha, power=ab.power, variant_ratio=variant_ratio
    )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _read_plan(env: Environment) -> dict[str, Any]:
    plan = env.ab_plan()
    if plan is None:
        raise UsageError(f"no A/B test runs in {env.name!r}: start one with `conveyor ab start`")
    return plan


def ab_start(
    project: Project,
    *,
    variant_ratio: float | None = None,
    version: str | None = None,
    env_name: str = PRODUCTION,
    progress: Progress = quiet,
) -> ABResult:
    """Route ``variant_ratio`` of the users (sticky) to the candidate beside the production version."""
    ab = project.settings.deploy.ab
    ratio = ab.variant_ratio if variant_ratio is None else variant_ratio
    if not 0 < ratio < 1:
        raise UsageError(f"--variant-ratio {ratio!r}: must be in (0, 1), e.g. 0.1")
    env = Environment.open(project, env_name)
    candidate = check_version(project, version) if version else latest_version(project)
    with env.lock("ab-start", version=candidate, strategy="ab") as lock:
        recover(env, lock, progress)
        running = env.ab_plan()
        if running is not None:
            raise DeployConflict(
                f"A/B test {running.get('id')} already runs in {env_name!r} "
                f"({running.get('control')} vs {running.get('variant')}); conclude it first",
                environment=env_name,
            )
        state = env.ensure_server(progress)
        control = state.primary
        if control is None:
            raise UsageError(f"nothing serves in {env_name!r} yet: deploy a version before an A/B test")
        if control == candidate:
            raise UsageError(f"version {candidate} already serves {env_name}: register a new version to test")
        if state.candidates:
            state = env.client.rollback()
        progress(f"loading version {candidate} beside {control}")
        if not state.loaded(candidate):
            env.client.load(candidate)
        experiment = f"ab-{uuid.uuid4().hex[:12]}"
        now = datetime.now(UTC)
        baseline = baseline_users(project, env_name, now - timedelta(days=BASELINE_DAYS))
        plan = {
            "id": experiment,
            "environment": env_name,
            "salt": experiment,  # a new salt per experiment: arms do not correlate across tests
            "control": control,
            "variant": candidate,
            "variant_ratio": ratio,
            "started": now.isoformat(),
            "unit": UNIT,
            "baseline_ctr": _finite(baseline.ctr),
            "baseline_users": baseline.users,
            "baseline_impressions": baseline.impressions,
            "baseline_design_effect": _finite(baseline.design_effect),
            "required_per_arm": _plan_sample_size(project, baseline, ratio),
            "min_detectable_effect": ab.min_detectable_effect,
            "alpha": ab.alpha,
            "power": ab.power,
        }
        env.client.traffic({control: 1 - ratio, candidate: ratio}, mode="sticky", salt=experiment)
        env.start_ab_plan(plan)
        reason = f"A/B test {experiment}: {ratio:.0%} of users to {candidate}, control {control}"
        record(project, LedgerEntry(env_name, "ab-start", "ok", candidate, "ab", reason, details=plan))
        progress(reason)
        return ABResult(status="started", plan=plan, outcome="started", reason=reason)


def _observe(
    project: Project, env: Environment, plan: dict[str, Any]
) -> tuple[Arm, Arm, dict[str, int] | None]:
    since = datetime.fromisoformat(plan["started"])
    control, variant = ab_arms(project, env.name, since, plan["control"], plan["variant"])
    # a plan in users (older plans counted impressions: planned anew, like a plan without baseline)
    required = plan.get("required_per_arm") if plan.get("unit") == UNIT else None
    if required is None:  # no baseline at start: plan from the control arm as observed
        required = _plan_sample_size(project, control, float(plan["variant_ratio"]))
    return control, variant, required


def _arms(control: Arm, variant: Arm, required: dict[str, int] | None) -> tuple[ArmResult, ArmResult]:
    def one(arm: Arm) -> ArmResult:
        need = required.get(arm.name) if required else None
        return ArmResult(
            users=arm.users,
            impressions=arm.impressions,
            clicks=arm.clicks,
            ctr=arm.ctr,
            design_effect=_finite(arm.design_effect),
            required_users=need,
            progress=arm.users / need if need else None,
        )

    return one(control), one(variant)


def ab_status(project: Project, *, env_name: str = PRODUCTION) -> ABResult:
    """Interim numbers of the running test (not a decision)."""
    env = Environment.open(project, env_name)
    plan = _read_plan(env)
    control, variant, required = _observe(project, env, plan)
    tau = (plan.get("baseline_ctr") or control.ctr or 0.0) * project.settings.deploy.ab.min_detectable_effect
    valid_p = always_valid_p(control, variant, tau=tau) if math.isfinite(tau) and tau > 0 else 1.0
    control_arm, variant_arm = _arms(control, variant, required)
    return ABResult(
        status="running", plan=plan, unit=UNIT, control=control_arm, variant=variant_arm,
        required_per_arm=required, always_valid_p=valid_p, note=INTERIM_NOTE,
        **_interim_estimates(control, variant, plan, required),
    )  # fmt: skip


def _interim_estimates(
    control: Arm, variant: Arm, plan: dict[str, Any], required: dict[str, int] | None
) -> dict[str, Any]:
    """Each arm's CTR interval, the lift with its interval, the split check and the stopping rule.

    The intervals are the fixed-horizon ones ``ab conclude`` uses (delta method, users as the
    unit, at ``1 - alpha``): read before the planned users are reached they are estimates, not
    a decision — the stopping rule says so.
    """
    alpha = float(plan.get("alpha") or 0.05)
    z = float(NormalDist().inv_cdf(1 - alpha / 2))
    intervals: dict[str, list[float] | None] = {}
    for key, arm in (("control", control), ("variant", variant)):
        half = z * math.sqrt(arm.ctr_variance) if math.isfinite(arm.ctr_variance) else math.nan
        intervals[key] = [arm.ctr - half, arm.ctr + half] if math.isfinite(half) else None
    lift = None
    if min(control.users, variant.users) >= 2 and control.impressions and variant.impressions:
        test = ratio_test(control, variant, alpha=alpha)
        lift = {
            "lift": _finite(test.lift),
            "ci": [_finite(test.lift_ci[0]), _finite(test.lift_ci[1])],
            "difference": test.difference,
            "p_value": test.p_value,
            "alpha": alpha,
        }
    srm = sample_ratio_test(control.users, variant.users, variant_ratio=float(plan["variant_ratio"]))
    planned = (
        f"control {required['control']} and variant {required['variant']} users"
        if required
        else "the users the plan needs (no baseline traffic yet to size it)"
    )
    rule = (
        f"fixed horizon: `conveyor ab conclude` decides once, after {planned}; it promotes the variant "
        f"only when it wins a two-sided test at alpha {alpha:g} (delta method, users as the unit), with "
        f"at least {MIN_USERS_PER_ARM} users per arm and no sample ratio mismatch (p < {SRM_ALPHA:g}); "
        "otherwise the control keeps all traffic. Only the always-valid p-value may be read at every look"
    )
    return {
        "ctr_ci": intervals,
        "lift": lift,
        "sample_ratio": {
            "expected": srm.expected_ratio,
            "observed": _finite(srm.observed_ratio),
            "p_value": srm.p_value,
            "mismatch": srm.mismatch,
        },
        "stopping_rule": rule,
    }


def ab_conclude(project: Project, *, env_name: str = PRODUCTION, progress: Progress = quiet) -> ABResult:
    """Decide once: promote the variant on a significant win, otherwise keep the control."""
    env = Environment.open(project, env_name)
    plan = _read_plan(env)
    with env.lock("ab-conclude", version=plan["variant"], strategy="ab"):
        control, variant, required = _observe(project, env, plan)
        decision = decide(
            control,
            variant,
            alpha=float(plan.get("alpha", project.settings.deploy.ab.alpha)),
            variant_ratio=float(plan["variant_ratio"]),
            required_per_arm=required,
        )
        state = env.client.state()
        if decision.verdict is Verdict.PROMOTE:
            state, _ = promote(env, state, plan["variant"])
            outcome, kept = "promoted", plan["variant"]
        else:
            if state.candidates:
                state = env.client.rollback()
            if state.loaded(plan["variant"]) and state.primary != plan["variant"]:
                state = env.client.unload(plan["variant"])
            align_aliases(env, state)
            outcome, kept = "kept-control", plan["control"]
        env.end_ab_plan("concluded")
        reason = (
            f"{'promoted variant' if outcome == 'promoted' else 'kept control'} {kept}: {decision.reason}"
        )
        details = {"experiment": plan["id"], **decision.to_dict()}
        record(project, LedgerEntry(env_name, "ab-conclude", outcome, kept, "ab", reason, details=details))
        progress(reason)
        control_arm, variant_arm = _arms(control, variant, required)
        return ABResult(
            status="concluded", plan=plan, outcome=outcome, serving=kept, reason=reason, unit=UNIT,
            control=control_arm, variant=variant_arm, decision=decision, server=state,
        )  # fmt: skip
