"""Gamma-Gamma: the density against direct integration, recovery of known parameters,
shrinkage of the expected value, and expected spend with BG/NBD."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from models.bgnbd import BgNbdFit, expected_purchases
from models.gamma_gamma import (
    GammaGammaFit,
    conditional_expected_value,
    expected_spend,
    fit_gamma_gamma,
    gamma_gamma_log_likelihood,
)
from studio.errors import UserError

CDNOW_SPEND = {"p": 6.25, "q": 3.74, "v": 15.44}
"""Fader, Hardie & Lee's (2005) CDNOW estimates, used as the truth to simulate from."""


def simulate_spend(n: int, p: float, q: float, v: float, *, seed: int):
    """Repeat purchases per customer and the mean of their simulated purchase values."""
    rng = np.random.default_rng(seed)
    frequency = rng.geometric(0.35, n)  # 1, 2, 3, ... with a long tail
    nu = rng.gamma(q, 1 / v, n)
    totals = rng.gamma(p * frequency, 1 / nu)  # a sum of x Gamma(p, nu) values
    return frequency.astype(float), totals / frequency, nu


def fixed_fit(p: float, q: float, v: float) -> GammaGammaFit:
    return GammaGammaFit(p=p, q=q, v=v, log_likelihood=0.0, n_customers=0, converged=True)


def test_density_matches_integrating_over_the_customer_rate():
    # m | nu ~ Gamma(p x, rate nu x); nu ~ Gamma(q, rate v): integrate nu out numerically.
    p, q, v = 2.5, 3.0, 40.0
    for x, m in [(1, 12.0), (3, 30.0), (12, 7.5)]:
        def joint(nu, x=x, m=m):
            return (stats.gamma.pdf(m, p * x, scale=1 / (nu * x))
                    * stats.gamma.pdf(nu, q, scale=1 / v))

        direct = integrate.quad(joint, 0, np.inf, epsabs=0, epsrel=1e-12, limit=500)[0]
        assert gamma_gamma_log_likelihood((p, q, v), [x], [m])[0] == pytest.approx(
            np.log(direct), rel=1e-9)


def test_fit_recovers_the_parameters_it_was_simulated_from():
    frequency, mean_value, _ = simulate_spend(20_000, **CDNOW_SPEND, seed=4)
    fit = fit_gamma_gamma(frequency, mean_value)
    assert fit.converged and fit.flags == ()
    for name, truth in CDNOW_SPEND.items():
        estimate, error = fit.params[name], fit.std_errors[name]
        assert abs(estimate - truth) < 3 * error, (name, estimate, error)
        assert error < 0.1 * truth  # the check has teeth
    assert fit.population_mean_value == pytest.approx(
        CDNOW_SPEND["p"] * CDNOW_SPEND["v"] / (CDNOW_SPEND["q"] - 1), rel=0.05)
    direct = gamma_gamma_log_likelihood(tuple(fit.params.values()), frequency, mean_value)
    assert fit.log_likelihood == pytest.approx(direct.sum(), rel=1e-12)


def test_customers_without_repeat_purchases_are_left_out_of_the_fit():
    frequency, mean_value, _ = simulate_spend(3_000, **CDNOW_SPEND, seed=6)
    with_one_timers = fit_gamma_gamma(np.r_[frequency, np.zeros(500)],
                                      np.r_[mean_value, np.zeros(500)])
    alone = fit_gamma_gamma(frequency, mean_value)
    assert with_one_timers.n_customers == 3_000
    assert with_one_timers.params == pytest.approx(alone.params, rel=1e-9)


def test_expected_value_is_the_posterior_mean_of_the_customer_average():
    # The conditional expectation must match E[p / nu | data] by simulation: customers with
    # the same (x, m) are drawn by weighting the prior on nu by the likelihood of m.
    fit = fixed_fit(**CDNOW_SPEND)
    nu = np.random.default_rng(9).gamma(fit.q, 1 / fit.v, 400_000)
    for x, m in [(1, 10.0), (2, 60.0), (20, 25.0)]:
        weight = stats.gamma.pdf(m, fit.p * x, scale=1 / (nu * x))
        simulated = np.sum(weight * fit.p / nu) / weight.sum()
        assert conditional_expected_value(fit, x, m)[0] == pytest.approx(simulated, rel=0.01)


def test_expected_value_shrinks_towards_the_population_mean():
    fit = fixed_fit(**CDNOW_SPEND)
    population = fit.population_mean_value
    assert conditional_expected_value(fit, 0, 999.0)[0] == pytest.approx(population)
    values = conditional_expected_value(fit, [1, 5, 50], [100.0, 100.0, 100.0])
    assert np.all(np.diff(values) > 0) and population < values[0] and values[-1] < 100
    # The paper's weights: (q - 1) / (p x + q - 1) on the population mean.
    weight = (fit.q - 1) / (fit.p * 5 + fit.q - 1)
    assert values[1] == pytest.approx(weight * population + (1 - weight) * 100.0)


def test_expected_spend_is_expected_purchases_times_expected_value():
    bgnbd = BgNbdFit(r=0.243, alpha=4.414 * 7, a=0.793, b=2.426, log_likelihood=0.0,
                     n_customers=0, converged=True)
    fit = fixed_fit(**CDNOW_SPEND)
    x, t_x, T = np.array([0.0, 2.0, 6.0]), np.array([0.0, 30.0, 200.0]), np.full(3, 210.0)
    mean_value = np.array([0.0, 25.0, 60.0])
    spend = expected_spend(bgnbd, fit, x, t_x, T, mean_value, 90.0)
    purchases = expected_purchases(bgnbd, x, t_x, T, 90.0)
    assert spend[0] == pytest.approx(purchases[0] * 6.25 * 15.44 / 2.74)
    assert spend[2] == pytest.approx(purchases[2] * (15.44 + 6 * 60.0) * 6.25 / (6.25 * 6 + 2.74))


def test_an_infinite_mean_value_is_flagged_and_refused():
    # With q = 0.7 the customers' mean values p / nu have no finite mean (a heavy tail).
    frequency, mean_value, _ = simulate_spend(5_000, p=3.0, q=0.7, v=10.0, seed=2)
    fit = fit_gamma_gamma(frequency, mean_value)
    assert fit.population_mean_value == float("inf")
    assert fit.q <= 1 and "q <= 1" in fit.message
    with pytest.raises(UserError, match="q <= 1"):
        conditional_expected_value(fit, [1], [10.0])


def test_no_repeat_buyers_is_a_user_error():
    with pytest.raises(UserError, match="repeat"):
        fit_gamma_gamma([0, 0, 0], [0.0, 0.0, 0.0])
