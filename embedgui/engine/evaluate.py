"""Retrieval evaluation of an embedding model on a pairs file: recall@k, MRR@10, nDCG@10, and before/after.

Queries are the distinct anchors; the corpus is every distinct positive, plus the hard negatives as
distractors (unless turned off); a query's relevant documents are all positives of its rows. The metrics
are those of sentence-transformers' InformationRetrievalEvaluator (binary relevance):

    recall@k = |relevant in top k| / |relevant|
    mrr@k    = 1 / rank of the first relevant document in the top k (0 if none)
    ndcg@k   = sum over hits at rank r <= k of 1/log2(r + 1), divided by the same sum for min(|relevant|, k) hits

each averaged over queries. Scores are cosine similarities; equal scores rank the document that comes first
in the corpus first (corpus order = first appearance in the file). Queries are encoded with the model's query
prompt and the corpus with its document prompt, as in training. `dim` scores the first dim components only
(re-normalised), to check a Matryoshka-trained model at a truncated size.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from .data import Pair, read_pairs
from .search import DEFAULT_CHUNK, cosine_top_k
from .text import fold

DEFAULT_KS = (1, 5, 10)
RANK_K = 10  # MRR and nDCG cut-off, as in sentence-transformers and MTEB


class EvalOptionError(ValueError):
    """An evaluation option that does not fit the model (a dim larger than its embedding)."""


@dataclass
class RetrievalTask:
    """Queries, corpus and, per query, the set of corpus indexes that are relevant."""

    queries: list[str]
    corpus: list[str]
    relevant: list[set[int]]


def build_task(pairs: Sequence[Pair], hard_negatives_as_distractors: bool = True) -> RetrievalTask:
    """Distinct anchors as queries; distinct positives (and hard negatives) as the corpus, in file order."""
    query_index: dict[str, int] = {}
    doc_index: dict[str, int] = {}
    queries: list[str] = []
    corpus: list[str] = []
    relevant: list[set[int]] = []

    def doc(text: str) -> int:
        key = fold(text)
        if key not in doc_index:
            doc_index[key] = len(corpus)
            corpus.append(text)
        return doc_index[key]

    for pair in pairs:
        key = fold(pair.anchor)
        if key not in query_index:
            query_index[key] = len(queries)
            queries.append(pair.anchor)
            relevant.append(set())
        relevant[query_index[key]].add(doc(pair.positive))
        if hard_negatives_as_distractors:
            for negative in pair.hard_negatives:
                doc(negative)  # a hard negative that is another row's positive stays relevant to that row
    return RetrievalTask(queries, corpus, relevant)


def metric_names(ks: Sequence[int] = DEFAULT_KS, rank_k: int = RANK_K) -> list[str]:
    """Result keys in print order: recall@k for each k, then mrr@rank_k and ndcg@rank_k."""
    return [f"recall@{k}" for k in _check_ks(ks)] + [f"mrr@{rank_k}", f"ndcg@{rank_k}"]


def _check_ks(ks: Sequence[int]) -> list[int]:
    ks = sorted(set(int(k) for k in ks))
    if not ks or ks[0] < 1:
        raise ValueError(f"ks: {list(ks)} must be one or more cut-offs of at least 1, like 1 5 10.")
    return ks


def score_rankings(ranked: Sequence[Sequence[int]], relevant: Sequence[set[int]], ks: Sequence[int] = DEFAULT_KS,
                   rank_k: int = RANK_K) -> dict[str, float]:
    """Metrics from each query's ranked corpus indexes (best first, at least max(ks, rank_k) long or all)."""
    ks = _check_ks(ks)
    if not ranked:
        raise ValueError("There are no queries to score.")
    recall = {k: 0.0 for k in ks}
    mrr = ndcg = 0.0
    for ranks, rel in zip(ranked, relevant):
        hits = [i in rel for i in ranks]
        for k in ks:
            recall[k] += sum(hits[:k]) / len(rel)
        first = next((r for r, hit in enumerate(hits[:rank_k]) if hit), None)
        mrr += 0.0 if first is None else 1.0 / (first + 1)
        dcg = sum(1.0 / math.log2(r + 2) for r, hit in enumerate(hits[:rank_k]) if hit)
        ideal = sum(1.0 / math.log2(r + 2) for r in range(min(len(rel), rank_k)))
        ndcg += dcg / ideal
    n = len(ranked)
    metrics = {f"recall@{k}": recall[k] / n for k in ks}
    metrics[f"mrr@{rank_k}"] = mrr / n
    metrics[f"ndcg@{rank_k}"] = ndcg / n
    return metrics


