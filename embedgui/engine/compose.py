"""Turn a CSV/TSV/JSONL glossary or pairs file into pairs.jsonl rows {anchor, positive, hard_negatives}.

read_table() decodes and parses the file (encoding, delimiter and header detected), detect_columns() picks the
anchor/positive/negatives columns, compose() builds, deduplicates, splits, mines hard negatives and writes the
files, and returns a ComposeReport. mine_hard_negatives() is the pure miner: BM25 over character bigrams by
default (Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond", 2009), or an embedding
model. Candidates that are likely false negatives are never returned (see _FalseNegativeFilter).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import os
import re
import statistics
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data import PairsError, split_pairs

# Two candidates are near-duplicates when the Jaccard similarity of their character-bigram sets reaches this.
# Distinct definitions from one domain score about 0.1-0.4; light edits (a word changed, punctuation, plural)
# of one text score above 0.7.
NEAR_DUPLICATE = 0.7
# Token estimate when no tokenizer is given: WordPiece/BPE vocabularies average about 4 characters of English
# per token, and split Hangul/CJK into about 1.5 characters per token; +2 for [CLS]/[SEP] (or <s>/</s>).
CHARS_PER_TOKEN_ASCII = 4.0
CHARS_PER_TOKEN_OTHER = 1.5
SPECIAL_TOKENS = 2
DEFAULT_MAX_LENGTH = 128  # the trainer's default train.max_length
BM25_K1 = 1.2
BM25_B = 0.75
SNIFF_CHARS = 65536
DELIMITERS = ",\t;|"
DELIMITER_NAMES = {"comma": ",", "tab": "\t", "\\t": "\t", "semicolon": ";", "pipe": "|"}
ENCODING_ALIASES = {"euc-kr": "cp949", "euckr": "cp949", "euc_kr": "cp949", "ks_c_5601-1987": "cp949",
                    "ks_c_5601": "cp949", "uhc": "cp949", "ms949": "cp949", "utf8": "utf-8", "utf-8-bom": "utf-8-sig"}
JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
TSV_SUFFIXES = {".tsv", ".tab"}
SHOW_LINES = 5  # how many line numbers per skip reason the report prints

# Header names per role, most specific first; compared after _header_key() (case, spaces, _ and - ignored).
ANCHOR_NAMES = (
    "anchor", "query", "question", "term", "word", "keyword", "headword", "title", "entry", "concept", "name", "q",
    "sentence1", "text1", "앵커", "질문", "질의", "쿼리", "검색어", "용어", "용어명", "단어", "표제어", "키워드",
    "제목", "개념", "이름",
)
POSITIVE_NAMES = (
    "positive", "pos", "document", "doc", "passage", "answer", "definition", "description", "meaning",
    "explanation", "gloss", "content", "body", "text", "a", "sentence2", "text2", "정답", "문서", "본문", "답변",
    "답", "정의", "설명", "의미", "뜻", "해설", "내용", "텍스트",
)
NEGATIVE_NAMES = (
    "hard_negatives", "hard_negative", "negatives", "negative", "neg", "negs", "하드네거티브", "네거티브", "오답",
)

SKIP_EMPTY_ANCHOR = "empty anchor"
SKIP_EMPTY_POSITIVE = "empty positive"
SKIP_SAME_TEXT = "anchor and positive are the same text"
SKIP_NOT_TEXT = "anchor or positive is not text"

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total)


class ComposeError(ValueError):
    """A problem with the user's input or options; the message names the file, line and what to do."""


@dataclass
class Table:
    """A parsed input file: column names and one row per record, cells aligned with the columns."""

    path: str
    format: str  # "csv" (any delimiter) or "jsonl"
    encoding: str
    delimiter: str | None  # None for JSONL
    has_header: bool
    columns: list[str]
    rows: list[list[Any]]  # str cells for CSV; JSON values (None where a key is missing) for JSONL
    line_numbers: list[int]  # 1-based line where each row starts

    @property
    def name(self) -> str:
        return Path(self.path).name


@dataclass
class ColumnChoice:
    """Which columns hold the anchor, the positive and (optionally) given hard negatives, and how they were found."""

    anchor: str
    positive: str
    negatives: str | None = None
    how: str = ""


