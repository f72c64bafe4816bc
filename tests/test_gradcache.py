from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from embedgui.engine.callbacks import read_metrics
from embedgui.engine.config import ConfigError, config_from_dict
from embedgui.engine.data import Pair, PairCollator
from embedgui.engine.gradcache import CachedInfoNCELoss, activation_bytes, choose_chunk, with_gradcache
from embedgui.engine.loss import InfoNCELoss, MatryoshkaLoss, info_nce
from embedgui.engine.modeling import load_embedder
from embedgui.engine.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
WORDS = "the model data text train loss vector embedding token batch query document search score term".split()


def rows(n: int) -> list[Pair]:
    out = []
    for i in range(n):
        a = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(1 + i % 3))
        p = " ".join(WORDS[(i * 5 + j) % len(WORDS)] for j in range(2 + i % 7))
        out.append(Pair(f"{a} {i}", f"{p} {i}", [f"{p} {i + 1}"] if i % 4 == 0 else []))
    out.append(Pair(out[0].anchor, "another definition 0"))  # same anchor twice: the false-negative mask matters
    return out


def setup(tiny_bert, dropout: bool):
    model = load_embedder(str(tiny_bert), device="cpu", max_length=32, for_training=True)
    model.train(dropout)
    batch = PairCollator(model.tokenizer, 32)(rows(13))
    return model, batch


def grads_of(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def run(loss, model, batch, seed: int = 0, scale: float = 1.0):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    out = loss(model, batch)
    (out.loss * scale).backward()
    return out.loss.detach(), grads_of(model)


def assert_same(a, b):
    (loss_a, grads_a), (loss_b, grads_b) = a, b
    assert loss_a.item() == pytest.approx(loss_b.item(), rel=1e-5, abs=1e-6)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_cached_loss_and_gradients_equal_plain_without_dropout(tiny_bert, chunk):
    model, batch = setup(tiny_bert, dropout=False)
    plain = run(InfoNCELoss(0.05), model, batch)
    cached = run(CachedInfoNCELoss(InfoNCELoss(0.05), chunk), model, batch)
    assert_same(cached, plain)


def test_cached_with_dropout_equals_plain_when_one_chunk_holds_each_side(tiny_bert):
    # Same RNG, same order of the two forwards: the dropout masks are the plain step's, replayed in backward.
    model, batch = setup(tiny_bert, dropout=True)
    plain = run(InfoNCELoss(0.05), model, batch, seed=3, scale=0.5)
    cached = run(CachedInfoNCELoss(InfoNCELoss(0.05), 64), model, batch, seed=3, scale=0.5)
    assert_same(cached, plain)
    other = run(InfoNCELoss(0.05), model, batch, seed=4)
    assert other[0].item() != pytest.approx(plain[0].item(), rel=1e-6)  # dropout is really on


def test_cached_with_dropout_replays_each_chunks_masks(tiny_bert):
    """Small chunks: the gradients are those of the same chunks embedded with a graph (same dropout masks)."""
    from embedgui.engine.gradcache import _chunks
    from embedgui.engine.loss import false_negative_mask

    model, batch = setup(tiny_bert, dropout=True)

    def reference(model, batch):
        parts = [torch.cat([model(p) for p in _chunks(batch[side], 4)]) for side in ("anchor", "candidates")]
        mask = false_negative_mask(batch["anchor_ids"], batch["positive_ids"], batch["candidate_ids"],
                                   batch["candidate_rows"])
        return info_nce(*parts, 0.05, mask)

    expected = run(reference, model, batch, seed=5)
    cached = run(CachedInfoNCELoss(InfoNCELoss(0.05), 4), model, batch, seed=5)
    assert_same(cached, expected)
    # Without the replayed RNG the re-embedded chunks get other masks and the gradients differ.
    plain_other = run(reference, model, batch, seed=6)
    assert not torch.allclose(next(iter(plain_other[1].values())), next(iter(cached[1].values())))


def test_run_rng_after_a_cached_step_matches_the_plain_step(tiny_bert):
    model, batch = setup(tiny_bert, dropout=True)
    run(InfoNCELoss(0.05), model, batch, seed=7)
    after_plain = torch.get_rng_state()
    run(CachedInfoNCELoss(InfoNCELoss(0.05), 64), model, batch, seed=7)
    assert torch.equal(torch.get_rng_state(), after_plain)  # the replay does not shift the run's random stream


def make_config(tiny_bert, tmp_path, name, **train):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(p.to_json()) + "\n" for p in rows(40)), encoding="utf-8")
    return config_from_dict({
        "model_id": str(tiny_bert), "device": "cpu", "dtype": "float32", "seed": 13,
        "train": {"batch_size": 8, "max_length": 32, "log_every": 1, "steps_per_epoch": 3, "grad_accum_steps": 2,
                  **train},
        "optim": {"lr": 1e-3, "warmup_ratio": 0.0}, "data": {"pairs_path": str(pairs)},
        "output": {"save_dir": str(tmp_path / "runs"), "save_name": name},
    })


