"""BG/NBD: the beta-geometric / negative-binomial model of repeat buying, by maximum likelihood.

Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science 24(2).
While alive, a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha); after each
repeat purchase they drop out for good with probability p ~ Beta(a, b). A customer's history is
summarised, as in the ``lifetimes`` package, by ``x`` (repeat purchases), ``t_x`` (time from
the first to the last purchase) and ``T`` (time from the first purchase to the cutoff), all in
one time unit (the studio uses days).

The score to rank customers by is :func:`probability_of_purchase`, the chance of at least one
purchase in the next ``horizon``. :func:`probability_alive` is not a purchase score: every
one-time buyer gets P(alive) = 1, so it ranks them above loyal customers who bought last week.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from studio.errors import UserError

PARAMETER_NAMES = ("r", "alpha", "a", "b")
LOG_BOUND = 10.0
"""Parameters live in [exp(-10), exp(10)] (time rescaled to a mean T of 1 for ``alpha``)."""
BOUND_TOLERANCE = 0.05
"""A log-parameter this close to its bound counts as at the bound."""


@dataclass(frozen=True)
class BgNbdFit:
    """A fitted BG/NBD model; ``alpha`` is in the time unit of the data (days in the studio).

    ``at_bounds`` names the parameters that ran to a bound of the search: such a fit is
    degenerate (for example ``b`` at its upper bound means nobody seems to drop out), its
    parameters mean little and ``flags`` says so.
    """

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    n_customers: float
    converged: bool
    at_bounds: tuple[str, ...] = ()
    std_errors: dict[str, float] = field(default_factory=dict)
    flags: tuple[str, ...] = ()

    @property
    def params(self) -> dict[str, float]:
        """``{"r", "alpha", "a", "b"}`` as a plain dict (for registries and JSON)."""
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}

    @property
    def is_degenerate(self) -> bool:
        """True when the fit did not converge or a parameter sits at a bound."""
        return bool(self.flags)

    @property
    def message(self) -> str:
        """One sentence per problem, empty for a sound fit."""
        return " ".join(self.flags)


@dataclass(frozen=True)
class LogScaleOptimum:
    """What :func:`maximise_on_log_scale` found, on the natural scale of the parameters."""

    values: np.ndarray
    log_likelihood: float
    converged: bool
    at_bounds: tuple[str, ...]
    std_errors: dict[str, float]


def maximise_on_log_scale(
    log_likelihood_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]],
    names: tuple[str, ...],
    start: np.ndarray,
    n_observations: float,
) -> LogScaleOptimum:
    """Maximise a log-likelihood over positive parameters by L-BFGS-B on their logarithms.

    Working on the log scale keeps every parameter positive without constraints, and the box
    [-LOG_BOUND, LOG_BOUND] stops a flat likelihood from running a parameter off to zero or
    infinity: such a parameter ends at the bound and is reported in ``at_bounds``.
    Standard errors come from the observed information (the Hessian of the log-likelihood in
    log-parameters, by central differences of the analytic gradient) and the delta method.

    Parameters
    ----------
    log_likelihood_and_gradient
        Maps log-parameters to the total log-likelihood and its gradient in log-parameters.
    names
        The parameters' names, in order.
    start
        The starting log-parameters.
    n_observations
        The number of customers: the search works on the mean log-likelihood, so its
        tolerances mean the same for a hundred customers or a million.
    """
    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = log_likelihood_and_gradient(theta)
        return -value / n_observations, -gradient / n_observations

    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(names)
    result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-8})
    theta = result.x
    at_bounds = tuple(name for name, value in zip(names, theta, strict=True)
                      if abs(abs(value) - LOG_BOUND) < BOUND_TOLERANCE)
    # On a flat ridge the line search can stop with a zero gradient and no "success":
    # judge convergence by the gradient that could still move a parameter inside the box.
    inward = np.where(theta <= -LOG_BOUND + 1e-9, np.minimum(result.jac, 0),
                      np.where(theta >= LOG_BOUND - 1e-9, np.maximum(result.jac, 0),
                               result.jac))
    converged = bool(result.success) or float(np.max(np.abs(inward))) < 1e-5
    std_errors = {} if at_bounds else _delta_method_errors(log_likelihood_and_gradient,
                                                           theta, names)
    return LogScaleOptimum(values=np.exp(theta),
                           log_likelihood=-float(result.fun) * n_observations,
                           converged=converged, at_bounds=at_bounds, std_errors=std_errors)


def _delta_method_errors(log_likelihood_and_gradient, theta: np.ndarray,
                         names: tuple[str, ...]) -> dict[str, float]:
    """Standard errors of exp(theta) from the observed information in theta."""
    step = 1e-4
    columns = []
    for j in range(len(theta)):
        shift = np.zeros_like(theta)
        shift[j] = step
        upper = log_likelihood_and_gradient(theta + shift)[1]
        lower = log_likelihood_and_gradient(theta - shift)[1]
        columns.append((upper - lower) / (2 * step))
    hessian = np.array(columns)
    information = -(hessian + hessian.T) / 2
    try:
        covariance = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        return {}
    variances = np.diag(covariance)
    if not np.all(np.isfinite(variances)) or np.any(variances <= 0):
        return {}
    return {name: float(np.exp(value) * np.sqrt(variance))
            for name, value, variance in zip(names, theta, variances, strict=True)}


def fit_bgnbd(x, t_x, T, *, weights=None) -> BgNbdFit:
    """Fit BG/NBD by maximum likelihood (FHL 2005, eq. 6).

    Identical (x, t_x, T) histories are pooled with their counts as weights, so a million
    customers observed in whole days cost as much as their distinct histories (about 190,000
    for a million customers over a year).
    Time is rescaled so the mean ``T`` is 1 while fitting, which keeps ``alpha`` near the
    middle of its search box whatever the time unit; ``alpha`` is reported in the data's unit.

    Parameters
    ----------
    x, t_x, T
        Repeat purchases, time from first to last purchase, time from first purchase to the
        cutoff (``t_x`` = 0 when ``x`` = 0, and ``t_x`` <= ``T``).
    weights
        Optional count of customers behind each row (rows may already be aggregated).

    Raises
    ------
    UserError
        When the histories are empty or inconsistent.
    """
    x, t_x, T, weights = _validate_histories(x, t_x, T, weights)
    scale = float(np.average(T, weights=weights)) or 1.0
    x, t_x, T, weights = _pool_histories(x, t_x / scale, T / scale, weights)

    def log_likelihood_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        values, gradients = _log_likelihood_terms(np.exp(theta), x, t_x, T)
        return float(weights @ values), (gradients @ weights) * np.exp(theta)

    optimum = maximise_on_log_scale(log_likelihood_and_gradient, PARAMETER_NAMES,
                                    start=np.zeros(4), n_observations=float(weights.sum()))
    r, alpha, a, b = optimum.values
    std_errors = dict(optimum.std_errors)
    if "alpha" in std_errors:
        std_errors["alpha"] *= scale
    # Rescaling time by c multiplies each customer's density by c**-x.
    log_likelihood = optimum.log_likelihood - float(weights @ x) * np.log(scale)
    ends = {name: value for name, value in zip(PARAMETER_NAMES, optimum.values, strict=True)
            if name in optimum.at_bounds}
    flags = _describe_problems(optimum.converged, ends)
    return BgNbdFit(r=float(r), alpha=float(alpha * scale), a=float(a), b=float(b),
                    log_likelihood=float(log_likelihood), n_customers=float(weights.sum()),
                    converged=optimum.converged, at_bounds=optimum.at_bounds,
                    std_errors=std_errors, flags=flags)


def _describe_problems(converged: bool, ends: dict[str, float]) -> tuple[str, ...]:
    """Sentences for a fit's problems; ``ends`` maps parameters at a bound to their values."""
    flags = []
    if not converged:
        flags.append("The BG/NBD fit did not converge; its scores are unreliable.")
    if ends:
        where = ", ".join(f"{name} -> {'0' if value < 1 else 'infinity'}"
                          for name, value in ends.items())
        flags.append(f"The BG/NBD fit is degenerate ({where}): the data cannot pin the model "
                     "down (too few repeat buyers, or no sign of drop-out), so its parameters "
                     "mean little even if its scores still rank customers.")
    return tuple(flags)