@dataclass
class Pair:
    anchor: str
    positive: str
    hard_negatives: list[str] = field(default_factory=list)
    line: int = 0  # input line it came from

    def to_json(self) -> dict[str, Any]:
        return {"anchor": self.anchor, "positive": self.positive, "hard_negatives": list(self.hard_negatives)}


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


# ---------------------------------------------------------------------------------------------------- reading


def read_table(
    path: str | os.PathLike,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
    column_hints: Iterable[str] = (),
) -> Table:
    """Read a CSV, TSV or JSONL file, detecting its encoding, delimiter and header row unless told."""
    path = Path(path)
    name = path.name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ComposeError(f"{path}: no such file; check the --input path.") from None
    except IsADirectoryError:
        raise ComposeError(f"{path}: is a folder; give the CSV, TSV or JSONL file inside it.") from None
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ComposeError(f"{name}: is an Excel workbook or other binary file; save it as CSV (UTF-8) first.")
    text, used_encoding = _decode(data, name, encoding)
    if "\x00" in text:
        raise ComposeError(f"{name}: contains NUL characters, so it is not a text file; save it as CSV (UTF-8).")
    first = text.lstrip()[:1]
    suffix = path.suffix.lower()
    if delimiter is None and (suffix in JSONL_SUFFIXES or (suffix not in {".csv", *TSV_SUFFIXES} and first == "{")):
        if first == "[":
            raise ComposeError(f"{name}: is a JSON array; compose reads JSON Lines (one object per line), e.g. "
                               "convert with: jq -c '.[]' file.json > file.jsonl")
        return _read_jsonl(text, str(path), used_encoding)
    if not text.strip():
        raise ComposeError(f"{name}: is empty; it needs rows of anchor and positive text.")
    delim = _delimiter_arg(delimiter, name) if delimiter is not None else _detect_delimiter(text, suffix)
    return _read_delimited(text, str(path), used_encoding, delim, header, column_hints)


def _decode(data: bytes, name: str, encoding: str | None) -> tuple[str, str]:
    if encoding:
        enc = normalize_encoding(encoding)
        try:
            codecs.lookup(enc)
        except LookupError:
            raise ComposeError(f"{name}: unknown encoding {encoding!r}; use utf-8 or cp949 (euc-kr).") from None
        if enc == "utf-8" and data.startswith(codecs.BOM_UTF8):
            enc = "utf-8-sig"
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            raise ComposeError(f"{name} line {line}: bytes are not valid {encoding}; pass the file's real encoding "
                               "with --encoding (utf-8 or cp949) or leave it out to detect it.") from None
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="strict"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise ComposeError(f"{name}: starts like UTF-16 but does not decode; re-save it as UTF-8.") from None
    # Strict UTF-8 first: real CP949 text is practically never valid UTF-8, so the order is safe. CP949 is a
    # superset of EUC-KR, which Korean Excel still writes by default.
    for enc in ("utf-8", "cp949"):
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or best.encoding is None:
        raise ComposeError(f"{name}: cannot tell its text encoding; re-save it as UTF-8 or pass --encoding.")
    return str(best), normalize_encoding(best.encoding)


def normalize_encoding(name: str) -> str:
    """Canonical codec name; EUC-KR and its aliases become cp949, its superset."""
    key = name.strip().lower()
    key = ENCODING_ALIASES.get(key, key)
    try:
        canonical = codecs.lookup(key).name
    except LookupError:
        return key
    return "cp949" if canonical == "euc_kr" else canonical


def _delimiter_arg(value: str, name: str) -> str:
    delim = DELIMITER_NAMES.get(value.lower(), value)
    if len(delim) != 1:
        raise ComposeError(f"{name}: delimiter {value!r} must be one character (or tab, comma, semicolon, pipe).")
    return delim


def _detect_delimiter(text: str, suffix: str) -> str:
    """The extension's delimiter when it parses consistently into 2+ columns, else csv.Sniffer's, else the best."""
    sample = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rfind("\n") + 1]  # a cut-off last line would skew the counts
    preferred = "\t" if suffix in TSV_SUFFIXES else ","
    scores = {d: _consistency(sample, d) for d in DELIMITERS}
    if scores[preferred][1] >= 2 and scores[preferred][0] >= 0.9:
        return preferred
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
        if scores[sniffed][1] >= 2:
            return sniffed
    except csv.Error:
        pass
    ranked = sorted(DELIMITERS, key=lambda d: (scores[d][1] >= 2, scores[d][0], d == preferred), reverse=True)
    return ranked[0] if scores[ranked[0]][1] >= 2 else preferred


