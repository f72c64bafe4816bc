"""Side-by-side training benchmark: embedgui's Trainer against sentence-transformers' trainer on the same data.

Same model, WordNet pairs, batch size, max_length, learning rate and steps for both tools. Each training run is a
fresh process (`python -m embedgui.engine.benchmark SPEC OUT`), so its peak resident memory is its own. The time
of one step is the difference of a short and a long run divided by the difference of their step counts: model
loading, data reading and saving cancel. The two tools alternate run by run so a drift of the machine's load
hits both. Model FLOP/s = 6 x matmul parameters x real (non-padding) tokens per second, as a share of the peak
measured here with large matmuls of the same dtype.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import DEFAULT_MODEL_ID
from .data import Pair, read_pairs, write_pairs
from .files import atomic_write_text

EMBEDGUI = "embedgui"
ST = "sentence-transformers"
TOOLS = (EMBEDGUI, ST)
MODES = ("defaults", "matched")
FLAGS_SHOWN = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8", "bf16",
               "asimd", "sve")


class BenchmarkError(RuntimeError):
    """A benchmark run failed; the message names the run and the last lines of its output."""


@dataclass
class BenchSettings:
    model_id: str = DEFAULT_MODEL_ID
    device: str = "cpu"
    batch_size: int = 32
    max_length: int = 64
    lr: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    temperature: float = 0.05  # sentence-transformers' scale = 1 / temperature = 20, its default
    step_counts: tuple[int, int] = (4, 24)
    repeats: int = 1
    modes: tuple[str, ...] = MODES
    eval_terms: int = 1000
    encode_texts: int = 1000
    memory_batches: tuple[int, ...] = (16, 64, 256)
    memory_steps: int = 2
    seed: int = 42
    wordnet_dir: str | None = None


# -- the machine ------------------------------------------------------------------------------------------------
def machine_info(device: str = "cpu") -> dict[str, Any]:
    """CPU model, the flags that matter for matmuls, cores, threads and library versions."""
    from .device import _cpu_info

    model, flags = _cpu_info()
    info: dict[str, Any] = {
        "cpu": model, "machine": platform.machine(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "flags": sorted(f for f in FLAGS_SHOWN if flags and f in flags), "torch": torch.__version__,
        "python": platform.python_version(), "native_bf16": native_bf16(device),
    }
    for name in ("transformers", "sentence-transformers"):
        try:  # the installed version without importing the package (seconds for sentence-transformers)
            info[name.replace("-", "_")] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            info[name.replace("-", "_")] = None
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def native_bf16(device: str = "cpu") -> bool:
    """Whether the device runs bfloat16 matmuls natively (AVX512-BF16/AMX, ARM bf16, a bf16 GPU)."""
    if device == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    from .device import _cpu_info

    flags = _cpu_info()[1] or set()
    return bool({"avx512_bf16", "amx_bf16", "bf16"} & flags)


def matmul_peak(dtype: torch.dtype, device: str = "cpu", sizes: Sequence[int] = (1024, 2048),
                repeats: int = 5) -> float:
    """The best FLOP/s of square matmuls of these sizes in dtype: the machine's practical peak."""
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        torch.mm(a, b)  # warm-up: kernel selection, page faults
        for _ in range(repeats):
            _sync(device)
            t = time.perf_counter()
            torch.mm(a, b)
            _sync(device)
            best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


# -- data -------------------------------------------------------------------------------------------------------
@dataclass
class BenchData:
    train_path: Path
    eval_path: Path
    memory_path: Path
    train_rows: int
    eval_rows: int
    wordnet_pairs: int
    wordnet_dir: str


def prepare_data(settings: BenchSettings, work: Path) -> BenchData:
    """WordNet pairs split by term; the training file holds exactly batch x long-run steps pairs."""
    from .wordnet import find_wordnet, read_wordnet, split_by_term

    folder = find_wordnet(settings.wordnet_dir)
    pairs = read_wordnet(folder)
    train, held_out = split_by_term(pairs, settings.eval_terms, seed=settings.seed)
    rng = random.Random(settings.seed)
    rng.shuffle(train)
    # The long run sees every training pair once (in each tool's own order): the same pairs, the same tokens.
    need = settings.batch_size * max(settings.step_counts)
    memory_need = max(settings.memory_batches or (0,)) * settings.memory_steps
    if max(need, memory_need) > len(train):
        raise ValueError(f"The benchmark needs {max(need, memory_need)} training pairs; WordNet gives {len(train)}.")
    data = BenchData(work / "train.jsonl", work / "eval.jsonl", work / "memory.jsonl", need, len(held_out), len(pairs),
                     str(folder))
    write_pairs(data.train_path, train[:need])
    write_pairs(data.eval_path, held_out)
    write_pairs(data.memory_path, train[:max(memory_need, 1)])
    return data


