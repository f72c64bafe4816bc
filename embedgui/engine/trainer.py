"""The training loop: one Trainer used by the CLI and the GUI.

config -> data + model on the best device -> InfoNCE steps with mixed precision, accumulation, clipping and a
warmup/decay schedule -> callbacks (logs, evals) -> resumable snapshots -> the final model in Hugging Face and
sentence-transformers format, metrics.jsonl and a summary in output.save_dir/output.save_name.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .callbacks import Callback, JsonlCallback, TrainState
from .config import Config, ConfigError
from .data import (
    Pair,
    PairCollator,
    batches_per_pass,
    count_pairs,
    find_pairs_path,
    make_loader,
    read_pairs,
    split_pairs,
)
from .device import Precision, resolve_device, resolve_precision
from .loss import false_negative_mask, info_nce
from .modeling import Embedder, load_embedder_from_config

log = logging.getLogger(__name__)

CONFIG_NAME = "train_config.json"  # config.json in the run folder belongs to the Hugging Face model
EVAL_SPLIT_NAME = "eval_pairs.jsonl"  # the held-out rows of data.eval_split, so a run can be scored again later
METRICS_NAME = "metrics.jsonl"
SUMMARY_NAME = "metrics_summary.json"
SNAPSHOT_DIR = "checkpoints"
BEST_NAME = "best_model.pt"


class TrainingError(RuntimeError):
    """Training stopped on a problem the user can act on; the message says what happened and what to try."""


@dataclass
class TrainResult:
    status: str  # finished | stopped
    step: int
    max_steps: int
    run_dir: str
    summary: dict[str, Any] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:
        pass


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def latest_snapshot(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete snapshot folder (half-written ones end in .tmp and are never chosen)."""
    root = Path(run_dir) / SNAPSHOT_DIR
    done = sorted(p for p in root.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp"))
    return done[-1] if done else None


def _lr_lambda(kind: str, warmup: int, total: int):
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup  # the first step already gets a small, non-zero learning rate
        if kind == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return max(0.0, 1.0 - progress)

    return factor


def build_optimizer(model: torch.nn.Module, config: Config) -> torch.optim.Optimizer:
    """AdamW/Adam/SGD with no weight decay on biases and normalisation weights (the usual BERT recipe)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    groups = [{"params": decay, "weight_decay": config.optim.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    name, lr = config.optim.name, config.optim.lr
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    return torch.optim.SGD(groups, lr=lr, momentum=0.9)


class Trainer:
    """Runs one training job described by a Config; `fit(stop_event)` is safe to call from a background thread."""

    def __init__(self, config: Config, callbacks: list[Callback] | None = None):
        errors = config.validate()
        if errors:
            raise ConfigError(errors)
        self.config = config
        self.callbacks = list(callbacks or [])
        self.state = TrainState(epochs=config.train.epochs)
        self.run_dir = config.run_dir

    # -- callbacks -------------------------------------------------------------------------------------------
    def _emit(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self.state, *args)

    # -- set-up ----------------------------------------------------------------------------------------------
    def _load_data(self) -> tuple[list[Pair] | Path, int, list[Pair]]:
        """Training source (rows in memory, or the path when streaming), its row count, and eval rows."""
        c = self.config
        path = find_pairs_path(c.data.pairs_path, c.base_dir)
        eval_rows: list[Pair] = []
        if c.data.eval_path:
            eval_path = find_pairs_path(c.data.eval_path, c.base_dir, "data.eval_path")
            eval_rows, _ = read_pairs(eval_path, c.data.skip_invalid)
        if c.data.stream:
            n, skipped = count_pairs(path, c.data.skip_invalid)
            source: list[Pair] | Path = path
        else:
            rows, skipped = read_pairs(path, c.data.skip_invalid)
            if c.data.eval_split and not c.data.eval_path:
                rows, eval_rows = split_pairs(rows, c.data.eval_split, c.seed)
            source, n = rows, len(rows)
        if skipped:
            log.warning("Skipped %d invalid line(s) in %s (data.skip_invalid is on); first: %s", len(skipped), path,
                        skipped[0])
        log.info("Training data: %s, %d rows%s; eval rows: %d", path, n, " (streamed)" if c.data.stream else "",
                 len(eval_rows))
        self.data_info = {"pairs_path": str(path), "rows": n, "skipped_invalid": len(skipped),
                          "eval_rows": len(eval_rows)}
        return source, n, eval_rows

    def _evaluate(self, model: Embedder, eval_rows: list[Pair], precision: Precision) -> dict[str, float]:
        from .evaluate import evaluate_pairs

        def encode(texts: list[str]) -> torch.Tensor:
            return model.encode(texts, batch_size=self.config.train.batch_size,
                                autocast_dtype=precision.autocast_dtype)

        return evaluate_pairs(encode, eval_rows)

    # -- snapshots -------------------------------------------------------------------------------------------
    def _save_snapshot(self, model: Embedder, optimizer, scheduler, scaler, consumed: int, extra: dict,
                       rng: dict | None = None) -> Path:
        """model + optimizer + scheduler + scaler + RNG + data position, written to a .tmp folder then renamed."""
        root = self.run_dir / SNAPSHOT_DIR
        final = root / f"step-{self.state.step:08d}"
        tmp = root / (final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        torch.save(model.state_dict(), tmp / "model.pt")
        torch.save({
            "step": self.state.step, "consumed_batches": consumed, "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler else None,
            "rng": rng or _rng_state(), "extra": extra,
        }, tmp / "trainer_state.pt")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)  # atomic: resume only ever sees complete snapshots
        keep = self.config.output.keep_snapshots
        done = sorted(p for p in root.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp"))
        for old in done[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
        self._emit("on_save", str(final))
        return final

    def _restore(self, snapshot: Path, model: Embedder, optimizer, scheduler, scaler) -> tuple[int, dict]:
        model.load_state_dict(torch.load(snapshot / "model.pt", map_location=model.device))
        state = torch.load(snapshot / "trainer_state.pt", map_location="cpu", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler and state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        self.state.step = state["step"]
        return state["consumed_batches"], state.get("extra", {})

    def _truncate_metrics(self, path: Path, step: int) -> None:
        """Drop rows logged after the snapshot: the resumed run logs those steps again."""
        if not path.exists():
            return
        rows = [line for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip() and _row_step(line) <= step]
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
        os.replace(tmp, path)

    # -- the loop --------------------------------------------------------------------------------------------
    def fit(self, stop_event: threading.Event | None = None) -> TrainResult:
        """Train to the end, or until stop_event is set (then a snapshot is saved); returns what happened."""
        c = self.config
        stop_event = stop_event or threading.Event()
        state = self.state
        state.status, state.started_at, state.run_dir = "starting", time.time(), str(self.run_dir)
        device = resolve_device(c.device)
        if device.type == "mps":
            os.environ.setdefault("PYTORCH_MPS_HIGH_WATERMARK_RATIO", "0.0")
        precision = resolve_precision(c.dtype, device)
        state.device, state.precision = str(device), precision.name
        log.info("Device %s, precision %s (%s)", device, precision.name, precision.reason)

        snapshot = latest_snapshot(self.run_dir) if c.train.resume else None
        if c.train.resume and snapshot is None:
            raise TrainingError(f"Cannot resume: no snapshot in {self.run_dir / SNAPSHOT_DIR}; start without resume "
                                "(or check output.save_dir and output.save_name).")
        seed_everything(c.seed)
        source, n_rows, eval_rows = self._load_data()
        model = load_embedder_from_config(c, for_training=True)
        model.to(device)
        if c.train.grad_checkpointing:
            backbone = model.backbone
            if getattr(backbone, "supports_gradient_checkpointing", False):
                # transformers 5 renamed it; non-reentrant checkpointing works with inputs that need no grad
                if hasattr(backbone, "activation_checkpointing_enable"):
                    backbone.activation_checkpointing_enable({"use_reentrant": False})
                else:
                    backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            else:
                log.warning("train.grad_checkpointing: this model does not support it; training without.")
        model.train()

        per_pass = batches_per_pass(n_rows, c.train.batch_size)
        accum = c.train.grad_accum_steps
        steps_per_epoch = c.train.steps_per_epoch or max(1, per_pass // accum)
        state.max_steps = steps_per_epoch * c.train.epochs
        optimizer = build_optimizer(model, c)
        warmup = int(c.optim.warmup_ratio * state.max_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(c.optim.scheduler, warmup,
                                                                             state.max_steps))
        scaler = torch.amp.GradScaler(device.type) if precision.use_grad_scaler else None

        self.run_dir.mkdir(parents=True, exist_ok=True)
        metrics_path = self.run_dir / METRICS_NAME
        consumed, extra = 0, {}
        # What the data position means; a resume with other values would see other batches.
        data_key = {"batch_size": c.train.batch_size, "grad_accum_steps": accum, "stream": c.data.stream,
                    "rows": n_rows, "seed": c.seed}
        if snapshot is not None:
            consumed, extra = self._restore(snapshot, model, optimizer, scheduler, scaler)
            changed = {k: (v, data_key[k]) for k, v in extra.get("data", {}).items() if data_key.get(k) != v}
            if changed:
                log.warning("Resuming with changed data settings %s (snapshot value, now): the batches after the "
                            "snapshot differ from an uninterrupted run.", changed)
            self._truncate_metrics(metrics_path, state.step)
            c.save(self.run_dir / CONFIG_NAME)
            log.info("Resumed from %s (step %d)", snapshot, state.step)
        if eval_rows and c.data.eval_split and not c.data.eval_path:
            _write_pairs(eval_rows, self.run_dir / EVAL_SPLIT_NAME)
        if c.output.save_metrics and not any(isinstance(cb, JsonlCallback) for cb in self.callbacks):
            self.callbacks.append(JsonlCallback(metrics_path))
        best = extra.get("best")

        # The collator cuts texts at the model's real limit (train.max_length capped to its position table).
        if model.max_length < c.train.max_length:
            log.warning("train.max_length %d is more than this model takes; using %d.", c.train.max_length,
                        model.max_length)
        collator = PairCollator(model.tokenizer, model.max_length, c.train.pad_to_multiple_of,
                                c.data.max_hard_negatives)
        loader = make_loader(source, collator, batch_size=c.train.batch_size, seed=c.seed, shuffle=c.data.shuffle,
                             start_batch=consumed, num_workers=c.train.num_workers,
                             pin_memory=device.type == "cuda", shuffle_buffer=c.data.shuffle_buffer,
                             skip_invalid=c.data.skip_invalid)
        batches = iter(loader)
        state.epoch = min(state.step // steps_per_epoch + 1, c.train.epochs)
        state.status = "running"
        self._emit("on_train_begin")

        def snapshot_now(at_consumed: int, rng: dict | None = None) -> Path:
            return self._save_snapshot(model, optimizer, scheduler, scaler, at_consumed,
                                       {"best": best, "data": data_key}, rng)

        window: dict[str, float] = {"loss": 0.0, "acc": 0.0, "n": 0, "samples": 0}
        window_start = time.perf_counter()
        status = "finished"
        # A fresh run in a used folder clears the old run's curve, snapshots and best weights only once it has
        # trained a step: Start pressed by mistake and stopped at once leaves the old run as it was.
        old_folder_pending = snapshot is None
        steps_here, phase, lr, grad_norm = 0, "train", 0.0, 0.0
        step_start_consumed, step_rng = consumed, _rng_state()
        autocast = {"device_type": device.type, "dtype": precision.autocast_dtype,
                    "enabled": precision.autocast_dtype is not None}
        try:
            while state.step < state.max_steps:
                if stop_event.is_set():
                    status = "stopped"
                    if window["n"]:  # the steps since the last log row still get their point on the chart
                        self._emit("on_log", self._window_logs(window, window_start, accum, lr, grad_norm))
                    break
                phase, step_start_consumed, step_rng = "train", consumed, _rng_state()
                good_state = steps_here > 0 or snapshot is not None  # something worth a snapshot
                optimizer.zero_grad(set_to_none=True)
                for _ in range(accum):
                    batch = next(batches)
                    consumed += 1
                    anchor = {k: v.to(device, non_blocking=True) for k, v in batch["anchor"].items()}
                    cands = {k: v.to(device, non_blocking=True) for k, v in batch["candidates"].items()}
                    with torch.autocast(**autocast):
                        a = model(anchor)
                        p = model(cands)
                    mask = false_negative_mask(batch["anchor_ids"], batch["positive_ids"], batch["candidate_ids"],
                                               batch["candidate_rows"]).to(device)
                    out = info_nce(a, p, c.train.temperature, mask)
                    if not torch.isfinite(out.loss):
                        where = snapshot_now(step_start_consumed, step_rng) if good_state else None
                        self._fail_non_finite("loss", out.loss.item(), where)
                    (scaler.scale(out.loss / accum) if scaler else out.loss / accum).backward()
                    window["loss"] += out.loss.item()
                    window["acc"] += out.accuracy
                    window["n"] += 1
                    window["samples"] += batch["size"]
                if scaler:
                    scaler.unscale_(optimizer)
                max_norm = c.optim.max_grad_norm or float("inf")
                grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm))
                if not math.isfinite(grad_norm) and scaler is None:
                    where = snapshot_now(step_start_consumed, step_rng) if good_state else None
                    self._fail_non_finite("gradient norm", grad_norm, where)
                lr = scheduler.get_last_lr()[0]  # the rate this step uses
                if scaler:
                    scaler.step(optimizer)  # skips the step when fp16 gradients overflowed, then lowers the scale
                    scaler.update()
                else:
                    optimizer.step()
                scheduler.step()
                state.step += 1
                steps_here += 1
                step_start_consumed = consumed
                state.epoch = min((state.step - 1) // steps_per_epoch + 1, c.train.epochs)
                if old_folder_pending:
                    self._clear_old_run(metrics_path)
                    old_folder_pending = False

                if state.step % c.train.log_every == 0 or state.step == state.max_steps:
                    self._emit("on_log", self._window_logs(window, window_start, accum, lr, grad_norm))
                    window = {"loss": 0.0, "acc": 0.0, "n": 0, "samples": 0}
                    window_start = time.perf_counter()
                last = state.step == state.max_steps
                if eval_rows and ((c.train.eval_every and state.step % c.train.eval_every == 0) or last):
                    phase = "eval"
                    metrics = self._evaluate(model, eval_rows, precision)
                    phase = "train"
                    self._emit("on_evaluate", metrics)
                    score = metrics.get(c.output.best_metric)
                    if c.output.keep_best and score is not None and (best is None or score > best):
                        best = score
                        _atomic_torch_save(model.state_dict(), self.run_dir / BEST_NAME)
                if c.train.save_every and state.step % c.train.save_every == 0 and not last:
                    snapshot_now(consumed)
        except torch.OutOfMemoryError as e:
            state.status, state.message = "failed", _oom_message(device, state.step, phase)
            optimizer.zero_grad(set_to_none=True)  # frees the partial gradients so the snapshot has room
            if steps_here or snapshot is not None:
                try:
                    snapshot_now(step_start_consumed, step_rng if phase == "train" else None)
                except (RuntimeError, OSError):
                    log.exception("Could not save a snapshot after running out of memory")
            self._emit("on_train_end")
            raise TrainingError(state.message) from e
        except TrainingError as e:
            state.status, state.message = "failed", str(e)
            self._emit("on_train_end")
            raise
        except OSError as e:  # disk full, folder removed, data file gone
            state.status = "failed"
            state.message = (f"A file operation failed during training ({e}); check free disk space and that "
                             f"{self.run_dir} and the data file are still there, then resume.")
            self._emit("on_train_end")
            raise TrainingError(state.message) from e

        if steps_here == 0:
            state.status = "stopped"
            state.message = f"stopped before the first step; {self.run_dir} was left as it was"
            self._emit("on_train_end")
            return TrainResult("stopped", state.step, state.max_steps, str(self.run_dir), {})
        snapshot_now(consumed)
        if status == "finished" and c.output.keep_best and (self.run_dir / BEST_NAME).exists():
            model.load_state_dict(torch.load(self.run_dir / BEST_NAME, map_location=model.device))
            log.info("Keeping the best model (%s = %.4f)", c.output.best_metric, best)
        model.save(self.run_dir)
        summary = self._summary(metrics_path, status, best)
        if c.output.save_metrics:
            (self.run_dir / SUMMARY_NAME).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        state.status = status
        state.message = f"{status} at step {state.step}/{state.max_steps}; model saved in {self.run_dir}"
        self._emit("on_train_end")
        return TrainResult(status, state.step, state.max_steps, str(self.run_dir), summary)

    def _window_logs(self, window: dict, start: float, accum: int, lr: float, grad_norm: float) -> dict[str, float]:
        """One log row: loss and accuracy averaged over the batches since the last row, and the speed."""
        elapsed = max(time.perf_counter() - start, 1e-9)
        return {"loss": window["loss"] / window["n"], "acc": window["acc"] / window["n"], "lr": lr,
                "grad_norm": grad_norm, "samples_per_s": window["samples"] / elapsed,
                "steps_per_s": window["n"] / accum / elapsed, "elapsed_s": time.time() - self.state.started_at}

    def _clear_old_run(self, metrics_path: Path) -> None:
        """Remove what a previous run left in this folder (its curve, snapshots, best weights); save our config."""
        metrics_path.unlink(missing_ok=True)
        (self.run_dir / BEST_NAME).unlink(missing_ok=True)
        shutil.rmtree(self.run_dir / SNAPSHOT_DIR, ignore_errors=True)
        self.config.save(self.run_dir / CONFIG_NAME)

    def _fail_non_finite(self, what: str, value: float, where: Path | None) -> None:
        saved = f"the last good state is saved in {where}" if where else "nothing was trained yet"
        raise TrainingError(
            f"The {what} became {value} at step {self.state.step + 1}; {saved}. Try dtype float32, a higher "
            "train.temperature (0.1-0.2) or a lower optim.lr, then resume."
        )

    def _summary(self, metrics_path: Path, status: str, best: float | None) -> dict[str, Any]:
        from .callbacks import read_metrics

        rows = read_metrics(metrics_path)
        train_rows = [r for r in rows if r.get("kind") == "train"]
        eval_rows = [r for r in rows if r.get("kind") == "eval"]
        summary: dict[str, Any] = {
            "status": status, "steps": self.state.step, "max_steps": self.state.max_steps,
            "device": self.state.device, "precision": self.state.precision,
            "train_seconds": round(time.time() - self.state.started_at, 2), **self.data_info,
        }
        if train_rows:
            summary["first_loss"], summary["final_loss"] = train_rows[0]["loss"], train_rows[-1]["loss"]
            summary["final_acc"] = train_rows[-1]["acc"]
        if eval_rows:
            summary["final_eval"] = {k: v for k, v in eval_rows[-1].items() if k not in ("kind", "time")}
        if best is not None:
            summary["best_" + self.config.output.best_metric] = best
        return summary


def _row_step(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
        return 1 << 62  # a torn line is dropped


def _write_pairs(rows: list[Pair], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"anchor": r.anchor, "positive": r.positive, "hard_negatives": r.hard_negatives},
                               ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _oom_message(device: torch.device, step: int, phase: str) -> str:
    if phase == "eval":
        return (f"Out of memory on {device} while evaluating after step {step}. Evaluation encodes "
                "train.batch_size texts at a time: lower train.batch_size or use a smaller eval file; the state "
                "after this step is saved, so resume.")
    return (f"Out of memory on {device} at step {step + 1}. Lower train.batch_size (raise train.grad_accum_steps "
            "to keep the effective batch), lower train.max_length, or set train.grad_checkpointing to true; then "
            "resume.")