def bgnbd_log_likelihood(params, x, t_x, T) -> np.ndarray:
    """Each customer's log-likelihood under ``params`` = (r, alpha, a, b) (FHL 2005, eq. 6)."""
    x, t_x, T, _ = _validate_histories(x, t_x, T, None)
    return _log_likelihood_terms(np.asarray(params, dtype=float), x, t_x, T)[0]


def _log_likelihood_terms(params: np.ndarray, x: np.ndarray, t_x: np.ndarray,
                          T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-history log-likelihoods and their gradients in (r, alpha, a, b), shape (4, n).

    L = B(a, b + x) / B(a, b) * Gamma(r + x) alpha^r / Gamma(r)
        * [(alpha + T)^-(r + x) + [x > 0] a / (b + x - 1) (alpha + t_x)^-(r + x)];
    the bracket is summed on the log scale so long histories neither overflow nor underflow.
    """
    r, alpha, a, b = params
    repeat = x > 0
    common = (gammaln(r + x) - gammaln(r) + r * np.log(alpha)
              + betaln(a, b + x) - betaln(a, b))
    alive = -(r + x) * np.log(alpha + T)
    dropped = np.where(repeat, np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0))
                       - (r + x) * np.log(alpha + t_x), -np.inf)
    total = np.logaddexp(alive, dropped)
    share_alive = np.exp(alive - total)
    share_dropped = np.exp(dropped - total)

    gradient_r = (digamma(r + x) - digamma(r) + np.log(alpha)
                  - share_alive * np.log(alpha + T) - share_dropped * np.log(alpha + t_x))
    gradient_alpha = (r / alpha - share_alive * (r + x) / (alpha + T)
                      - share_dropped * (r + x) / (alpha + t_x))
    gradient_a = digamma(a + b) - digamma(a + b + x) + share_dropped / a
    gradient_b = (digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x)
                  - share_dropped / np.where(repeat, b + x - 1, 1.0))
    gradients = np.vstack([gradient_r, gradient_alpha, gradient_a, gradient_b])
    return common + total, gradients


def _validate_histories(x, t_x, T, weights):
    """Float arrays of equal length, checked against the lifetimes conventions."""
    x, t_x, T = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (x, t_x, T))
    if not (x.shape == t_x.shape == T.shape) or x.ndim != 1:
        raise UserError("x, t_x and T must be one-dimensional and of the same length; "
                        "pass one value per customer in each.")
    if x.size == 0:
        raise UserError("There are no customers to fit BG/NBD on; choose a later cutoff.")
    if not np.all(np.isfinite(x) & np.isfinite(t_x) & np.isfinite(T)):
        raise UserError("x, t_x and T contain missing or infinite values; fill or drop them.")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(T < 0):
        raise UserError("x, t_x and T must not be negative; check the cutoff and the dates.")
    if np.any(t_x > T + 1e-9):
        raise UserError("t_x exceeds T for some customers; purchases after the cutoff "
                        "must not enter the history.")
    if np.any((x == 0) & (t_x != 0)):
        raise UserError("t_x must be 0 for customers with no repeat purchase (x = 0); "
                        "check the recency computation.")
    if weights is None:
        weights = np.ones_like(x)
    else:
        weights = np.atleast_1d(np.asarray(weights, dtype=float))
        if weights.shape != x.shape or np.any(weights < 0) or not np.all(np.isfinite(weights)):
            raise UserError("weights must be non-negative counts, one per customer row.")
        if weights.sum() == 0:
            raise UserError("All weights are zero; there is nothing to fit.")
    return x, t_x, T, weights


def _pool_histories(x, t_x, T, weights):
    """Merge identical (x, t_x, T) rows, adding their weights."""
    rows = np.column_stack([x, t_x, T])
    unique, inverse = np.unique(rows, axis=0, return_inverse=True)
    pooled = np.bincount(inverse.ravel(), weights=weights, minlength=len(unique))
    keep = pooled > 0
    return unique[keep, 0], unique[keep, 1], unique[keep, 2], pooled[keep]


def _log_odds_dropped(fit: BgNbdFit, x, t_x, T) -> np.ndarray:
    """Log of P(dropped out, history) / P(alive, history)."""
    repeat = x > 0
    ratio = (np.log(fit.a) - np.log(np.where(repeat, fit.b + x - 1, 1.0))
             + (fit.r + x) * (np.log(fit.alpha + T) - np.log(fit.alpha + t_x)))
    return np.where(repeat, ratio, -np.inf)


def probability_alive(fit: BgNbdFit, x, t_x, T) -> np.ndarray:
    """P(still active at T | history) — NOT a purchase score.

    One-time buyers (x = 0) cannot have dropped out in this model, so they all get 1 however
    long ago they bought; rank customers by :func:`probability_of_purchase` instead.
    """
    x, t_x, T, _ = _validate_histories(x, t_x, T, None)
    return expit(-_log_odds_dropped(fit, x, t_x, T))


def probability_of_purchase(fit: BgNbdFit, x, t_x, T, horizon: float) -> np.ndarray:
    """P(at least one purchase in (T, T + horizon] | history): the purchase score.

    From the conditional PMF (Fader & Hardie, "Deriving the conditional PMF of the BG/NBD
    model"): P(X(T, T + t) = 0 | x, t_x, T) = 1 - P(alive) + P(alive) * ((alpha + T) /
    (alpha + T + t))^(r + x). Drop-out happens only right after a purchase, so a customer
    alive at T stays alive until their next purchase; given alive, lambda ~ Gamma(r + x,
    alpha + T) and P(no purchase in t) = E[exp(-lambda t)].
    """
    x, t_x, T, _ = _validate_histories(x, t_x, T, None)
    _check_horizon(horizon)
    alive = expit(-_log_odds_dropped(fit, x, t_x, T))
    buys_if_alive = -np.expm1((fit.r + x) * (np.log(fit.alpha + T)
                                             - np.log(fit.alpha + T + horizon)))
    return alive * buys_if_alive


def expected_purchases(fit: BgNbdFit, x, t_x, T, horizon: float) -> np.ndarray:
    """E[purchases in (T, T + horizon] | history] (FHL 2005, eq. 10).

    (a + b + x - 1) / (a - 1) * [1 - ((alpha + T) / (alpha + T + t))^(r + x)
    * 2F1(r + x, b + x; a + b + x - 1; t / (alpha + T + t))] * P(alive).
    At a = 1 exactly the ratio is 0/0; ``a`` is nudged off 1 by 1e-6 there.
    """
    x, t_x, T, _ = _validate_histories(x, t_x, T, None)
    _check_horizon(horizon)
    r, alpha, b = fit.r, fit.alpha, fit.b
    a = fit.a if abs(fit.a - 1) > 1e-6 else 1 + 1e-6
    z = horizon / (alpha + T + horizon)
    discount = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + horizon)))
    bracket = 1 - discount * hyp2f1(r + x, b + x, a + b + x - 1, z)
    alive = expit(-_log_odds_dropped(fit, x, t_x, T))
    return (a + b + x - 1) / (a - 1) * bracket * alive


def _check_horizon(horizon: float) -> None:
    if not np.isfinite(horizon) or horizon <= 0:
        raise UserError(f"The horizon must be a positive number of days, not {horizon}.")