def real_tokens_per_pair(tokenizer: Any, pairs: Sequence[Pair], max_length: int) -> float:
    """Mean tokens of anchor + positive after truncation, special tokens included, padding excluded."""
    texts = [p.anchor for p in pairs] + [p.positive for p in pairs]
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    return sum(lengths) / len(pairs)


def matmul_params(model: torch.nn.Module) -> tuple[int, int]:
    """(all parameters, parameters used in matmuls): embedding tables are looked up, not multiplied."""
    total = sum(p.numel() for p in model.parameters())
    lookup = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding))
    return total, total - lookup


# -- one training run, in its own process -------------------------------------------------------------------------
def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Train as spec says with one tool; wall seconds, precision, peak RSS, and held-out metrics when asked."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out = Path(spec["out_dir"])
    if spec["tool"] == EMBEDGUI:
        result, model_dir = _train_embedgui(spec, out)
    else:
        result, model_dir = _train_st(spec, out)
    if spec.get("eval_path"):
        result["metrics"] = evaluate_saved(model_dir, spec["eval_path"], spec["device"], spec["max_length"],
                                           spec["batch_size"])
    return result


def _train_embedgui(spec: dict[str, Any], out: Path) -> tuple[dict[str, Any], Path]:
    from .callbacks import Callback
    from .config import config_from_dict
    from .trainer import Trainer

    class LastLog(Callback):
        loss = float("nan")
        begin = end = 0.0

        def on_train_begin(self, state):
            self.begin = time.perf_counter()

        def on_log(self, state, logs):  # log_every = steps: one row, right after the last step
            self.loss, self.end = logs["loss"], time.perf_counter()

    last = LastLog()
    config = config_from_dict({
        "model_id": spec["model_path"], "device": spec["device"], "dtype": spec["dtype"], "seed": spec["seed"],
        "train": {"batch_size": spec["batch_size"], "max_length": spec["max_length"], "log_every": spec["steps"],
                  "steps_per_epoch": spec["steps"], "temperature": spec["temperature"]},
        "optim": {"lr": spec["lr"], "warmup_ratio": spec["warmup_ratio"], "weight_decay": spec["weight_decay"]},
        "data": {"pairs_path": spec["pairs_path"]},
        "output": {"save_dir": str(out), "save_name": "embedgui", "save_metrics": False},
    })
    start = time.perf_counter()
    trainer = Trainer(config, callbacks=[last])
    trainer.fit()
    wall = time.perf_counter() - start
    result = {"wall_s": wall, "loop_s": last.end - last.begin, "peak_rss_mb": peak_rss_mb(),
              "precision": trainer.state.precision, "precision_reason": trainer.state.precision_reason,
              "final_loss": last.loss}
    if spec["device"] == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result, Path(trainer.run_dir)


