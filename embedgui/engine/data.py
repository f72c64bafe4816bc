"""pairs.jsonl: reading (in memory or streamed), validation, batching and collation.

One row a line: {"anchor": str, "positive": str, "hard_negatives": [str, ...]} (hard_negatives optional, any
count per row). Batches come from an endless, deterministic sequence: pass p over the data is shuffled with
seed + p, and batch g of the run is always the same rows, so a run resumed at batch g sees exactly what an
uninterrupted run would have seen.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch
from torch.utils.data import DataLoader, IterableDataset, Sampler, get_worker_info

from .files import atomic_write
from .paths import candidates, inside, resolve_user_path
from .text import fold

DEFAULT_PAIRS_LOCATIONS = ("tools/data/pairs.jsonl", "data/pairs.jsonl")


class PairsError(ValueError):
    """A pairs file that cannot be used; the message names file:line and the problem."""


@dataclass
class Pair:
    """One training row; the one pair type of the engine (reader, composer, trainer, evaluator)."""

    anchor: str
    positive: str
    hard_negatives: list[str] = field(default_factory=list)
    line: int = field(default=0, compare=False)  # the input line it came from, when known (0: not known)

    def to_json(self) -> dict[str, Any]:
        """The pairs.jsonl row."""
        return {"anchor": self.anchor, "positive": self.positive, "hard_negatives": list(self.hard_negatives)}


def write_pairs(path: str | os.PathLike, pairs: Iterable[Pair]) -> None:
    """Write a pairs.jsonl (UTF-8, \\n line ends) via a temporary file, so a failure never leaves half a file."""
    def write(f: IO[bytes]) -> None:
        for pair in pairs:
            f.write((json.dumps(pair.to_json(), ensure_ascii=False) + "\n").encode("utf-8"))

    atomic_write(path, write, mode="wb")


def parse_pair(line: str, where: str) -> Pair:
    """One JSONL line -> Pair, or PairsError naming `where` (file:line) and what is wrong."""
    try:  # without the line's own newline: an unfinished object is reported at its column, not "line 2 column 1"
        row = json.loads(line.rstrip("\r\n"))
    except json.JSONDecodeError as e:
        raise PairsError(f"{where}: invalid JSON ({e.msg} at column {e.colno}).") from None
    if not isinstance(row, dict):
        raise PairsError(f"{where}: expected an object like {{\"anchor\": ..., \"positive\": ...}}.")
    for key in ("anchor", "positive"):
        value = row.get(key)
        if not isinstance(value, str) or not value.strip():
            problem = "is missing" if key not in row else "is empty" if isinstance(value, str) else "is not text"
            raise PairsError(f"{where}: \"{key}\" {problem}; every row needs non-empty anchor and positive text.")
    negatives = row.get("hard_negatives", [])
    if negatives is None:
        negatives = []
    if not isinstance(negatives, list) or not all(isinstance(n, str) for n in negatives):
        raise PairsError(f"{where}: \"hard_negatives\" must be a list of strings, like [\"...\", \"...\"].")
    return Pair(row["anchor"], row["positive"], [n for n in negatives if n.strip()])


def iter_pairs(path: str | os.PathLike, skip_invalid: bool = False, skipped: list[str] | None = None
               ) -> Iterator[Pair]:
    """Rows of a pairs file one at a time (memory stays flat). Bad lines raise, or are skipped and recorded."""
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PairsError(f"{path}: file not found; check data.pairs_path.") from None
    with handle:
        first = True
        try:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield parse_pair(line, f"{path}:{lineno}")
                except PairsError as e:
                    if first and (table := _looks_like_a_table(path, line)):
                        # skipping "invalid" lines would skip them all: a table needs composing, not fixing
                        raise PairsError(f"{path}: this is a {table} table, not a pairs.jsonl file; turn it into "
                                         f"pairs with `python -m embedgui compose --input {path} --output "
                                         "pairs.jsonl` (or the Data tab), then use that file.") from None
                    if not skip_invalid:
                        raise PairsError(f"{e} Fix the line, or set data.skip_invalid to true to skip such lines.") \
                            from None
                    if skipped is not None:
                        skipped.append(str(e))
                first = False
        except UnicodeDecodeError as e:
            raise PairsError(f"{path}:{_first_undecodable_line(path)}: not UTF-8 text ({e.reason}); save the file "
                             "as UTF-8 (a Korean Windows or Excel file is often CP949: `python -m embedgui compose` "
                             "reads it and writes UTF-8).") from None


def _looks_like_a_table(path: Path, line: str) -> str | None:
    """"CSV" or "TSV" when a pairs file's first line is a spreadsheet's row (by its name, or a row that is not
    JSON and has commas or tabs), else None."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return suffix[1:].upper()
    text = line.strip()
    if text.startswith(("{", "[")):
        return None
    return "TSV" if "\t" in text else "CSV" if "," in text else None


