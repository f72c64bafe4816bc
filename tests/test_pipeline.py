"""The data tools feed the trainer: crawl the Python glossary (served locally) -> compose -> train -> evaluate."""

from __future__ import annotations

import conftest
from test_crawler import FAST, _loopback_only, _serve  # noqa: F401  (the fixture keeps traffic on 127.0.0.1)

from embedgui.engine.compose import ComposeOptions, compose
from embedgui.engine.config import config_from_dict
from embedgui.engine.crawler import CrawlOptions, crawl, write_glossary_csv
from embedgui.engine.data import read_pairs
from embedgui.engine.trainer import Trainer


def test_crawled_glossary_composes_into_pairs_the_trainer_accepts(tiny_bert, tmp_path):
    page = conftest.testdata_file("python3.11-doc", "usr/share/doc/python3.11/html/glossary.html")
    server = _serve(page.parent)
    try:
        result = crawl([server.url("/glossary.html")], options=CrawlOptions(**FAST))
    finally:
        server.shutdown()
        server.server_close()
    assert result.errors == [] and len(result.entries) >= 125
    csv_path = write_glossary_csv(result.entries, tmp_path / "glossary.csv")

    report = compose(csv_path, tmp_path / "pairs.jsonl",
                     options=ComposeOptions(hard_k=3, eval_ratio=0.1, eval_output=str(tmp_path / "eval.jsonl")))
    pairs, skipped = read_pairs(tmp_path / "pairs.jsonl")  # the trainer's own reader, strict mode
    held, _ = read_pairs(tmp_path / "eval.jsonl")
    assert skipped == [] and len(pairs) + len(held) == report.pairs_written >= 125
    assert sum(len(p.hard_negatives) == 3 for p in pairs) > 0.9 * len(pairs)
    assert all(p.positive not in p.hard_negatives for p in pairs)

    config = config_from_dict({
        "model_id": str(tiny_bert), "device": "cpu", "dtype": "float32",
        "train": {"batch_size": 8, "max_length": 32, "steps_per_epoch": 2, "log_every": 1},
        "data": {"pairs_path": str(tmp_path / "pairs.jsonl"), "eval_path": str(tmp_path / "eval.jsonl")},
        "output": {"save_dir": str(tmp_path / "runs"), "save_name": "py-glossary"},
    })
    run = Trainer(config).fit()
    assert run.status == "finished" and set(run.summary["final_eval"]) >= {"recall@1", "ndcg@10"}