def _train_st(spec: dict[str, Any], out: Path) -> tuple[dict[str, Any], Path]:
    import transformers
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from transformers import TrainerCallback

    try:  # sentence-transformers 6 moved the losses; 5 has them only here
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    except ImportError:
        from sentence_transformers.losses import MultipleNegativesRankingLoss

    class Clock(TrainerCallback):
        begin = end = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.begin = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.end = time.perf_counter()

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    start = time.perf_counter()
    model = SentenceTransformer(spec["model_path"], device=spec["device"])
    model.max_seq_length = spec["max_length"]
    pairs, _ = read_pairs(spec["pairs_path"])
    dataset = Dataset.from_dict({"anchor": [p.anchor for p in pairs], "positive": [p.positive for p in pairs]})
    bf16 = spec["dtype"] == "bfloat16"
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out / "st-trainer"), max_steps=spec["steps"], per_device_train_batch_size=spec["batch_size"],
        learning_rate=spec["lr"], warmup_steps=spec["warmup_ratio"], weight_decay=spec["weight_decay"],
        max_grad_norm=1.0, lr_scheduler_type="linear", bf16=bf16, seed=spec["seed"], save_strategy="no",
        logging_steps=spec["steps"], report_to="none", disable_tqdm=True, use_cpu=spec["device"] == "cpu",
    )
    loss = MultipleNegativesRankingLoss(model, scale=1.0 / spec["temperature"])
    clock = Clock()
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss, callbacks=[clock])
    output = trainer.train()
    wall = time.perf_counter() - start
    result = {"wall_s": wall, "loop_s": clock.end - clock.begin, "peak_rss_mb": peak_rss_mb(),
              "precision": "bfloat16" if bf16 else "float32",
              "precision_reason": "bf16=True training argument" if bf16 else "sentence-transformers default (fp32)",
              "final_loss": float(output.training_loss)}
    if spec["device"] == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    model_dir = out / "st-model"
    if spec.get("eval_path"):
        model.save(str(model_dir))  # after the clock and the memory reading: evaluation uses the same code for both
    return result, model_dir


def evaluate_saved(model_dir: str | Path, eval_path: str | Path, device: str, max_length: int,
                   batch_size: int) -> dict[str, float]:
    """Held-out metrics of a model folder through one evaluator for both tools (fp32, embedgui's encode): the
    `evaluate` command's, so a model with query/document prompts (its own, or data.query_prompt in a --set row) is
    scored with them, as it was trained."""
    from .evaluate import evaluate_model

    return evaluate_model(str(model_dir), eval_path, device=device, max_length=max_length,
                          batch_size=batch_size).metrics


def _spawn(spec: dict[str, Any], work: Path, name: str, module: str = "embedgui.engine.benchmark") -> dict[str, Any]:
    """Run one worker process (`python -m MODULE SPEC OUT`); its result, or BenchmarkError with its output's tail."""
    spec_path, out_path = work / f"{name}.spec.json", work / f"{name}.result.json"
    atomic_write_text(spec_path, json.dumps(spec))
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    try:  # a stuck worker must not hang the command: an hour is far beyond any sane benchmark run
        done = subprocess.run([sys.executable, "-m", module, str(spec_path), str(out_path)],
                              capture_output=True, text=True, env=env, timeout=3600)
    except subprocess.TimeoutExpired:
        raise BenchmarkError(f"benchmark run {name} did not finish within an hour; it was stopped.") from None
    if done.returncode or not out_path.exists():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise BenchmarkError(f"benchmark run {name} failed (exit {done.returncode}):\n{tail}")
    return json.loads(out_path.read_text(encoding="utf-8"))


# -- the whole benchmark ------------------------------------------------------------------------------------------
@dataclass
class ToolResult:
    tool: str
    mode: str
    precision: str
    precision_reason: str
    step_s: float  # from the wall times of whole runs (start-up cancels)
    step_s_loop: float  # the same from the training loop's own clock (start-up excluded, not just cancelled)
    reliable: bool  # False: the long run was not slower than the short one (a noisy machine); step_s is an upper bound
    pairs_per_s: float
    tokens_per_s: float
    model_flops: float  # FLOP/s
    peak_share: float  # of the measured matmul peak for this precision
    peak_rss_mb: float
    final_loss: float
    walls: dict[str, list[float]] = field(default_factory=dict)  # step count -> wall seconds of each repeat
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    peak_gpu_mb: float | None = None


def mode_dtypes(mode: str, bf16: bool) -> dict[str, str]:
    """Per tool, the dtype a mode trains in: each tool's default, or the same precision for both."""
    if mode == "defaults":
        return {EMBEDGUI: "auto", ST: "float32"}
    matched = "bfloat16" if bf16 else "float32"
    return {EMBEDGUI: matched, ST: matched}


