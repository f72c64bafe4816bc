"""The trainer's data: training rows (or the streamed file), held-out rows, and the negatives the rows offer."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Config
from .data import Pair, PairsError, batches_per_pass, find_pairs_path, iter_pairs, read_pairs, split_pairs
from .text import fold

log = logging.getLogger(__name__)


@dataclass
class NegativeStats:
    """Hard negatives per row (limit = data.max_hard_negatives) and whether any negative exists at all."""

    limit: int | None = None
    rows: int = 0  # rows read (the row count of a streamed file, counted in the same pass)
    data_max: int = 0  # the most hard negatives any row has in the file
    used_mean: float = 0.0  # mean hard negatives per row the collator actually uses (after the limit)
    useful_hard_negatives: bool = False  # some used hard negative differs from its row's positive
    varied_rows: bool = False  # two rows differ in both anchor and positive: in-batch negatives exist

    def summary(self) -> dict[str, Any]:
        return {"limit": self.limit, "data_max": self.data_max, "used_mean": round(self.used_mean, 4)}


def negative_stats(rows: Iterable[Pair], limit: int | None) -> NegativeStats:
    """One pass over the rows (memory stays flat for a streamed file)."""
    stats = NegativeStats(limit=limit)
    n = used = 0
    first: tuple[str, str] | None = None
    other_anchor = other_positive = False
    for r in rows:
        n += 1
        negatives = r.hard_negatives[:limit]
        stats.data_max = max(stats.data_max, len(r.hard_negatives))
        used += len(negatives)
        anchor, positive = fold(r.anchor), fold(r.positive)
        if not stats.useful_hard_negatives and any(fold(t) != positive for t in negatives):
            stats.useful_hard_negatives = True
        if first is None:
            first = (anchor, positive)
        other_anchor = other_anchor or anchor != first[0]
        other_positive = other_positive or positive != first[1]
    # With two anchor texts and two positive texts among the rows, some two rows differ in both (take a row,
    # one with another positive and one with another anchor: two of the three differ in both), so a batch that
    # holds them gives each a real negative.
    stats.varied_rows = other_anchor and other_positive
    stats.rows = n
    stats.used_mean = used / n if n else 0.0
    return stats


@dataclass
class TrainingData:
    source: list[Pair] | Path  # rows in memory, or the path of a streamed file
    rows: int
    eval_rows: list[Pair]
    negatives: NegativeStats
    info: dict[str, Any] = field(default_factory=dict)  # for the run summary


def load_training_data(c: Config) -> TrainingData:
    """Read (or count, when streaming) the pairs, split off eval rows, and measure the negatives on offer."""
    path = find_pairs_path(c.data.pairs_path, c.base_dir, roots=c.allowed_roots)
    eval_rows: list[Pair] = []
    if c.data.eval_path:
        eval_path = find_pairs_path(c.data.eval_path, c.base_dir, "data.eval_path", roots=c.allowed_roots)
        eval_rows, _ = read_pairs(eval_path, c.data.skip_invalid)
    skipped: list[str] = []
    limit = c.data.max_hard_negatives
    if c.data.stream:
        negatives = negative_stats(iter_pairs(path, c.data.skip_invalid, skipped), limit)
        n = negatives.rows
        if n == 0:
            raise PairsError(f"{path}: no valid rows; each line must be {{\"anchor\": ..., \"positive\": ...}}.")
        source: list[Pair] | Path = path
    else:
        rows, skipped = read_pairs(path, c.data.skip_invalid)
        if c.data.eval_split and not c.data.eval_path:
            rows, eval_rows = split_pairs(rows, c.data.eval_split, c.seed, source=path)
        negatives = negative_stats(rows, limit)
        source, n = rows, len(rows)
    if skipped:
        log.warning("Skipped %d invalid line(s) in %s (data.skip_invalid is on); first: %s", len(skipped), path,
                    skipped[0])
    log.info("Training data: %s, %d rows%s; eval rows: %d", path, n, " (streamed)" if c.data.stream else "",
             len(eval_rows))
    info = {"pairs_path": str(path), "rows": n, "skipped_invalid": len(skipped), "eval_rows": len(eval_rows)}
    return TrainingData(source, n, eval_rows, negatives, info)


def plan_batches(data: TrainingData, config: Config, ranks: int) -> tuple[int, int, int]:
    """How a pass is cut: each process's batch (train.batch_size, capped so that the global batch fits in the rows),
    the smallest last batch (one row for every process) and the optimizer steps a pass makes."""
    batch_size = config.train.batch_size
    if batch_size * ranks > data.rows:
        fits = max(1, data.rows // ranks)
        log.warning("train.batch_size %d%s is more than the %d training rows; using batches of %d.", batch_size,
                    f" x {ranks} processes" if ranks > 1 else "", data.rows, fits)
        batch_size = fits
    min_last = max(2, ranks)
    steps = config.train.steps_per_epoch or max(1, batches_per_pass(data.rows, batch_size * ranks, min_last)
                                                // config.train.grad_accum_steps)
    return batch_size, min_last, steps


def nothing_to_learn(data: TrainingData, batch_size: int) -> str | None:
    """One sentence when no batch can hold a single negative (the loss would be 0 from the first step), else None."""
    neg = data.negatives
    if neg.useful_hard_negatives or (batch_size >= 2 and neg.varied_rows):
        return None
    where = data.info["pairs_path"]
    if data.rows == 1:
        why = "it has 1 row"
    elif batch_size < 2 and neg.varied_rows:
        return (f"Nothing can be learned from {where} with train.batch_size 1 and no hard negatives: a batch of one "
                "row has no negatives. Raise train.batch_size to 2 or more, or add hard negatives.")
    else:
        why = f"its {data.rows} rows all share one anchor or one positive text"
    return (f"Nothing can be learned from {where}: {why} and no hard negative differs from its positive, so no "
            "row has a negative to be ranked below its positive. Add rows with different anchors and positives, "
            "or hard negatives.")


def log_negative_stats(neg: NegativeStats) -> float:
    """Say once how many hard negatives per row training uses (and when a limit of 0 drops them all)."""
    limit = "all" if neg.limit is None else neg.limit
    log.info("hard negatives per row: limit %s, max in the data %d, mean used %.2f", limit, neg.data_max,
             neg.used_mean)
    if neg.limit == 0 and neg.data_max:
        log.warning("data.max_hard_negatives is 0, so none of the hard negatives in the data are used; clear it "
                    "(null) to use them all.")
    return neg.used_mean
