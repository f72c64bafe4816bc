"""bench --quality: the same-time comparison runs end to end (smoke), and its Debian data sets parse apt's files
and man pages."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest
from conftest import ROOT
from test_trainer import make_pairs

from embedgui.engine.quality import (
    QualityResult,
    debian_descriptions,
    man_page_summaries,
    quality_table,
    summarize,
)


def test_korean_package_descriptions_become_summary_to_description_pairs(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "deb.debian.org_debian_dists_bookworm_main_i18n_Translation-ko").write_text(
        "Package: amphetamine\nDescription-md5: 84628a\nDescription-ko: 독특한 시각 효과를 제공하는 게임\n"
        " Amphetamine는 색깔 광원, 안개 그리고 광환 같은 몇몇 독특한 시각 효과를\n .\n 제공하는 게임입니다.\n\n"
        "Package: tiny\nDescription-md5: 1\nDescription-ko: 짧은 설명\n 짧음\n", encoding="utf-8")
    pairs = debian_descriptions(lists, "ko")
    assert [p.anchor for p in pairs] == ["독특한 시각 효과를 제공하는 게임"]  # a body under 20 characters is dropped
    body = pairs[0].positive
    assert body.startswith("Amphetamine는 색깔 광원") and body.endswith("제공하는 게임입니다.")
    assert " . " not in body  # the paragraph marker line is not text


def test_english_descriptions_come_from_the_release_file_not_the_security_updates(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    block = "Package: {0}\nDescription-md5: 1\nDescription-en: {0} summary\n {0} does a long list of things.\n\n"
    # The security archive's file sorts first by name but holds a few packages; the release's holds them all.
    (lists / "deb.debian.org_debian-security_dists_bookworm-security_main_i18n_Translation-en").write_text(
        block.format("openssl"), encoding="utf-8")
    (lists / "deb.debian.org_debian_dists_bookworm_main_i18n_Translation-en").write_text(
        "".join(block.format(name) for name in ("openssl", "zsh", "7zip")), encoding="utf-8")
    pairs = debian_descriptions(lists, "en")
    assert [p.anchor for p in pairs] == ["openssl summary", "zsh summary", "7zip summary"]
    assert pairs[1].positive == "zsh does a long list of things."


def test_man_pages_give_their_names_and_one_line_summary(tmp_path):
    def page(path, text):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(text.encode()))

    page(tmp_path / "man3/malloc.3.gz", '.\\" Copyright notice\n.TH malloc 3\n.SH NAME\n'
         "malloc, free, calloc, realloc, reallocarray \\- allocate and free dynamic memory\n.SH LIBRARY\n")
    page(tmp_path / "man2/open.2.gz", '.TH open 2\n.SH "NAME"\n.\\" a comment line\n'
         "\\fBopen\\fP, openat, creat \\- open and possibly create a file \\(em or a device\n.SH SYNOPSIS\n")
    page(tmp_path / "man3/calloc.3.gz", ".so man3/malloc.3\n")  # a pointer to another page
    page(tmp_path / "man3/broken.3.gz", ".TH broken 3\n.SH DESCRIPTION\nno name section\n.SH SEE ALSO\n")
    pairs = man_page_summaries(tmp_path)
    assert [(p.anchor, p.positive) for p in pairs] == [
        ("open, openat, creat", "open and possibly create a file or a device"),
        ("malloc, free, calloc, realloc, reallocarray", "allocate and free dynamic memory")]


def test_the_real_man_pages_parse_without_roff_left_in_them():
    from embedgui.engine.wordnet import default_dir

    man_dir = default_dir().parent / "manpages-dev" / "usr/share/man"
    if not man_dir.is_dir():
        pytest.skip(f"{man_dir} is missing: run bash scripts/fetch_testdata.sh (Debian's manpages-dev)")
    pairs = man_page_summaries(man_dir)
    assert len(pairs) > 1500
    by_names = {p.anchor: p.positive for p in pairs}
    assert by_names["malloc, free, calloc, realloc, reallocarray"] == "allocate and free dynamic memory"
    assert not [p for p in pairs if "\\" in p.anchor + p.positive or p.positive.startswith("-")]


def test_the_gain_ratio_compares_recall_at_1_gains():
    result = QualityResult({}, 60.0, {"recall@1": 0.4}, {"metrics": {"recall@1": 0.5}}, {"metrics": {"recall@1": 0.6}})
    assert result.gain_ratio == pytest.approx(2.0)
    assert QualityResult({}, 1, {"recall@1": 0.4}, {"metrics": {"recall@1": 0.4}},
                         {"metrics": {"recall@1": 0.5}}).gain_ratio == float("inf")


def test_several_seeds_are_summarised_as_a_ratio_of_mean_gains():
    def run(seed, before, st, ours):
        metrics = lambda r1: {"recall@1": r1, "recall@5": r1 + 0.1, "mrr@10": r1 + 0.05}  # noqa: E731
        result = QualityResult({"name": "wordnet", "train_pairs": 1024, "eval_queries": 1000}, 40.0 + seed - 42,
                               metrics(before), {"metrics": metrics(st), "steps": 128},
                               {"metrics": metrics(ours), "steps": 80 + seed - 42}, seed)
        return {**result.__dict__, "gain_ratio": result.gain_ratio}

    # Seed 43's sentence-transformers gain is 0, so its own ratio is infinite: the mean of ratios would be too.
    runs = [run(42, 0.40, 0.44, 0.48), run(43, 0.40, 0.40, 0.42)]
    (s,) = summarize(runs)
    assert s["seeds"] == [42, 43] and s["seed_ratios"] == [pytest.approx(2.0), float("inf")]
    assert s["gain_ratio"] == pytest.approx((0.08 + 0.02) / 2 / (0.04 / 2))
    assert s["embedgui_steps"] == pytest.approx(80.5) and s["seconds"] == pytest.approx(40.5)
    header, rows = quality_table({"summary": [s]})
    assert rows[0][header.index("seeds")] == "2"
    assert rows[0][-1] == "2.50x (seeds: 2.00, inf)"


@pytest.mark.slow
def test_bench_quality_runs_both_tools_in_the_same_time_and_reports(tiny_bert, tmp_path):
    pairs = make_pairs(tmp_path / "pairs.jsonl", n=120, negatives=False)  # pairs, as the built-in sets
    out = tmp_path / "quality.json"
    done = subprocess.run([sys.executable, "-m", "embedgui", "bench", "--quality", "--model-id", str(tiny_bert),
                           "--device", "cpu", "--data", str(pairs), "--train-pairs", "64", "--eval-queries", "30",
                           "--set", "train.batch_size=16", "--seeds", "2", "--json", str(out),
                           "--markdown", str(tmp_path / "q.md"), "--work-dir", str(tmp_path / "w")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    r, r2 = report["results"]  # two seeds: each its own split of the same file
    assert (r["seed"], r2["seed"]) == (42, 43) and r["dataset"]["train_path"] != r2["dataset"]["train_path"]
    assert report["summary"][0]["seeds"] == [42, 43]
    assert r["dataset"]["train_pairs"] == 64 and r["dataset"]["eval_queries"] == 30
    assert r["seconds"] > 0 and r["st"]["steps"] == 8  # one epoch of 64 pairs at its default batch of 8
    assert r["embedgui"]["steps"] >= 1 and report["settings"]["overrides"] == {"train.batch_size": 16}
    assert 0 <= r["before"]["recall@1"] <= 1
    assert 0 <= r["st"]["metrics"]["recall@1"] <= 1 and 0 <= r["embedgui"]["metrics"]["mrr@10"] <= 1
    assert "recall@1 gain: embedgui / ST" in done.stdout and (tmp_path / "q.md").read_text().startswith("| data |")

    # An ablation row in the same work folder reuses sentence-transformers' run but not the negatives the last row
    # mined (one a row, the default): mining counts against embedgui's budget in every row.
    again = subprocess.run([sys.executable, "-m", "embedgui", "bench", "--quality", "--model-id", str(tiny_bert),
                            "--device", "cpu", "--data", str(pairs), "--train-pairs", "64", "--eval-queries", "30",
                            "--set", "train.batch_size=16", "--work-dir", str(tmp_path / "w")],
                           cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "sentence-transformers' run from" in again.stdout + again.stderr
    (summary,) = (tmp_path / "w").glob("*-42-embedgui/embedgui/metrics_summary.json")
    mined = json.loads(summary.read_text())["mined"]
    assert mined["k"] == 1 and mined["reused"] is False


def test_the_benchmark_scores_a_model_with_its_query_and_document_prompts(tmp_path):
    """bench scores through the evaluate command's evaluator: a model saved with prompts (its own, or trained with
    data.query_prompt in a --set row) is scored with them, queries with the query prompt, the corpus with the
    document prompt; before, the bench encoded every text bare and scored such a model on inputs it never saw."""
    from conftest import _write_tiny_bert

    from embedgui.engine.benchmark import evaluate_saved
    from embedgui.engine.data import read_pairs
    from embedgui.engine.evaluate import evaluate_pairs
    from embedgui.engine.modeling import load_embedder

    model_dir = _write_tiny_bert(tmp_path / "prompted")
    prompts = {"query": "query: ", "document": "passage: "}
    (model_dir / "config_sentence_transformers.json").write_text(json.dumps({"prompts": prompts}), encoding="utf-8")
    pairs = make_pairs(tmp_path / "held_out.jsonl", n=40, negatives=False)

    got = evaluate_saved(model_dir, pairs, "cpu", 64, 16)

    model = load_embedder(str(model_dir), device="cpu", max_length=64)
    rows, _ = read_pairs(pairs)
    with_prompts = evaluate_pairs(lambda texts: model.encode([prompts["query"] + t for t in texts]), rows,
                                  encode_corpus=lambda texts: model.encode([prompts["document"] + t for t in texts]))
    bare = evaluate_pairs(lambda texts: model.encode(texts), rows)
    assert bare["mrr@10"] != with_prompts["mrr@10"]  # the prompts change the ranking of this model
    assert got["mrr@10"] == pytest.approx(with_prompts["mrr@10"])
    assert got["recall@1"] == pytest.approx(with_prompts["recall@1"])
