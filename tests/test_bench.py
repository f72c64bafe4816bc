"""WordNet pairs for the benchmark, and a smoke run of `python -m embedgui bench --against sentence-transformers`."""

from __future__ import annotations

import importlib.util
import json
import math

import conftest
import pytest

from embedgui.__main__ import main
from embedgui.engine import benchmark, wordnet
from embedgui.engine.data import Pair

NOUN_LINES = (
    "  1 This software and database is being provided to you, the LICENSEE, by  \n"
    "00004032 29 v 02 sigh 0 suspire 4 004 @ 00001740 v 0000 | heave or utter a sigh; breathe deeply and heavily; "
    '"She sighed sadly"  \n'
    "00020103 00 s 02 outback(a) 0 remote 0 003 & 00019874 a 0000 | inaccessible and sparsely populated;  \n"
    "00004227 29 v 03 exhale 0 expire 0 breathe_out 0 008 @ 00001740 v 0000 | expel air; "
    '"Exhale when you lift the weight"  \n'
    '06000000 10 n 01 shopping 0 000 | the commodities purchased from stores; "she loaded the shopping into the '
    'car"; women carrying home shopping didn\'t give me a second glance"  \n'
)


def test_parse_data_line_gives_lemmas_and_gloss_without_examples():
    lemmas, gloss = wordnet.parse_data_line(NOUN_LINES.splitlines()[3])
    assert lemmas == ["exhale", "expire", "breathe out"]
    assert gloss == "expel air"
    assert wordnet.parse_data_line(NOUN_LINES.splitlines()[0]) is None  # the licence header
    assert wordnet.parse_data_line(NOUN_LINES.splitlines()[2])[0] == ["outback", "remote"]  # (a) marker dropped
    # An example whose opening quote is missing leaves no fragment behind.
    assert wordnet.parse_data_line(NOUN_LINES.splitlines()[4])[1] == "the commodities purchased from stores"


def test_read_wordnet_reads_every_part(tmp_path):
    for part in wordnet.PARTS:
        (tmp_path / f"data.{part}").write_text(NOUN_LINES if part == "noun" else "", encoding="utf-8")
    pairs = wordnet.read_wordnet(tmp_path)
    assert [p.anchor for p in pairs] == ["sigh", "suspire", "outback", "remote", "exhale", "expire", "breathe out",
                                         "shopping"]
    assert pairs[0].positive == "heave or utter a sigh; breathe deeply and heavily"
    (tmp_path / "data.adv").unlink()
    with pytest.raises(wordnet.WordNetError, match="data.adv"):
        wordnet.read_wordnet(tmp_path)


def test_split_by_term_shares_no_term_and_no_gloss():
    pairs = [Pair(f"term {i}", f"gloss {i // 2}") for i in range(200)]  # synonyms share a gloss
    pairs += [Pair("Bank", "a financial institution"), Pair("bank", "sloping land beside water")]  # two senses
    train, held = wordnet.split_by_term(pairs, 30, seed=1)
    assert len(held) == 30
    held_terms = {wordnet.term(p.anchor) for p in held}
    assert len(held_terms) == 30
    assert "bank" not in held_terms  # only single-sense terms are held out
    assert not held_terms & {wordnet.term(p.anchor) for p in train}
    assert not {p.positive for p in held} & {p.positive for p in train}
    assert wordnet.split_by_term(pairs, 30, seed=1) == (train, held)  # the seed decides
    assert wordnet.split_by_term(pairs, 30, seed=2)[1] != held


def test_missing_wordnet_without_apt_get_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(wordnet.shutil, "which", lambda name: None)
    with pytest.raises(wordnet.WordNetError, match="dpkg-deb -x"):
        wordnet.find_wordnet(tmp_path / "wordnet-base")


