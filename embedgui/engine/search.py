"""Exact cosine search: a chunked top-k over embedding matrices, and a saved, reloadable index of a corpus.

An index folder holds vectors.npy (float32, L2-normalised rows), texts.jsonl ({"text": ...} per line, in row
order) and meta.json (model identity, dim, count, created time, probe vectors). See docs/evaluate.md.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .config import DEFAULT_MODEL_ID
from .files import atomic_write
from .modeling import Embedder, load_embedder, packaged_model_path, resolve_model_path
from .tables import Table, TableError, read_table, read_text
from .text import fold

log = logging.getLogger(__name__)

INDEX_FORMAT = "embedgui-index"
INDEX_VERSION = 1
VECTORS_FILE, TEXTS_FILE, META_FILE = "vectors.npy", "texts.jsonl", "meta.json"

# Fixed texts embedded at build time and again at load time: equal vectors prove the same weights, pooling
# and normalisation, whatever path the model was loaded from (see SearchIndex.load).
PROBE_TEXTS = (
    "A probe sentence that fingerprints the embedding model.",
    "gradient descent",
    "Retrieval finds the most similar text in a corpus.",
)
# Same weights give cosine 1 - 1e-6 across CPU/GPU and TF32; a model fine-tuned or swapped gives far less.
PROBE_MIN_COSINE = 0.999

DEFAULT_CHUNK = 4096


class SearchIndexError(ValueError):
    """An index folder that cannot be used with this model; the message says which file or field and what to do."""


class CorpusError(ValueError):
    """A corpus file that cannot be read; the message names the file (and column) and what to do."""


@dataclass
class Hit:
    text: str
    score: float
    index: int


def cosine_top_k(queries: torch.Tensor, corpus: torch.Tensor, k: int,
                 chunk_size: int = DEFAULT_CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k cosine: (scores, corpus row indexes), each [n_queries, min(k, n_corpus)], best first.

    The score matrix is built in blocks of chunk_size queries x chunk_size corpus rows, so memory stays at
    about 4 * chunk_size**2 bytes however large the corpus. Ties rank the lower corpus row first, so results
    do not depend on chunk_size or on how torch.topk orders equal values.
    """
    if k < 1:
        raise ValueError(f"k: {k} must be at least 1.")
    if chunk_size < 1:
        raise ValueError(f"chunk_size: {chunk_size} must be at least 1.")
    n_q, n_c = queries.shape[0], corpus.shape[0]
    kk = min(k, n_c)
    out_scores = torch.empty(n_q, kk)
    out_index = torch.empty(n_q, kk, dtype=torch.long)
    if n_q == 0 or kk == 0:
        return out_scores, out_index
    if queries.shape[1] != corpus.shape[1]:
        raise ValueError(f"query vectors have {queries.shape[1]} dimensions but the corpus has {corpus.shape[1]}.")
    for q0 in range(0, n_q, chunk_size):
        q = F.normalize(queries[q0 : q0 + chunk_size].float(), dim=-1)
        best_s = torch.empty(q.shape[0], 0, device=q.device)
        best_i = torch.empty(q.shape[0], 0, dtype=torch.long, device=q.device)
        for c0 in range(0, n_c, chunk_size):
            c = F.normalize(corpus[c0 : c0 + chunk_size].to(q.device, torch.float32), dim=-1)
            scores = q @ c.T
            s, i = _block_top_k(scores, min(kk, scores.shape[1]))
            best_s, best_i = _merge(torch.cat([best_s, s], 1), torch.cat([best_i, i + c0], 1), kk)
        out_scores[q0 : q0 + q.shape[0]] = best_s.cpu()
        out_index[q0 : q0 + q.shape[0]] = best_i.cpu()
    return out_scores, out_index


def _block_top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of one block; rows with ties at the k-th score keep the lowest column indexes among the tied."""
    values, index = scores.topk(k, dim=1)
    # torch.topk picks arbitrary members of a tie at the cut-off; only those rows need the slower stable sort.
    tied = (scores >= values[:, -1:]).sum(dim=1) > k
    if bool(tied.any()):
        rows = tied.nonzero().squeeze(1)
        v, i = torch.sort(scores[rows], dim=1, descending=True, stable=True)
        values[rows], index[rows] = v[:, :k], i[:, :k]
    return values, index


def _merge(scores: torch.Tensor, index: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Order candidates by (score descending, index ascending) and keep the first k."""
    by_index = index.argsort(dim=1)
    scores, index = scores.gather(1, by_index), index.gather(1, by_index)
    by_score = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    return scores.gather(1, by_score), index.gather(1, by_score)


