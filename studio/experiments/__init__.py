"""A/B test statistics on sufficient statistics, after GrowthBook's ``gbstats`` layering.

SQL (or a polars group-by, for a file) reduces each arm to a handful of sums; the frozen
dataclasses of :mod:`~studio.experiments.statistics` carry them; one module per family of
methods turns them into numbers (:mod:`~studio.experiments.frequentist`,
:mod:`~studio.experiments.bayesian`, :mod:`~studio.experiments.sequential`,
:mod:`~studio.experiments.srm`, :mod:`~studio.experiments.cuped`,
:mod:`~studio.experiments.capping`, :mod:`~studio.experiments.adjustments`,
:mod:`~studio.experiments.power`, :mod:`~studio.experiments.hygiene`);
:mod:`~studio.experiments.analysis` runs them over arms and metrics and
:mod:`~studio.experiments.reading` puts the result into sentences and a table. The data
come from :mod:`~studio.experiments.campaigns` (the warehouse) or
:mod:`~studio.experiments.unit_file` (a CSV of one row per unit). ``docs/experiments.md``
writes the methods down.
"""