def _consistency(sample: str, delimiter: str) -> tuple[float, int]:
    """(share of records with the most common width, that width) when the sample is parsed with delimiter."""
    try:
        widths = [len(_trim(r)) for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter) if any(r)]
    except csv.Error:
        return 0.0, 0
    if not widths:
        return 0.0, 0
    width, count = Counter(widths).most_common(1)[0]
    return count / len(widths), width


def _trim(row: list[str]) -> list[str]:
    """A row without trailing empty cells (spreadsheets pad rows with them)."""
    end = len(row)
    while end and not row[end - 1].strip():
        end -= 1
    return row[:end]


def _read_delimited(text: str, path: str, encoding: str, delimiter: str, header: bool | None,
                    hints: Iterable[str]) -> Table:
    name = Path(path).name
    # Definitions can be long; the csv module's default 128 KiB field limit would reject a legitimate file.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records: list[tuple[int, list[str]]] = []
    previous = 0
    try:
        for row in reader:
            start, previous = previous + 1, reader.line_num
            if any(cell.strip() for cell in row):
                records.append((start, row))
    except csv.Error as e:
        raise ComposeError(f"{name} line {reader.line_num}: cannot be parsed as {_delim_name(delimiter)} ({e}); "
                           "check its quotes.") from None
    if not records:
        raise ComposeError(f"{name}: has no rows; it needs rows of anchor and positive text.")
    first = [cell.strip() for cell in records[0][1]]
    has_header = header if header is not None else _looks_like_header(first, records[1:], hints)
    if has_header:
        columns = _trim(first)
        if len(columns) < 2:
            raise ComposeError(f"{name} line {records[0][0]}: the header has {len(columns)} column "
                               f"({_delim_name(delimiter)}); compose needs two (anchor and positive): pass "
                               "--delimiter if the file uses another separator.")
        columns = [c or f"column {i + 1}" for i, c in enumerate(columns)]
        body = records[1:]
    else:
        body = records
        width = max(len(_trim(r)) for _, r in records[:100])
        if width < 2:
            raise ComposeError(f"{name} line {records[0][0]}: has 1 column ({_delim_name(delimiter)}); compose needs "
                               "two (anchor and positive): pass --delimiter if the file uses another separator.")
        columns = [f"column {i + 1}" for i in range(width)]
    rows: list[list[Any]] = []
    lines: list[int] = []
    width = len(columns)
    for line, row in body:
        if len(row) < 2:
            raise ComposeError(f"{name} line {line}: has 1 column, expected at least 2 ({_delim_name(delimiter)}); "
                               "add the missing cell or remove the line.")
        trimmed = _trim(row)
        if len(trimmed) > width:
            what = "the header has" if has_header else "the first rows have"
            raise ComposeError(f"{name} line {line}: has {len(trimmed)} columns but {what} {width}; put quotes "
                               f"around cells that contain {delimiter!r}.")
        rows.append(row[:width] + [""] * (width - len(row)))
        lines.append(line)
    return Table(path, "csv", encoding, delimiter, has_header, columns, rows, lines)


def _delim_name(delimiter: str) -> str:
    return {"\t": "tab-separated", ",": "comma-separated"}.get(delimiter, f"separated by {delimiter!r}")


def _looks_like_header(first: list[str], rest: list[tuple[int, list[str]]], hints: Iterable[str]) -> bool:
    """Whether the first record is a header: short distinct labels that are known column names, or much shorter
    than the text below them."""
    cells = _trim(first)
    if len(cells) < 2 or any(not c or len(c) > 40 for c in cells) or len({c.lower() for c in cells}) < len(cells):
        return False
    if any(c[-1] in ".?!" for c in cells):  # sentences are data, even "Query,A request for information."
        return False
    known = {_header_key(n) for n in (*ANCHOR_NAMES, *POSITIVE_NAMES, *NEGATIVE_NAMES, *hints)}
    if any(_header_key(c) in known for c in cells):
        return True
    if len(rest) < 3:
        return False
    # A label such as "Meaning" above definitions: the header cell is a small fraction of the column's typical
    # length. Data rows rarely look like that in every way at once.
    for i, cell in enumerate(cells):
        lengths = [len(r[i].strip()) for _, r in rest[:200] if i < len(r) and r[i].strip()]
        if lengths and statistics.median(lengths) >= 20 and len(cell) <= statistics.median(lengths) / 3:
            return True
    return False


