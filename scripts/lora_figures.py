"""Peak memory and step time of LoRA against full fine-tuning on a ~0.6B decoder with random weights (no download).

python scripts/lora_figures.py [--model-dir /tmp/qwen3-0.6b-random] [--batch-size 4] [--max-length 32] [--steps 3]

Builds (once) a Qwen3 model of Qwen3-Embedding-0.6B's shape (595,776,512 parameters) with random weights and a tiny
word-level tokenizer, then trains it for a few steps with embedgui's own loader (load_embedder, train.lora through
peft), InfoNCE loss and optimizer (build_optimizer: AdamW), once per setting, each in its own subprocess so that
peak RSS (resource.getrusage) belongs to that setting alone. fp32 on the CPU; every text is exactly max_length
tokens. Random weights are fine here: time and memory do not depend on the values. Used for docs/models.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("the a cat dog sat on mat query passage instruct given search retrieve what is an embedding model data "
         "text train loss vector token batch learning network layer weight document score term word").split()
SETTINGS = {"full": None, "lora": {}}  # train.lora: None = full fine-tuning, {} = LoRA with the defaults


def build_model(path: Path) -> None:
    """A Qwen3-Embedding-0.6B-shaped Qwen3Model with random weights and a tiny WordLevel tokenizer."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3Model

    eos = "<|endoftext|>"
    vocab = {t: i for i, t in enumerate([eos, "<unk>", *dict.fromkeys(WORDS)])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(single=f"$A {eos}", pair=f"$A {eos} $B {eos}",
                                                      special_tokens=[(eos, vocab[eos])])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token=eos, pad_token=eos, unk_token="<unk>",
                                  padding_side="left", model_max_length=512)
    torch.manual_seed(0)
    cfg = Qwen3Config(vocab_size=151669, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                      num_attention_heads=16, num_key_value_heads=8, head_dim=128, tie_word_embeddings=True,
                      max_position_embeddings=512, rope_parameters={"rope_type": "default", "rope_theta": 1e6},
                      pad_token_id=0, eos_token_id=0, bos_token_id=None)
    model = Qwen3Model(cfg)
    print(f"built {sum(p.numel() for p in model.parameters()):,} parameters", flush=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)


def child(setting: str, model_dir: str, batch_size: int, max_length: int, steps: int) -> dict:
    """Train `steps` steps in this process; the figures of one setting."""
    import random

    import torch

    from embedgui.engine.config import Config
    from embedgui.engine.loss import InfoNCELoss
    from embedgui.engine.modeling import load_embedder
    from embedgui.engine.optimization import build_optimizer

    def peak_gib() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux

    t0 = time.perf_counter()
    model = load_embedder(model_dir, device="cpu", max_length=max_length, for_training=True,
                          lora=SETTINGS[setting])
    load_s, load_peak = time.perf_counter() - t0, peak_gib()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    config = Config()
    loss_fn = InfoNCELoss(config.train.temperature, mask_false_negatives=False)
    optimizer = build_optimizer(model, config)
    rng = random.Random(0)

    def texts() -> list[str]:  # max_length words: with the end-of-text token every text is cut to max_length
        return [" ".join(rng.choice(WORDS) for _ in range(max_length)) for _ in range(batch_size)]

    def tokens(batch: list[str]) -> dict[str, torch.Tensor]:
        return model.tokenizer(batch, padding="max_length", truncation=True, max_length=max_length,
                               return_tensors="pt")

    times = []
    for _ in range(steps):
        batch = {"anchor": tokens(texts()), "candidates": tokens(texts())}
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        out = loss_fn(model, batch)
        out.loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return {"setting": setting, "trainable": trainable, "total": total, "load_s": load_s,
            "load_peak_gib": load_peak, "peak_gib": peak_gib(), "step_s": times,
            "threads": torch.get_num_threads()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", default="/tmp/qwen3-0.6b-random")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-length", type=int, default=32)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--settings", default="lora,full", help="comma-separated: lora, full")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child == "build":
        build_model(Path(args.model_dir))
        return
    if args.child:
        result = child(args.child, args.model_dir, args.batch_size, args.max_length, args.steps)
        print("RESULT " + json.dumps(result), flush=True)
        return
    model_dir = Path(args.model_dir)
    if not (model_dir / "config.json").exists():
        t0 = time.perf_counter()
        # Its own process too: building the model must not count in either setting's peak.
        subprocess.run([sys.executable, __file__, "--model-dir", str(model_dir), "--child", "build"], check=True)
        print(f"model written to {model_dir} in {time.perf_counter() - t0:.0f} s", flush=True)
    results = []
    for setting in args.settings.split(","):
        cmd = [sys.executable, __file__, "--child", setting, "--model-dir", str(model_dir), "--batch-size",
               str(args.batch_size), "--max-length", str(args.max_length), "--steps", str(args.steps)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        line = next((s for s in proc.stdout.splitlines() if s.startswith("RESULT ")), None)
        if proc.returncode or line is None:
            sys.exit(f"{setting} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        results.append(json.loads(line[len("RESULT "):]))
        print(f"{setting} done: {results[-1]}", flush=True)
    print(f"\nbatch {args.batch_size} pairs, max_length {args.max_length}, {args.steps} steps, fp32, CPU, "
          f"{results[0]['threads']} threads")
    print("| setting | trainable parameters | peak RSS after load | peak RSS | step times | mean after the first |")
    print("|---|---|---|---|---|---|")
    for r in results:
        later = r["step_s"][1:] or r["step_s"]
        mean = sum(later) / len(later)
        steps = ", ".join(f"{t:.1f}" for t in r["step_s"])
        print(f"| {r['setting']} | {r['trainable']:,} of {r['total']:,} ({100 * r['trainable'] / r['total']:.2f}%) "
              f"| {r['load_peak_gib']:.1f} GiB | {r['peak_gib']:.1f} GiB | {steps} s | {mean:.1f} s |")

if __name__ == "__main__":
    main()