def run_benchmark(settings: BenchSettings, log: Callable[[str], None] = print,
                  work_dir: str | Path | None = None) -> dict[str, Any]:
    """Every measurement of the comparison, as one JSON-serialisable report."""
    from .modeling import load_embedder, resolve_model_path

    short, long = sorted(settings.step_counts)
    if short < 1 or long <= short:
        raise ValueError(f"step counts {settings.step_counts}: need two different counts of at least 1, like 4 24.")
    own_tmp = tempfile.TemporaryDirectory(prefix="embedgui-bench-") if work_dir is None else None
    work = Path(work_dir or own_tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    say = log

    def log(text: str) -> None:
        say(f"[{time.time() - started:5.0f} s] {text}")

    try:
        machine = machine_info(settings.device)
        log(f"machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}, "
            f"native bf16: {machine['native_bf16']}")
        data = prepare_data(settings, work)
        model_path = resolve_model_path(settings.model_id)
        base = load_embedder(model_path, device=settings.device, max_length=settings.max_length)
        train_pairs, _ = read_pairs(data.train_path)
        tokens = real_tokens_per_pair(base.tokenizer, train_pairs, base.max_length)
        params, params_mm = matmul_params(base.backbone)
        bf16 = machine["native_bf16"]
        log("measuring the matmul peak")
        peaks = {"float32": matmul_peak(torch.float32, settings.device)}
        if bf16:
            peaks["bfloat16"] = matmul_peak(torch.bfloat16, settings.device)
        log("evaluating the base model on the held-out split")
        before = evaluate_saved(model_path, data.eval_path, settings.device, settings.max_length, settings.batch_size)
        del base

        common = {"model_path": model_path, "device": settings.device, "batch_size": settings.batch_size,
                  "max_length": settings.max_length, "lr": settings.lr, "warmup_ratio": settings.warmup_ratio,
                  "weight_decay": settings.weight_decay, "temperature": settings.temperature, "seed": settings.seed,
                  "pairs_path": str(data.train_path)}
        runs: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
        flip = False
        for mode in settings.modes:
            dtypes = mode_dtypes(mode, bf16)
            for r in range(settings.repeats):
                for steps in (short, long):
                    order = TOOLS[::-1] if flip else TOOLS
                    flip = not flip  # ABBA order: a steady drift in the machine's load hits both tools alike
                    for tool in order:
                        name = f"{mode}-{tool}-{steps}-{r}"
                        evaluate = steps == long and r == 0
                        log(f"run {name} ({dtypes[tool]})")
                        spec = {**common, "tool": tool, "dtype": dtypes[tool], "steps": steps,
                                "out_dir": str(work / name), "eval_path": str(data.eval_path) if evaluate else None}
                        runs.setdefault((mode, tool, steps), []).append(_spawn(spec, work, name))

        results = []
        for mode in settings.modes:
            for tool in TOOLS:
                shorts, longs = runs[(mode, tool, short)], runs[(mode, tool, long)]
                step_s = _per_step(shorts, longs, "wall_s", short, long)
                step_loop = _per_step(shorts, longs, "loop_s", short, long)
                reliable = step_s > 0
                if not reliable:  # the whole long run per step: start-up included, so an upper bound
                    step_s = statistics.median(x["wall_s"] for x in longs) / long
                pairs_s = settings.batch_size / step_s
                flops = 6 * params_mm * tokens * pairs_s
                precision = longs[0]["precision"]
                results.append(ToolResult(
                    tool, mode, precision, longs[0]["precision_reason"], step_s, step_loop, reliable, pairs_s,
                    tokens * pairs_s, flops,
                    flops / peaks.get(precision, peaks["float32"]), max(x["peak_rss_mb"] for x in longs),
                    longs[0]["final_loss"], {str(short): [x["wall_s"] for x in shorts],
                                             str(long): [x["wall_s"] for x in longs]},
                    before, longs[0].get("metrics", {}), longs[0].get("peak_gpu_mb")))

        log("timing evaluation encoding")
        encoding = encode_speed(model_path, settings, data.eval_path, bf16)
        memory = []
        for b in settings.memory_batches:
            log(f"memory run at batch {b}")
            spec = {**common, "tool": EMBEDGUI, "dtype": "auto", "steps": settings.memory_steps, "batch_size": b,
                    "pairs_path": str(data.memory_path), "out_dir": str(work / f"memory-{b}"), "eval_path": None}
            got = _spawn(spec, work, f"memory-{b}")
            memory.append({"batch_size": b, "peak_rss_mb": got["peak_rss_mb"], "precision": got["precision"],
                           "peak_gpu_mb": got.get("peak_gpu_mb")})
        return {
            "settings": {**asdict(settings), "step_counts": [short, long]}, "machine": machine,
            "matmul_peak_flops": peaks,
            "data": {"source": "WordNet 3.0 (Debian wordnet-base) lemma -> gloss", "wordnet_dir": data.wordnet_dir,
                     "wordnet_pairs": data.wordnet_pairs, "train_pairs": data.train_rows,
                     "held_out_terms": data.eval_rows, "real_tokens_per_pair": tokens},
            "model": {"id": settings.model_id, "path": model_path, "params": params, "matmul_params": params_mm},
            "results": [asdict(r) for r in results], "ratios": ratios(results), "encoding": encoding,
            "memory": memory, "seconds": time.time() - started,
        }
    finally:
        if own_tmp is not None:
            own_tmp.cleanup()


def _per_step(shorts: list[dict[str, Any]], longs: list[dict[str, Any]], key: str, short: int, long: int) -> float:
    """Seconds per step from the medians of the short and the long runs."""
    return (statistics.median(x[key] for x in longs) - statistics.median(x[key] for x in shorts)) / (long - short)


def ratios(results: Sequence[ToolResult]) -> dict[str, dict[str, float]]:
    """Per mode: embedgui's pairs/s, memory and recall@1 over sentence-transformers'."""
    out: dict[str, dict[str, float]] = {}
    for mode in dict.fromkeys(r.mode for r in results):
        e = next(r for r in results if r.mode == mode and r.tool == EMBEDGUI)
        s = next(r for r in results if r.mode == mode and r.tool == ST)
        out[mode] = {"pairs_per_s": e.pairs_per_s / s.pairs_per_s, "peak_rss": e.peak_rss_mb / s.peak_rss_mb}
        if e.after and s.after:
            out[mode]["recall@1_after_minus"] = e.after["recall@1"] - s.after["recall@1"]
    return out


def encode_speed(model_path: str, settings: BenchSettings, eval_path: Path, bf16: bool,
                 rounds: int = 2) -> list[dict[str, Any]]:
    """texts/s of embedgui's Embedder.encode and SentenceTransformer.encode on the same texts, alternated."""
    from sentence_transformers import SentenceTransformer

    from .modeling import load_embedder

    pairs, _ = read_pairs(eval_path)
    texts = [t for p in pairs for t in (p.anchor, p.positive)][:settings.encode_texts]
    ours = load_embedder(model_path, device=settings.device, max_length=settings.max_length)
    theirs = SentenceTransformer(model_path, device=settings.device)
    theirs.max_seq_length = settings.max_length
    batch = settings.batch_size
    out = []
    for dtype in ([torch.float32, torch.bfloat16] if bf16 else [torch.float32]):
        auto = None if dtype == torch.float32 else dtype

        def run_ours(ts: list[str], auto: torch.dtype | None = auto) -> None:
            ours.encode(ts, batch_size=batch, autocast_dtype=auto)

        def run_theirs(ts: list[str], auto: torch.dtype | None = auto) -> None:
            with torch.autocast(settings.device, dtype=auto or torch.float32, enabled=auto is not None):
                theirs.encode(ts, batch_size=batch, convert_to_tensor=True, show_progress_bar=False)

        run_ours(texts[:batch])  # warm-up
        run_theirs(texts[:batch])
        seconds: dict[str, list[float]] = {EMBEDGUI: [], ST: []}
        for r in range(rounds):
            for tool, fn in ((EMBEDGUI, run_ours), (ST, run_theirs))[:: -1 if r % 2 else 1]:
                t = time.perf_counter()
                fn(texts)
                seconds[tool].append(time.perf_counter() - t)
        name = "float32" if auto is None else "bfloat16"
        speeds = {tool: len(texts) / min(s) for tool, s in seconds.items()}
        out.append({"precision": name, "texts": len(texts), "embedgui_texts_per_s": speeds[EMBEDGUI],
                    "st_texts_per_s": speeds[ST], "ratio": speeds[EMBEDGUI] / speeds[ST]})
    return out


# -- the report ------------------------------------------------------------------------------------------------------
def _main(argv: list[str]) -> int:
    spec_path, out_path = argv
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    result = run_worker(spec)
    atomic_write_text(out_path, json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
