import math

import pytest

from genadapt.stats import paired_comparison, t_cdf, t_quantile


@pytest.mark.parametrize(
    ("p", "df", "quantile"),
    [(0.975, 1, 12.7062), (0.975, 4, 2.7764), (0.975, 9, 2.2622), (0.95, 2, 2.9200),
     (0.5, 7, 0.0), (0.025, 29, -2.0452)],
)  # fmt: skip
def test_t_quantiles_match_the_tables(p, df, quantile):
    assert t_quantile(p, df) == pytest.approx(quantile, abs=1e-4)
    assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, abs=1e-9)


def test_paired_comparison_of_known_gains():
    # The five seeds of an earlier results table: gains +2.4 … +10.8.
    result = paired_comparison([13.1, 12.2, 11.6, 11.3, 13.6], [15.5, 23.0, 16.4, 18.1, 22.4])
    assert result["gains"] == [2.4, 10.8, 4.8, 6.8, 8.8] and result["seeds_gaining"] == 5
    assert result["mean_gain"] == 6.72 and result["sd"] == 3.29
    assert result["ci95"] == [2.63, 10.81]
    assert result["p_one_sided"] == pytest.approx(0.0051, abs=1e-4)
    # No effect: a p-value near one half and an interval around zero.
    flat = paired_comparison([1.0, 2.0, 3.0, 4.0], [2.0, 1.0, 4.0, 3.0])
    assert flat["mean_gain"] == 0 and flat["p_one_sided"] == 0.5 and flat["ci95"][0] < 0
    assert paired_comparison([1.0], [3.0])["ci95"] is None  # one seed: no interval
    constant = paired_comparison([1.0, 2.0], [2.0, 3.0])  # no spread: certain
    assert constant["p_one_sided"] == 0.0 and math.isclose(constant["mean_gain"], 1.0)
    with pytest.raises(ValueError, match="unpaired"):
        paired_comparison([1.0], [1.0, 2.0])
