"""Read a CSV, TSV or JSONL file into a Table, detecting its encoding, delimiter and header row unless told.

read_table() parses the file, detect_columns() picks its anchor/positive/negatives columns by name. Used by the
composer (glossaries and pairs files) and by the search index's corpus loader. Errors are TableError: one
sentence naming the file and line and what to do.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import statistics
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SNIFF_CHARS = 65536
DELIMITERS = ",\t;|"
DELIMITER_NAMES = {"comma": ",", "tab": "\t", "\\t": "\t", "semicolon": ";", "pipe": "|"}
# The one table of encoding labels that Python spells differently or that are better read as a superset, as
# browsers do (WHATWG Encoding Standard): Korean Excel's EUC-KR is cp949, Latin-1 is Windows-1252 and so on.
ENCODING_ALIASES = {
    "euc-kr": "cp949", "euc_kr": "cp949", "euckr": "cp949", "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949",
    "ksc5601": "cp949", "ksc_5601": "cp949", "korean": "cp949", "windows-949": "cp949", "x-windows-949": "cp949",
    "ms949": "cp949", "uhc": "cp949",
    "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932", "windows-31j": "cp932",
    "utf8": "utf-8", "utf-8-bom": "utf-8-sig",
}
JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
TSV_SUFFIXES = {".tsv", ".tab"}

# Header names per role, most specific first; compared after header_key() (case, spaces, _ and - ignored). The
# header sniffer treats a first row holding any of them as a header; detect_columns() picks columns by them.
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


class TableError(ValueError):
    """A file that cannot be read as a table; the message names the file, line and what to do."""


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


def header_key(name: str) -> str:
    """A column name as compared: NFKC, case-folded, without spaces, _, - and dots."""
    return re.sub(r"[\s_\-.]+", "", unicodedata.normalize("NFKC", str(name)).casefold())


def codec_name(label: str | None) -> str | None:
    """Python codec name for an encoding label (aliases widened, EUC-KR to cp949), or None when it is unknown."""
    if not label:
        return None
    key = label.strip().lower()
    try:
        canonical = codecs.lookup(ENCODING_ALIASES.get(key, key)).name
    except LookupError:
        return None
    return "cp949" if canonical == "euc_kr" else canonical


def normalize_encoding(name: str) -> str:
    """Canonical codec name; EUC-KR and its aliases become cp949, its superset. Unknown names come back folded."""
    key = name.strip().lower()
    return codec_name(key) or ENCODING_ALIASES.get(key, key)


def read_table(
    path: str | os.PathLike,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
    column_hints: Iterable[str] = (),
    min_columns: int = 2,
) -> Table:
    """Read a CSV, TSV or JSONL file, detecting its encoding, delimiter and header row unless told.

    A delimited file needs min_columns columns: two for the composer (anchor and positive), one for a corpus.
    """
    path = Path(path)
    name = path.name
    text, used_encoding = read_text(path, encoding)
    first = text.lstrip()[:1]
    suffix = path.suffix.lower()
    if delimiter is None and (suffix in JSONL_SUFFIXES or (suffix not in {".csv", *TSV_SUFFIXES} and first == "{")):
        if first == "[":
            raise TableError(f"{name}: is a JSON array; compose reads JSON Lines (one object per line), e.g. "
                             "convert with: jq -c '.[]' file.json > file.jsonl")
        return _read_jsonl(text, str(path), used_encoding)
    if not text.strip():
        raise TableError(f"{name}: is empty; it needs {_rows_needed(min_columns)}.")
    delim = _delimiter_arg(delimiter, name) if delimiter is not None else _detect_delimiter(text, suffix)
    return _read_delimited(text, str(path), used_encoding, delim, header, column_hints, min_columns)


def read_text(path: str | os.PathLike, encoding: str | None = None) -> tuple[str, str]:
    """A text file's contents and the codec that decoded it (given, or detected: BOM, UTF-8, cp949, guess)."""
    path = Path(path)
    name = path.name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TableError(f"{path}: no such file; check the --input path.") from None
    except IsADirectoryError:
        raise TableError(f"{path}: is a folder; give the CSV, TSV or JSONL file inside it.") from None
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise TableError(f"{name}: is an Excel workbook or other binary file; save it as CSV (UTF-8) first.")
    text, used_encoding = _decode(data, name, encoding)
    if "\x00" in text:
        raise TableError(f"{name}: contains NUL characters, so it is not a text file; save it as CSV (UTF-8).")
    return text, used_encoding


def _decode(data: bytes, name: str, encoding: str | None) -> tuple[str, str]:
    if encoding:
        enc = normalize_encoding(encoding)
        try:
            codecs.lookup(enc)
        except LookupError:
            raise TableError(f"{name}: unknown encoding {encoding!r}; use utf-8 or cp949 (euc-kr).") from None
        if enc == "utf-8" and data.startswith(codecs.BOM_UTF8):
            enc = "utf-8-sig"
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            raise TableError(f"{name} line {line}: bytes are not valid {encoding}; pass the file's real encoding "
                             "with --encoding (utf-8 or cp949) or leave it out to detect it.") from None
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="strict"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise TableError(f"{name}: starts like UTF-16 but does not decode; re-save it as UTF-8.") from None
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
        raise TableError(f"{name}: cannot tell its text encoding; re-save it as UTF-8 or pass --encoding.")
    return str(best), normalize_encoding(best.encoding)


