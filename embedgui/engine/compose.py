"""Turn a CSV/TSV/JSONL glossary or pairs file into pairs.jsonl rows {anchor, positive, hard_negatives}.

compose() reads the file (tables.read_table: encoding, delimiter and header detected), picks the anchor,
positive and negatives columns (detect_columns), builds deduplicated pairs (build_pairs), splits them, mines
hard negatives (mining.mine_hard_negatives), writes the files and returns a ComposeReport.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import Pair, PairsError, split_pairs, write_pairs
from .files import SaveError, ensure_writable_file
from .mining import NEAR_DUPLICATE, MiningStopped, ProgressFn, check_stop, mine_hard_negatives
from .tables import ColumnChoice, Table, TableError, detect_columns, read_table
from .text import fold

# Token estimate when no tokenizer is given: WordPiece/BPE vocabularies average about 4 characters of English
# per token, and split Hangul/CJK into about 1.5 characters per token; +2 for [CLS]/[SEP] (or <s>/</s>).
CHARS_PER_TOKEN_ASCII = 4.0
CHARS_PER_TOKEN_OTHER = 1.5
SPECIAL_TOKENS = 2
DEFAULT_MAX_LENGTH = 128  # the trainer's default train.max_length
SHOW_LINES = 5  # how many line numbers per skip reason the report prints

SKIP_EMPTY_ANCHOR = "empty anchor"
SKIP_EMPTY_POSITIVE = "empty positive"
SKIP_SAME_TEXT = "anchor and positive are the same text"
SKIP_NOT_TEXT = "anchor or positive is not text"


class ComposeError(ValueError):
    """A problem with the user's input or options; the message names the file, line and what to do."""


class ComposeStopped(ComposeError):
    """compose() was stopped by its stop event before writing; no output file was changed."""


@dataclass
class SkippedRow:
    line: int
    reason: str


@dataclass
class LengthStats:
    """Length distribution of some texts; p95 is the nearest-rank 95th percentile."""

    count: int = 0
    min: int = 0
    max: int = 0
    mean: float = 0.0
    median: float = 0.0
    p95: int = 0
    over_max: int = 0  # how many are longer than the max_length they were measured against (tokens only)

    @property
    def share_over_max(self) -> float:
        return self.over_max / self.count if self.count else 0.0


@dataclass
class ComposeOptions:
    """Everything compose() can be told; the defaults are the CLI's."""

    encoding: str | None = None
    delimiter: str | None = None
    header: bool | None = None  # None = detect
    anchor_column: str | None = None
    positive_column: str | None = None
    negatives_column: str | None = None
    hard_k: int = 3
    miner: str = "bm25"  # "bm25" or "model"
    tokens: str = "auto"  # BM25 tokens: "auto" (Hangul/CJK bigrams, other words), "bigram" or "word"
    model_id: str | None = None
    # Prompts for --miner model, as training uses them (data.query_prompt / data.document_prompt); None = the
    # model folder's own prompts, if it declares any.
    query_prompt: str | None = None
    document_prompt: str | None = None
    device: str = "auto"
    batch_size: int = 64
    near_duplicate: float = NEAR_DUPLICATE
    dedupe: bool = True
    eval_ratio: float = 0.0
    eval_output: str | None = None  # default: <output stem>.eval.jsonl next to the output
    seed: int = 42
    tokenizer: str | None = None
    max_length: int = DEFAULT_MAX_LENGTH


