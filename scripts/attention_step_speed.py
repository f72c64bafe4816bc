"""Time a training step (forward, backward, AdamW) with and without attention dropout, by text length, on the CPU.

python scripts/attention_step_speed.py [--texts 96] [--lengths 16 32 64 128] [--rounds 2] [--dtype bfloat16]

Three settings per length: the model's attention dropout (PyTorch then runs its plain "math" attention kernel),
no attention dropout on the kernel PyTorch picks (a fused one), and no attention dropout on the math kernel, which
is what the trainer does on a CPU when train.attention_dropout is empty (docs/performance.md). Each cell is the best
of two steps, repeated --rounds times with the settings interleaved (a busy machine shows as spread, not as a
setting's cost). Half the texts are padded to two thirds of the length, as real batches are.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from embedgui.engine.modeling import (  # noqa: E402
    attention_dropout,
    load_embedder,
    packaged_model_path,
    set_attention_dropout,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(packaged_model_path() or "sentence-transformers/all-MiniLM-L6-v2"))
    parser.add_argument("--texts", type=int, default=96, help="texts a step (batch 32 + positives + one negative)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="bfloat16")
    args = parser.parse_args()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    model = load_embedder(args.model, device="cpu", for_training=True)
    model.train()
    own = attention_dropout(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    dtype = torch.bfloat16 if args.dtype == "bfloat16" else None

    def step(length: int) -> float:
        ids = torch.randint(1000, 20000, (args.texts, length))
        mask = torch.ones_like(ids)
        mask[: args.texts // 2, length * 2 // 3:] = 0
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            out = model({"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)})
        out.float().pow(2).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
        return time.perf_counter() - start

    settings = {f"attention dropout {own:g} (math kernel)": (own, None),
                "attention dropout 0, kernel PyTorch picks": (0.0, None),
                "attention dropout 0, math kernel (the trainer on a CPU)": (0.0, SDPBackend.MATH)}
    times: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):
        for name, (rate, backend) in settings.items():
            set_attention_dropout(model, rate)
            with sdpa_kernel([backend]) if backend else contextlib.nullcontext():
                for length in args.lengths:
                    step(length)  # warm-up for this shape
                    times.setdefault((name, length), []).append(min(step(length) for _ in range(2)))
    print(f"{args.model}, {args.texts} texts a step, {args.dtype}, {torch.get_num_threads()} threads; seconds a step")
    print("setting".ljust(58) + "".join(f"{n} tokens".rjust(14) for n in args.lengths))
    for name in settings:
        cells = ["/".join(f"{t:.2f}" for t in times[(name, n)]) for n in args.lengths]
        print(name.ljust(58) + "".join(c.rjust(14) for c in cells))


if __name__ == "__main__":
    main()
