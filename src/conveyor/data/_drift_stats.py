"""The two-sample statistics behind drift checks, computed from sorted arrays and counts.

scipy's own functions sort and merge both samples on every call; here the
reference is already sorted (it is stored that way in the profile), so the
current data is the only thing to sort and everything else is a binary search
or a pass over arrays. Where scipy's result must be matched bit for bit (the
Kolmogorov–Smirnov p-value, the chi-square test) the final step *is* scipy's:
we hand it our statistic or our table. One exception: for effective sizes
over 10,000 the KS p-value comes from the limiting Kolmogorov distribution
(Stephens' correction), because scipy's finite-n distribution takes seconds
there; the two agree within about 1 % (see ``ks_2samp_sorted``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SCIPY_EXACT_KS_MAX_N = 10_000  # ks_2samp(method="auto") is exact when both samples are this small
KSTWO_MAX_N = 10_000  # effective sizes above this: the limiting Kolmogorov distribution (see ks_2samp_sorted)
PSI_FLOOR = 1e-4  # share given to an empty bin so that the logarithm stays finite
PSI_BINS = 10  # numeric PSI: deciles of the reference
MIN_EXPECTED = 5.0  # chi-square: categories expected fewer times than this are merged (Cochran's rule)


def _stats() -> Any:
    # scipy.stats takes ~0.5 s to import: imported on first use (see warm_up), not with conveyor.data
    from scipy import stats

    return stats


def warm_up() -> threading.Thread:
    """Import scipy.stats in a background thread (a command calls this before reading its data)."""

    def load() -> None:
        from scipy import stats  # noqa: F401
        from scipy.spatial import distance  # noqa: F401

    thread = threading.Thread(target=load, name="conveyor-import-scipy", daemon=True)
    thread.start()
    return thread


def ks_2samp_sorted(ref: FloatArray, cur: FloatArray) -> tuple[float, float]:
    """``scipy.stats.ks_2samp(ref, cur)`` (two-sided, method auto) for sorted inputs.

    The statistic is the largest gap between the two empirical CDFs. Between two
    distinct reference values the reference CDF is flat and the current one
    rises, so the gap peaks at an end of the interval: evaluating the current CDF
    just at and just below each reference value (binary searches into the sorted
    current data) gives exactly the maximum scipy finds over the merged sample.
    """
    n, m = len(ref), len(cur)
    if max(n, m) <= SCIPY_EXACT_KS_MAX_N:  # small: scipy's exact distribution, same call
        res = _stats().ks_2samp(ref, cur)
        return float(res.statistic), float(res.pvalue)
    starts = np.flatnonzero(np.concatenate(([True], ref[1:] != ref[:-1])))  # ref is sorted: no np.unique
    values = ref[starts]
    f_ref = np.append(starts[1:], n) / n  # the reference CDF just after each distinct value
    g_at = np.searchsorted(cur, values, side="right") / m
    g_below = np.searchsorted(cur, values, side="left") / m
    d = max(
        float(np.max(np.abs(f_ref - g_at))),
        float(g_below[0]),  # below the smallest reference value the reference CDF is 0
        float(np.max(np.abs(f_ref[:-1] - g_below[1:]))) if len(values) > 1 else 0.0,
    )
    # scipy's asymptotic branch: kstwo with the rounded effective size — up to KSTWO_MAX_N; above it
    # scipy's kstwo.sf takes seconds for small p-values (7.7 s at n = 500,000), and the limiting
    # Kolmogorov distribution with Stephens' correction is within 0.1 % of it near p = 0.1 and
    # 1 % at p = 1e-5 (measured for n = 10,000 to 100,000; closer as n grows)
    big, small = sorted([float(n), float(m)], reverse=True)
    en = float(np.round(big * small / (big + small)))
    if en <= KSTWO_MAX_N:
        p = float(_stats().kstwo.sf(d, en))
    else:
        p = float(_stats().kstwobign.sf((np.sqrt(en) + 0.12 + 0.11 / np.sqrt(en)) * d))
    return d, float(np.clip(p, 0, 1))


def wasserstein_sorted(a: FloatArray, b: FloatArray) -> float:
    """The 1-Wasserstein distance between two sorted samples (= ``scipy.stats.wasserstein_distance``).

    Integrates |F⁻¹(t) − G⁻¹(t)| over t ∈ (0, 1]. With the larger sample ``a``
    (size m) and the smaller ``b`` (size n ≤ m), each interval (j/m, (j+1)/m]
    holds at most one step of ``b``'s quantile function, so the integral is one
    vectorised pass over ``a`` in integer arithmetic.
    """
    if len(a) < len(b):
        a, b = b, a
    m, n = len(a), len(b)
    j = np.arange(m, dtype=np.int64)
    lo = (j * n) // m  # b's order statistic just after t = j/m
    hi = ((j + 1) * n + m - 1) // m - 1  # ... and at t = (j+1)/m
    left = np.abs(a - b[lo])
    total = float(left.sum()) / m
    split = np.nonzero(hi > lo)[0]
    if len(split):
        js = split.astype(np.float64)
        t_break = hi[split] / n  # where b's quantile steps up inside the interval
        right_share = (js + 1) / m - t_break
        total += float(np.sum(right_share * (np.abs(a[split] - b[hi[split]]) - left[split])))
    return total


def psi(ref_share: FloatArray, cur_share: FloatArray) -> float:
    """Population stability index Σ (c − r)·ln(c / r), empty bins floored at 1e-4."""
    r = np.maximum(ref_share, PSI_FLOOR)
    c = np.maximum(cur_share, PSI_FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def numeric_psi(ref: FloatArray, cur: FloatArray) -> float:
    """PSI over the reference's deciles (bins (−∞, q1], (q1, q2], …, (q9, ∞))."""
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
    ref_cum = np.searchsorted(ref, edges, side="right")
    cur_cum = np.searchsorted(cur, edges, side="right")
    ref_counts = np.diff(np.concatenate(([0], ref_cum, [len(ref)])))
    cur_counts = np.diff(np.concatenate(([0], cur_cum, [len(cur)])))
    return psi(ref_counts / len(ref), cur_counts / len(cur))


