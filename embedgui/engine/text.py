"""Text keys and tokens: fold() is the one "same text" key of the engine; tokenize() and mentions() serve mining.

fold() decides when two texts are one text everywhere: duplicate pairs in the composer, duplicate masking in
the collator, the anchor groups of the train/eval split. NFKC makes full-width and compatibility forms equal,
casefold() makes case (and German ß/ss) equal, and whitespace runs count as one space.
"""

from __future__ import annotations

import re
import unicodedata

_CJK_CHARS = "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK = re.compile(f"[{_CJK_CHARS}]")
_CJK_SPLIT = re.compile(f"[{_CJK_CHARS}]+|[^{_CJK_CHARS}]+")
_ASCII_EDGE = re.compile(r"[0-9a-z]")


def fold(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed: the form texts are compared in."""
    return " ".join(_nfkc_casefold(text).split())


def compact(text: str) -> str:
    """fold(text) with only its letters and digits: "Token-izer!" and "tokenizer" are equal."""
    return "".join(ch for ch in fold(text) if ch.isalnum())


def _nfkc_casefold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def tokenize(text: str, mode: str = "auto") -> list[str]:
    """BM25 tokens of NFKC, case-folded text: "word" (\\w+ runs), "bigram" (each word's overlapping character
    bigrams, 1-letter words kept) or "auto" (bigrams for Hangul, Han and kana runs, words elsewhere).

    "auto" is the default, as in Lucene's CJKBigramFilter: Korean attaches particles and endings to words
    (임베딩은, 임베딩을) and spaces compound nouns loosely (머신러닝, 머신 러닝), which bigrams match without a
    morphological analyser; English words are already delimited, and its bigrams ("st", "on") match unrelated
    words, which ranks noise above related definitions.
    """
    words = re.findall(r"\w+", _nfkc_casefold(text))
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
    pattern = mention_pattern(anchor)
    return bool(pattern and pattern.search(fold(text)))


def mention_pattern(anchor: str) -> re.Pattern[str] | None:
    """A pattern over fold()ed text that finds the anchor term; None for an empty anchor.

    Substring match; at an ASCII letter/digit edge the neighbour must not be one, so "AI" does not match
    "maintain" nor "token" "tokenizer" (a fine hard negative), while a plural -s/-es still counts. Hangul has no
    such edge: particles attach directly (임베딩은), so any occurrence counts.
    """
    a = fold(anchor)
    if not a:
        return None
    left = r"(?<![0-9a-z])" if _ASCII_EDGE.match(a[0]) else ""
    right = r"(?:e?s)?(?![0-9a-z])" if _ASCII_EDGE.match(a[-1]) else ""
    return re.compile(left + re.escape(a) + right)
