"""The table reader: encodings, delimiters, header rows, and errors that name the file and line."""

from __future__ import annotations

import pytest
from test_compose import ml_rows, write_csv

from embedgui.engine.tables import TableError, codec_name, normalize_encoding, read_table


def test_semicolon_csv_is_sniffed(tmp_path):
    src = write_csv(tmp_path / "g.csv", [["term", "definition"], ["a", "one; two"], ["b", "three"], ["c", "four"]],
                    delimiter=";")
    assert read_table(src).delimiter == ";"


def test_unknown_header_detected_by_length(tmp_path):
    rows = [["Word", "Meaning"]] + [[a, p] for a, p in ml_rows()[:6]]
    table = read_table(write_csv(tmp_path / "g.csv", rows))
    assert table.has_header and table.columns == ["Word", "Meaning"]
    assert read_table(tmp_path / "g.csv", header=False).rows[0] == ["Word", "Meaning"]


def test_a_label_above_a_column_of_numbers_is_a_header(tmp_path):
    """"id,category,notes" over short rows: the header became a training pair ("id" -> "category")."""
    rows = [["id", "category", "notes"], ["1", "a", "x"], ["2", "b", "y"], ["3", "c", "z"], ["4", "d", "w"]]
    table = read_table(write_csv(tmp_path / "t.csv", rows))
    assert table.has_header and table.columns == ["id", "category", "notes"] and table.rows[0] == ["1", "a", "x"]
    numbers = [["1", "2"], ["3", "4"], ["5", "6"], ["7", "8"]]  # numbers on every row: no header
    assert not read_table(write_csv(tmp_path / "n.csv", numbers)).has_header


def test_one_alias_table_for_encodings():
    # Korean Excel's EUC-KR (under any of its labels) is read as CP949, its superset; browsers widen Latin-1.
    assert {normalize_encoding(n) for n in ("EUC-KR", "euc_kr", "ks_c_5601-1987", "windows-949", "UHC")} == {"cp949"}
    assert codec_name("latin1") == "cp1252" and codec_name("UTF8") == "utf-8"
    assert codec_name("no-such-encoding") is None and normalize_encoding("No-Such ") == "no-such"


def test_one_column_tables_for_a_corpus(tmp_path):
    src = tmp_path / "texts.csv"
    src.write_text("text\none\ntwo\n", encoding="utf-8")
    table = read_table(src, header=True, min_columns=1)
    assert table.columns == ["text"] and table.rows == [["one"], ["two"]] and table.line_numbers == [2, 3]
    with pytest.raises(TableError, match=r"^texts\.csv line 1: the header has 1 column"):
        read_table(src, header=True)  # the composer needs two
    (tmp_path / "empty.csv").write_text("\n", encoding="utf-8")
    with pytest.raises(TableError, match=r"^empty\.csv: is empty; it needs rows of text\.$"):
        read_table(tmp_path / "empty.csv", min_columns=1)


def test_error_names_file_and_line(tmp_path):
    src = tmp_path / "glossary.csv"
    src.write_text("term,definition\nEpoch,One pass.\nBatch,Examples.\nlonely-cell\nLoss,Error.\n", encoding="utf-8")
    with pytest.raises(TableError, match=r"^glossary\.csv line 4: has 1 column, expected at least 2"):
        read_table(src)
    src.write_text("term,definition\nEpoch,One pass, over the data, twice\n", encoding="utf-8")
    with pytest.raises(TableError, match=r"glossary\.csv line 2: has 4 columns but the header has 2; put quotes"):
        read_table(src)
    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"anchor": "a", "positive": "b"}\n\n{"anchor": "c", positive: "d"}\n', encoding="utf-8")
    with pytest.raises(TableError, match=r"^pairs\.jsonl line 3, column 17: not valid JSON"):
        read_table(bad)
    cp = tmp_path / "k.csv"
    cp.write_bytes("용어,정의\n".encode() + "임베딩,벡터\n".encode("cp949"))
    with pytest.raises(TableError, match=r"^k\.csv line 2: bytes are not valid utf-8"):
        read_table(cp, encoding="utf-8")
    with pytest.raises(TableError, match="no such file"):
        read_table(tmp_path / "missing.csv")