def _first_undecodable_line(path: Path) -> int:
    """The number of the first line that is not UTF-8 (a text stream decodes ahead by blocks, so its own line
    count at the error is not the line)."""
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return lineno
    return 1


def read_pairs(path: str | os.PathLike, skip_invalid: bool = False) -> tuple[list[Pair], list[str]]:
    """All rows in memory, and the messages of skipped lines. An empty file is an error."""
    skipped: list[str] = []
    pairs = list(iter_pairs(path, skip_invalid, skipped))
    if not pairs:
        raise PairsError(f"{path}: no valid rows; each line must be {{\"anchor\": ..., \"positive\": ...}}.")
    return pairs, skipped


def count_pairs(path: str | os.PathLike, skip_invalid: bool = False) -> tuple[int, list[str]]:
    """Number of valid rows, in one streamed pass (sizes the schedule of a streamed run)."""
    skipped: list[str] = []
    n = sum(1 for _ in iter_pairs(path, skip_invalid, skipped))
    if n == 0:
        raise PairsError(f"{path}: no valid rows; each line must be {{\"anchor\": ..., \"positive\": ...}}.")
    return n, skipped


def find_pairs_path(pairs_path: str | None, config_dir: str | None, field: str = "data.pairs_path",
                    roots: Sequence[str | os.PathLike] | None = None) -> Path:
    """data.pairs_path, else the default locations next to the config file and in the working directory.

    roots (a hosted app): the path must lie inside one of these folders; PathRefused otherwise.
    """
    if pairs_path:
        path = resolve_user_path(pairs_path, config_dir, roots=roots, field=field)
        if path.is_dir():
            raise PairsError(f"{field}: {pairs_path} is a folder; give the pairs file inside it (a .jsonl file).")
        if path.is_file():
            return path
        tried = candidates(pairs_path, config_dir, confined=roots is not None)
        raise PairsError(f"{field}: {pairs_path} not found (looked in {', '.join(map(str, tried))}); fix the path.")
    bases = [Path(config_dir)] if config_dir else []
    if roots is None or not bases:
        bases.append(Path.cwd())
    tried = [b / loc for b in dict.fromkeys(bases) for loc in DEFAULT_PAIRS_LOCATIONS]
    for c in tried:
        if c.is_file() and (roots is None or any(inside(c, r) for r in roots)):
            return c
    raise PairsError("data.pairs_path is not set and no pairs file was found at "
                     f"{', '.join(map(str, tried))}; set data.pairs_path to your pairs.jsonl.")


def split_pairs(pairs: Sequence[Any], ratio: float, seed: int, field: str = "data.eval_split",
                source: str | os.PathLike | None = None) -> tuple[list[Any], list[Any]]:
    """Deterministic train/eval split by anchor, so one anchor never lands on both sides.

    The one split used by the trainer (data.eval_split) and the composer (--eval-ratio). Anchors are compared
    by fold(), so "Token" and "token " stay together.
    """
    if ratio <= 0:
        return list(pairs), []
    anchors = sorted({fold(p.anchor) for p in pairs})
    if len(anchors) < 2:
        raise PairsError(f"{field} {ratio}: {source or 'the data'} has {len(anchors)} distinct anchor(s), and a "
                         f"split needs at least 2; set {field} to 0, or add rows.")
    random.Random(seed).shuffle(anchors)
    held = set(anchors[: min(max(1, round(len(anchors) * ratio)), len(anchors) - 1)])
    return [p for p in pairs if fold(p.anchor) not in held], [p for p in pairs if fold(p.anchor) in held]


def batches_per_pass(n_rows: int, batch_size: int, min_last: int = 2) -> int:
    """Batches in one pass; a final batch of fewer than min_last rows is dropped.

    2 by default (a batch of one row has no in-batch negatives); under torchrun at least the number of processes,
    so every process gets a row of the last batch.
    """
    full, rest = divmod(n_rows, batch_size)
    return full + (1 if rest >= min_last or (rest and full == 0) else 0)