@dataclass
class ComposeReport:
    """What compose() read, dropped and wrote; lines() renders it for the CLI."""

    input_path: str
    output_path: str
    eval_output_path: str | None
    format: str
    encoding: str
    delimiter: str | None
    has_header: bool
    columns: ColumnChoice
    rows_read: int
    skipped: list[SkippedRow]
    duplicates_removed: int
    train_pairs: int
    eval_pairs: int
    eval_anchors: int
    hard_k: int
    miner: str
    negatives_given: int
    negatives_mined: int
    rows_short_of_k: int
    anchor_chars: LengthStats
    positive_chars: LengthStats
    anchor_tokens: LengthStats
    positive_tokens: LengthStats
    token_source: str
    max_length: int
    seconds: float = 0.0

    @property
    def pairs_written(self) -> int:
        return self.train_pairs + self.eval_pairs

    def skipped_by_reason(self) -> dict[str, list[int]]:
        return _group(self.skipped)

    def lines(self) -> list[str]:
        delim = {None: "", "\t": ", tab-separated", ",": ", comma-separated"}.get(
            self.delimiter, f", separated by {self.delimiter!r}")
        header = "" if self.format != "csv" else ", with header" if self.has_header else ", no header"
        cols = f"anchor={self.columns.anchor!r}, positive={self.columns.positive!r}"
        if self.columns.negatives:
            cols += f", negatives={self.columns.negatives!r}"
        out = [
            f"input: {self.input_path} ({self.format}, {self.encoding}{delim}{header})",
            f"columns: {cols} ({self.columns.how})",
            f"rows read: {self.rows_read}",
            f"skipped: {len(self.skipped)}",
        ]
        for reason, lines in self.skipped_by_reason().items():
            shown = ", ".join(map(str, lines[:SHOW_LINES])) + (", ..." if len(lines) > SHOW_LINES else "")
            out.append(f"  {reason}: {len(lines)} (line{'s' if len(lines) > 1 else ''} {shown})")
        out.append(f"duplicates removed: {self.duplicates_removed}")
        out.append(f"pairs written: {self.pairs_written} -> {self.output_path} ({self.train_pairs})"
                   + (f", {self.eval_output_path} ({self.eval_pairs}, {self.eval_anchors} anchors)"
                      if self.eval_output_path else ""))
        if self.hard_k:
            out.append(f"hard negatives: {self.negatives_given} given, {self.negatives_mined} mined ({self.miner}, "
                       f"k={self.hard_k}); {self.rows_short_of_k} rows have fewer than {self.hard_k}")
        else:
            out.append(f"hard negatives: {self.negatives_given} given, none mined (--hard-k 0)")
        for label, chars, toks in (("anchor", self.anchor_chars, self.anchor_tokens),
                                   ("positive", self.positive_chars, self.positive_tokens)):
            out.append(f"{label} length: chars min {chars.min} / median {chars.median:g} / mean {chars.mean:.1f} / "
                       f"p95 {chars.p95} / max {chars.max}; tokens median {toks.median:g} / p95 {toks.p95} / "
                       f"max {toks.max}; {toks.share_over_max:.1%} over {self.max_length} tokens")
        out.append(f"tokens counted by: {self.token_source}")
        return out


# ----------------------------------------------------------------------------------------------------- pairs


def build_pairs(
    table: Table, columns: ColumnChoice, *, dedupe: bool = True
) -> tuple[list[Pair], list[SkippedRow], int]:
    """Pairs from a table's rows, the rows skipped and why, and how many duplicate pairs were dropped.

    A JSONL positive that is a list gives one pair per item. Duplicates are pairs whose anchor and positive are
    the same text under fold(); the first is kept and the given negatives of the others are added to it.
    """
    ia, ip = table.columns.index(columns.anchor), table.columns.index(columns.positive)
    ineg = table.columns.index(columns.negatives) if columns.negatives else None
    pairs: list[Pair] = []
    skipped: list[SkippedRow] = []
    seen: dict[tuple[str, str], Pair] = {}
    duplicates = 0
    for row, line in zip(table.rows, table.line_numbers):
        anchor = _cell_text(row[ia])
        raw = row[ip]
        negatives = _cell_list(row[ineg], table.format) if ineg is not None else []
        for value in raw if isinstance(raw, list) else [raw]:
            positive = _cell_text(value)
            if anchor is None or positive is None:
                skipped.append(SkippedRow(line, SKIP_NOT_TEXT))
                continue
            if not anchor:
                skipped.append(SkippedRow(line, SKIP_EMPTY_ANCHOR))
                continue
            if not positive:
                skipped.append(SkippedRow(line, SKIP_EMPTY_POSITIVE))
                continue
            key = (fold(anchor), fold(positive))
            if key[0] == key[1]:
                skipped.append(SkippedRow(line, SKIP_SAME_TEXT))
                continue
            negs = _distinct(n for n in negatives if fold(n) != key[1])
            if dedupe and key in seen:
                duplicates += 1
                kept = seen[key]
                kept.hard_negatives = _distinct([*kept.hard_negatives, *negs])
                continue
            pair = Pair(anchor, positive, negs, line)
            seen[key] = pair
            pairs.append(pair)
    return pairs, skipped, duplicates


