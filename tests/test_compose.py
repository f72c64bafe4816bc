"""The pairs composer end to end: input kinds, columns, mined negatives in the output, split, report, stop, CLI.

The table reader, the text keys and the miner have their own tests: test_tables.py, test_text.py, test_mining.py.
"""

from __future__ import annotations

import csv
import json
import math
import re
import statistics
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from embedgui.engine.compose import ComposeError, ComposeOptions, ComposeStopped, compose, estimate_tokens
from embedgui.engine.tables import detect_columns, read_table
from embedgui.engine.text import fold

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "compose"
ML_GLOSSARY = FIXTURES / "ml_glossary.csv"

KOREAN_ROWS = [
    ("임베딩", "텍스트를 고정 길이의 실수 벡터로 바꾼 표현."),
    ("토크나이저", "문장을 토큰 단위로 나누고 각 토큰을 어휘 번호로 바꾸는 도구."),
    ("학습률", "옵티마이저가 한 번에 가중치를 얼마나 크게 바꿀지 정하는 값."),
    ("과적합", "모델이 학습 데이터에 지나치게 맞춰져 새로운 데이터에서 성능이 떨어지는 현상."),
    ("드롭아웃", "학습 중 일부 뉴런의 출력을 무작위로 0으로 만들어 과적합을 줄이는 방법."),
    ("코사인 유사도", "두 벡터 사이 각도의 코사인 값으로, 임베딩은 흔히 이 값으로 비교한다."),
    ("배치", "한 번의 학습 단계에서 함께 처리하는 예제들의 묶음."),
    ("에폭", "학습 데이터 전체를 한 번 모두 사용하는 학습 단위."),
]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_csv(path: Path, rows: list[list[str]], *, delimiter: str = ",", encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        csv.writer(f, delimiter=delimiter).writerows(rows)
    return path


def ml_rows() -> list[tuple[str, str]]:
    with ML_GLOSSARY.open(encoding="utf-8", newline="") as f:
        return [(r["term"], r["definition"]) for r in csv.DictReader(f)]


def mentions_independent(anchor: str, text: str) -> bool:
    """The test's own reading of "mentions the anchor": whole word (plural allowed) for Latin, substring else."""
    a, t = anchor.casefold(), text.casefold()
    if re.fullmatch(r"[0-9a-z][0-9a-z\s\-]*", a):
        return re.search(rf"(?<![0-9a-z]){re.escape(a)}(?:e?s)?(?![0-9a-z])", t) is not None
    return a in t


def check_pairs_file(path: Path) -> list[dict]:
    rows = read_jsonl(path)
    for row in rows:
        assert set(row) == {"anchor", "positive", "hard_negatives"}
        assert isinstance(row["anchor"], str) and row["anchor"].strip()
        assert isinstance(row["positive"], str) and row["positive"].strip()
        assert all(isinstance(n, str) and n.strip() for n in row["hard_negatives"])
    return rows


# ------------------------------------------------------------------------------------------- input kinds


def test_csv_glossary_columns_and_rows(tmp_path):
    out = tmp_path / "pairs.jsonl"
    report = compose(ML_GLOSSARY, out, options=ComposeOptions(hard_k=0))
    rows = check_pairs_file(out)
    expected = ml_rows()
    assert [(r["anchor"], r["positive"]) for r in rows] == expected
    assert (report.columns.anchor, report.columns.positive) == ("term", "definition")
    assert (report.format, report.delimiter, report.encoding, report.has_header) == ("csv", ",", "utf-8", True)
    assert report.rows_read == len(expected) == 50


def test_tsv_question_answer(tmp_path):
    src = write_csv(tmp_path / "faq.tsv", [["Question", "Answer"], ["What is a batch?", "A group of examples, x, y."],
                                           ["What is an epoch?", "One pass, over all data."]], delimiter="\t")
    table = read_table(src)
    assert table.delimiter == "\t" and table.columns == ["Question", "Answer"]
    choice = detect_columns(table)
    assert (choice.anchor, choice.positive) == ("Question", "Answer")
    report = compose(src, tmp_path / "p.jsonl", options=ComposeOptions(hard_k=0))
    assert report.train_pairs == 2
    assert read_jsonl(tmp_path / "p.jsonl")[0]["positive"] == "A group of examples, x, y."


def test_jsonl_keeps_given_negatives_and_tops_up(tmp_path):
    src = tmp_path / "pairs.jsonl"
    rows = [
        {"anchor": "Adam", "positive": "An adaptive optimizer with momentum.", "hard_negatives": ["Plain SGD."]},
        {"anchor": "SGD", "positive": "Stochastic updates from a mini-batch gradient."},
        {"anchor": "RMSprop", "positive": "An adaptive optimizer dividing by a running RMS of gradients."},
        {"anchor": "Nesterov", "positive": "Momentum with a look-ahead gradient, used by optimizers."},
    ]
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    report = compose(src, out, options=ComposeOptions(hard_k=2))
    got = check_pairs_file(out)
    assert report.format == "jsonl" and report.columns.negatives == "hard_negatives"
    assert got[0]["hard_negatives"][0] == "Plain SGD."  # given negatives come first and are kept
    assert len(got[0]["hard_negatives"]) == 2 and report.negatives_given == 1
    assert all(len(r["hard_negatives"]) <= 2 for r in got)


def test_jsonl_list_positive_expands(tmp_path):
    src = tmp_path / "q.jsonl"
    src.write_text(json.dumps({"query": "q1", "pos": ["d1", "d2"], "neg": ["n1"]}) + "\n", encoding="utf-8")
    compose(src, tmp_path / "o.jsonl", options=ComposeOptions(hard_k=0))
    assert read_jsonl(tmp_path / "o.jsonl") == [
        {"anchor": "q1", "positive": "d1", "hard_negatives": ["n1"]},
        {"anchor": "q1", "positive": "d2", "hard_negatives": ["n1"]},
    ]


def test_headerless_two_columns(tmp_path):
    src = write_csv(tmp_path / "plain.csv", [["Epoch", "One full pass over the training data."],
                                             ["Batch", "Examples processed together in one step."],
                                             ["Loss", "A number that says how wrong the model is."]])
    table = read_table(src)
    assert not table.has_header and table.columns == ["column 1", "column 2"]
    # A first row that starts with a known column name is still data when it reads like a sentence.
    query = write_csv(tmp_path / "q.csv", [["Query", "A request for information."], ["Index", "A lookup table."]])
    assert not read_table(query).has_header
    report = compose(src, tmp_path / "p.jsonl", options=ComposeOptions(hard_k=0))
    assert report.columns.how.startswith("header-less")
    assert [r["anchor"] for r in read_jsonl(tmp_path / "p.jsonl")] == ["Epoch", "Batch", "Loss"]


def test_korean_cp949(tmp_path):
    src = tmp_path / "용어집.csv"
    write_csv(src, [["용어", "정의"], *[list(r) for r in KOREAN_ROWS]], encoding="cp949")
    with pytest.raises(UnicodeDecodeError):
        src.read_bytes().decode("utf-8")  # the fixture really is CP949, not UTF-8
    table = read_table(src)
    assert table.encoding == "cp949" and table.columns == ["용어", "정의"]
    assert read_table(src, encoding="EUC-KR").encoding == "cp949"
    out = tmp_path / "pairs.jsonl"
    report = compose(src, out, options=ComposeOptions(hard_k=2))
    rows = check_pairs_file(out)
    assert [(r["anchor"], r["positive"]) for r in rows] == KOREAN_ROWS
    assert (report.columns.anchor, report.columns.positive) == ("용어", "정의")
    by_anchor = {r["anchor"]: r for r in rows}
    # "임베딩은" in the cosine-similarity definition names the anchor 임베딩 (particle attached): never a negative.
    assert KOREAN_ROWS[5][1] not in by_anchor["임베딩"]["hard_negatives"]
    for row in rows:
        assert all(row["anchor"] not in n for n in row["hard_negatives"])
    assert "\\u" not in out.read_text(encoding="utf-8")  # written as UTF-8 text, not \u escapes


def test_utf8_bom_header(tmp_path):
    src = tmp_path / "bom.csv"
    src.write_bytes("term,definition\r\nGPU,Graphics processing unit.\r\n".encode("utf-8-sig"))
    table = read_table(src)
    assert table.encoding == "utf-8-sig" and table.columns == ["term", "definition"]
    compose(src, tmp_path / "o.jsonl", options=ComposeOptions(hard_k=0))
    assert read_jsonl(tmp_path / "o.jsonl") == [
        {"anchor": "GPU", "positive": "Graphics processing unit.", "hard_negatives": []}]


def test_explicit_columns(tmp_path):
    src = write_csv(tmp_path / "x.csv", [["id", "short", "long", "alts"],
                                         ["1", "GPU", "A processor for parallel math.", '["A CPU core."]'],
                                         ["2", "CPU", "The general-purpose processor.", "A GPU.|An NPU."]])
    options = ComposeOptions(hard_k=0, anchor_column="short", positive_column="LONG", negatives_column="4")
    report = compose(src, tmp_path / "o.jsonl", options=options)
    assert (report.columns.anchor, report.columns.positive, report.columns.negatives) == ("short", "long", "alts")
    assert read_jsonl(tmp_path / "o.jsonl") == [
        {"anchor": "GPU", "positive": "A processor for parallel math.", "hard_negatives": ["A CPU core."]},
        {"anchor": "CPU", "positive": "The general-purpose processor.", "hard_negatives": ["A GPU.", "An NPU."]},
    ]
    with pytest.raises(ComposeError, match=r"x\.csv: has no column 'summary' for --anchor-column; its columns are"):
        compose(src, tmp_path / "o.jsonl", options=ComposeOptions(anchor_column="summary"))


# ---------------------------------------------------------------------------------------------- mining


def test_mined_negatives_are_never_false_negatives(tmp_path):
    rows = ml_rows()
    out = tmp_path / "pairs.jsonl"
    report = compose(ML_GLOSSARY, out, options=ComposeOptions(hard_k=3))
    got = check_pairs_file(out)
    positives = {p for _, p in rows}
    for row in got:
        pos = fold(row["positive"])
        negs = row["hard_negatives"]
        assert len(negs) == 3 and len(set(negs)) == 3
        for neg in negs:
            assert neg in positives  # mined from the other rows' definitions
            assert fold(neg) != pos and pos not in fold(neg) and fold(neg) not in pos
            assert not mentions_independent(row["anchor"], neg), (row["anchor"], neg)
    assert report.negatives_mined == 150 and report.rows_short_of_k == 0
    by_anchor = {r["anchor"]: r for r in got}
    # The two spellings of the neural-network definition are near-duplicates: neither is the other's negative,
    # and no row spends two of its k slots on them.
    nn_def, ann_def = dict(rows)["Neural network"], dict(rows)["Artificial neural network"]
    assert ann_def not in by_anchor["Neural network"]["hard_negatives"]
    assert nn_def not in by_anchor["Artificial neural network"]["hard_negatives"]
    assert all(not {nn_def, ann_def} <= set(r["hard_negatives"]) for r in got)
    # The filter had work to do: many definitions name other rows' terms (e.g. "gradient", "overfitting").
    assert sum(mentions_independent(a, p) for a, own in rows for p in positives if p != own) >= 20


def test_model_miner_with_tiny_bert(tmp_path, tiny_bert):
    pytest.importorskip("embedgui.engine.modeling")
    out = tmp_path / "pairs.jsonl"
    options = ComposeOptions(hard_k=2, miner="model", model_id=str(tiny_bert), device="cpu")
    report = compose(ML_GLOSSARY, out, options=options)
    rows = check_pairs_file(out)
    # a random tiny model scores many candidates near the positive, and those are skipped as likely positives
    assert report.miner == "model" and 0 < report.negatives_mined <= 2 * len(rows)
    for row in rows:
        assert row["positive"] not in row["hard_negatives"]
        assert not any(mentions_independent(row["anchor"], n) for n in row["hard_negatives"])
    # The model's own tokenizer counts the tokens when it is loaded anyway.
    assert report.token_source == f"tokenizer of {tiny_bert}"
    compose(ML_GLOSSARY, tmp_path / "again.jsonl", options=options)
    assert (tmp_path / "again.jsonl").read_bytes() == out.read_bytes()


def test_tokenizer_counts(tmp_path, tiny_bert):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    src = write_csv(tmp_path / "g.csv", [["term", "definition"], ["token", "the model reads a token"],
                                         ["batch", "a batch of data for the network to train on"]])
    report = compose(src, tmp_path / "o.jsonl", options=ComposeOptions(hard_k=0, tokenizer=str(tiny_bert),
                                                                        max_length=8))
    lengths = [len(tok(t)["input_ids"]) for t in ("the model reads a token",
                                                     "a batch of data for the network to train on")]
    assert report.positive_tokens.max == max(lengths) and report.positive_tokens.min == min(lengths)
    assert report.positive_tokens.over_max == sum(n > 8 for n in lengths)


# ------------------------------------------------------------------------------------------------ split


def test_split_by_anchor_is_deterministic(tmp_path):
    rows = [["term", "definition"], *[list(r) for r in ml_rows()]]
    rows += [["Epoch", "A complete cycle through the full training dataset."],  # a second pair for one anchor
             ["Adam", "Adaptive moment estimation, a popular first-order optimizer."]]
    src = write_csv(tmp_path / "g.csv", rows)

    def run(seed: int, tag: str) -> tuple[bytes, bytes]:
        train, held = tmp_path / f"{tag}.jsonl", tmp_path / f"{tag}.eval.jsonl"
        report = compose(src, train, options=ComposeOptions(hard_k=2, eval_ratio=0.2, seed=seed,
                                                            eval_output=str(held)))
        train_rows, eval_rows = read_jsonl(train), read_jsonl(held)
        train_anchors, eval_anchors = {fold(r["anchor"]) for r in train_rows}, {fold(r["anchor"]) for r in eval_rows}
        assert not train_anchors & eval_anchors
        assert len(eval_anchors) == report.eval_anchors == 10  # round(50 anchors * 0.2)
        assert len(train_rows) + len(eval_rows) == 52 == report.pairs_written
        # Negatives come from the same side only: no eval text leaks into training.
        eval_texts = {r["positive"] for r in eval_rows}
        assert not any(set(r["hard_negatives"]) & eval_texts for r in train_rows)
        return train.read_bytes(), held.read_bytes()

    first = run(7, "a")
    assert run(7, "b") == first
    assert run(8, "c") != first


def test_default_eval_path(tmp_path):
    report = compose(ML_GLOSSARY, tmp_path / "pairs.jsonl", options=ComposeOptions(hard_k=0, eval_ratio=0.1))
    assert report.eval_output_path == str(tmp_path / "pairs.eval.jsonl")
    assert len(read_jsonl(tmp_path / "pairs.eval.jsonl")) == 5


# ------------------------------------------------------------------------------------------------ report


def test_report_figures_by_hand(tmp_path):
    src = tmp_path / "small.csv"
    src.write_text(
        "term,definition\n"  # line 1
        "ab,abcdef\n"  # 2: anchor 2 chars, positive 6
        "abcd,ab cd ef gh\n"  # 3: 4 and 11
        "ab,  abcdef \n"  # 4: duplicate of line 2 after whitespace cleanup
        "xyz,\n"  # 5: empty positive
        ",lonely\n"  # 6: empty anchor
        "same,Same\n"  # 7: anchor equals positive
        "\n"  # 8: blank, ignored
        "k,한국어한국어\n"  # 9: 1 and 6
        "ab cd,abcdef\n",  # 10: 5 and 6 (same positive, other anchor: not a duplicate)
        encoding="utf-8",
    )
    report = compose(src, tmp_path / "o.jsonl", options=ComposeOptions(hard_k=0, max_length=5))
    assert report.rows_read == 8
    assert report.skipped_by_reason() == {"empty positive": [5], "empty anchor": [6],
                                          "anchor and positive are the same text": [7]}
    assert report.duplicates_removed == 1 and report.train_pairs == 4
    a, p = report.anchor_chars, report.positive_chars
    assert (a.count, a.min, a.max, a.mean, a.median, a.p95) == (4, 1, 5, 3.0, 3.0, 5)  # 2, 4, 1, 5
    assert (p.min, p.max, p.mean, p.median, p.p95) == (6, 11, 29 / 4, 6.0, 11)  # 6, 11, 6, 6
    # Estimated tokens: ceil(ascii/4 + other/1.5) + 2 -> abcdef 4, "ab cd ef gh" (8 non-space) 4, 한국어한국어 6.
    assert [estimate_tokens(t) for t in ("abcdef", "ab cd ef gh", "한국어한국어")] == [4, 4, 6]
    assert report.positive_tokens.max == 6 and report.positive_tokens.over_max == 1
    assert report.positive_tokens.share_over_max == 0.25
    text = "\n".join(report.lines())
    assert "rows read: 8" in text and "duplicates removed: 1" in text and "empty positive: 1 (line 5)" in text
    assert "25.0% over 5 tokens" in text
    assert math.isclose(report.anchor_chars.mean, statistics.fmean([2, 4, 1, 5]))


# ------------------------------------------------------------------------------------------------- stop


def test_stop_during_mining_ends_compose_before_writing(tmp_path):
    out = tmp_path / "pairs.jsonl"
    out.write_text("an earlier file\n", encoding="utf-8")
    stop = threading.Event()
    stages = []

    def on_progress(stage, done, total):
        stages.append(stage)
        if stage == "mining":
            stop.set()  # the Stop button, pressed while mining

    with pytest.raises(ComposeStopped, match=r"ml_glossary\.csv: compose was stopped before writing") as caught:
        compose(ML_GLOSSARY, out, options=ComposeOptions(hard_k=3), on_progress=on_progress, stop=stop)
    assert isinstance(caught.value, ComposeError)  # front ends show it like any other compose outcome
    assert "mining" in stages and "writing" not in stages
    assert out.read_text(encoding="utf-8") == "an earlier file\n"
    # An event that is never set changes nothing.
    report = compose(ML_GLOSSARY, out, options=ComposeOptions(hard_k=3), stop=threading.Event())
    assert report.train_pairs == 50 and len(check_pairs_file(out)) == 50


# --------------------------------------------------------------------------------------------------- CLI


def test_cli_end_to_end(tmp_path):
    out, held = tmp_path / "pairs.jsonl", tmp_path / "eval.jsonl"
    cmd = [sys.executable, "-m", "embedgui", "compose", "--input", str(ML_GLOSSARY), "--output", str(out),
           "--hard-k", "3", "--eval-ratio", "0.1", "--eval-output", str(held), "--seed", "3"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "rows read: 50" in done.stdout and "pairs written: 50" in done.stdout
    train_rows, eval_rows = check_pairs_file(out), check_pairs_file(held)
    assert len(train_rows) == 45 and len(eval_rows) == 5
    assert all(len(r["hard_negatives"]) == 3 for r in train_rows)

    bad = tmp_path / "bad.csv"
    bad.write_text("term,definition\nEpoch,One pass.\nlonely\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "embedgui", "compose", "--input", str(bad), "--output", str(tmp_path / "x.jsonl")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith("error: bad.csv line 3: has 1 column") and "Traceback" not in done.stderr
    assert not (tmp_path / "x.jsonl").exists()


def test_the_model_miner_puts_the_prompts_training_uses_in_front(tmp_path, tiny_bert, monkeypatch):
    """Mining ranks candidates as training will see them: with data.query_prompt / document_prompt."""
    from embedgui.engine import modeling

    seen = {}
    real = modeling.load_embedder

    def recording(model_id, **kwargs):
        seen.update(kwargs)
        return real(model_id, **kwargs)

    monkeypatch.setattr(modeling, "load_embedder", recording)
    options = ComposeOptions(hard_k=1, miner="model", model_id=str(tiny_bert), device="cpu",
                             query_prompt="query: ", document_prompt="passage: ")
    compose(ML_GLOSSARY, tmp_path / "pairs.jsonl", options=options)
    assert seen["query_prompt"] == "query: " and seen["document_prompt"] == "passage: "