# Length grouping sorts rows by length within windows of this many batches (a shuffled window, then the batch order
# shuffled). Larger windows save more padding but make a batch's rows more alike in length; see docs/performance.md.
GROUP_WINDOW_BATCHES = 16


# With both similar batches and length grouping, a window's rows sorted by length are cut into bands of this many
# batches, each made into batches of similar rows.
SIMILAR_BAND_BATCHES = 4
RowTerms = tuple[array, array]  # a row's token ids and their TF-IDF weights (PairCollator.row_terms)


def similar_order(rows: list[int], terms: Sequence[RowTerms], batch_size: int) -> list[int]:
    """rows reordered so that each run of batch_size rows shares rare words: batch k starts from the first row not
    yet taken (rows come in a random order) and takes the batch_size - 1 rows most like it (cosine of TF-IDF
    vectors) among the rest of the window. In-batch negatives that are hard to tell apart, as topic-aware
    sampling (TAS-B) makes them, at no extra cost per step; the loss masks rows whose texts are equal."""
    n = len(rows)
    if n <= batch_size:
        return list(rows)
    ids = [torch.frombuffer(terms[r][0], dtype=torch.int32) if len(terms[r][0]) else torch.zeros(0, dtype=torch.int32)
           for r in rows]
    weights = [torch.frombuffer(terms[r][1], dtype=torch.float32) if len(terms[r][1]) else torch.zeros(0)
               for r in rows]
    # A dense matrix over the window's own vocabulary: a few thousand columns, not the tokenizer's 30k+.
    vocab, column = torch.unique(torch.cat(ids), return_inverse=True)
    row_of = torch.repeat_interleave(torch.arange(n), torch.tensor([len(i) for i in ids]))
    x = torch.zeros(n, len(vocab))
    x.index_put_((row_of, column), torch.cat(weights), accumulate=True)
    x = torch.nn.functional.normalize(x, dim=1)
    sims = x @ x.T
    sims.fill_diagonal_(-1.0)
    free = torch.ones(n, dtype=torch.bool)
    out: list[int] = []
    for first in range(n):
        if not free[first]:
            continue
        free[first] = False
        want = min(batch_size - 1, int(free.sum()))
        picked = torch.where(free, sims[first], -2.0).topk(want).indices if want else torch.zeros(0, dtype=torch.long)
        free[picked] = False
        out += [rows[first], *(rows[i] for i in picked.tolist())]
    return out


class EndlessBatchSampler(Sampler[list[int]]):
    """Row indexes of batch g, g+1, ... for in-memory data: pass p is a permutation seeded with seed + p.

    terms (PairCollator.row_terms): batches of rows that share rare words, in windows as below (similar_order);
    with lengths too, each window sorted by length is cut into bands of SIMILAR_BAND_BATCHES batches first.

    lengths (one sort key per row, e.g. its token count): length-grouped batches, as the reference trainers'
    group_by_length does. The pass's permutation is cut into windows of `window` batches, each window is sorted
    by length and cut into batches, and the order of the pass's batches is shuffled; so each batch holds rows of
    similar length but random content (what in-batch negatives need), with far less padding. Batch g is still a
    function of (seed, g) alone, so a resumed run sees what an uninterrupted one would have.
    """

    def __init__(self, n_rows: int, batch_size: int, seed: int, shuffle: bool = True, start_batch: int = 0,
                 lengths: Sequence[int] | None = None, window: int = GROUP_WINDOW_BATCHES, min_last: int = 2,
                 terms: Sequence[RowTerms] | None = None):
        self.n_rows, self.batch_size, self.seed, self.shuffle = n_rows, batch_size, seed, shuffle
        self.start_batch = start_batch
        self.per_pass = batches_per_pass(n_rows, batch_size, min_last)
        for name, keys in (("lengths", lengths), ("terms", terms)):
            if keys is not None and len(keys) != n_rows:
                raise ValueError(f"{name}: {len(keys)} values for {n_rows} rows")
        self.lengths, self.terms, self.window = lengths, terms, max(1, window)

    def pass_batches(self, pass_no: int) -> list[list[int]]:
        """The batches of pass pass_no, in order."""
        if not self.shuffle:
            order = list(range(self.n_rows))
            return [order[b * self.batch_size : (b + 1) * self.batch_size] for b in range(self.per_pass)]
        generator = torch.Generator().manual_seed(self.seed + pass_no)
        order = torch.randperm(self.n_rows, generator=generator).tolist()
        if self.lengths is None and self.terms is None:
            return [order[b * self.batch_size : (b + 1) * self.batch_size] for b in range(self.per_pass)]
        span = self.window * self.batch_size
        lengths = self.lengths
        grouped: list[int] = []
        for start in range(0, self.n_rows, span):
            if self.terms is not None and lengths is not None:
                # Both: the window sorted by length is cut into bands of SIMILAR_BAND_BATCHES batches, and each
                # band into batches of similar rows (harder negatives, and most of length grouping's speed).
                window = sorted(order[start : start + span], key=lambda i: -lengths[i])
                band = SIMILAR_BAND_BATCHES * self.batch_size
                for b in range(0, len(window), band):
                    grouped += similar_order(window[b : b + band], self.terms, self.batch_size)
            elif self.terms is not None:
                grouped += similar_order(order[start : start + span], self.terms, self.batch_size)
            else:
                # Longest first within a window (a stable sort: equal lengths keep their random order).
                grouped += sorted(order[start : start + span], key=lambda i: -lengths[i])
        batches = [grouped[b * self.batch_size : (b + 1) * self.batch_size] for b in range(self.per_pass)]
        # Shuffled batch order: the long and short batches of a window do not come in a run.
        return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]

    def __iter__(self) -> Iterator[list[int]]:
        pass_no, offset = divmod(self.start_batch, self.per_pass)
        while True:
            yield from self.pass_batches(pass_no)[offset:]
            pass_no, offset = pass_no + 1, 0


