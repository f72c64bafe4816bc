"""Matryoshka sizes after training: evaluation reports each trained size, search indexes can be built at one."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from test_trainer import make_config

from embedgui.engine.data import Pair
from embedgui.engine.evaluate import evaluate_model, evaluate_pairs
from embedgui.engine.modeling import load_embedder
from embedgui.engine.search import SearchIndex, SearchIndexError
from embedgui.engine.trainer import Trainer


def _vector(text: str, dim: int = 32) -> torch.Tensor:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    return torch.randn(dim, generator=torch.Generator().manual_seed(seed))


def _encode(texts: list[str]) -> torch.Tensor:
    # a query and its positive share the first components more than the rest: truncation changes the ranking
    return torch.stack([_vector(t.removeprefix("q ").removeprefix("d ")) + 0.3 * _vector(t) for t in texts])


def test_evaluation_scores_each_trained_size_as_if_scored_alone():
    pairs = [Pair(f"q term {i}", f"d term {i}", [f"d term {i + 40}"]) for i in range(30)]
    metrics = evaluate_pairs(_encode, pairs, dims=[16, 8, 32, 64])
    for d in (16, 8):
        alone = evaluate_pairs(_encode, pairs, dim=d)
        assert {k: metrics[f"{k}/dim{d}"] for k in alone} == alone
    assert metrics["recall@1"] == evaluate_pairs(_encode, pairs)["recall@1"]
    assert not any(k.endswith(("/dim32", "/dim64")) for k in metrics)  # the full size is not repeated
    assert metrics["recall@1/dim8"] != metrics["recall@1"]  # the sizes really differ here


@pytest.mark.slow
def test_a_matryoshka_run_reports_its_sizes_in_training_and_in_evaluation(tiny_bert, tmp_path):
    config = make_config(tiny_bert, tmp_path, train={"matryoshka_dims": [32, 16, 8], "steps_per_epoch": 3},
                         data={"eval_split": 0.3})
    Trainer(config).fit()
    rows = [json.loads(line) for line in (config.run_dir / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in rows if r["kind"] == "eval"][-1]
    assert {"ndcg@10/dim16", "ndcg@10/dim8", "recall@1/dim8"} <= set(final) and "ndcg@10/dim32" not in final
    # The saved model says which sizes it was trained for; evaluating it reports each without being asked.
    result = evaluate_model(str(config.run_dir), config.run_dir / "eval_pairs.jsonl", device="cpu")
    assert result.metrics["ndcg@10/dim8"] == pytest.approx(final["ndcg@10/dim8"], abs=1e-6)


def test_a_search_index_at_a_matryoshka_size(tiny_bert, tmp_path):
    embedder = load_embedder(str(tiny_bert), device="cpu")
    texts = [f"the {w} of a model" for w in ("loss", "token", "vector", "batch", "layer", "query", "word")]
    full = SearchIndex.build(texts, embedder)
    small = SearchIndex.build(texts, embedder, dim=8)
    assert small.dim == 8 and small.truncated and full.dim == embedder.dim and not full.truncated
    hits = small.query("a loss", k=3)
    q = torch.nn.functional.normalize(embedder.encode(["a loss"], prompt="query")[:, :8], dim=-1)
    d = torch.nn.functional.normalize(embedder.encode(texts, prompt="document")[:, :8], dim=-1)
    expected = (d @ q.T).squeeze(1).argsort(descending=True)[:3].tolist()
    assert [h.index for h in hits] == expected  # cosine of the first 8 components, queries cut the same way
    loaded = SearchIndex.load(small.save(tmp_path / "index"), embedder)
    assert [h.index for h in loaded.query("a loss", k=3)] == expected
    with pytest.raises(SearchIndexError, match=f"dim: 999 is not allowed; the model gives {embedder.dim}"):
        SearchIndex.build(texts, embedder, dim=999)
