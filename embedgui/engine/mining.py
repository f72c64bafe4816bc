"""Hard-negative mining: for each (anchor, positive), the other rows' positives that rank closest to it.

mine_hard_negatives() is pure and deterministic: BM25 over character bigrams or words by default (Robertson &
Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond", 2009), or an embedding model's cosine
similarity. Candidates that are likely false negatives are never returned (see _FalseNegativeFilter).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .text import compact, fold, mention_pattern, tokenize

# Two candidates are near-duplicates when the Jaccard similarity of their character-bigram sets reaches this.
# Distinct definitions from one domain score about 0.1-0.4; light edits (a word changed, punctuation, plural)
# of one text score above 0.7.
NEAR_DUPLICATE = 0.7
# Model mining: a candidate the model scores at 95% of the positive's score or more is probably a right answer too.
SCORE_RATIO = 0.95
BM25_K1 = 1.2
BM25_B = 0.75

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total)


class MiningStopped(Exception):
    """The caller's stop event was set while mining; no result was produced."""


def check_stop(stop: threading.Event | None) -> None:
    """Raise MiningStopped when stop is set (called between units of work)."""
    if stop is not None and stop.is_set():
        raise MiningStopped("stopped")


class _Bm25:
    """Okapi BM25 over an inverted index (numpy postings), idf = ln(1 + (N - df + 0.5) / (df + 0.5))."""

    def __init__(self, docs: Sequence[list[str]], k1: float = BM25_K1, b: float = BM25_B):
        self.n = len(docs)
        vocab: dict[str, int] = {}
        post_docs: list[list[int]] = []
        post_tf: list[list[int]] = []
        lengths = np.array([len(d) for d in docs], dtype=np.float64)
        for i, tokens in enumerate(docs):
            for token, tf in Counter(tokens).items():
                t = vocab.setdefault(token, len(vocab))
                if t == len(post_docs):
                    post_docs.append([])
                    post_tf.append([])
                post_docs[t].append(i)
                post_tf[t].append(tf)
        avgdl = float(lengths.mean()) if self.n and lengths.mean() > 0 else 1.0
        norm = k1 * (1 - b + b * lengths / avgdl)
        self.vocab = vocab
        self.docs: list[np.ndarray] = []
        self.weights: list[np.ndarray] = []
        for ids, tfs in zip(post_docs, post_tf):
            ids_a = np.asarray(ids, dtype=np.int64)
            tf_a = np.asarray(tfs, dtype=np.float64)
            idf = math.log(1 + (self.n - len(ids) + 0.5) / (len(ids) + 0.5))
            self.docs.append(ids_a)
            self.weights.append(idf * tf_a * (k1 + 1) / (tf_a + norm[ids_a]))

    def scores(self, query: list[str]) -> np.ndarray:
        ids = sorted({self.vocab[t] for t in query if t in self.vocab})
        if not ids:
            return np.zeros(self.n)
        return np.bincount(np.concatenate([self.docs[t] for t in ids]),
                           weights=np.concatenate([self.weights[t] for t in ids]), minlength=self.n)


def _ranked(scores: np.ndarray, positive_only: bool, first: int, below: float = np.inf) -> Iterator[int]:
    """Indices by descending score, ties by index; sorts only the top `first` unless more are asked for.
    Only scores under `below` are ranked (model mining's ceiling: leaving those out here, vectorised, instead of
    skipping them one by one matters where the ceiling is low: thousands of candidates for a row whose positive the
    model scores low; WordNet's 80k rows spent most of their mining time in that loop)."""
    keep = scores > 0 if positive_only else np.ones(len(scores), dtype=bool)
    if below < np.inf:
        keep &= scores < below
    idx = np.flatnonzero(keep)
    if len(idx) > first:
        # Everything scoring at least the first-th best, so ties at the cut are all in and ordered by index.
        cut = np.partition(scores[idx], len(idx) - first)[len(idx) - first]
        top = idx[scores[idx] >= cut]
    else:
        top = idx
    order = top[np.lexsort((top, -scores[top]))]
    yield from order.tolist()
    if len(top) < len(idx):
        rest = np.setdiff1d(idx, top, assume_unique=True)
        yield from rest[np.lexsort((rest, -scores[rest]))].tolist()


class _FalseNegativeFilter:
    """Rejects candidates likely to be correct answers for the anchor, which would teach the model wrong things:
    the positive itself or text containing/contained in it, a near-duplicate of it (bigram Jaccard >= threshold),
    another positive of the same anchor, and any text that mentions the anchor term."""

    def __init__(self, pool: Sequence[str], owners: Sequence[set[str]], threshold: float):
        self.pool_fold = [fold(t) for t in pool]
        self.pool_compact = [compact(t) for t in pool]
        self.pool_grams = [frozenset(tokenize(t, "bigram")) for t in pool]
        self.owners = owners
        self.threshold = threshold

    def for_row(self, anchor: str, positive: str) -> Callable[[int], bool]:
        key, whole, grams = fold(anchor), compact(positive), frozenset(tokenize(positive, "bigram"))
        pattern = mention_pattern(anchor)

        def rejects(j: int) -> bool:
            c = self.pool_compact[j]
            if key in self.owners[j] or not c or c in whole or whole in c:
                return True
            if self._near(self.pool_grams[j], grams):
                return True
            return bool(pattern and pattern.search(self.pool_fold[j]))

        return rejects

    def similar(self, i: int, j: int) -> bool:
        """Whether pool items i and j are near-duplicates of each other."""
        return self.pool_compact[i] == self.pool_compact[j] or self._near(self.pool_grams[i], self.pool_grams[j])

    def _near(self, a: frozenset[str], b: frozenset[str]) -> bool:
        return bool(a and b and len(a & b) / len(a | b) >= self.threshold)