class StreamedBatches(IterableDataset):
    """Batches of rows read line by line from a pairs file, endlessly, with a bounded shuffle buffer.

    Memory holds at most shuffle_buffer rows whatever the file size. With DataLoader workers, worker k
    collates batches k, k+W, ... so the order is the same for any worker count.
    """

    def __init__(self, path: str | os.PathLike, batch_size: int, seed: int, *, shuffle: bool = True,
                 shuffle_buffer: int = 10000, skip_invalid: bool = False, start_batch: int = 0, min_last: int = 2):
        self.path, self.batch_size, self.seed = Path(path), batch_size, seed
        self.shuffle, self.shuffle_buffer = shuffle, shuffle_buffer
        self.skip_invalid, self.start_batch, self.min_last = skip_invalid, start_batch, min_last

    def _rows(self, pass_no: int) -> Iterator[Pair]:
        rows = iter_pairs(self.path, self.skip_invalid)
        if not self.shuffle:
            yield from rows
            return
        rng = random.Random(self.seed + pass_no)
        buffer: list[Pair] = []
        for row in rows:
            if len(buffer) < self.shuffle_buffer:
                buffer.append(row)
                continue
            i = rng.randrange(len(buffer))
            yield buffer[i]
            buffer[i] = row
        rng.shuffle(buffer)
        yield from buffer

    def _batches(self) -> Iterator[list[Pair]]:
        pass_no = 0
        while True:
            batch: list[Pair] = []
            produced = 0
            for row in self._rows(pass_no):
                batch.append(row)
                if len(batch) == self.batch_size:
                    yield batch
                    produced += 1
                    batch = []
            if len(batch) >= self.min_last or (batch and produced == 0):  # same rule as batches_per_pass
                yield batch
                produced += 1
            if produced == 0:
                return
            pass_no += 1

    def __iter__(self) -> Iterator[list[Pair]]:
        info = get_worker_info()
        workers, me = (info.num_workers, info.id) if info else (1, 0)
        for g, batch in enumerate(self._batches()):
            if g >= self.start_batch and (g - self.start_batch) % workers == me:
                yield batch