def test_real_wordnet_gives_the_known_size():
    folder = conftest.testdata_file("wordnet-base", "usr/share/wordnet/data.noun").parent
    pairs = wordnet.read_wordnet(folder)
    assert 200_000 < len(pairs) < 215_000  # WordNet 3.0 has 206,941 word-sense pairs
    assert not any('"' in p.positive for p in pairs)
    assert not any("_" in p.anchor for p in pairs)


def test_matched_mode_trains_both_tools_in_one_precision():
    assert benchmark.mode_dtypes("defaults", True) == {"embedgui": "auto", "sentence-transformers": "float32"}
    assert set(benchmark.mode_dtypes("matched", True).values()) == {"bfloat16"}
    assert set(benchmark.mode_dtypes("matched", False).values()) == {"float32"}


@pytest.mark.slow
def test_bench_against_sentence_transformers_smoke(tmp_path, tiny_bert, capsys):
    missing = [m for m in ("sentence_transformers", "datasets", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}: pip install 'sentence-transformers[train]'")
    folder = conftest.testdata_file("wordnet-base", "usr/share/wordnet/data.noun").parent
    md = tmp_path / "benchmarks.md"
    md.write_text("# Benchmarks\n\nIntro stays.\n\n<!-- bench:start -->\nold\n<!-- bench:end -->\n\nOutro stays.\n")
    out = tmp_path / "report.json"
    code = main(["bench", "--against", "sentence-transformers", "--model-id", str(tiny_bert), "--device", "cpu",
                 "--batch-size", "8", "--max-length", "32", "--step-counts", "2", "6", "--modes", "defaults",
                 "--eval-terms", "100", "--encode-texts", "64", "--memory-batches", "16",
                 "--wordnet-dir", str(folder), "--json", str(out), "--markdown", str(md)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["data"]["train_pairs"] == 8 * 6
    assert report["data"]["held_out_terms"] == 100
    assert report["data"]["real_tokens_per_pair"] > 2  # at least [CLS] and [SEP] on each side
    assert 0 < report["model"]["matmul_params"] < report["model"]["params"]
    assert report["matmul_peak_flops"]["float32"] > 1e8
    assert report["machine"]["torch"] and report["machine"]["cores"] >= 1
    assert {(r["mode"], r["tool"]) for r in report["results"]} == {
        ("defaults", "embedgui"), ("defaults", "sentence-transformers")}
    for r in report["results"]:
        for key in ("step_s", "pairs_per_s", "tokens_per_s", "model_flops", "peak_share"):
            assert math.isfinite(r[key]) and r[key] > 0, (r["tool"], key)
        assert r["tokens_per_s"] == pytest.approx(r["pairs_per_s"] * report["data"]["real_tokens_per_pair"])
        assert 200 < r["peak_rss_mb"] < 16_000  # torch alone is a few hundred MiB
        assert r["precision"] in ("float32", "bfloat16")
        assert len(r["walls"]["2"]) == len(r["walls"]["6"]) == 1
        for metrics in (r["before"], r["after"]):
            assert set(metrics) >= {"recall@1", "mrr@10"}
            assert all(0 <= v <= 1 for v in metrics.values())
    st_defaults = next(r for r in report["results"] if r["tool"] == "sentence-transformers")
    assert st_defaults["precision"] == "float32"
    assert set(report["ratios"]) == {"defaults"} and report["ratios"]["defaults"]["pairs_per_s"] > 0
    assert [e["precision"] for e in report["encoding"]][0] == "float32"
    assert all(e["embedgui_texts_per_s"] > 0 and e["st_texts_per_s"] > 0 for e in report["encoding"])
    assert [m["batch_size"] for m in report["memory"]] == [16]
    printed = capsys.readouterr().out
    assert "pairs/s" in printed and "recall@1" in printed and "Evaluation encoding" in printed
    text = md.read_text()
    assert text.startswith("# Benchmarks\n\nIntro stays.") and text.rstrip().endswith("Outro stays.")
    assert "old" not in text and "| defaults | embedgui |" in text and report["command"] in text
