"""Paired significance tests and confidence intervals for MT scores, as sacrebleu computes them.

sacrebleu's own procedure (`sacrebleu.significance`, v2.x) on its own sufficient statistics:
- paired bootstrap resampling (Koehn 2004): N resamples of the test set, the same resamples for every
  system (numpy `default_rng(seed).choice`); a system's mean and 95 % interval come from its resampled
  scores; p = (#{|Δ*| − mean|Δ*| ≥ |Δ|} + 1) / (N + 1), two-sided;
- approximate randomization (Riezler & Maxwell 2005): N random swaps of the two systems' segments;
  p = (#{|Δ*| ≥ |Δ|} + 1) / (N + 1).
Segment statistics are extracted once per system and metric; resampled sums are a matrix product.

One change from sacrebleu: ties count against the null hypothesis (≥, where sacrebleu has >). With >,
a system identical to the baseline (every Δ* = 0 = Δ) gets p = 1/(N+1), "significantly different from
itself"; with ≥ it gets p = 1. For continuous differences the two agree.
Results are kept per score *key*, never per metric name: sacrebleu keys by the name, so two BLEU
variants in one test overwrite each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sacrebleu.metrics.base import Metric

SEED = 12345  # sacrebleu's default SACREBLEU_SEED


@dataclass(frozen=True)
class Interval:
    """A bootstrap estimate: the mean of the resampled values and the 95 % percentile interval."""

    mean: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        """sacrebleu's '± ci': half the width of the interval."""
        return 0.5 * (self.high - self.low)


@dataclass(frozen=True)
class Comparison:
    """A system against the baseline on one score."""

    delta: float  # system − baseline
    delta_interval: Interval | None  # paired bootstrap interval of the difference (bs only)
    p_value: float


def percentile_interval(values: np.ndarray) -> Interval:
    """sacrebleu's `estimate_ci`: sorted values, the n//40-th from each end (95 %)."""
    values = np.sort(values)
    cut = len(values) // 40
    return Interval(float(values.mean()), float(values[cut]), float(values[len(values) - cut - 1]))


def p_value(null_stats: np.ndarray, observed: float) -> float:
    """Two-sided p from a null distribution of |differences|: ties count against the null (see above)."""
    return (int(np.sum(null_stats >= observed)) + 1) / (len(null_stats) + 1)


class Statistics:
    """One system's segment statistics for one metric: scores of the whole set and of any resample."""

    def __init__(self, metric: Metric, hyps: list[str], refs: list[str]) -> None:
        self.metric = metric
        self.raw = np.array(metric._extract_corpus_statistics(hyps, [refs]))  # (n_segments, k) counts
        self.stats = self.raw.astype("float32")  # as sacrebleu's bootstrap sums them: its scores, bit for bit
        self.score = float(metric._compute_score_from_stats(self.raw.sum(0)).score)

    def resampled(self, counts: np.ndarray) -> np.ndarray:
        """Scores of resamples given as per-segment counts (N, n_segments): one matrix product for all."""
        sums = counts.astype("float32") @ self.stats  # (N, k)
        return np.array([self.metric._compute_score_from_stats(s).score for s in sums])


def bootstrap_counts(n_segments: int, n_samples: int, seed: int = SEED) -> np.ndarray:
    """How often each segment appears in each resample (N, n_segments): sacrebleu's resamples, as counts."""
    idxs = np.random.default_rng(seed).choice(n_segments, size=(n_samples, n_segments), replace=True)
    counts = np.zeros((n_samples, n_segments), dtype=np.int32)
    np.add.at(counts, (np.arange(n_samples)[:, None], idxs), 1)
    return counts


def paired_bootstrap(base: Statistics, system: Statistics, counts: np.ndarray,
                     base_scores: np.ndarray | None = None) -> tuple[Interval, Comparison]:
    """The system's interval and its comparison with the baseline on the same resamples."""
    base_scores = base.resampled(counts) if base_scores is None else base_scores
    scores = system.resampled(counts)
    diffs = scores - base_scores
    spread = np.abs(diffs)
    observed = abs(system.score - base.score)
    return percentile_interval(scores), Comparison(system.score - base.score, percentile_interval(diffs),
                                                   p_value(spread - spread.mean(), observed))


def approximate_randomization(base: Statistics, system: Statistics, n_trials: int, seed: int = SEED) -> Comparison:
    """Swap each segment between the two systems with probability 1/2, n_trials times (sacrebleu's trials)."""
    swap = np.random.default_rng(seed).integers(2, size=(n_trials, len(base.raw)), dtype=bool)
    keep = ~swap
    a = swap @ base.raw + keep @ system.raw  # (N, k) integer counts, as sacrebleu's trials
    b = keep @ base.raw + swap @ system.raw
    score = base.metric._compute_score_from_stats
    null = np.abs(np.array([score(x).score for x in a]) - np.array([score(x).score for x in b]))
    return Comparison(system.score - base.score, None, p_value(null, abs(system.score - base.score)))


def holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone), in the input order."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
