"""data.mine_hard_negatives: negatives mined by the model before training, filtered, cached beside the data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import _write_tiny_bert
from test_trainer import make_config, make_pairs

from embedgui.engine.data import Pair, read_pairs
from embedgui.engine.mining import NEAR_DUPLICATE
from embedgui.engine.modeling import load_embedder
from embedgui.engine.text import fold, tokenize
from embedgui.engine.train_mining import mine_for_training
from embedgui.engine.trainer import Trainer

ROWS = [
    Pair("gradient", "the slope of the loss with respect to a weight"),
    Pair("slope", "the slope of the loss with respect to a weight."),  # a near-duplicate of row 0's positive
    Pair("token", "a piece of text the model reads"),
    Pair("vector", "a list of numbers; a token becomes a vector"),  # names another anchor (token)
    Pair("batch", "rows trained together in one step"),
    Pair("epoch", "one pass over the training data"),
    Pair("layer", "one stage of the network between input and output"),
    Pair("query", "the text a search starts from"),
    Pair("document", "a text in the corpus a search looks through"),
    Pair("weight", "a number the training changes"),
]


def _jaccard(a: str, b: str) -> float:
    x, y = set(tokenize(a, "bigram")), set(tokenize(b, "bigram"))
    return len(x & y) / len(x | y)


@pytest.fixture(scope="module")
def embedder():
    """The packaged MiniLM: a random tiny model scores every text alike, so its scores say nothing about mining."""
    from embedgui.engine.config import DEFAULT_MODEL_ID

    return load_embedder(DEFAULT_MODEL_ID, device="cpu")


@pytest.mark.slow
def test_mined_negatives_are_never_the_positive_a_near_copy_or_a_text_naming_the_anchor(embedder, tmp_path):
    rows, info = mine_for_training(ROWS, 3, embedder, tmp_path / "pairs.jsonl")
    assert info.rows_with_negatives >= 8 and not info.reused
    for row in rows:
        for negative in row.hard_negatives:
            assert fold(negative) != fold(row.positive)
            assert _jaccard(negative, row.positive) < NEAR_DUPLICATE, (row.anchor, negative)
            assert fold(row.anchor) not in fold(negative).split(), (row.anchor, negative)
    assert len({fold(n) for r in rows for n in r.hard_negatives}) > 1


@pytest.mark.slow
def test_the_cache_is_reused_and_rebuilt_when_the_data_or_the_model_changes(embedder, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    first, info = mine_for_training(ROWS, 2, embedder, pairs)
    again, reused = mine_for_training(ROWS, 2, embedder, pairs)
    assert reused.reused and reused.cache == info.cache and again == first
    assert [json.loads(line) for line in open(info.cache)] == [r.hard_negatives for r in first]
    changed = ROWS[:-1] + [Pair("weight", "a number that training changes a little every step")]
    _, other = mine_for_training(changed, 2, embedder, pairs)
    assert not other.reused and other.cache != info.cache  # new data: mined again
    retrained = load_embedder(str(_write_tiny_bert(tmp_path / "other-model", seed=7)), device="cpu")
    _, by_other = mine_for_training(ROWS, 2, retrained, pairs)
    assert not by_other.reused and by_other.cache != info.cache  # another model: mined again
    _, more = mine_for_training(ROWS, 3, embedder, pairs)
    assert not more.reused  # another k


@pytest.mark.slow
def test_a_hosted_visitor_caches_the_shared_samples_negatives_in_their_own_folder(embedder, tmp_path):
    """The bundled sample is every visitor's first pairs file: its cache beside it filled the app's own folder
    and told each visitor whether another had trained that model already ("reused"). A visitor's own file keeps its
    cache beside it."""
    shared = tmp_path / "assets" / "sample_pairs.jsonl"
    shared.parent.mkdir()
    alice, bob = tmp_path / "visitors" / "alice", tmp_path / "visitors" / "bob"
    for folder in (alice, bob):
        (folder / "data").mkdir(parents=True)
    _, first = mine_for_training(ROWS, 1, embedder, shared, roots=[str(alice), str(shared.parent)])
    assert Path(first.cache).parent == alice / "data" and not list(shared.parent.glob("*.mined-*"))
    _, other = mine_for_training(ROWS, 1, embedder, shared, roots=[str(bob), str(shared.parent)])
    assert not other.reused and Path(other.cache).parent == bob / "data"
    own = alice / "data" / "pairs.jsonl"
    _, mine = mine_for_training(ROWS, 1, embedder, own, roots=[str(alice), str(shared.parent)])
    assert Path(mine.cache).parent == own.parent
    _, local = mine_for_training(ROWS, 1, embedder, shared)  # a local app: beside the file, as before
    assert Path(local.cache).parent == shared.parent


@pytest.mark.slow
def test_a_run_on_data_without_negatives_mines_them_first_and_says_so(tiny_bert, tmp_path, monkeypatch):
    from embedgui.engine.modeling import Embedder

    pairs = make_pairs(tmp_path / "data" / "pairs.jsonl", negatives=False)
    config = make_config(tiny_bert, tmp_path, dtype="bfloat16", data={"pairs_path": str(pairs),
                                                                      "mine_hard_negatives": 2},
                         train={"steps_per_epoch": 2})
    calls = []
    encode = Embedder.encode

    def spy(self, texts, batch_size=32, *args, **kwargs):
        calls.append((kwargs.get("prompt"), batch_size, kwargs.get("autocast_dtype")))
        return encode(self, texts, batch_size, *args, **kwargs)

    monkeypatch.setattr(Embedder, "encode", spy)
    trainer = Trainer(config)
    trainer.fit()
    # Mining encodes in the run's precision, at twice the training batch (8): faster than float32 at 8, same memory.
    assert {c for c in calls if c[0]} == {("query", 16, torch.bfloat16), ("document", 16, torch.bfloat16)}
    summary = json.loads((config.run_dir / "metrics_summary.json").read_text())
    assert summary["mined"]["k"] == 2 and summary["mined"]["rows_with_negatives"] > 0
    assert summary["hard_negatives_per_row"]["used_mean"] > 0 and trainer.state.hard_negatives_per_row > 0
    assert list(pairs.parent.glob("pairs.mined-*.jsonl"))
    assert all(not p.hard_negatives for p in read_pairs(pairs)[0])  # the user's file is left as it was


@pytest.mark.slow
def test_the_default_mines_one_a_row_and_stop_during_mining_ends_the_run_with_nothing_changed(tiny_bert, tmp_path):
    """Mining is on by default (one a row); Stop pressed while a large data set is mined must not wait for the end
    of mining and then train: the run ends stopped, the earlier run in the folder and the data left as they were."""
    import threading

    from embedgui.engine.callbacks import Callback

    pairs = make_pairs(tmp_path / "data" / "pairs.jsonl", negatives=False)
    config = make_config(tiny_bert, tmp_path, data={"pairs_path": str(pairs)}, train={"steps_per_epoch": 2})
    assert config.data.mine_hard_negatives == 1
    Trainer(config).fit()
    first = json.loads((config.run_dir / "metrics_summary.json").read_text())
    assert first["mined"]["k"] == 1 and first["hard_negatives_per_row"]["data_max"] == 1
    before = {p.name: p.stat().st_mtime_ns for p in config.run_dir.rglob("*")}
    for cached in pairs.parent.glob("pairs.mined-*.jsonl"):
        cached.unlink()  # the next run must mine again

    stop = threading.Event()

    class PressStop(Callback):
        def on_phase(self, state, phase):
            if phase == "mine":
                stop.set()

    trainer = Trainer(config, callbacks=[PressStop()])
    result = trainer.fit(stop)
    assert result.status == "stopped" and result.step == 0
    assert "while mining" in trainer.state.message and trainer.state.status == "stopped"
    assert {p.name: p.stat().st_mtime_ns for p in config.run_dir.rglob("*")} == before
    assert not list(pairs.parent.glob("pairs.mined-*.jsonl"))
