"""Profile training steps of the real loss and optimizer on the CPU: where does a step's time go?

python scripts/profile_step.py [--batch-size 32] [--max-length 64] [--steps 4] [--attn sdpa|eager]
                               [--dtype float32|bfloat16] [--pairs FILE]

Prints torch.profiler's table (self CPU time by operator) and a summary by phase: collation (tokenising),
forward, backward, optimizer. Used for docs/performance.md; --dtype bfloat16 runs forward and loss under bf16
autocast, as the trainer does on a CPU with native bf16; dropout and the attention kernel are set as the trainer sets
them on a CPU (off, and the plain kernel), unless --attn forces one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from embedgui.engine.data import PairCollator, make_loader, read_pairs  # noqa: E402
from embedgui.engine.loss import InfoNCELoss  # noqa: E402
from embedgui.engine.modeling import load_embedder, packaged_model_path, set_training_dropout  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--pairs", default=str(ROOT / "assets" / "sample_pairs.jsonl"))
    p.add_argument("--attn", default=None, help="attention implementation to force (sdpa, eager)")
    p.add_argument("--rows", type=int, default=25, help="rows of the operator table")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="autocast precision")
    args = p.parse_args()

    model = load_embedder(str(packaged_model_path()), device="cpu", max_length=args.max_length, for_training=True)
    if args.attn:
        model.backbone.set_attn_implementation(args.attn)
    print("attention implementation:", model.backbone.config._attn_implementation, "threads:",
          torch.get_num_threads())
    model.train()
    # As the trainer sets the model up: dropout off on a CPU (train.dropout empty), then the plain attention kernel.
    math_attention = set_training_dropout(model, None, None, torch.device("cpu")) and not args.attn
    print("dropout:", "off" if not any(m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)) else "on",
          "math attention kernel:", math_attention)
    kernels = (lambda: sdpa_kernel([SDPBackend.MATH])) if math_attention else contextlib.nullcontext
    rows, _ = read_pairs(args.pairs)
    collator = PairCollator(model.tokenizer, model.max_length)
    batches = iter(make_loader(rows, collator, batch_size=args.batch_size, seed=0))
    raw = iter(make_loader(rows, lambda r: r, batch_size=args.batch_size, seed=0))
    loss_fn = InfoNCELoss()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5, fused=True)  # as the trainer builds it

    phases: dict[str, float] = defaultdict(float)

    def step(record: bool) -> None:
        t0 = time.perf_counter()
        with torch.profiler.record_function("collate"):
            batch = collator(next(raw))
        t1 = time.perf_counter()
        with kernels():
            with torch.profiler.record_function("forward+loss"), torch.autocast("cpu", dtype=torch.bfloat16,
                                                                                enabled=args.dtype == "bfloat16"):
                out = loss_fn(model, batch)
            t2 = time.perf_counter()
            with torch.profiler.record_function("backward"):
                out.loss.backward()
        t3 = time.perf_counter()
        with torch.profiler.record_function("optimizer"):
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
        t4 = time.perf_counter()
        if record:
            for name, dt in zip(("collate", "forward+loss", "backward", "optimizer"), (t1 - t0, t2 - t1, t3 - t2,
                                                                                      t4 - t3)):
                phases[name] += dt

    del batches
    for _ in range(2):
        step(False)
    for _ in range(args.steps):  # timed without the profiler's overhead
        step(True)
    total = sum(phases.values())
    print(f"\nper step ({args.steps} steps, no profiler): {total / args.steps * 1e3:.0f} ms")
    for name, dt in phases.items():
        print(f"  {name:14s} {dt / args.steps * 1e3:8.1f} ms  {dt / total:6.1%}")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step(False)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