def evaluate_pairs(encode: Callable[[list[str]], torch.Tensor], pairs: Sequence[Pair], *,
                   ks: Sequence[int] = DEFAULT_KS, hard_negatives_as_distractors: bool = True,
                   chunk_size: int = DEFAULT_CHUNK, rank_k: int = RANK_K,
                   encode_corpus: Callable[[list[str]], torch.Tensor] | None = None,
                   dim: int | None = None, dims: Sequence[int] = ()) -> dict[str, float]:
    """recall@k for each k, mrr@10 and ndcg@10 of `encode` on the pairs (see the module docstring).

    encode_corpus: a different encoder for the corpus (the document prompt); `encode` when None.
    dims: also score these truncated sizes (Matryoshka), as `<metric>/dim<d>`.
    """
    task = build_task(pairs, hard_negatives_as_distractors)
    return evaluate_task(encode, task, ks=ks, chunk_size=chunk_size, rank_k=rank_k, encode_corpus=encode_corpus,
                         dim=dim, dims=dims)


def evaluate_task(encode: Callable[[list[str]], torch.Tensor], task: RetrievalTask, *,
                  ks: Sequence[int] = DEFAULT_KS, chunk_size: int = DEFAULT_CHUNK,
                  rank_k: int = RANK_K, encode_corpus: Callable[[list[str]], torch.Tensor] | None = None,
                  dim: int | None = None, dims: Sequence[int] = ()) -> dict[str, float]:
    """The metrics of a prepared RetrievalTask (queries and corpus encoded once each).

    dim: score only the first dim components; dims: also score each of these smaller sizes (the sizes a
    Matryoshka model was trained for), reported as `<metric>/dim<d>`, from the same encoded vectors.
    """
    ks = _check_ks(ks)
    if not task.queries:
        raise ValueError("There are no pairs to evaluate; the evaluation set is empty.")
    q = _as_matrix(encode(task.queries), len(task.queries), "queries")
    c = _as_matrix((encode_corpus or encode)(task.corpus), len(task.corpus), "corpus")
    if dim is not None:
        if not 1 <= dim <= q.shape[1]:
            raise EvalOptionError(f"dim: {dim} is not allowed; the model gives {q.shape[1]} dimensions, so use 1 to "
                             f"{q.shape[1]}.")
        q, c = q[:, :dim], c[:, :dim]  # cosine_top_k re-normalises the truncated vectors
    _, ranked = cosine_top_k(q, c, max(max(ks), rank_k), chunk_size)
    metrics = score_rankings(ranked.tolist(), task.relevant, ks, rank_k)
    for d in sorted({int(d) for d in dims if 1 <= int(d) < q.shape[1]}, reverse=True):
        _, ranked = cosine_top_k(q[:, :d], c[:, :d], max(max(ks), rank_k), chunk_size)
        metrics.update({f"{name}/dim{d}": v for name, v in score_rankings(ranked.tolist(), task.relevant, ks,
                                                                         rank_k).items()})
    return metrics


def _as_matrix(vectors: Any, n: int, what: str) -> torch.Tensor:
    vectors = torch.as_tensor(vectors)
    if vectors.ndim != 2 or vectors.shape[0] != n:
        raise ValueError(f"encode returned shape {tuple(vectors.shape)} for {n} {what}; it must return [n, dim].")
    return vectors


# -- whole models ------------------------------------------------------------------------------------------