def _header_key(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", unicodedata.normalize("NFKC", str(name)).casefold())


def _read_jsonl(text: str, path: str, encoding: str) -> Table:
    name = Path(path).name
    columns: dict[str, None] = {}
    objects: list[dict[str, Any]] = []
    lines: list[int] = []
    # Split on \n only: str.splitlines() would also split on U+2028 inside JSON strings, which json.dumps leaves
    # unescaped with ensure_ascii=False.
    for number, line in enumerate(text.split("\n"), 1):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ComposeError(f"{name} line {number}, column {e.colno}: not valid JSON ({e.msg}); each line must be "
                               'one JSON object such as {"anchor": "...", "positive": "..."}.') from None
        if not isinstance(obj, dict):
            raise ComposeError(f"{name} line {number}: is a JSON {type(obj).__name__}, expected an object such as "
                               '{"anchor": "...", "positive": "..."}.')
        columns.update(dict.fromkeys(obj))
        objects.append(obj)
        lines.append(number)
    if not objects:
        raise ComposeError(f"{name}: has no JSON objects; it needs one object with anchor and positive per line.")
    names = list(columns)
    rows = [[obj.get(c) for c in names] for obj in objects]
    return Table(path, "jsonl", encoding, None, True, names, rows, lines)


# --------------------------------------------------------------------------------------------------- columns


def detect_columns(
    table: Table, *, anchor: str | None = None, positive: str | None = None, negatives: str | None = None
) -> ColumnChoice:
    """Pick the anchor, positive and negatives columns from their names; explicit names (or 1-based numbers) win."""
    used: set[str] = set()
    explicit = {}
    for role, value in (("anchor", anchor), ("positive", positive), ("negatives", negatives)):
        if value is not None and str(value).strip():
            explicit[role] = _find_column(table, str(value), role)
            used.add(explicit[role])
    if len(set(explicit.values())) < len(explicit):
        raise ComposeError(f"{table.name}: the same column is named for two roles ({explicit}); pick different "
                           "columns for anchor, positive and negatives.")
    found: dict[str, str] = {}
    how = "explicit" if explicit else ""
    if table.has_header:
        for role, names in (("anchor", ANCHOR_NAMES), ("positive", POSITIVE_NAMES), ("negatives", NEGATIVE_NAMES)):
            if role in explicit:
                continue
            match = _match_name(table.columns, names, used)
            if match is not None:
                found[role] = match
                used.add(match)
        if found:
            how = "explicit + header names" if explicit else "header names"
    choice = {**found, **explicit}
    rest = [c for c in table.columns if c not in used]
    for role in ("anchor", "positive"):
        if role not in choice:
            if not rest:
                raise ComposeError(f"{table.name}: no column left for the {role}; columns are "
                                   f"{', '.join(table.columns)}; pass --{role}-column.")
            choice[role] = rest.pop(0)
            reason = "header-less file: first two columns" if not table.has_header else "first unnamed columns"
            how = f"{how} + {reason}" if how else reason
    return ColumnChoice(choice["anchor"], choice["positive"], choice.get("negatives"), how)


def _match_name(columns: list[str], names: Sequence[str], used: set[str]) -> str | None:
    keys = {}
    for column in columns:
        keys.setdefault(_header_key(column), column)
    for name in names:
        column = keys.get(_header_key(name))
        if column is not None and column not in used:
            return column
    return None


def _find_column(table: Table, value: str, role: str) -> str:
    if value in table.columns:
        return value
    for column in table.columns:
        if _header_key(column) == _header_key(value):
            return column
    number = value.strip().removeprefix("column").strip()
    if number.isdigit() and 1 <= int(number) <= len(table.columns):
        return table.columns[int(number) - 1]
    raise ComposeError(f"{table.name}: has no column {value!r} for --{role}-column; its columns are "
                       f"{', '.join(map(repr, table.columns))} (a name or a 1-based number).")


# ----------------------------------------------------------------------------------------------------- pairs


def build_pairs(
    table: Table, columns: ColumnChoice, *, dedupe: bool = True
) -> tuple[list[Pair], list[SkippedRow], int]:
    """Pairs from a table's rows, the rows skipped and why, and how many duplicate pairs were dropped.

    A JSONL positive that is a list gives one pair per item. Duplicates are pairs equal after whitespace
    normalisation; the first is kept and the given negatives of the others are added to it.
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
            if fold(anchor) == fold(positive):
                skipped.append(SkippedRow(line, SKIP_SAME_TEXT))
                continue
            own = fold(positive)
            negs = list(dict.fromkeys(n for n in negatives if fold(n) != own))
            key = (" ".join(anchor.split()), " ".join(positive.split()))
            if dedupe and key in seen:
                duplicates += 1
                kept = seen[key]
                kept.hard_negatives = list(dict.fromkeys([*kept.hard_negatives, *negs]))
                continue
            pair = Pair(anchor, positive, negs, line)
            seen[key] = pair
            pairs.append(pair)
    return pairs, skipped, duplicates


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


# ------------------------------------------------------------------------------------------------ text helpers


_CJK_CHARS = "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK = re.compile(f"[{_CJK_CHARS}]")
_CJK_SPLIT = re.compile(f"[{_CJK_CHARS}]+|[^{_CJK_CHARS}]+")


def fold(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed: the form texts are compared in."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _compact(text: str) -> str:
    return "".join(ch for ch in fold(text) if ch.isalnum())


def tokenize(text: str, mode: str = "auto") -> list[str]:
    """BM25 tokens of NFKC, case-folded text: "word" (\\w+ runs), "bigram" (each word's overlapping character
    bigrams, 1-letter words kept) or "auto" (bigrams for Hangul, Han and kana runs, words elsewhere).

    "auto" is the default, as in Lucene's CJKBigramFilter: Korean attaches particles and endings to words
    (임베딩은, 임베딩을) and spaces compound nouns loosely (머신러닝, 머신 러닝), which bigrams match without a
    morphological analyser; English words are already delimited, and its bigrams ("st", "on") match unrelated
    words, which ranks noise above related definitions.
    """
    words = re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold())
    if mode == "word":
        return words
    if mode not in ("auto", "bigram"):
        raise ValueError(f"tokens must be 'auto', 'bigram' or 'word', not {mode!r}")
    out: list[str] = []
    for w in words:
        for piece in _CJK_SPLIT.findall(w) if mode == "auto" else [w]:
            if mode == "auto" and not _CJK.match(piece):
                out.append(piece)
            else:
                out.extend([piece] if len(piece) == 1 else [piece[i : i + 2] for i in range(len(piece) - 1)])
    return out


def mentions(anchor: str, text: str) -> bool:
    """Whether text mentions the anchor term (case-insensitive, NFKC)."""
    pattern = _mention_pattern(anchor)
    return bool(pattern and pattern.search(fold(text)))


def _mention_pattern(anchor: str) -> re.Pattern[str] | None:
    """Substring match; at an ASCII letter/digit edge the neighbour must not be one, so "AI" does not match
    "maintain" nor "token" "tokenizer" (a fine hard negative), while a plural -s/-es still counts. Hangul has no
    such edge: particles attach directly (임베딩은), so any occurrence counts."""
    a = fold(anchor)
    if not a:
        return None
    edge = re.compile(r"[0-9a-z]")
    left = r"(?<![0-9a-z])" if edge.match(a[0]) else ""
    right = r"(?:e?s)?(?![0-9a-z])" if edge.match(a[-1]) else ""
    return re.compile(left + re.escape(a) + right)


# ---------------------------------------------------------------------------------------------------- mining


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


def _ranked(scores: np.ndarray, positive_only: bool, first: int) -> Iterator[int]:
    """Indices by descending score, ties by index; sorts only the top `first` unless more are asked for."""
    idx = np.flatnonzero(scores > 0) if positive_only else np.arange(len(scores))
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
        self.pool_compact = [_compact(t) for t in pool]
        self.pool_grams = [frozenset(tokenize(t, "bigram")) for t in pool]
        self.owners = owners
        self.threshold = threshold

    def for_row(self, anchor: str, positive: str) -> Callable[[int], bool]:
        key, compact, grams = fold(anchor), _compact(positive), frozenset(tokenize(positive, "bigram"))
        pattern = _mention_pattern(anchor)

        def rejects(j: int) -> bool:
            c = self.pool_compact[j]
            if key in self.owners[j] or not c or c in compact or compact in c:
                return True
            g = self.pool_grams[j]
            if g and grams and len(g & grams) / len(g | grams) >= self.threshold:
                return True
            return bool(pattern and pattern.search(self.pool_fold[j]))

        return rejects

    def similar(self, i: int, j: int) -> bool:
        """Whether pool items i and j are near-duplicates of each other."""
        a, b = self.pool_grams[i], self.pool_grams[j]
        same = self.pool_compact[i] == self.pool_compact[j]
        return same or bool(a and b and len(a & b) / len(a | b) >= self.threshold)


def mine_hard_negatives(
    anchors: Sequence[str],
    positives: Sequence[str],
    k: int,
    *,
    method: str = "bm25",
    embedder: Any = None,
    tokens: str = "auto",
    near_duplicate: float = NEAR_DUPLICATE,
    batch_size: int = 64,
    on_progress: ProgressFn | None = None,
) -> list[list[str]]:
    """Up to k hard negatives per (anchor, positive), drawn from the other rows' positives; deterministic.

    bm25: the query is the anchor and its positive together (a one-word glossary term alone leaves BM25 little
    to match but itself, and texts naming the term are rejected anyway), over tokenize(text, tokens).
    model: candidates ranked by cosine similarity to the anchor under embedder.encode(texts) (L2-normalised
    vectors), i.e. the texts the model currently confuses with the right answer.
    Rows get fewer than k when too few candidates pass the false-negative filter (or, for bm25, share a token).
    """
    if len(anchors) != len(positives):
        raise ValueError(f"{len(anchors)} anchors but {len(positives)} positives")
    if method not in ("bm25", "model"):
        raise ValueError(f"method must be 'bm25' or 'model', not {method!r}")
    if k <= 0 or not anchors:
        return [[] for _ in anchors]
    pool = list(dict.fromkeys(p.strip() for p in positives))
    where = {text: j for j, text in enumerate(pool)}
    owners: list[set[str]] = [set() for _ in pool]
    for a, p in zip(anchors, positives):
        owners[where[p.strip()]].add(fold(a))
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
        a_vec = _as_numpy(embedder.encode(unique_anchors, batch_size=batch_size))
        p_vec = _as_numpy(embedder.encode(pool, batch_size=batch_size))
        a_row = {a: i for i, a in enumerate(unique_anchors)}

        def score_rows(rows: range) -> np.ndarray:
            return a_vec[[a_row[anchors[i]] for i in rows]] @ p_vec.T

    out: list[list[str]] = []
    step = max(1, min(256, 2_000_000 // len(pool)))  # rows scored at once; bounds the block to ~16 MB
    for start in range(0, n, step):
        rows = range(start, min(start + step, n))
        block = score_rows(rows)
        for offset, i in enumerate(rows):
            rejects = reject.for_row(anchors[i], positives[i])
            picks: list[int] = []
            for j in _ranked(block[offset], method == "bm25", first):
                # Near-copies of a pick (two spellings of one definition) would spend k on one negative.
                if not rejects(j) and not any(reject.similar(j, q) for q in picks):
                    picks.append(j)
                    if len(picks) == k:
                        break
            out.append([pool[j] for j in picks])
        if on_progress:
            on_progress("mining", rows.stop, n)
    return out


def _as_numpy(vectors: Any) -> np.ndarray:
    if hasattr(vectors, "detach"):
        vectors = vectors.detach().cpu().float().numpy()
    return np.asarray(vectors, dtype=np.float32)


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


def _count_tokens(tokenizer: Any, texts: list[str], on_progress: ProgressFn | None) -> list[int]:
    counts: list[int] = []
    for start in range(0, len(texts), 512):
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
) -> ComposeReport:
    """Read input_path, build deduplicated pairs, split, mine hard negatives, write JSONL; return the report.

    With eval_ratio > 0 the split happens before mining and each side mines only from its own positives, so no
    eval text reaches the training file, not even as a negative.
    """
    o = options or ComposeOptions()
    _check_options(o)
    started = time.perf_counter()
    input_path, output_path = Path(input_path), Path(output_path)
    eval_path = None
    if o.eval_ratio > 0:
        eval_path = Path(o.eval_output) if o.eval_output else output_path.with_name(f"{output_path.stem}.eval.jsonl")
    for target in (output_path, eval_path):
        if target is not None and input_path.exists() and target.exists() and target.samefile(input_path):
            raise ComposeError(f"{target}: is the input file; choose another output path.")
    if eval_path is not None and eval_path.resolve() == output_path.resolve():
        raise ComposeError(f"{eval_path}: is also the output file; choose another --eval-output.")
    if on_progress:
        on_progress("reading", 0, 1)
    hints = [c for c in (o.anchor_column, o.positive_column, o.negatives_column) if c]
    table = read_table(input_path, encoding=o.encoding, delimiter=o.delimiter, header=o.header, column_hints=hints)
    choice = detect_columns(table, anchor=o.anchor_column, positive=o.positive_column, negatives=o.negatives_column)
    pairs, skipped, duplicates = build_pairs(table, choice, dedupe=o.dedupe)
    if on_progress:
        on_progress("reading", 1, 1)
    if not pairs:
        reasons = ", ".join(f"{r} ({len(v)})" for r, v in _group(skipped).items()) or "no rows"
        raise ComposeError(f"{table.name}: no usable pairs in columns {choice.anchor!r} and {choice.positive!r} "
                           f"(skipped: {reasons}); check the columns with --anchor-column/--positive-column.")
    try:
        train, held = split_pairs(pairs, o.eval_ratio, o.seed)
    except PairsError as e:
        raise ComposeError(f"--eval-ratio: {e}") from None

    embedder = None
    given = sum(len(p.hard_negatives) for p in pairs)
    if o.hard_k > 0:
        if o.miner == "model":
            embedder = _load_embedder(o.model_id or "", o.device)
        for side in (train, held):
            mined = mine_hard_negatives([p.anchor for p in side], [p.positive for p in side], o.hard_k,
                                        method=o.miner, embedder=embedder, tokens=o.tokens,
                                        near_duplicate=o.near_duplicate, batch_size=o.batch_size,
                                        on_progress=on_progress)
            for pair, extra in zip(side, mined):
                have = {fold(n) for n in pair.hard_negatives}
                room = o.hard_k - len(pair.hard_negatives)
                pair.hard_negatives += [m for m in extra if fold(m) not in have][: max(0, room)]
    total_negs = sum(len(p.hard_negatives) for p in pairs)

    anchors = [p.anchor for p in pairs]
    positives = [p.positive for p in pairs]
    tokenizer = _load_tokenizer(o.tokenizer) if o.tokenizer else getattr(embedder, "tokenizer", None)
    if tokenizer is not None:
        a_tok = _count_tokens(tokenizer, anchors, on_progress)
        p_tok = _count_tokens(tokenizer, positives, on_progress)
        source = f"tokenizer of {o.tokenizer or o.model_id}"
    else:
        a_tok = [estimate_tokens(t) for t in anchors]
        p_tok = [estimate_tokens(t) for t in positives]
        source = (f"estimate ({CHARS_PER_TOKEN_ASCII:g} ASCII or {CHARS_PER_TOKEN_OTHER:g} other characters per "
                  f"token + {SPECIAL_TOKENS}; pass --tokenizer for exact counts)")

    if on_progress:
        on_progress("writing", 0, 1)
    _write_jsonl(output_path, train)
    if eval_path is not None:
        _write_jsonl(eval_path, held)
    if on_progress:
        on_progress("writing", 1, 1)
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


def _group(skipped: Sequence[SkippedRow]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for row in skipped:
        out.setdefault(row.reason, []).append(row.line)
    return out


def _load_embedder(model_id: str, device: str) -> Any:
    from .modeling import ModelLoadError, load_embedder

    try:
        return load_embedder(model_id, device=device)
    except ModelLoadError as e:
        raise ComposeError(str(e)) from e


def _write_jsonl(path: Path, pairs: Iterable[Pair]) -> None:
    """Write via a temporary file so a failed run never leaves half a pairs file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="\n") as f:
        for pair in pairs:
            f.write(json.dumps(pair.to_json(), ensure_ascii=False) + "\n")
    os.replace(tmp, path)
