"""Hard negatives mined for training when the data has none (data.mine_hard_negatives), cached beside the data.

The model being fine-tuned, as it is before training, ranks the other rows' positives for each anchor; the closest
ones that are not likely false negatives become that row's hard negatives (mining.mine_hard_negatives with the
model method: not the positive or text containing it, not a near-duplicate of it, not another positive of the same
anchor, not a text naming the anchor, and not a candidate the model scores within 5% of the positive). The result
is written beside the pairs file as `<name>.mined-<key>.jsonl`, one line of negatives per row, where the key hashes
the rows, k, the prompts and the model's embeddings of a few probe texts: the same data and model reuse it, a
changed file or retrained model mine again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import Pair
from .files import atomic_write_text, unwritable_reason
from .paths import inside
from .train_data import TrainingData, negative_stats

log = logging.getLogger(__name__)

PROBE_TEXTS = ("a word and its meaning", "the loss went down after the first epoch", "검색 결과를 평가합니다")


@dataclass
class MiningInfo:
    k: int
    cache: str
    reused: bool
    rows_with_negatives: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "cache": self.cache, "reused": self.reused,
                "rows_with_negatives": self.rows_with_negatives, "seconds": round(self.seconds, 2)}


def cache_key(rows: list[Pair], k: int, embedder: Any) -> str:
    """What the mined negatives depend on: the rows, k, the prompts and the model's weights (through its embeddings
    of a few probe texts, so a moved folder matches and a retrained one does not)."""
    h = hashlib.sha256()
    h.update(json.dumps({"k": k, "method": "model", "query": embedder.prompt("query"),
                         "document": embedder.prompt("document")}).encode())
    for r in rows:
        h.update(r.anchor.encode() + b"\t" + r.positive.encode() + b"\n")
    probe = embedder.encode(list(PROBE_TEXTS))
    h.update(json.dumps([[round(float(v), 4) for v in row] for row in probe.tolist()]).encode())
    return h.hexdigest()[:16]


def cache_folder(pairs_path: str | Path, roots: list[str] | None = None) -> Path:
    """Where the mined negatives of a pairs file are cached: beside it, except on a hosted app (roots: the
    visitor's own folder first) for a file outside the visitor's folder, such as the bundled sample that every
    visitor shares: there a cache would fill the app's own folder, and "reused" would tell a visitor what others
    trained. Those go to the visitor's data folder."""
    if roots and not inside(pairs_path, roots[0]):
        return Path(roots[0]) / "data"
    return Path(pairs_path).parent


def mine_for_training(rows: list[Pair], k: int, embedder: Any, pairs_path: str | Path, *, write: bool = True,
                      batch_size: int = 64, autocast_dtype: Any = None, stop: threading.Event | None = None,
                      roots: list[str] | None = None) -> tuple[list[Pair], MiningInfo]:
    """The rows with up to k mined hard negatives each, from the cache (cache_folder) when it matches."""
    from .mining import mine_hard_negatives  # numpy and BM25: only when mining

    start = time.perf_counter()
    path = Path(pairs_path)
    cache = cache_folder(path, roots) / f"{path.stem}.mined-{cache_key(rows, k, embedder)}.jsonl"
    negatives: list[list[str]] | None = None
    if cache.is_file():
        try:
            lines = cache.read_text(encoding="utf-8").splitlines()
            loaded = [json.loads(line) for line in lines]
            if len(loaded) == len(rows) and all(isinstance(n, list) for n in loaded):
                negatives = [[str(t) for t in n] for n in loaded]
        except (OSError, ValueError):
            negatives = None  # a damaged cache is mined again
    reused = negatives is not None
    if negatives is None:
        negatives = mine_hard_negatives([r.anchor for r in rows], [r.positive for r in rows], k, method="model",
                                        embedder=embedder, batch_size=batch_size, autocast_dtype=autocast_dtype,
                                        stop=stop)
        if write:
            if why := unwritable_reason(cache.parent):
                log.warning("Mined hard negatives are not cached: cannot write in %s (%s).", cache.parent, why)
            else:
                atomic_write_text(cache, "".join(json.dumps(n, ensure_ascii=False) + "\n" for n in negatives))
    mined = [Pair(r.anchor, r.positive, n, r.line) for r, n in zip(rows, negatives)]
    info = MiningInfo(k, str(cache), reused, sum(1 for n in negatives if n), time.perf_counter() - start)
    log.info("Hard negatives: %s up to %d per row for %d of %d rows (%s, %.1f s)",
             "reused" if reused else "mined", k, info.rows_with_negatives, len(rows), cache.name, info.seconds)
    return mined, info


def mine_training_data(data: TrainingData, settings: Any, embedder: Any, *, write: bool = True,
                       batch_size: int = 64, autocast_dtype: Any = None, stop: threading.Event | None = None,
                       roots: list[str] | None = None) -> dict[str, Any] | None:
    """data.mine_hard_negatives on the trainer's data (settings: the config's data section): the training rows get
    mined negatives and the negatives' statistics are measured again; None when nothing is mined (the data has
    negatives of its own, or is streamed). With stop set, mining.MiningStopped is raised at the next batch."""
    if data.negatives.data_max or not isinstance(data.source, list):
        why = "the data has hard negatives of its own" if data.negatives.data_max else "a streamed file is not mined"
        log.info("data.mine_hard_negatives: not mining (%s).", why)
        return None
    data.source, info = mine_for_training(data.source, settings.mine_hard_negatives, embedder,
                                          data.info["pairs_path"], write=write, batch_size=batch_size,
                                          autocast_dtype=autocast_dtype, stop=stop, roots=roots)
    data.negatives = negative_stats(data.source, settings.max_hard_negatives)
    return info.to_dict()
