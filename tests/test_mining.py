"""Hard-negative mining: BM25 ranking, the false-negative filter, the model miner, and stopping."""

from __future__ import annotations

import threading

import pytest

from embedgui.engine.mining import MiningStopped, mine_hard_negatives
from embedgui.engine.text import tokenize


def test_bm25_ranks_the_lexically_closest_first():
    anchors = ["cat", "lion", "car", "tiger"]
    positives = [
        "a small domesticated feline animal kept as a pet",
        "a large wild feline animal living in prides in africa",
        "a road vehicle with four wheels and an engine",
        "a large wild feline animal with orange fur and black stripes",
    ]
    negs = mine_hard_negatives(anchors, positives, 2)
    assert negs[1][0] == positives[3] and negs[3][0] == positives[1]  # the other big wild cat
    assert negs[2][-1] != positives[2]
    assert negs == mine_hard_negatives(anchors, positives, 2)  # deterministic
    assert mine_hard_negatives(anchors, positives, 0) == [[], [], [], []]


def test_filter_rules():
    anchors = ["GPU", "CPU", "GPU", "TPU", "NPU", "Accelerator"]
    positives = [
        "A processor for parallel arithmetic.",
        "The general processor that runs the operating system; slower than a GPU at parallel arithmetic.",
        "Graphics card: a chip that draws images and trains networks in parallel.",  # GPU's second definition
        "A processor for parallel arithmetic!",  # punctuation-only change of row 0
        "A low-power processor that speeds up neural network inference on phones.",
        # Contains row 0's positive whole, yet shares few enough bigrams to pass the near-duplicate test.
        "A processor for parallel arithmetic. Found in phones, laptops, cars, consoles and data centres.",
    ]
    negs = mine_hard_negatives(anchors, positives, 6)
    assert positives[1] not in negs[0]  # mentions the anchor GPU
    assert positives[2] not in negs[0]  # another positive of the same anchor
    assert positives[3] not in negs[0] and positives[0] not in negs[3]  # near-duplicates
    assert positives[5] not in negs[0] and positives[0] not in negs[5]  # one contains the other
    assert positives[4] in negs[0] and positives[2] in negs[4]


class HashingEmbedder:
    """A fake model: L2-normalised bags of words hashed into 64 dimensions (deterministic)."""

    def encode(self, texts, batch_size=64):
        import numpy as np

        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in tokenize(text, "word"):
                out[i, sum(map(ord, word)) % 64] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_model_miner_with_fake_embedder():
    anchors = ["feline pet", "wild feline", "road vehicle", "striped feline"]
    positives = ["cat", "lion", "car", "tiger"]
    negs = mine_hard_negatives(anchors, positives, 2, method="model", embedder=HashingEmbedder())
    assert all(len(n) == 2 and positives[i] not in n for i, n in enumerate(negs))
    with pytest.raises(ValueError, match="needs an embedder"):
        mine_hard_negatives(anchors, positives, 2, method="model")


def test_stop_ends_mining_at_the_next_block():
    n = 600  # three blocks of 256 rows
    anchors = [f"term {i}" for i in range(n)]
    positives = [f"definition number {i} about topic {i % 7} and area {i % 11}" for i in range(n)]
    stop = threading.Event()
    done = []

    def on_progress(stage, rows_done, total):
        done.append(rows_done)
        stop.set()

    with pytest.raises(MiningStopped):
        mine_hard_negatives(anchors, positives, 2, on_progress=on_progress, stop=stop)
    assert done == [256]  # the first block finished; the second never started
    with pytest.raises(MiningStopped):  # already set: nothing is scored
        mine_hard_negatives(anchors[:4], positives[:4], 2, stop=stop)
    full = mine_hard_negatives(anchors, positives, 2, stop=threading.Event())
    assert len(full) == n and full == mine_hard_negatives(anchors, positives, 2)


def test_stop_while_the_model_encodes():
    stop = threading.Event()
    batches = []

    class SlowEmbedder(HashingEmbedder):
        def encode(self, texts, batch_size=64, on_batch=None):
            for start in range(0, len(texts), batch_size):
                batches.append(start)
                stop.set()  # pressed during the first batch
                if on_batch:
                    on_batch(min(start + batch_size, len(texts)), len(texts))
            return super().encode(texts, batch_size)

    anchors = [f"anchor {i}" for i in range(10)]
    positives = [f"positive text {i}" for i in range(10)]
    with pytest.raises(MiningStopped):
        mine_hard_negatives(anchors, positives, 2, method="model", embedder=SlowEmbedder(), batch_size=4, stop=stop)
    assert batches == [0]


def test_model_mining_skips_candidates_scored_almost_as_high_as_the_positive():
    """NV-Retriever's positive-aware filter: a candidate at >= 95% of the positive's score is probably a positive."""
    import numpy as np

    from embedgui.engine.mining import mine_hard_negatives

    class Fake:
        vectors = {"q": [1.0, 0.0], "right": [0.9, 0.436], "almost": [0.88, 0.475], "far": [0.5, 0.866],
                   "other q": [0.0, 1.0]}

        def encode(self, texts, batch_size=64):
            v = np.array([self.vectors[t] for t in texts], dtype=np.float32)
            return v / np.linalg.norm(v, axis=1, keepdims=True)

    anchors, positives = ["q", "other q", "other q"], ["right", "almost", "far"]
    mined = mine_hard_negatives(anchors, positives, 2, method="model", embedder=Fake())
    assert mined[0] == ["far"]  # "almost" scores 0.88 vs the positive's 0.9: skipped
    loose = mine_hard_negatives(anchors, positives, 2, method="model", embedder=Fake(), score_ratio=1.5)
    assert loose[0] == ["almost", "far"]
