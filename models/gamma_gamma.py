"""Gamma-Gamma: what a customer spends per purchase, and expected spend with BG/NBD.

Fader, Hardie & Lee (2005), "RFM and CLV: Using iso-value curves for customer base analysis",
Journal of Marketing Research 42(4); Fader & Hardie (2013), "The Gamma-Gamma model of monetary
value". Each purchase's value is Gamma(p, nu) around the customer's own mean p / nu, and nu
varies across customers as Gamma(q, v). A customer's average ``mean_value`` over ``frequency``
repeat purchases is then enough to fit the model and to shrink their average towards the
population's: a customer with one purchase gets mostly the population mean, one with fifty
mostly their own.

The model assumes that spend per purchase does not depend on how often a customer buys; check
the correlation between ``frequency`` and ``mean_value`` before trusting it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import digamma, gammaln

from models.bgnbd import BgNbdFit, expected_purchases, maximise_on_log_scale
from studio.errors import UserError

PARAMETER_NAMES = ("p", "q", "v")


@dataclass(frozen=True)
class GammaGammaFit:
    """A fitted Gamma-Gamma model; ``v`` is in the currency of the data.

    ``population_mean_value`` (p v / (q - 1)) is finite only when q > 1; a fit with q <= 1
    is flagged, since the model then expects unboundedly large baskets.
    """

    p: float
    q: float
    v: float
    log_likelihood: float
    n_customers: float
    converged: bool
    at_bounds: tuple[str, ...] = ()
    std_errors: dict[str, float] = field(default_factory=dict)
    flags: tuple[str, ...] = ()

    @property
    def params(self) -> dict[str, float]:
        """``{"p", "q", "v"}`` as a plain dict (for registries and JSON)."""
        return {"p": self.p, "q": self.q, "v": self.v}

    @property
    def population_mean_value(self) -> float:
        """The mean spend per purchase across customers, p v / (q - 1); inf when q <= 1."""
        return self.p * self.v / (self.q - 1) if self.q > 1 else float("inf")

    @property
    def message(self) -> str:
        """One sentence per problem, empty for a sound fit."""
        return " ".join(self.flags)


def fit_gamma_gamma(frequency, mean_value, *, weights=None) -> GammaGammaFit:
    """Fit Gamma-Gamma by maximum likelihood on customers with repeat purchases.

    Only customers with ``frequency`` >= 1 and a positive ``mean_value`` inform the model;
    the others are left out here, as in the paper. Values are rescaled to a mean of 1 while
    fitting so the search box suits any currency; ``v`` is reported in the data's currency.

    Parameters
    ----------
    frequency
        Repeat purchases per customer (BG/NBD's ``x``).
    mean_value
        Each customer's mean value over those repeat purchases.
    weights
        Optional count of customers behind each row.

    Raises
    ------
    UserError
        When no customer has a repeat purchase with a positive value, or inputs disagree.
    """
    frequency, mean_value, weights = _validate_values(frequency, mean_value, weights)
    usable = (frequency >= 1) & (mean_value > 0) & (weights > 0)
    if not usable.any():
        raise UserError("No customer has a repeat purchase with a positive value; "
                        "Gamma-Gamma needs repeat buyers (choose a longer history).")
    x, m, w = frequency[usable], mean_value[usable], weights[usable]
    scale = float(np.average(m, weights=w))
    m = m / scale

    def log_likelihood_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        values, gradients = _log_likelihood_terms(np.exp(theta), x, m)
        return float(w @ values), (gradients @ w) * np.exp(theta)

    optimum = maximise_on_log_scale(log_likelihood_and_gradient, PARAMETER_NAMES,
                                    start=np.zeros(3), n_observations=float(w.sum()))
    p, q, v = optimum.values
    std_errors = dict(optimum.std_errors)
    if "v" in std_errors:
        std_errors["v"] *= scale
    # Rescaling values by c multiplies each customer's density by 1 / c.
    log_likelihood = optimum.log_likelihood - float(w.sum()) * np.log(scale)
    flags = []
    if not optimum.converged:
        flags.append("The Gamma-Gamma fit did not converge; its values are unreliable.")
    if optimum.at_bounds:
        flags.append(f"The Gamma-Gamma fit is degenerate ({', '.join(optimum.at_bounds)} at "
                     "the edge of the search); spend estimates mean little.")
    if q <= 1:
        flags.append("The Gamma-Gamma fit has q <= 1, so the population mean value is "
                     "infinite; cap extreme order values before fitting.")
    return GammaGammaFit(p=float(p), q=float(q), v=float(v * scale),
                         log_likelihood=float(log_likelihood), n_customers=float(w.sum()),
                         converged=optimum.converged, at_bounds=optimum.at_bounds,
                         std_errors=std_errors, flags=tuple(flags))


def gamma_gamma_log_likelihood(params, frequency, mean_value) -> np.ndarray:
    """Each customer's log-density of their mean value under ``params`` = (p, q, v)."""
    frequency, mean_value, _ = _validate_values(frequency, mean_value, None)
    return _log_likelihood_terms(np.asarray(params, dtype=float), frequency, mean_value)[0]


def _log_likelihood_terms(params: np.ndarray, x: np.ndarray,
                          m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-densities of the mean value m over x purchases and their gradients in (p, q, v).

    f(m | x) = Gamma(p x + q) / (Gamma(p x) Gamma(q)) * v^q m^(p x - 1) x^(p x)
               / (v + m x)^(p x + q)   (Fader & Hardie 2013, eq. 3).
    """
    p, q, v = params
    px = p * x
    log_total = np.log(v + m * x)
    values = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v)
              + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * log_total)
    gradient_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - log_total)
    gradient_q = digamma(px + q) - digamma(q) + np.log(v) - log_total
    gradient_v = q / v - (px + q) / (v + m * x)
    return values, np.vstack([gradient_p, gradient_q, gradient_v])


def conditional_expected_value(fit: GammaGammaFit, frequency, mean_value) -> np.ndarray:
    """E[value of a future purchase | frequency, mean_value] (Fader & Hardie 2013, eq. 5).

    (v + m x) p / (p x + q - 1): a weighted average of the population mean and the
    customer's own mean, with the weight on their own mean growing with x. Customers with
    no repeat purchase (x = 0) get the population mean whatever ``mean_value`` holds.
    """
    frequency, mean_value, _ = _validate_values(frequency, mean_value, None)
    _check_finite_mean(fit)
    m = np.where(frequency > 0, mean_value, 0.0)
    return (fit.v + m * frequency) * fit.p / (fit.p * frequency + fit.q - 1)


def expected_spend(bgnbd_fit: BgNbdFit, gg_fit: GammaGammaFit, x, t_x, T, mean_value,
                   horizon: float) -> np.ndarray:
    """Expected spend over the next ``horizon``: expected purchases times expected value.

    BG/NBD's conditional expected purchases (FHL 2005, eq. 10) times Gamma-Gamma's expected
    value per purchase; one-time buyers get the population mean value p v / (q - 1).
    """
    purchases = expected_purchases(bgnbd_fit, x, t_x, T, horizon)
    return purchases * conditional_expected_value(gg_fit, x, mean_value)


def _check_finite_mean(fit: GammaGammaFit) -> None:
    if fit.q <= 1:
        raise UserError("This Gamma-Gamma fit has q <= 1 (no finite mean value); cap extreme "
                        "order values and refit before estimating spend.")


def _validate_values(frequency, mean_value, weights):
    frequency, mean_value = (np.atleast_1d(np.asarray(v, dtype=float))
                             for v in (frequency, mean_value))
    if frequency.shape != mean_value.shape or frequency.ndim != 1:
        raise UserError("frequency and mean_value must be one-dimensional and of the same "
                        "length; pass one value per customer in each.")
    if not np.all(np.isfinite(frequency) & np.isfinite(mean_value)):
        raise UserError("frequency and mean_value contain missing or infinite values; use 0 "
                        "for customers without repeat purchases.")
    if np.any(frequency < 0) or np.any(mean_value < 0):
        raise UserError("frequency and mean_value must not be negative; drop returns and "
                        "cancellations before computing mean values.")
    if weights is None:
        return frequency, mean_value, np.ones_like(frequency)
    weights = np.atleast_1d(np.asarray(weights, dtype=float))
    if weights.shape != frequency.shape or np.any(weights < 0) or not np.all(np.isfinite(weights)):
        raise UserError("weights must be non-negative counts, one per customer row.")
    return frequency, mean_value, weights