def _distinct(texts: Iterable[str]) -> list[str]:
    """The texts without repeats under fold(), first spelling kept, in order."""
    first: dict[str, str] = {}
    for t in texts:
        first.setdefault(fold(t), t)
    return list(first.values())


def _cell_text(value: Any) -> str | None:
    """Stripped text of a cell, "" when missing, None when it is not text (a list, object or boolean)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _cell_list(value: Any, fmt: str) -> list[str]:
    """Given negatives: a JSON list, or in CSV a JSON array string or items separated by |."""
    if isinstance(value, str) and fmt == "csv":
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                pass
        if isinstance(value, str):
            value = value.split("|")
    items = value if isinstance(value, list) else [value]
    return [t for t in (_cell_text(v) for v in items) if t]


# ---------------------------------------------------------------------------------------------------- lengths


def estimate_tokens(text: str) -> int:
    """Token count without a tokenizer: ASCII at 4 characters per token, other non-space at 1.5, plus 2 specials."""
    ascii_chars = sum(1 for ch in text if ord(ch) < 128 and not ch.isspace())
    other = sum(1 for ch in text if ord(ch) >= 128 and not ch.isspace())
    return math.ceil(ascii_chars / CHARS_PER_TOKEN_ASCII + other / CHARS_PER_TOKEN_OTHER) + SPECIAL_TOKENS


def length_stats(lengths: Sequence[int], max_length: int | None = None) -> LengthStats:
    """min/max/mean/median/p95 (nearest rank) of lengths, and how many exceed max_length."""
    if not lengths:
        return LengthStats()
    ordered = sorted(lengths)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    over = sum(1 for v in ordered if v > max_length) if max_length is not None else 0
    return LengthStats(len(ordered), ordered[0], ordered[-1], statistics.fmean(ordered),
                       float(statistics.median(ordered)), p95, over)


def _count_tokens(tokenizer: Any, texts: list[str], on_progress: ProgressFn | None,
                  stop: threading.Event | None = None) -> list[int]:
    counts: list[int] = []
    for start in range(0, len(texts), 512):
        check_stop(stop)
        chunk = texts[start : start + 512]
        ids = tokenizer(chunk, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        counts.extend(len(x) for x in ids)
        if on_progress:
            on_progress("counting tokens", len(counts), len(texts))
    return counts


def _load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    from .modeling import resolve_model_path

    try:
        return AutoTokenizer.from_pretrained(resolve_model_path(name))
    except Exception as e:  # transformers raises OSError, ValueError or its own errors for a missing tokenizer
        raise ComposeError(f"--tokenizer {name}: could not load a tokenizer ({type(e).__name__}); give a local model "
                           "folder or a model already in the Hugging Face cache, or leave it out to estimate.") from e


# --------------------------------------------------------------------------------------------------- compose


def _check_options(o: ComposeOptions) -> None:
    problems = []
    if o.hard_k < 0:
        problems.append(f"--hard-k {o.hard_k} must be 0 or more")
    if o.miner not in ("bm25", "model"):
        problems.append(f"--miner {o.miner!r} must be bm25 or model")
    if o.miner == "model" and o.hard_k > 0 and not o.model_id:
        problems.append("--miner model needs --model-id (a model folder or hub id)")
    if o.tokens not in ("auto", "bigram", "word"):
        problems.append(f"--tokens {o.tokens!r} must be auto, bigram or word")
    if not 0 <= o.eval_ratio < 1:
        problems.append(f"--eval-ratio {o.eval_ratio} must be at least 0 and below 1")
    if not 0 < o.near_duplicate <= 1:
        problems.append(f"--near-duplicate {o.near_duplicate} must be above 0 and at most 1")
    if o.max_length < 1:
        problems.append(f"--max-length {o.max_length} must be at least 1")
    if o.batch_size < 1:
        problems.append(f"--batch-size {o.batch_size} must be at least 1")
    if problems:
        raise ComposeError("; ".join(problems) + ".")


def compose(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    options: ComposeOptions | None = None,
    on_progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
) -> ComposeReport:
    """Read input_path, build deduplicated pairs, split, mine hard negatives, write JSONL; return the report.

    With eval_ratio > 0 the split happens before mining and each side mines only from its own positives, so no
    eval text reaches the training file, not even as a negative. When stop is set (the app's Stop button),
    compose ends with ComposeStopped at the next block of work, before anything is written.
    """
    o = options or ComposeOptions()
    _check_options(o)
    started = time.perf_counter()
    input_path, output_path = Path(input_path), Path(output_path)
    eval_path = _eval_path(input_path, output_path, o)
    # before reading or mining anything: a wrong output path should not cost minutes of work
    try:
        ensure_writable_file(output_path, "--output")
        if eval_path is not None:
            ensure_writable_file(eval_path, "--eval-output")
    except SaveError as e:
        raise ComposeError(str(e)) from None
    progress = on_progress or _no_progress
    try:
        check_stop(stop)
        progress("reading", 0, 1)
        table, choice, pairs, skipped, duplicates = _read_pairs(input_path, o)
        progress("reading", 1, 1)
        try:
            train, held = split_pairs(pairs, o.eval_ratio, o.seed, "--eval-ratio", input_path)
        except PairsError as e:
            raise ComposeError(str(e)) from None
        given = sum(len(p.hard_negatives) for p in pairs)
        embedder = _load_embedder(o) if o.hard_k > 0 and o.miner == "model" else None
        for side in (train, held) if o.hard_k > 0 else ():
            _add_mined(side, o, embedder, on_progress, stop)
        anchors = [p.anchor for p in pairs]
        positives = [p.positive for p in pairs]
        tokenizer = _load_tokenizer(o.tokenizer) if o.tokenizer else getattr(embedder, "tokenizer", None)
        if tokenizer is not None:
            a_tok = _count_tokens(tokenizer, anchors, on_progress, stop)
            p_tok = _count_tokens(tokenizer, positives, on_progress, stop)
            source = f"tokenizer of {o.tokenizer or o.model_id}"
        else:
            a_tok = [estimate_tokens(t) for t in anchors]
            p_tok = [estimate_tokens(t) for t in positives]
            source = (f"estimate ({CHARS_PER_TOKEN_ASCII:g} ASCII or {CHARS_PER_TOKEN_OTHER:g} other characters "
                      f"per token + {SPECIAL_TOKENS}; pass --tokenizer for exact counts)")
        check_stop(stop)
    except MiningStopped:
        raise ComposeStopped(f"{input_path.name}: compose was stopped before writing; {output_path} is unchanged."
                             ) from None

    progress("writing", 0, 1)
    write_pairs(output_path, train)
    if eval_path is not None:
        write_pairs(eval_path, held)
    progress("writing", 1, 1)
    total_negs = sum(len(p.hard_negatives) for p in pairs)
    return ComposeReport(
        input_path=str(input_path), output_path=str(output_path),
        eval_output_path=str(eval_path) if eval_path is not None else None,
        format=table.format, encoding=table.encoding, delimiter=table.delimiter, has_header=table.has_header,
        columns=choice, rows_read=len(table.rows), skipped=skipped, duplicates_removed=duplicates,
        train_pairs=len(train), eval_pairs=len(held), eval_anchors=len({fold(p.anchor) for p in held}),
        hard_k=o.hard_k, miner=o.miner, negatives_given=given, negatives_mined=total_negs - given,
        rows_short_of_k=sum(1 for p in pairs if len(p.hard_negatives) < o.hard_k),
        anchor_chars=length_stats([len(t) for t in anchors]), positive_chars=length_stats([len(t) for t in positives]),
        anchor_tokens=length_stats(a_tok, o.max_length), positive_tokens=length_stats(p_tok, o.max_length),
        token_source=source, max_length=o.max_length, seconds=time.perf_counter() - started,
    )


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


def held_out_path(output_path: str | os.PathLike) -> Path:
    """Where compose puts the held-out split of a pairs file by default: X.jsonl -> X.eval.jsonl beside it."""
    output_path = Path(output_path)
    return output_path.with_name(f"{output_path.stem}.eval.jsonl")


def _eval_path(input_path: Path, output_path: Path, o: ComposeOptions) -> Path | None:
    """Where held-out pairs go (None without a split); refuses outputs that would overwrite the input or each other."""
    eval_path = None
    if o.eval_ratio > 0:
        eval_path = Path(o.eval_output) if o.eval_output else held_out_path(output_path)
    for target in (output_path, eval_path):
        if target is not None and input_path.exists() and target.exists() and target.samefile(input_path):
            raise ComposeError(f"{target}: is the input file; choose another output path.")
    if eval_path is not None and eval_path.resolve() == output_path.resolve():
        raise ComposeError(f"{eval_path}: is also the output file; choose another --eval-output.")
    return eval_path


def _read_pairs(input_path: Path, o: ComposeOptions
                ) -> tuple[Table, ColumnChoice, list[Pair], list[SkippedRow], int]:
    """The table, its chosen columns, its pairs, the rows skipped and the duplicates dropped; at least one pair."""
    hints = [c for c in (o.anchor_column, o.positive_column, o.negatives_column) if c]
    try:
        table = read_table(input_path, encoding=o.encoding, delimiter=o.delimiter, header=o.header,
                           column_hints=hints)
        choice = detect_columns(table, anchor=o.anchor_column, positive=o.positive_column,
                                negatives=o.negatives_column)
    except TableError as e:
        raise ComposeError(str(e)) from None
    pairs, skipped, duplicates = build_pairs(table, choice, dedupe=o.dedupe)
    if not pairs:
        reasons = ", ".join(f"{r} ({len(v)})" for r, v in _group(skipped).items()) or "no rows"
        raise ComposeError(f"{table.name}: no usable pairs in columns {choice.anchor!r} and {choice.positive!r} "
                           f"(skipped: {reasons}); check the columns with --anchor-column/--positive-column.")
    return table, choice, pairs, skipped, duplicates


def _add_mined(side: list[Pair], o: ComposeOptions, embedder: Any, on_progress: ProgressFn | None,
               stop: threading.Event | None) -> None:
    """Fill each pair's hard negatives up to hard_k (given ones first) with negatives mined from this side."""
    mined = mine_hard_negatives([p.anchor for p in side], [p.positive for p in side], o.hard_k, method=o.miner,
                                embedder=embedder, tokens=o.tokens, near_duplicate=o.near_duplicate,
                                batch_size=o.batch_size, on_progress=on_progress, stop=stop)
    for pair, extra in zip(side, mined):
        have = {fold(n) for n in pair.hard_negatives}
        room = o.hard_k - len(pair.hard_negatives)
        pair.hard_negatives += [m for m in extra if fold(m) not in have][: max(0, room)]


def _group(skipped: Sequence[SkippedRow]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for row in skipped:
        out.setdefault(row.reason, []).append(row.line)
    return out


def _load_embedder(o: ComposeOptions) -> Any:
    from .modeling import ModelLoadError, load_embedder

    try:
        return load_embedder(o.model_id or "", device=o.device, query_prompt=o.query_prompt,
                             document_prompt=o.document_prompt)
    except ModelLoadError as e:
        raise ComposeError(str(e)) from e