def test_trainer_with_gradcache_trains_like_plain(tiny_bert, tmp_path):
    """Through the unchanged trainer loop (accumulation scales the cached gradients): the same curve and weights."""
    curves, weights = [], []
    for name, chunk in (("plain", 0), ("cached", 64)):
        trainer = Trainer(make_config(tiny_bert, tmp_path, name, gradcache_chunk=chunk))
        assert isinstance(trainer.loss, CachedInfoNCELoss) == bool(chunk)
        trainer.fit()
        curves.append([r["loss"] for r in read_metrics(tmp_path / "runs" / name / "metrics.jsonl")])
        weights.append(trainer._job.model.state_dict())
    assert len(curves[0]) == 3 and curves[0] == pytest.approx(curves[1], rel=1e-5)
    for key, value in weights[0].items():
        torch.testing.assert_close(value, weights[1][key], rtol=1e-4, atol=1e-6)


def test_automatic_choice_follows_free_memory(tiny_bert, monkeypatch):
    import embedgui.engine.gradcache as gc

    model = load_embedder(str(tiny_bert), device="cpu", max_length=32, for_training=True)
    need = activation_bytes(model, 2048, 32)
    monkeypatch.setattr(gc, "free_memory_bytes", lambda device: 100 * need)
    assert choose_chunk(model, 1024, 1024) == 0  # fits: the plain computation
    monkeypatch.setattr(gc, "free_memory_bytes", lambda device: need // 4)
    chunk = choose_chunk(model, 1024, 1024)
    assert 8 <= chunk < 2048 and chunk & (chunk - 1) == 0
    assert activation_bytes(model, chunk, 32) <= gc.AUTO_CHUNK_SHARE * need // 4
    assert activation_bytes(model, 64, 64) == 4 * activation_bytes(model, 16, 64)


def test_config_switch_and_losses_it_cannot_cache(tiny_bert, tmp_path):
    base = InfoNCELoss(0.05)
    config = make_config(tiny_bert, tmp_path, "x")
    assert config.train.gradcache_chunk is None
    assert isinstance(with_gradcache(base, config), CachedInfoNCELoss)  # automatic
    config.train.gradcache_chunk = 0
    assert with_gradcache(base, config) is base
    config.train.gradcache_chunk = 16
    matryoshka = MatryoshkaLoss(base, [32, 16])
    with pytest.raises(ConfigError, match="train.gradcache_chunk"):
        with_gradcache(matryoshka, config)
    config.train.gradcache_chunk = None
    assert with_gradcache(matryoshka, config) is matryoshka
    with pytest.raises(ConfigError, match="train.gradcache_chunk"):
        make_config(tiny_bert, tmp_path, "y", gradcache_chunk=-1)


MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys, torch
    from transformers import BertConfig, BertModel, BertTokenizerFast
    from embedgui.engine.data import Pair, PairCollator
    from embedgui.engine.gradcache import CachedInfoNCELoss
    from embedgui.engine.loss import InfoNCELoss
    from embedgui.engine.modeling import load_embedder

    folder, chunk, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    model = load_embedder(folder, device="cpu", max_length=24, for_training=True)
    words = "the model data text train loss vector embedding token batch query document search".split()
    rows = [Pair(" ".join(words[(i + j) % len(words)] for j in range(20)) + f" {i}",
                 " ".join(words[(i * 3 + j) % len(words)] for j in range(20)) + f" {i}") for i in range(n)]
    batch = PairCollator(model.tokenizer, 24)(rows)
    loss = CachedInfoNCELoss(InfoNCELoss(), chunk) if chunk else InfoNCELoss()
    small = PairCollator(model.tokenizer, 24)(rows[:4])
    loss(model, small).loss.backward()  # allocator and kernels warm
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    loss(model, batch).loss.backward()
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
""")


@pytest.mark.slow
def test_gradcache_batch_of_1024_needs_far_less_peak_memory(tmp_path):
    """Peak RSS growth of one step on 1024 pairs: plain vs chunks of 64, and plain on 64 pairs (fresh processes)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from tests.conftest import _write_tiny_bert

    folder = _write_tiny_bert(tmp_path / "bert")  # its tokenizer, with a wider model for real activations
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=BertTokenizerFast.from_pretrained(folder).vocab_size, hidden_size=128,
                         num_hidden_layers=2, num_attention_heads=4, intermediate_size=512,
                         max_position_embeddings=64)).save_pretrained(folder)
    script = tmp_path / "memory.py"
    script.write_text(MEMORY_SCRIPT)
    peaks = {}
    for chunk, n in ((0, 1024), (64, 1024), (0, 64)):
        done = subprocess.run([sys.executable, str(script), str(folder), str(chunk), str(n)], capture_output=True,
                              text=True, timeout=600, cwd=ROOT,
                              env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, done.stderr[-2000:]
        peaks[chunk, n] = int(done.stdout.split()[-1])
    plain, cached, small = peaks[0, 1024], peaks[64, 1024], peaks[0, 64]
    print(f"peak RSS growth: plain 1024 {plain / 2**20:.0f} MiB, cached 1024 (chunks of 64) {cached / 2**20:.0f} MiB "
          f"(ratio {cached / max(plain, 1):.3f}), plain 64 {small / 2**20:.0f} MiB")
    assert plain > 50 * 2**20  # the plain step really needs memory, so the comparison means something
    assert cached < 0.3 * plain