@dataclass(frozen=True)
class ChiSquare:
    statistic: float
    p_value: float
    dof: int
    merged: int  # categories merged into a pooled bin because expected counts were small


def merge_sparse(table: IntArray) -> tuple[IntArray, int]:
    """Pool categories expected fewer than 5 times in either row (Cochran's rule).

    Categories are taken by total count, largest first; those whose smaller
    expected count is under 5 are pooled into one bin; if the pooled bin is
    itself too small it joins the smallest kept category.
    """
    totals = table.sum(axis=0)
    order = np.argsort(-totals, kind="stable")
    table = table[:, order]
    totals = totals[order]
    expected_min = table.sum(axis=1).min() * totals / table.sum()
    keep = expected_min >= MIN_EXPECTED
    n_rare = int((~keep).sum())
    if n_rare == 0:
        return table, 0
    kept, pooled = table[:, keep], table[:, ~keep].sum(axis=1, keepdims=True)
    pooled_expected = table.sum(axis=1).min() * pooled.sum() / table.sum()
    if (n_rare > 1 and pooled_expected >= MIN_EXPECTED) or kept.shape[1] == 0:
        return np.hstack([kept, pooled]), n_rare
    kept = kept.copy()
    kept[:, -1:] += pooled
    return kept, n_rare + 1


def chi_square(ref_counts: IntArray, cur_counts: IntArray) -> ChiSquare:
    """The 2×k contingency chi-square test of two count vectors (``scipy.stats.chi2_contingency``).

    Both rows are samples — the reference counts are not taken as exact
    frequencies (the goodness-of-fit mistake that flags unchanged columns at
    small sizes). Sparse categories are pooled first; with fewer than two bins
    left there is nothing to test (statistic 0, p-value 1).
    """
    table = np.vstack([ref_counts, cur_counts]).astype(np.int64)
    table = table[:, table.sum(axis=0) > 0]
    table, merged = merge_sparse(table)
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return ChiSquare(0.0, 1.0, 0, merged)
    res = _stats().chi2_contingency(table)
    return ChiSquare(float(res.statistic), float(res.pvalue), int(res.dof), merged)


def js_distance(ref_counts: IntArray, cur_counts: IntArray) -> float:
    """Jensen–Shannon distance of two count vectors (natural log, as scipy and Evidently)."""
    p = ref_counts / ref_counts.sum()
    q = cur_counts / cur_counts.sum()
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(p, q))


@dataclass(frozen=True)
class NullRateTest:
    reference_rate: float
    current_rate: float
    effect: float  # Cohen's h: 2·asin(√p₂) − 2·asin(√p₁)
    p_value: float


def null_rate_test(ref_nulls: int, ref_rows: int, cur_nulls: int, cur_rows: int) -> NullRateTest:
    """Two-proportion test of the null rates of two samples, with Cohen's h as the effect size.

    The p-value is the pooled two-proportion z-test's (= the 2×2 chi-square
    without continuity correction, computed by scipy). Cohen's h — the
    difference of the arcsine-square-root transformed rates — is a distance on
    one scale whatever the base rate: h = 0.1 is 0 → 0.25 %, 1.9 → 3.5 %,
    30 → 34.6 %; the 1.9 % → 5.1 % change of issue 12 is h = 0.179.
    """
    p1 = ref_nulls / ref_rows if ref_rows else 0.0
    p2 = cur_nulls / cur_rows if cur_rows else 0.0
    effect = float(2 * np.arcsin(np.sqrt(p2)) - 2 * np.arcsin(np.sqrt(p1)))
    table = np.array([[ref_nulls, ref_rows - ref_nulls], [cur_nulls, cur_rows - cur_nulls]], dtype=np.int64)
    if ref_rows == 0 or cur_rows == 0 or (table.sum(axis=0) == 0).any():
        return NullRateTest(p1, p2, effect, 1.0)  # no nulls anywhere (or nothing but nulls): no difference
    res = _stats().chi2_contingency(table, correction=False)
    return NullRateTest(p1, p2, effect, float(res.pvalue))


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (false discovery rate across columns)."""
    if not p_values:
        return []
    adjusted = _stats().false_discovery_control(np.asarray(p_values, dtype=np.float64), method="bh")
    return [float(v) for v in np.atleast_1d(adjusted)]


def histogram_shares(sorted_values: FloatArray, edges: FloatArray) -> FloatArray:
    """Share of a sorted sample in each bin [e_i, e_{i+1}) (last bin closed)."""
    idx = np.searchsorted(sorted_values, edges, side="left")
    idx[-1] = np.searchsorted(sorted_values, edges[-1], side="right")
    counts = np.diff(idx)
    return counts / max(len(sorted_values), 1)


__all__ = [
    "ChiSquare",
    "NullRateTest",
    "benjamini_hochberg",
    "chi_square",
    "histogram_shares",
    "js_distance",
    "ks_2samp_sorted",
    "merge_sparse",
    "null_rate_test",
    "numeric_psi",
    "psi",
    "warm_up",
    "wasserstein_sorted",
]
