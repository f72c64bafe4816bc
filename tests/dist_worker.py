"""One rank of tests/test_distributed.py's gather check, started by torchrun (not a test module itself).

Each rank computes, on the same tiny model, (1) the single-process loss and gradients on the whole batch, with no
gathering, and (2) the loss on its own share of the batch with cross-device negatives, then averages the gradients
over the ranks as the trainer does. It writes both to OUT/rank-<r>.json for the test to compare.

    torchrun --standalone --nproc_per_node 2 tests/dist_worker.py MODEL_DIR OUT_DIR
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from embedgui.engine import distributed
from embedgui.engine.config import Config
from embedgui.engine.data import Pair, PairCollator
from embedgui.engine.gradcache import CachedInfoNCELoss
from embedgui.engine.loss import InfoNCELoss, MatryoshkaLoss, SymmetricInfoNCELoss
from embedgui.engine.modeling import load_embedder_from_config

# 7 rows: the shares are 4 and 3 rows (unequal, so the ranks' loss weights matter), the hard negatives per row
# differ (so the ranks' candidate counts differ), row 5 repeats row 0's positive (a false negative across ranks)
# and row 6 repeats row 1's anchor with another positive.
ROWS = [
    Pair("gradient", "the slope of the loss", ["a layer of the network"]),
    Pair("token", "a piece of text", []),
    Pair("vector", "a list of numbers", ["a query to search", "the memory of a computer"]),
    Pair("batch", "rows trained together", []),
    Pair("embedding", "a vector for a text", ["a word in a sentence"]),
    Pair("slope", "the slope of the loss", []),
    Pair("token", "a word piece", ["the model data"]),
]


def losses(kind: str, gather: bool) -> torch.nn.Module:
    if kind == "plain":
        return InfoNCELoss(0.05, gather=gather)
    if kind == "symmetric":
        return SymmetricInfoNCELoss(0.05, gather=gather, learn_temperature=True)
    if kind == "matryoshka":
        return MatryoshkaLoss(InfoNCELoss(0.05, gather=gather), [32, 16, 8])
    if kind == "gradcache":
        return CachedInfoNCELoss(InfoNCELoss(0.05, gather=gather), chunk=2)
    raise ValueError(kind)


def grads(model: torch.nn.Module, loss: torch.nn.Module) -> list[torch.Tensor]:
    params = list(model.parameters()) + list(loss.parameters())
    return [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params]


def main(model_dir: str, out_dir: str) -> None:
    world = distributed.init(torch.device("cpu"))
    assert world.size == 2, world
    config = Config(model_id=model_dir, device="cpu")
    model = load_embedder_from_config(config, for_training=True)
    model.eval()  # no dropout: both computations see the same network
    collator = PairCollator(model.tokenizer, 32)
    results = {}
    for kind in ("plain", "symmetric", "matryoshka", "gradcache"):
        reference = losses(kind, gather=False)
        model.zero_grad(set_to_none=True)
        ref = reference(model, collator(ROWS))
        ref.loss.backward()
        ref_grads = grads(model, reference)

        gathered = losses(kind, gather=True)
        model.zero_grad(set_to_none=True)
        out = gathered(model, collator(distributed.shard(ROWS, world)))
        out.loss.backward()
        distributed.average_gradients(list(model.parameters()) + list(gathered.parameters()))
        dist_grads = grads(model, gathered)
        results[kind] = {
            "loss_reference": ref.loss.item(),
            "loss_gathered": distributed.mean_over_ranks(out.loss.detach()).item(),
            "grad_max_abs": max(g.abs().max().item() for g in ref_grads),
            "grad_max_diff": max((a - b).abs().max().item() for a, b in zip(ref_grads, dist_grads)),
            "params": len(ref_grads),
        }
    distributed.shutdown()
    # The process group must really end here: gloo threads that outlive it race the interpreter's exit (SIGABRT).
    results["gloo_threads_after_shutdown"] = gloo_threads()
    Path(out_dir, f"rank-{world.rank}.json").write_text(json.dumps(results))


def gloo_threads() -> list[str] | None:
    """Names of this process's gloo threads (Linux: /proc/self/task); None where that cannot be read."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    names = []
    for task in tasks:
        try:
            names.append(Path("/proc/self/task", task, "comm").read_text().strip())
        except OSError:  # the thread ended while we looked
            continue
    return sorted(n for n in names if "gloo" in n)


if __name__ == "__main__":
    main(*sys.argv[1:3])
