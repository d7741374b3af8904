"""Sufficient statistics of one arm for one metric: all the tests ever need to see.

A warehouse query (or a group-by over a file) reduces every arm to a count and a few
sums; these frozen dataclasses carry those sums and derive means and variances from
them. Two arms' statistics add up (``a + b``) to the pooled statistic, which is how
CUPED's slope and capping's thresholds see all arms at once.

Conventions (GrowthBook's): a proportion's variance is ``p (1 - p)``; a mean's is the
``n - 1`` sample variance; a ratio metric's per-unit variance comes from the delta method.
"""

from __future__ import annotations

from dataclasses import dataclass


class _Statistic:
    """What every statistic offers: ``n``, ``mean``, ``variance``, ``unadjusted_mean``."""

    n: int

    @property
    def mean(self) -> float:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    @property
    def unadjusted_mean(self) -> float:
        """The plain mean; the denominator of a relative lift even after CUPED."""
        return self.mean


@dataclass(frozen=True)
class ProportionStatistic(_Statistic):
    """A 0/1 metric: ``sum`` units out of ``n`` converted (opened, clicked, ...)."""

    n: int
    sum: float

    @property
    def sum_squares(self) -> float:
        """For 0/1 values the squares are the values themselves."""
        return self.sum

    @property
    def mean(self) -> float:
        """The rate."""
        return self.sum / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """``p (1 - p)``: the Bernoulli variance per unit."""
        return self.mean * (1.0 - self.mean)

    def __add__(self, other: ProportionStatistic) -> ProportionStatistic:
        return ProportionStatistic(self.n + other.n, self.sum + other.sum)


@dataclass(frozen=True)
class SampleMeanStatistic(_Statistic):
    """A numeric metric per unit (revenue per recipient): ``n``, sum and sum of squares."""

    n: int
    sum: float
    sum_squares: float

    @property
    def mean(self) -> float:
        """The mean per unit."""
        return self.sum / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """The ``n - 1`` sample variance per unit (never negative from rounding)."""
        if self.n <= 1:
            return 0.0
        return max((self.sum_squares - self.sum**2 / self.n) / (self.n - 1), 0.0)

    def __add__(self, other: SampleMeanStatistic) -> SampleMeanStatistic:
        return SampleMeanStatistic(self.n + other.n, self.sum + other.sum,
                                   self.sum_squares + other.sum_squares)


def sample_covariance(n: int, sum_x: float, sum_y: float, sum_products: float) -> float:
    """The ``n - 1`` sample covariance from sums: ``(Sxy - Sx Sy / n) / (n - 1)``."""
    if n <= 1:
        return 0.0
    return (sum_products - sum_x * sum_y / n) / (n - 1)


@dataclass(frozen=True)
class RatioStatistic(_Statistic):
    """A ratio of two per-unit sums, e.g. average order value = revenue / orders.

    The unit of randomisation is the recipient, not the order, so the orders of one
    recipient are correlated; the delta method over per-recipient numerator and
    denominator (with their cross-product) gives an honest variance.
    """

    numerator: SampleMeanStatistic
    denominator: SampleMeanStatistic
    sum_products: float

    @property
    def n(self) -> int:  # type: ignore[override]
        """Units (recipients), not orders."""
        return self.numerator.n

    @property
    def mean(self) -> float:
        """Numerator total over denominator total (0 when nothing is in the denominator)."""
        return self.numerator.sum / self.denominator.sum if self.denominator.sum else 0.0

    @property
    def covariance(self) -> float:
        """Per-unit covariance of numerator and denominator."""
        return sample_covariance(self.n, self.numerator.sum, self.denominator.sum,
                                 self.sum_products)

    @property
    def variance(self) -> float:
        """Delta-method variance per unit of the ratio of means."""
        mean_d = self.denominator.mean
        if mean_d == 0:
            return 0.0
        mean_m = self.numerator.mean
        value = (self.numerator.variance / mean_d**2
                 - 2 * self.covariance * mean_m / mean_d**3
                 + self.denominator.variance * mean_m**2 / mean_d**4)
        return max(value, 0.0)

    def __add__(self, other: RatioStatistic) -> RatioStatistic:
        return RatioStatistic(self.numerator + other.numerator,
                              self.denominator + other.denominator,
                              self.sum_products + other.sum_products)


MeanLike = ProportionStatistic | SampleMeanStatistic


@dataclass(frozen=True)
class CovariateStatistic(_Statistic):
    """A metric together with its pre-period covariate, before CUPED picks a slope.

    ``sum_products`` is the sum over units of metric times covariate.
    """

    post: MeanLike
    pre: SampleMeanStatistic
    sum_products: float

    @property
    def n(self) -> int:  # type: ignore[override]
        """Units."""
        return self.post.n

    @property
    def mean(self) -> float:
        """The metric's plain mean."""
        return self.post.mean

    @property
    def variance(self) -> float:
        """The metric's plain variance."""
        return self.post.variance

    @property
    def covariance(self) -> float:
        """Per-unit covariance of metric and covariate."""
        return sample_covariance(self.n, self.post.sum, self.pre.sum, self.sum_products)

    def __add__(self, other: CovariateStatistic) -> CovariateStatistic:
        return CovariateStatistic(self.post + other.post, self.pre + other.pre,
                                  self.sum_products + other.sum_products)


@dataclass(frozen=True)
class RegressionAdjustedStatistic(_Statistic):
    """A metric adjusted by CUPED: ``y - theta * x`` per unit, with ``theta`` chosen.

    The adjusted mean ``mean(y) - theta * mean(x)`` differs between arms by the same
    expected amount as ``mean(y)`` (randomisation balances ``x``), with less variance.
    """

    post: MeanLike
    pre: SampleMeanStatistic
    sum_products: float
    theta: float

    @property
    def n(self) -> int:  # type: ignore[override]
        """Units."""
        return self.post.n

    @property
    def mean(self) -> float:
        """The adjusted mean: the metric's mean less theta times the covariate's."""
        return self.post.mean - self.theta * self.pre.mean

    @property
    def unadjusted_mean(self) -> float:
        """``mean(y)``: relative lifts stay relative to what the metric really was."""
        return self.post.mean

    @property
    def covariance(self) -> float:
        """Per-unit covariance of metric and covariate."""
        return sample_covariance(self.n, self.post.sum, self.pre.sum, self.sum_products)

    @property
    def variance(self) -> float:
        """``var(y) + theta^2 var(x) - 2 theta cov(x, y)`` per unit."""
        value = (self.post.variance + self.theta**2 * self.pre.variance
                 - 2 * self.theta * self.covariance)
        return max(value, 0.0)


Statistic = (ProportionStatistic | SampleMeanStatistic | RatioStatistic | CovariateStatistic
             | RegressionAdjustedStatistic)
"""Anything a test can compare: it has ``n``, ``mean``, ``variance``, ``unadjusted_mean``."""
