"""python -m embedgui bench: training throughput of the real trainer per precision (e.g. fp32 vs bf16 on a CPU).

With --against sentence-transformers: the side-by-side benchmark of embedgui.engine.benchmark (speed, FLOP/s share
of the matmul peak, peak memory, held-out recall before/after, encoding speed, memory against batch size).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ..engine.callbacks import Callback
from ..engine.config import DEFAULT_MODEL_ID, config_from_dict
from ..engine.device import cpu_bf16_is_faster
from ..engine.runner import USER_ERRORS
from ..engine.trainer import Trainer
from . import positive_int

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
    against = parser.add_argument_group("comparison (--against sentence-transformers)")
    against.add_argument("--against", choices=["sentence-transformers"],
                         help="train the same model on the same WordNet pairs with sentence-transformers too")
    against.add_argument("--step-counts", type=positive_int, nargs=2, default=[4, 24], metavar=("SHORT", "LONG"),
                         help="the two run lengths; time per step = difference of times / difference of steps")
    against.add_argument("--lr", type=float, default=2e-5)
    against.add_argument("--repeats", type=positive_int, default=1, help="runs of each length per tool (median)")
    against.add_argument("--modes", nargs="+", choices=["defaults", "matched"], default=["defaults", "matched"],
                         help="defaults: each tool's own dtype; matched: both bf16 where the CPU has it, else fp32")
    against.add_argument("--eval-terms", type=positive_int, default=1000, help="held-out WordNet terms")
    against.add_argument("--encode-texts", type=positive_int, default=1000, help="texts for the encoding speed")
    against.add_argument("--memory-batches", type=positive_int, nargs="*", default=[16, 64, 256],
                         help="contrastive batch sizes for peak memory (none: skip)")
    against.add_argument("--wordnet-dir", help="folder of the unpacked wordnet-base package (fetched when missing)")
    against.add_argument("--markdown", help="write the tables to this markdown file (between its bench markers "
                                            "if it has them, e.g. docs/benchmarks.md)")
    against.add_argument("--work-dir", help="keep the runs' files here (default: a temporary folder)")
    quality = parser.add_argument_group("quality in the same time (--quality)")
    quality.add_argument("--quality", action="store_true",
                         help="sentence-transformers at its defaults for one epoch (wall-clock T), then embedgui at "
                              "its defaults with a budget of T, on the same pairs; recall before and after")
    quality.add_argument("--data", nargs="+", default=None, metavar="NAME_OR_FILE",
                         help="wordnet, tech-glossary, debian-ko (default: all three), debian-en, manpages (two kinds "
                              "the defaults were not chosen on) or pairs files (30%% held out)")
    quality.add_argument("--train-pairs", type=positive_int, default=1024, help="training pairs per data set")
    quality.add_argument("--eval-queries", type=positive_int, default=1000,
                         help="held-out queries per data set (at most half of it)")
    quality.add_argument("--seeds", type=positive_int, default=1,
                         help="repeat each comparison with this many seeds (42, 43, ...: each its own split and "
                              "order) and report the means; one run's ratio of gains is noisy")
    quality.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                         help="change one of embedgui's defaults for this comparison (an ablation), e.g. "
                              "optim.lr=1e-4 or train.symmetric=true; repeat for more")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    if args.quality:
        return _run_quality(args)
    if args.against:
        return _run_against(args)
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


MARK_START, MARK_END = "<!-- bench:start -->", "<!-- bench:end -->"


def _overrides(pairs: list[str]) -> dict:
    out = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item}: write KEY=VALUE, e.g. optim.lr=1e-4.")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value  # a plain string (e.g. optim.scheduler=cosine)
    return out


def _lacks_st_training(option: str) -> bool:
    """Says so (and True) when sentence-transformers' trainer and its extras are not installed."""
    missing = [m for m in ("sentence_transformers", "datasets", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"error: {option} needs {', '.join(missing)}; install them with pip install "
              "'sentence-transformers[train]'.", file=sys.stderr)
    return bool(missing)


def _run_quality(args: argparse.Namespace) -> int:
    from ..engine.benchmark import BenchmarkError
    from ..engine.device import DeviceError, resolve_device
    from ..engine.quality import DATASETS, QualityError, QualitySettings, quality_table, run_quality
    from ..engine.wordnet import WordNetError

    if _lacks_st_training("--quality"):
        return 2
    try:
        settings = QualitySettings(model_id=args.model_id, device=resolve_device(args.device).type,
                                   datasets=tuple(args.data or DATASETS), train_pairs=args.train_pairs,
                                   eval_queries=args.eval_queries, seeds=args.seeds,
                                   overrides=_overrides(args.overrides))
        report = run_quality(settings, log=lambda text: print(text, file=sys.stderr), work_dir=args.work_dir)
    except (DeviceError, QualityError, WordNetError, BenchmarkError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    header, rows = quality_table(report)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.markdown:
        from ..engine.files import atomic_write_text

        table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        table += ["| " + " | ".join(r) + " |" for r in rows]
        atomic_write_text(args.markdown, "\n".join(table) + "\n")
    return 0


def _run_against(args: argparse.Namespace) -> int:
    from ..engine.bench_report import format_text
    from ..engine.benchmark import BenchmarkError, BenchSettings, run_benchmark
    from ..engine.device import DeviceError, resolve_device
    from ..engine.modeling import ModelLoadError
    from ..engine.wordnet import WordNetError

    if _lacks_st_training("--against sentence-transformers"):
        return 2
    try:
        device = resolve_device(args.device).type
    except DeviceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    settings = BenchSettings(
        model_id=args.model_id, device=device, batch_size=args.batch_size, max_length=args.max_length, lr=args.lr,
        step_counts=tuple(args.step_counts), repeats=args.repeats, modes=tuple(dict.fromkeys(args.modes)),
        eval_terms=args.eval_terms, encode_texts=args.encode_texts, memory_batches=tuple(args.memory_batches),
        wordnet_dir=args.wordnet_dir,
    )
    try:
        report = run_benchmark(settings, log=lambda text: print(text, file=sys.stderr), work_dir=args.work_dir)
    except (WordNetError, BenchmarkError, ModelLoadError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report["command"] = _command(args)
    report["date"] = time.strftime("%Y-%m-%d")
    print(format_text(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.markdown:
        _write_markdown(Path(args.markdown), report)
    return 0


def _command(args: argparse.Namespace) -> str:
    """The command line that repeats this comparison, every setting spelled out."""
    parts = ["python", "-m", "embedgui", "bench", "--against", "sentence-transformers", "--model-id", args.model_id,
             "--device", args.device, "--batch-size", str(args.batch_size), "--max-length", str(args.max_length),
             "--lr", str(args.lr), "--step-counts", *map(str, args.step_counts), "--repeats", str(args.repeats),
             "--modes", *args.modes, "--eval-terms", str(args.eval_terms), "--encode-texts", str(args.encode_texts),
             "--memory-batches", *map(str, args.memory_batches)]
    return shlex.join(parts)


def _write_markdown(path: Path, report: dict) -> None:
    """The tables between the file's bench markers (the text around them stays), or a new file with them."""
    from ..engine.bench_report import format_markdown
    from ..engine.files import atomic_write_text

    body = format_markdown(report, note=f"Measured {report['date']} with `{report['command']}`.")
    block = f"{MARK_START}\n{body}{MARK_END}\n"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if MARK_START in old and MARK_END in old:
        head, rest = old.split(MARK_START, 1)
        tail = rest.split(MARK_END, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        text = "# Benchmarks\n\n" + block
    atomic_write_text(path, text)