def _delimiter_arg(value: str, name: str) -> str:
    delim = DELIMITER_NAMES.get(value.lower(), value)
    if len(delim) != 1:
        raise TableError(f"{name}: delimiter {value!r} must be one character (or tab, comma, semicolon, pipe).")
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
                    hints: Iterable[str], min_columns: int) -> Table:
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
        raise TableError(f"{name} line {reader.line_num}: cannot be parsed as {_delim_name(delimiter)} ({e}); "
                         "check its quotes.") from None
    if not records:
        raise TableError(f"{name}: has no rows; it needs {_rows_needed(min_columns)}.")
    first = [cell.strip() for cell in records[0][1]]
    has_header = header if header is not None else _looks_like_header(first, records[1:], hints)
    if has_header:
        columns = _trim(first)
        if len(columns) < min_columns:
            raise TableError(f"{name} line {records[0][0]}: the header has {len(columns)} column "
                             f"({_delim_name(delimiter)}); compose needs two (anchor and positive): pass "
                             "--delimiter if the file uses another separator.")
        columns = [c or f"column {i + 1}" for i, c in enumerate(columns)]
        body = records[1:]
        if not body:
            raise TableError(f"{name}: has no rows below its header; it needs {_rows_needed(min_columns)}.")
    else:
        body = records
        width = max(len(_trim(r)) for _, r in records[:100])
        if width < min_columns:
            raise TableError(f"{name} line {records[0][0]}: has 1 column ({_delim_name(delimiter)}); compose needs "
                             "two (anchor and positive): pass --delimiter if the file uses another separator.")
        columns = [f"column {i + 1}" for i in range(width)]
    rows: list[list[Any]] = []
    lines: list[int] = []
    width = len(columns)
    for line, row in body:
        if len(row) < min_columns:
            raise TableError(f"{name} line {line}: has 1 column, expected at least 2 ({_delim_name(delimiter)}); "
                             "add the missing cell or remove the line.")
        trimmed = _trim(row)
        if len(trimmed) > width:
            what = "the header has" if has_header else "the first rows have"
            raise TableError(f"{name} line {line}: has {len(trimmed)} columns but {what} {width}; put quotes "
                             f"around cells that contain {delimiter!r}.")
        rows.append(row[:width] + [""] * (width - len(row)))
        lines.append(line)
    return Table(path, "csv", encoding, delimiter, has_header, columns, rows, lines)


def _rows_needed(min_columns: int) -> str:
    return "rows of anchor and positive text" if min_columns >= 2 else "rows of text"


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
    known = {header_key(n) for n in (*ANCHOR_NAMES, *POSITIVE_NAMES, *NEGATIVE_NAMES, *hints)}
    if any(header_key(c) in known for c in cells):
        return True
    if len(rest) < 3:
        return False
    # A label above a column of numbers ("id" over 1, 2, 3), as csv.Sniffer judges it: data rows would be numbers too.
    for i, cell in enumerate(cells):
        below = [r[i].strip() for _, r in rest[:200] if i < len(r) and r[i].strip()]
        if len(below) >= 3 and all(_is_number(v) for v in below) and not _is_number(cell):
            return True
    # A label such as "Meaning" above definitions: the header cell is a small fraction of the column's typical
    # length. Data rows rarely look like that in every way at once.
    for i, cell in enumerate(cells):
        lengths = [len(r[i].strip()) for _, r in rest[:200] if i < len(r) and r[i].strip()]
        if lengths and statistics.median(lengths) >= 20 and len(cell) <= statistics.median(lengths) / 3:
            return True
    return False


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
        return True
    except ValueError:
        return False


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
            raise TableError(f"{name} line {number}, column {e.colno}: not valid JSON ({e.msg}); each line must be "
                             'one JSON object such as {"anchor": "...", "positive": "..."}.') from None
        if not isinstance(obj, dict):
            raise TableError(f"{name} line {number}: is a JSON {type(obj).__name__}, expected an object such as "
                             '{"anchor": "...", "positive": "..."}.')
        columns.update(dict.fromkeys(obj))
        objects.append(obj)
        lines.append(number)
    if not objects:
        raise TableError(f"{name}: has no JSON objects; it needs one object with anchor and positive per line.")
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
        raise TableError(f"{table.name}: the same column is named for two roles ({explicit}); pick different "
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
                raise TableError(f"{table.name}: no column left for the {role}; columns are "
                                 f"{', '.join(table.columns)}; pass --{role}-column.")
            choice[role] = rest.pop(0)
            reason = "header-less file: first two columns" if not table.has_header else "first unnamed columns"
            if reason not in how.split(" + "):
                how = f"{how} + {reason}" if how else reason
    return ColumnChoice(choice["anchor"], choice["positive"], choice.get("negatives"), how)


def _match_name(columns: list[str], names: Sequence[str], used: set[str]) -> str | None:
    keys = {}
    for column in columns:
        keys.setdefault(header_key(column), column)
    for name in names:
        column = keys.get(header_key(name))
        if column is not None and column not in used:
            return column
    return None


def _find_column(table: Table, value: str, role: str) -> str:
    if value in table.columns:
        return value
    for column in table.columns:
        if header_key(column) == header_key(value):
            return column
    number = value.strip().removeprefix("column").strip()
    if number.isdigit() and 1 <= int(number) <= len(table.columns):
        return table.columns[int(number) - 1]
    raise TableError(f"{table.name}: has no column {value!r} for --{role}-column; its columns are "
                     f"{', '.join(map(repr, table.columns))} (a name or a 1-based number).")