@dataclass
class EvalResult:
    model: str
    pairs_path: str
    metrics: dict[str, float]
    queries: int
    corpus: int
    distractors: bool = True
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON: the metrics at the top level, then model, pairs, queries, corpus."""
        return {**self.metrics, "model": self.model, "pairs": self.pairs_path, "queries": self.queries,
                "corpus": self.corpus, "distractors": self.distractors, "skipped_lines": len(self.skipped)}


@dataclass
class Comparison:
    before: EvalResult
    after: EvalResult

    @property
    def delta(self) -> dict[str, float]:
        return {name: self.after.metrics[name] - self.before.metrics[name]
                for name in self.after.metrics if name in self.before.metrics}

    def to_dict(self) -> dict[str, Any]:
        return {"before": asdict(self.before), "after": asdict(self.after), "delta": self.delta}

    def table(self) -> str:
        return format_comparison(self.before.metrics, self.after.metrics)


def format_metrics(metrics: dict[str, float]) -> str:
    """One `name: 0.6250` line per metric."""
    return "\n".join(f"{name}: {value:.4f}" for name, value in metrics.items())


def format_comparison(before: dict[str, float], after: dict[str, float]) -> str:
    """A before / after / delta table of the metrics both sides have."""
    names = [n for n in after if n in before]
    width = max([len("metric"), *map(len, names)])
    lines = [f"{'metric':<{width}}  {'before':>7}  {'after':>7}  {'delta':>8}"]
    lines += [f"{n:<{width}}  {before[n]:>7.4f}  {after[n]:>7.4f}  {after[n] - before[n]:>+8.4f}" for n in names]
    return "\n".join(lines)


def evaluate_model(model_dir_or_id: str, pairs_path: str | os.PathLike, *, device: str = "auto",
                   batch_size: int = 64, ks: Sequence[int] = DEFAULT_KS, hard_negatives_as_distractors: bool = True,
                   skip_invalid: bool = False, max_length: int | None = None,
                   chunk_size: int = DEFAULT_CHUNK, dim: int | None = None,
                   trust_remote_code: bool | None = None) -> EvalResult:
    """Load a model (folder or id, as load_embedder takes: a run folder with its training settings) and score it
    on a pairs file; dim scores a truncated embedding (Matryoshka). trust_remote_code: run the model's own code
    (None: a run folder's hf.trust_remote_code, else no)."""
    pairs, skipped = read_pairs(pairs_path, skip_invalid=skip_invalid)
    task = build_task(pairs, hard_negatives_as_distractors)
    return _evaluate_loaded(model_dir_or_id, task, str(pairs_path), skipped, device=device, batch_size=batch_size,
                            ks=ks, max_length=max_length, chunk_size=chunk_size,
                            distractors=hard_negatives_as_distractors, dim=dim,
                            load_options=_trusting(trust_remote_code))


def compare(model_dir_or_id: str, base_model: str, pairs_path: str | os.PathLike, *, device: str = "auto",
            batch_size: int = 64, ks: Sequence[int] = DEFAULT_KS, hard_negatives_as_distractors: bool = True,
            skip_invalid: bool = False, max_length: int | None = None,
            chunk_size: int = DEFAULT_CHUNK, dim: int | None = None,
            trust_remote_code: bool | None = None) -> Comparison:
    """Score base_model (before) and model_dir_or_id (after) on the same queries and corpus.

    Each model keeps its own pooling and normalisation (a run folder: those it was trained with). Prompts are
    compared like with like: where the base model declares no query/document prompt, it gets the trained
    model's (an e5 base is scored with the same "query: " prefix its fine-tuned copy trained with).
    """
    from .model_files import run_settings, saved_prompts
    from .modeling import resolve_model_path

    pairs, skipped = read_pairs(pairs_path, skip_invalid=skip_invalid)
    task = build_task(pairs, hard_negatives_as_distractors)
    common = {"device": device, "batch_size": batch_size, "ks": ks, "max_length": max_length,
              "chunk_size": chunk_size, "distractors": hard_negatives_as_distractors, "dim": dim}
    after_path = resolve_model_path(model_dir_or_id)
    after_prompts = saved_prompts(after_path)[0] if os.path.isdir(after_path) else {}
    settings = run_settings(after_path) if os.path.isdir(after_path) else {}
    for name, value in settings.items():
        if name.endswith("_prompt"):
            after_prompts.setdefault(name[: -len("_prompt")], value)
    # The base model loads as the run loaded it for training: remote code, the sentence-transformers loader and a
    # default task (jina v3) are run settings the base model's own folder does not carry.
    load_as_trained = {k: settings[k] for k in ("trust_remote_code", "loader", "default_task") if k in settings}
    load_as_trained.update(_trusting(trust_remote_code))  # the caller's own answer (eval --trust-remote-code)
    # The base model is scored at the sizes the trained one was trained for, so each size has a before and after.
    dims = (saved_prompts(after_path)[1] or ()) if os.path.isdir(after_path) else ()
    before = _evaluate_loaded(base_model, task, str(pairs_path), skipped, fallback_prompts=after_prompts, dims=dims,
                              load_options=load_as_trained, **common)
    after = _evaluate_loaded(model_dir_or_id, task, str(pairs_path), skipped,
                             load_options=_trusting(trust_remote_code), **common)
    return Comparison(before, after)


def _trusting(trust_remote_code: bool | None) -> dict[str, Any]:
    """load_embedder's argument for an explicit answer; none for None (a run folder's own setting decides)."""
    return {} if trust_remote_code is None else {"trust_remote_code": trust_remote_code}


def _evaluate_loaded(model: str, task: RetrievalTask, pairs_path: str, skipped: list[str], *, device: str,
                     batch_size: int, ks: Sequence[int], max_length: int | None, chunk_size: int,
                     distractors: bool, dim: int | None = None,
                     fallback_prompts: dict[str, str] | None = None, dims: Sequence[int] | None = None,
                     load_options: dict[str, Any] | None = None) -> EvalResult:
    """dims: the Matryoshka sizes to report as well (None: those the model says it was trained for);
    load_options: more load_embedder arguments (the run's hf.* settings for its base model)."""
    from .modeling import load_embedder

    start = time.perf_counter()
    holder = [load_embedder(model, device=device, max_length=max_length, **(load_options or {}))]
    for name, value in (fallback_prompts or {}).items():
        if name in ("query", "document") and not holder[0].prompt(name):
            holder[0].prompts[name] = value
    try:
        def encoder(prompt: str) -> Callable[[list[str]], torch.Tensor]:
            return lambda texts: holder[0].encode(texts, batch_size=batch_size, prompt=prompt)

        trained = holder[0].matryoshka_dims or ()
        metrics = evaluate_task(encoder("query"), task, ks=ks, chunk_size=chunk_size,
                                encode_corpus=encoder("document"), dim=dim,
                                dims=() if dim is not None else (trained if dims is None else dims))
    finally:
        holder.clear()  # free one model before compare() loads the next
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return EvalResult(model, pairs_path, metrics, len(task.queries), len(task.corpus), distractors, skipped,
                      time.perf_counter() - start)