def mine_hard_negatives(
    anchors: Sequence[str],
    positives: Sequence[str],
    k: int,
    *,
    method: str = "bm25",
    embedder: Any = None,
    tokens: str = "auto",
    near_duplicate: float = NEAR_DUPLICATE,
    score_ratio: float = SCORE_RATIO,
    batch_size: int = 64,
    autocast_dtype: Any = None,
    on_progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
) -> list[list[str]]:
    """Up to k hard negatives per (anchor, positive), drawn from the other rows' positives; deterministic.

    bm25: the query is the anchor and its positive together (a one-word glossary term alone leaves BM25 little
    to match but itself, and texts naming the term are rejected anyway), over tokenize(text, tokens).
    model: candidates ranked by cosine similarity to the anchor under embedder.encode(texts) (L2-normalised
    vectors), i.e. the texts the model currently confuses with the right answer.
    With the model, a candidate scored at least score_ratio x the positive's own score is taken for an unlabelled
    positive and skipped (NV-Retriever's positive-aware mining, arXiv:2407.15831).
    Rows get fewer than k when too few candidates pass the false-negative filter (or, for bm25, share a token).
    autocast_dtype (a torch dtype) encodes under autocast with it, as training does (bf16 on a CPU that has it:
    about twice as fast); only an embedgui Embedder takes it.
    When stop is set, MiningStopped is raised at the next block of rows (or encoding batch).
    """
    if len(anchors) != len(positives):
        raise ValueError(f"{len(anchors)} anchors but {len(positives)} positives")
    if method not in ("bm25", "model"):
        raise ValueError(f"method must be 'bm25' or 'model', not {method!r}")
    if k <= 0 or not anchors:
        return [[] for _ in anchors]
    check_stop(stop)
    # Candidates are the distinct positives (one text per fold() key, first spelling kept).
    where: dict[str, int] = {}
    pool: list[str] = []
    owners: list[set[str]] = []
    for a, p in zip(anchors, positives):
        j = where.setdefault(fold(p), len(pool))
        if j == len(pool):
            pool.append(p.strip())
            owners.append(set())
        owners[j].add(fold(a))
    reject = _FalseNegativeFilter(pool, owners, near_duplicate)
    n = len(anchors)
    first = 4 * k + 16  # enough that the filter rarely exhausts the sorted head

    if method == "bm25":
        index = _Bm25([tokenize(t, tokens) for t in pool])

        def score_rows(rows: range) -> np.ndarray:
            return np.stack([index.scores(tokenize(f"{anchors[i]} {positives[i]}", tokens)) for i in rows])
    else:
        if embedder is None:
            raise ValueError("method 'model' needs an embedder")
        unique_anchors = list(dict.fromkeys(anchors))
        a_vec = _encode(embedder, unique_anchors, batch_size, stop, "query", autocast_dtype)
        p_vec = _encode(embedder, pool, batch_size, stop, "document", autocast_dtype)
        a_row = {a: i for i, a in enumerate(unique_anchors)}

        def score_rows(rows: range) -> np.ndarray:
            return a_vec[[a_row[anchors[i]] for i in rows]] @ p_vec.T

        positive_score = np.einsum("ij,ij->i", a_vec[[a_row[a] for a in anchors]],
                                   p_vec[[where[fold(p)] for p in positives]])

    out: list[list[str]] = []
    step = max(1, min(256, 2_000_000 // len(pool)))  # rows scored at once; bounds the block to ~16 MB
    for start in range(0, n, step):
        check_stop(stop)
        rows = range(start, min(start + step, n))
        block = score_rows(rows)
        for offset, i in enumerate(rows):
            rejects = reject.for_row(anchors[i], positives[i])
            ceiling = score_ratio * positive_score[i] if method == "model" and positive_score[i] > 0 else np.inf
            picks: list[int] = []
            for j in _ranked(block[offset], method == "bm25", first, below=ceiling):
                # Near-copies of a pick (two spellings of one definition) would spend k on one negative.
                if not rejects(j) and not any(reject.similar(j, q) for q in picks):
                    picks.append(j)
                    if len(picks) == k:
                        break
            out.append([pool[j] for j in picks])
        if on_progress:
            on_progress("mining", rows.stop, n)
    return out


def _encode(embedder: Any, texts: list[str], batch_size: int, stop: threading.Event | None,
            prompt: str, autocast_dtype: Any = None) -> np.ndarray:
    """L2-normalised vectors of texts as float32 numpy; with a stop event, checked after every batch.

    An embedgui Embedder gets the model's own query/document prompt (e5's "query: ", a Qwen instruction), as
    training and evaluation use; a custom embedder's plain encode(texts, batch_size=...) is all it has to offer.
    """
    ours = hasattr(embedder, "prompts")
    kwargs: dict[str, Any] = {"prompt": prompt, "autocast_dtype": autocast_dtype} if ours else {}
    if stop is not None:
        kwargs["on_batch"] = lambda done, total: check_stop(stop)
    return _as_numpy(embedder.encode(texts, batch_size=batch_size, **kwargs))


def _as_numpy(vectors: Any) -> np.ndarray:
    if hasattr(vectors, "detach"):
        vectors = vectors.detach().cpu().float().numpy()
    return np.asarray(vectors, dtype=np.float32)
