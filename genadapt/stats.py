"""Paired comparisons over seeds: is a model better than its baseline, and by how much?

Each seed trains both models, so the per-seed gains are the data (a paired design). Reported:
the mean gain and its standard deviation, Student's t interval (95%), the one-sided p-value of
"the gain is > 0", and how many seeds gained. Student's t distribution is computed here (through
the incomplete beta function) so that no statistics package is needed.
"""

from __future__ import annotations

import math


def t_cdf(x: float, df: int) -> float:
    """P(T ≤ x) for Student's t with `df` degrees of freedom: P(|T| > |x|) is the regularized
    incomplete beta I_{df/(df+x²)}(df/2, 1/2)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {df}")
    tail = 0.5 * _incomplete_beta(df / 2, 0.5, df / (df + x * x))
    return 1 - tail if x >= 0 else tail


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """Regularized I_x(a, b) by its continued fraction (Numerical Recipes' betacf, Lentz)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast on this side only
        return 1 - _incomplete_beta(b, a, 1 - x)
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-14:
            break
    return math.exp(log_front) * h / a


def t_quantile(p: float, df: int) -> float:
    """The x with P(T ≤ x) = p (bisection on `t_cdf`)."""
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p}")
    lo, hi = -1e3, 1e3
    for _ in range(100):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def paired_comparison(baseline: list[float], candidate: list[float]) -> dict:
    """Gains candidate − baseline, seed by seed: mean, sd, 95% CI, one-sided p, wins."""
    if len(baseline) != len(candidate):
        raise ValueError(f"{len(baseline)} baseline values against {len(candidate)}: unpaired")
    gains = [c - b for b, c in zip(baseline, candidate, strict=True)]
    n = len(gains)
    mean = sum(gains) / n if n else float("nan")
    result: dict = {
        "n": n,
        "gains": [round(g, 2) for g in gains],
        "mean_gain": round(mean, 2),
        "seeds_gaining": sum(g > 0 for g in gains),
        "min_gain": round(min(gains), 2) if gains else None,
    }
    if n < 2:
        return result | {"sd": None, "ci95": None, "t": None, "p_one_sided": None}
    sd = math.sqrt(sum((g - mean) ** 2 for g in gains) / (n - 1))
    se = sd / math.sqrt(n)
    half_width = t_quantile(0.975, n - 1) * se
    t = mean / se if se > 0 else math.copysign(math.inf, mean) if mean else 0.0
    p = 1 - t_cdf(t, n - 1) if math.isfinite(t) else (0.0 if t > 0 else 1.0)
    return result | {
        "sd": round(sd, 2),
        "ci95": [round(mean - half_width, 2), round(mean + half_width, 2)],
        "t": round(t, 3) if math.isfinite(t) else None,
        "p_one_sided": round(p, 4),
    }