# -- model identity ----------------------------------------------------------------------------------------

def model_identity(embedder: Embedder) -> str:
    """A stable name for the model: the hub id, or the absolute folder path (the packaged MiniLM: its hub id)."""
    source = embedder.source or ""
    if not source:
        return "unknown"
    path = Path(resolve_model_path(source))
    if not path.is_dir():
        return source
    packaged = packaged_model_path()
    if packaged is not None and path.resolve() == packaged.resolve():
        return DEFAULT_MODEL_ID  # the same model whether named by id or by its site-packages path
    return str(path.resolve())


def _probe_vectors(embedder: Embedder) -> torch.Tensor:
    return F.normalize(embedder.encode(list(PROBE_TEXTS)).float(), dim=-1)


# -- the index ---------------------------------------------------------------------------------------------

class SearchIndex:
    """Texts and their unit vectors from one model, searchable by cosine similarity."""

    def __init__(self, texts: Sequence[str], vectors: torch.Tensor, embedder: Embedder | None = None,
                 meta: dict[str, Any] | None = None):
        if len(texts) != vectors.shape[0]:
            raise ValueError(f"{len(texts)} texts but {vectors.shape[0]} vectors.")
        self.texts = list(texts)
        self.vectors = vectors
        self.embedder = embedder
        self.meta = dict(meta or {})

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def truncated(self) -> bool:
        """Built from the first `dim` components of a larger embedding (a Matryoshka size)."""
        return int(self.meta.get("model_dim", self.dim)) > self.dim

    @classmethod
    def build(cls, texts: Sequence[str], embedder: Embedder, batch_size: int = 64,
              on_batch: Callable[[int, int], None] | None = None, dim: int | None = None) -> SearchIndex:
        """Embed every text with the model; vectors are L2-normalised so a dot product is the cosine.

        dim: keep only the first dim components (a Matryoshka size the model was trained for): a smaller index
        and faster search; queries are cut to the same size.
        """
        texts = list(texts)
        if not texts:
            raise SearchIndexError("The corpus is empty; give at least one text to index.")
        if dim is not None and not 1 <= dim <= embedder.dim:
            trained = f" (trained for {embedder.matryoshka_dims})" if embedder.matryoshka_dims else ""
            raise SearchIndexError(f"dim: {dim} is not allowed; the model gives {embedder.dim} dimensions{trained}, "
                                   f"so use 1 to {embedder.dim}.")
        # documents get the model's document prompt and queries its query prompt, as in training
        vectors = embedder.encode(texts, batch_size=batch_size, on_batch=on_batch, prompt="document").float()
        vectors = F.normalize(vectors[:, :dim] if dim else vectors, dim=-1)
        if dim is not None and embedder.matryoshka_dims and dim not in embedder.matryoshka_dims and dim < embedder.dim:
            log.warning("dim %d is not one of the sizes this model was trained for (%s); its search quality is "
                        "unknown.", dim, embedder.matryoshka_dims)
        meta = {
            "format": INDEX_FORMAT,
            "version": INDEX_VERSION,
            "model": model_identity(embedder),
            "model_source": embedder.source,
            "dim": int(vectors.shape[1]),
            "model_dim": embedder.dim,
            "count": len(texts),
            "pooling": embedder.pooling,
            "normalize": embedder.normalize,
            "max_length": embedder.max_length,
            "prompts": {"query": embedder.prompt("query"), "document": embedder.prompt("document")},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "probe": {"texts": list(PROBE_TEXTS), "vectors": _probe_vectors(embedder).tolist()},
        }
        return cls(texts, vectors, embedder, meta)

    def query(self, text_or_texts: str | Sequence[str], k: int = 5,
              chunk_size: int = DEFAULT_CHUNK) -> list[Hit] | list[list[Hit]]:
        """Top-k hits for one text (a list of Hit) or for several (a list of lists), best first."""
        if self.embedder is None:
            raise SearchIndexError("This index has no model attached; load it with SearchIndex.load(folder, model).")
        single = isinstance(text_or_texts, str)
        texts = [text_or_texts] if single else list(text_or_texts)
        if not texts:
            return []
        vectors = self.embedder.encode(texts, prompt="query")
        hits = self.search_vectors(vectors[:, : self.dim], k, chunk_size)  # an index at a Matryoshka size
        return hits[0] if single else hits

    def search_vectors(self, vectors: torch.Tensor, k: int = 5, chunk_size: int = DEFAULT_CHUNK) -> list[list[Hit]]:
        """Top-k hits for query vectors [n, dim] that came from this index's model."""
        scores, index = cosine_top_k(vectors, self.vectors, k, chunk_size)
        return [[Hit(self.texts[i], float(s), int(i)) for s, i in zip(srow.tolist(), irow.tolist())]
                for srow, irow in zip(scores, index)]

    def save(self, folder: str | os.PathLike) -> Path:
        """Write vectors.npy, texts.jsonl and meta.json (each written to a temporary name, then renamed)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {**self.meta, "dim": self.dim, "count": len(self)}
        (folder / META_FILE).unlink(missing_ok=True)  # an old index being overwritten is incomplete until the end
        atomic_write(folder / VECTORS_FILE, lambda f: np.save(f, self.vectors.cpu().numpy().astype(np.float32)),
                     mode="wb")
        atomic_write(folder / TEXTS_FILE, lambda f: f.writelines(
            (json.dumps({"text": t}, ensure_ascii=False) + "\n").encode("utf-8") for t in self.texts), mode="wb")
        # meta.json last: its presence marks a complete index.
        # One top-level key a line: readable, without one line per float of the probe vectors.
        body = ",\n".join(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in meta.items())
        atomic_write(folder / META_FILE, lambda f: f.write(("{\n" + body + "\n}\n").encode("utf-8")), mode="wb")
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, embedder: Embedder | None = None, *, device: str = "auto",
             check_model: bool = True, trust_remote_code: bool | None = None) -> SearchIndex:
        """Read an index folder; with no embedder, load the model it was built with (trust_remote_code: run that
        model's own code; None = its run folder's hf.trust_remote_code, else no).

        The model given must be the one the index was built with: same dimension, and the probe texts must
        embed to the vectors stored at build time (cosine >= PROBE_MIN_COSINE). The probe, not the stored
        path, decides, so a moved or copied model folder still matches and a model retrained in place does not.
        """
        folder = Path(folder)
        meta_path = folder / META_FILE
        if not meta_path.is_file():
            raise SearchIndexError(f"{folder}: no {META_FILE}, so this is not a saved search index; build one first.")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            texts = [json.loads(line)["text"] for line in (folder / TEXTS_FILE).read_text(encoding="utf-8")
                     .splitlines() if line.strip()]
            vectors = torch.from_numpy(np.load(folder / VECTORS_FILE).astype(np.float32, copy=False))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SearchIndexError(f"{folder}: the index files are damaged or incomplete ({type(e).__name__}: "
                                   f"{e}); rebuild the index.") from None
        if meta.get("format") != INDEX_FORMAT:
            raise SearchIndexError(f"{meta_path}: \"format\" is not {INDEX_FORMAT!r}; this folder is not an embedgui "
                                   "search index.")
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise SearchIndexError(f"{folder}: {len(texts)} texts but vectors of shape {tuple(vectors.shape)}; "
                                   "rebuild the index.")
        if embedder is None:
            # "model" is absolute (or a hub id), so it works from any working directory; model_source may not.
            source = meta.get("model") if meta.get("model") not in (None, "unknown") else meta.get("model_source")
            if not source:
                raise SearchIndexError(f"{meta_path}: the model is not recorded; pass the model to load it with.")
            trust = {} if trust_remote_code is None else {"trust_remote_code": trust_remote_code}
            embedder = load_embedder(source, device=device, **trust)
        if check_model:
            _check_same_model(meta, vectors.shape[1], embedder, meta_path)
        return cls(texts, vectors, embedder, meta)


def _check_same_model(meta: dict[str, Any], dim: int, embedder: Embedder, meta_path: Path) -> None:
    built_with = meta.get("model", "unknown")
    current = model_identity(embedder)
    hint = "load it with that model, or rebuild the index with this one."
    # An index at a Matryoshka size holds fewer dimensions than the model gives; meta.json says how many it
    # should hold, so vectors that disagree with it are not taken for a truncation.
    full = int(meta.get("model_dim") or dim) if int(meta.get("dim", dim)) == dim else dim
    if embedder.dim != full:
        raise SearchIndexError(f"{meta_path}: the index was built with {built_with} ({dim} dimensions) but the model "
                               f"{current} gives {embedder.dim}; {hint}")
    probe = meta.get("probe") or {}
    stored = probe.get("vectors")
    if stored and list(probe.get("texts", [])) == list(PROBE_TEXTS):
        cosine = (_probe_vectors(embedder) * F.normalize(torch.tensor(stored, dtype=torch.float32), dim=-1)).sum(-1)
        worst = float(cosine.min())
        if not math.isfinite(worst) or worst < PROBE_MIN_COSINE:
            changed = " (the model changed since the index was built)" if current == built_with else ""
            raise SearchIndexError(f"{meta_path}: the index was built with {built_with} but {current} embeds "
                                   f"differently{changed}; {hint}")
    elif current != built_with:  # an index without a probe: only the names can be compared
        raise SearchIndexError(f"{meta_path}: the index was built with {built_with}, not {current}; {hint}")


# -- corpus files ------------------------------------------------------------------------------------------

def load_corpus(path: str | os.PathLike, column: str | None = None) -> list[str]:
    """Distinct non-empty texts, in file order, from a text file (one a line), pairs.jsonl or CSV/TSV/JSONL column.

    A .jsonl without `column` is read as pairs and gives its distinct positives; with `column`, that field of
    every object. A .csv/.tsv (first row: the column names) needs `column` unless it has a single column. Files
    are read by the composer's table reader, so the encoding (UTF-8, UTF-8 with BOM, CP949) and the delimiter
    are detected the same way. Texts equal under fold() are one text; the first spelling is kept.
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: file not found; check the corpus path.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv", ".jsonl"):
            texts = _column_texts(read_table(path, header=True, min_columns=1), column)
        else:
            if column:
                raise CorpusError(f"{path}: column {column!r} was given but a {suffix or 'plain'} file has no "
                                  "columns; use a .csv, .tsv or .jsonl file, or leave out the column.")
            texts = read_text(path)[0].splitlines()
    except TableError as e:
        raise CorpusError(str(e)) from None
    by_key: dict[str, str] = {}
    for t in texts:
        if t and t.strip():
            by_key.setdefault(fold(t), t.strip())  # one entry per text under fold(), its first spelling
    distinct = list(by_key.values())
    if not distinct:
        raise CorpusError(f"{path}: no texts found; the corpus needs at least one non-empty text.")
    return distinct


def _column_texts(table: Table, column: str | None) -> list[str]:
    """The chosen column of a CSV/TSV, or for JSONL the chosen field (default: a pairs file's "positive")."""
    if table.format == "csv":
        if column is None and len(table.columns) == 1:
            column = table.columns[0]
        if column not in table.columns:
            what = "no column was chosen" if column is None else f"there is no column {column!r}"
            raise CorpusError(f"{table.path}: {what}; choose one of: {', '.join(table.columns)}.")
        i = table.columns.index(column)
        return [row[i] for row in table.rows]
    field = column or "positive"  # a pairs file: its positives are the documents
    i = table.columns.index(field) if field in table.columns else None
    texts: list[str] = []
    for row, line in zip(table.rows, table.line_numbers):
        if i is None or not isinstance(row[i], str):
            keys = ", ".join(c for c, v in zip(table.columns, row) if v is not None) or "none"
            what = f"no text field {field!r}" if column else "no \"positive\" (not a pairs file), no column chosen"
            raise CorpusError(f"{table.path}:{line}: {what}; choose a column from: {keys}.")
        texts.append(row[i])
    return texts
