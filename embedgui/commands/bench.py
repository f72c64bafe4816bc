"""python -m embedgui bench: training throughput of the real trainer per precision (e.g. fp32 vs bf16 on a CPU)."""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
from pathlib import Path

from ..engine.callbacks import Callback
from ..engine.config import DEFAULT_MODEL_ID, config_from_dict
from ..engine.device import cpu_bf16_is_faster
from ..engine.runner import USER_ERRORS
from ..engine.trainer import Trainer

SAMPLE_PAIRS = Path(__file__).resolve().parents[2] / "assets" / "sample_pairs.jsonl"


class _Rows(Callback):
    def __init__(self):
        self.rows: list[dict] = []

    def on_log(self, state, logs):
        self.rows.append(dict(logs))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-id", default=DEFAULT_MODEL_ID)
    parser.add_argument("--pairs", default=str(SAMPLE_PAIRS), help="pairs.jsonl to train on (default: the sample)")
    parser.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"], help="precisions to compare")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="timed steps (after --warmup untimed ones)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", help="write the results to this file")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    print(f"cpu bf16 probe: {cpu_bf16_is_faster()[1]}", file=sys.stderr)
    results = []
    for dtype in args.dtype:
        rows = _Rows()
        with tempfile.TemporaryDirectory() as out:
            config = config_from_dict({
                "model_id": args.model_id, "device": args.device, "dtype": dtype,
                "train": {"batch_size": args.batch_size, "max_length": args.max_length, "log_every": 1,
                          "steps_per_epoch": args.warmup + args.steps},
                "optim": {"warmup_ratio": 0.0}, "data": {"pairs_path": args.pairs},
                "output": {"save_dir": out, "save_name": "bench", "save_metrics": False},
            })
            try:
                trainer = Trainer(config, callbacks=[rows])
                trainer.fit()
            except USER_ERRORS as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
        timed = rows.rows[args.warmup:]
        samples = statistics.median(r["samples_per_s"] for r in timed)
        result = {"dtype": dtype, "precision": trainer.state.precision, "device": trainer.state.device,
                  "samples_per_s": round(samples, 2), "step_s": round(args.batch_size / samples, 3),
                  "final_loss": round(timed[-1]["loss"], 4), "batch_size": args.batch_size,
                  "max_length": args.max_length, "steps": len(timed)}
        results.append(result)
        print(f"{dtype:>9} ({result['precision']} on {result['device']}): {samples:8.1f} samples/s, "
              f"{result['step_s']:.3f} s/step, loss {result['final_loss']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0
