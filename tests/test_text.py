"""Text keys and tokens: fold() (the one "same text" key), tokenize() and mentions()."""

from __future__ import annotations

from embedgui.engine.text import compact, fold, mentions, tokenize


def test_fold_is_the_same_text_key():
    assert fold("  Token\tizer ") == fold("token IZER") == "token izer"
    assert fold("ＧＰＵ") == fold("gpu")  # NFKC: full-width letters are the same text
    assert fold("Straße") == fold("STRASSE")  # casefold, not lower
    assert fold("token izer") != fold("tokenizer")
    assert compact("Token-izer!") == compact("tokenizer")


def test_tokenize_modes():
    assert tokenize("머신러닝은 GPU가") == ["머신", "신러", "러닝", "닝은", "gpu", "가"]
    assert tokenize("Embeddings", "bigram") == ["em", "mb", "be", "ed", "dd", "di", "in", "ng", "gs"]
    assert tokenize("Hello, world", "word") == ["hello", "world"]


def test_mentions():
    assert mentions("GPU", "two gpus") and not mentions("AI", "maintain") and mentions("임베딩", "임베딩은")