class PairCollator:
    """Rows -> tokenised anchors and candidates (all positives, then all hard negatives) + ids for masking.

    query_prompt goes in front of every anchor and document_prompt in front of every positive and hard negative
    (plain concatenation, as Embedder.encode and sentence-transformers do); the ids for masking use the texts
    without the prompts.
    """

    def __init__(self, tokenizer: Any, max_length: int, pad_to_multiple_of: int | None = None,
                 max_hard_negatives: int | None = None, query_prompt: str = "", document_prompt: str = ""):
        if pad_to_multiple_of and max_length % pad_to_multiple_of and max_length > pad_to_multiple_of:
            # the tokenizer refuses a cut-off that is not a multiple of the padding multiple: round it down
            max_length -= max_length % pad_to_multiple_of
        self.tokenizer, self.max_length = tokenizer, max_length
        self.pad_to_multiple_of, self.max_hard_negatives = pad_to_multiple_of, max_hard_negatives
        self.query_prompt, self.document_prompt = query_prompt or "", document_prompt or ""

    def _tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        # Dynamic padding: each batch is padded only to its own longest text (rounded up when asked).
        if self.token_cache is None:
            return dict(self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                       pad_to_multiple_of=self.pad_to_multiple_of, return_tensors="pt"))
        return self._pad([self._cached(texts)[t] for t in texts])

    # -- the token cache (in-memory data): each text is tokenised once per run, not once per epoch ---------------
    token_cache: dict[str, tuple[array, dict[str, array]]] | None = None
    _extra_keys: tuple[str, ...] = ()  # the tokenizer's keys besides input_ids and attention_mask

    def enable_token_cache(self) -> None:
        """Keep each text's token ids (memory grows with the distinct texts: for in-memory data only)."""
        if self.token_cache is None:
            self.token_cache = {}

    def _cached(self, texts: Sequence[str]) -> dict[str, tuple[array, dict[str, array]]]:
        cache = self.token_cache
        missing = list(dict.fromkeys(t for t in texts if t not in cache))
        for start in range(0, len(missing), 4096):  # bounded batches: a first call may hold a whole data set
            part = missing[start : start + 4096]
            enc = self.tokenizer(part, truncation=True, max_length=self.max_length)
            extra_keys = [k for k in enc.keys() if k not in ("input_ids", "attention_mask")]
            for i, text in enumerate(part):
                # token_type_ids of a single text are all 0: kept only when not (a compact cache).
                extra = {k: array("i", enc[k][i]) for k in extra_keys if any(enc[k][i])}
                cache[text] = (array("i", enc["input_ids"][i]), extra)
            self._extra_keys = tuple(extra_keys)
        return cache

    def _pad(self, items: list[tuple[array, dict[str, array]]]) -> dict[str, torch.Tensor]:
        """What tokenizer(texts, padding=True, ...) returns, built from cached ids (same keys, values, side)."""
        longest = max(len(ids) for ids, _ in items)
        multiple = self.pad_to_multiple_of
        if multiple:
            longest = -(-longest // multiple) * multiple
        tok = self.tokenizer
        left = getattr(tok, "padding_side", "right") == "left"
        n = len(items)
        out = {"input_ids": torch.full((n, longest), tok.pad_token_id, dtype=torch.long)}
        for key in self._extra_keys:
            pad = getattr(tok, "pad_token_type_id", 0) if key == "token_type_ids" else 0
            out[key] = torch.full((n, longest), pad, dtype=torch.long)
        mask = torch.zeros((n, longest), dtype=torch.long)
        for i, (ids, extra) in enumerate(items):
            span = slice(longest - len(ids), longest) if left else slice(0, len(ids))
            out["input_ids"][i, span] = torch.frombuffer(ids, dtype=torch.int32) if ids else 0
            mask[i, span] = 1
            for key in self._extra_keys:
                out[key][i, span] = torch.frombuffer(extra[key], dtype=torch.int32) if key in extra else 0
        out["attention_mask"] = mask
        return out

    def row_lengths(self, rows: Sequence[Pair]) -> list[int]:
        """A length key per row for length-grouped batches: its longest candidate's tokens, then its anchor's."""
        self.enable_token_cache()
        q, d = getattr(self, "query_prompt", ""), getattr(self, "document_prompt", "")
        texts = [q + r.anchor for r in rows]
        texts += [d + t for r in rows for t in [r.positive, *r.hard_negatives[: self.max_hard_negatives]]]
        cache = self._cached(texts)
        keys = []
        for r in rows:
            longest = max(len(cache[d + t][0]) for t in [r.positive, *r.hard_negatives[: self.max_hard_negatives]])
            keys.append(longest * (self.max_length + 1) + len(cache[q + r.anchor][0]))
        return keys

    def row_terms(self, rows: Sequence[Pair]) -> list[RowTerms]:
        """Per row, the TF-IDF weights of the tokens of its anchor and positive (special tokens left out), for
        batches of similar rows (EndlessBatchSampler's terms). Uses the token cache: no extra tokenising later."""
        self.enable_token_cache()
        q, d = getattr(self, "query_prompt", ""), getattr(self, "document_prompt", "")
        cache = self._cached([q + r.anchor for r in rows] + [d + r.positive for r in rows])
        special = set(getattr(self.tokenizer, "all_special_ids", []) or [])
        counts = []
        df: dict[int, int] = {}
        for r in rows:
            tf: dict[int, int] = {}
            for t in (*cache[q + r.anchor][0], *cache[d + r.positive][0]):
                if t not in special:
                    tf[t] = tf.get(t, 0) + 1
            counts.append(tf)
            for t in tf:
                df[t] = df.get(t, 0) + 1
        n = len(rows)
        out = []
        for tf in counts:
            ids = array("i", tf)
            # A token in every row says nothing about which rows are alike; +1 keeps a weight for the rest.
            weights = array("f", (c * math.log((n + 1) / (df[t] + 1)) for t, c in tf.items()))
            out.append((ids, weights))
        return out

    def __call__(self, rows: Sequence[Pair]) -> dict[str, Any]:
        ids: dict[str, int] = {}

        def text_id(text: str) -> int:
            # Texts equal under fold() are one text for the mask. A hash, not a count: under torchrun the ids of
            # every rank's batch are compared with each other (cross-device negatives).
            key = fold(text)
            if key not in ids:
                ids[key] = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little", signed=True)
            return ids[key]

        anchors = [r.anchor for r in rows]
        positives = [r.positive for r in rows]
        negatives = [n for r in rows for n in r.hard_negatives[: self.max_hard_negatives]]
        candidates = positives + negatives
        return {
            "anchor": self._tokenize([self.query_prompt + t for t in anchors]),
            "candidates": self._tokenize([self.document_prompt + t for t in candidates]),
            "anchor_ids": torch.tensor([text_id(t) for t in anchors]),
            "positive_ids": torch.tensor([text_id(t) for t in positives]),
            "candidate_ids": torch.tensor([text_id(t) for t in candidates]),
            "candidate_rows": torch.tensor(list(range(len(rows))) + [-1] * len(negatives)),
            "size": len(rows),
        }


def make_loader(source: Sequence[Pair] | str | os.PathLike, collator: PairCollator, *, batch_size: int, seed: int,
                shuffle: bool = True, start_batch: int = 0, num_workers: int = 0, pin_memory: bool = False,
                shuffle_buffer: int = 10000, skip_invalid: bool = False, group_by_length: bool = False,
                group_window: int = GROUP_WINDOW_BATCHES, min_last: int = 2, similar_batches: bool = False
                ) -> DataLoader:
    """An endless DataLoader of collated batches from batch `start_batch` on (in memory: a list; stream: a path).

    In memory, each text is tokenised once (the collator's token cache) and group_by_length makes batches of
    similar length and similar_batches batches of rows that share rare words (see EndlessBatchSampler); a streamed
    file is tokenised batch by batch and not grouped, so its
    memory stays flat.
    """
    # A private generator: creating the iterator must not draw from the global RNG that dropout uses, or a
    # resumed run (whose RNG state is restored) would drift from an uninterrupted one.
    common = {"collate_fn": collator, "num_workers": num_workers, "pin_memory": pin_memory,
              "persistent_workers": False, "generator": torch.Generator().manual_seed(seed)}
    if isinstance(source, (str, os.PathLike)):
        dataset = StreamedBatches(source, batch_size, seed, shuffle=shuffle, shuffle_buffer=shuffle_buffer,
                                  skip_invalid=skip_invalid, start_batch=start_batch, min_last=min_last)
        return DataLoader(dataset, batch_size=None, **common)
    rows = list(source)
    lengths = terms = None
    if hasattr(collator, "enable_token_cache"):
        collator.enable_token_cache()
        if similar_batches and shuffle:
            terms = collator.row_terms(rows)  # tokenises every text once, up front
        if group_by_length and shuffle:
            lengths = collator.row_lengths(rows)
    sampler = EndlessBatchSampler(len(rows), batch_size, seed, shuffle, start_batch, lengths, group_window, min_last,
                                  terms)
    return DataLoader(rows, batch_sampler=sampler, **common)
