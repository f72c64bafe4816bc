"""What one Trainer.fit builds and changes (Job), the log window, and the step's pure helpers.

Kept apart from trainer.py so the loop reads as its named steps; nothing here calls back into the trainer.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .callbacks import TrainState, read_metrics
from .config import Config
from .device import Precision
from .distributed import World
from .loss import LossOutput
from .modeling import Embedder
from .optimization import peak_factor
from .train_data import TrainingData


class TrainingError(RuntimeError):
    """Training stopped on a problem the user can act on; the message says what happened and what to try."""


@dataclass
class TrainResult:
    status: str  # finished | stopped
    step: int
    max_steps: int
    run_dir: str
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class Window:
    """Loss and accuracy summed on the device since the last log row; read once per row (nanoGPT's habit)."""

    loss: torch.Tensor | None = None
    acc: torch.Tensor | None = None
    n: int = 0  # micro-batches
    samples: int = 0
    start: float = field(default_factory=time.perf_counter)

    def add(self, out: LossOutput, samples: int) -> None:
        loss = out.loss.detach().float()
        acc = torch.as_tensor(out.accuracy, dtype=torch.float32, device=loss.device)
        self.loss = loss if self.loss is None else self.loss + loss
        self.acc = acc if self.acc is None else self.acc + acc
        self.n += 1
        self.samples += samples


@dataclass
class Job:
    """What one fit() builds and changes; the named steps read and update it instead of a dozen locals."""

    device: torch.device
    precision: Precision
    data: TrainingData
    batch_size: int  # train.batch_size capped at the row count
    accum: int
    steps_per_epoch: int
    metrics_path: Path
    resumed_from: Path | None = None
    model: Embedder | None = None
    optimizer: torch.optim.Optimizer | None = None
    scheduler: Any = None
    short_run_steps: int | None = None  # optim.short_run_steps as this run applies it (None: a run from before it)
    scaler: torch.amp.GradScaler | None = None
    batches: Iterator[dict[str, Any]] | None = None
    data_key: dict[str, Any] = field(default_factory=dict)  # what the data position means (checked on resume)
    consumed: int = 0  # batches drawn from the loader since the run began
    best: float | None = None
    steps_here: int = 0  # optimizer steps taken in this process
    phase: str = "set-up"  # set-up | train | eval: for the out-of-memory message
    step_start_consumed: int = 0  # the data position and RNG state where the current step began: a failed step
    step_rng: dict[str, Any] | None = None  # saves its snapshot from there
    # A fresh run in a used folder clears the old run's curve, snapshots and best weights only once it has
    # trained a step: Start pressed by mistake and stopped at once leaves the old run as it was.
    old_folder_pending: bool = True
    status: str = "finished"
    lr: float = 0.0
    grad_norm: torch.Tensor | None = None
    window: Window = field(default_factory=Window)
    world: World = field(default_factory=World)  # under torchrun: this process's rank among the processes
    math_attention: bool = False  # see attention_kernels

    @property
    def good_state(self) -> bool:
        """Something worth a snapshot: a step trained here, or the snapshot this run resumed from."""
        return self.steps_here > 0 or self.resumed_from is not None

    def attention_kernels(self) -> contextlib.AbstractContextManager:
        """The attention kernel of a training forward: PyTorch's plain (math) one where the trainer turned attention
        dropout off on a CPU. With dropout that is the kernel PyTorch used; without, it picks a fused one that is
        slower on short texts (MiniLM, 96 texts, bf16, forward and backward: 0.50 s against 0.28 s at 16 tokens,
        1.28 s against 0.90 s at 64), while the plain one without dropout is the fastest at every length measured
        (16-128 tokens; 2.45 s at 128 against 4.2 s with dropout)."""
        if not self.math_attention:
            return contextlib.nullcontext()
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel([SDPBackend.MATH])

    @property
    def autocast(self) -> dict[str, Any]:
        dtype = self.precision.autocast_dtype
        return {"device_type": self.device.type, "dtype": dtype, "enabled": dtype is not None}


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Every tensor of a collated batch (also inside the tokenised dicts) on the device."""
    def move(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(device, non_blocking=True)
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        return value

    return {k: move(v) for k, v in batch.items()}


def oom_message(device: torch.device, step: int, phase: str) -> str:
    if phase == "eval":
        return (f"Out of memory on {device} while evaluating after step {step}. Evaluation encodes "
                "train.batch_size texts at a time: lower train.batch_size or use a smaller eval file; the state "
                "after this step is saved, so resume.")
    return (f"Out of memory on {device} at step {step + 1}. Lower train.batch_size (raise train.grad_accum_steps "
            "to keep the effective batch), lower train.max_length, or set train.grad_checkpointing to true; then "
            "resume.")


def not_finite_message(what: str, value: object, step: int, saved_in: object | None) -> str:
    """A loss or gradient norm turned NaN/inf at step (1-based); saved_in: where the last good state went."""
    saved = f"the last good state is saved in {saved_in}" if saved_in else "nothing was trained yet"
    return (f"The {what} became {value} at step {step}; {saved}. Try dtype float32, a higher train.temperature "
            "(0.1-0.2) or a lower optim.lr, then resume.")


def finish_seconds(job: Job | None, step_seconds: float) -> float:
    """A generous estimate of the time the end of a run takes (the final evaluation, the snapshot, the model), from
    the time of a training step; what a time budget keeps free."""
    if job is None or job.model is None:
        return 0.0
    texts_per_step = job.batch_size * (2 + job.data.negatives.used_mean) * job.accum
    eval_texts = len(job.data.eval_rows) * (2 + job.data.negatives.used_mean)
    # A text's forward pass is about a third of its training cost (forward + backward).
    evaluation = eval_texts * step_seconds / max(texts_per_step, 1.0) / 3
    # The final snapshot (weights + Adam's two moments) and the model: ~4x the weights, at 300 MB/s. Measured on
    # the 2-core machine of docs/recipes.md: MiniLM's end (360 MB) took 0.65-1.0 s; the estimate, 1.7 s, keeps
    # room for a slower disk without leaving much of a short budget unused.
    bytes_written = 4 * sum(p.numel() * p.element_size() for p in job.model.parameters())
    return 1.5 * evaluation + bytes_written / 300e6 + 0.5


def run_summary(job: Job, state: TrainState, config: Config, data_info: dict[str, Any]) -> dict[str, Any]:
    """metrics_summary.json: how the run ended, where and how it trained, its first and last losses and evals."""
    rows = read_metrics(job.metrics_path)
    train_rows = [r for r in rows if r.get("kind") == "train"]
    eval_rows = [r for r in rows if r.get("kind") == "eval"]
    summary: dict[str, Any] = {
        "status": job.status, "steps": state.step, "max_steps": state.max_steps,
        "device": state.device, "precision": state.precision,
        "precision_reason": state.precision_reason, "processes": job.world.size,
        "max_minutes": config.train.max_minutes,
        # the peak rate that trained: optim.lr, raised for a short run (optim.short_run_steps)
        "peak_lr": (job.scheduler.base_lrs[0] * peak_factor(job.scheduler) if job.scheduler is not None
                    else config.optim.lr),
        "train_seconds": round(time.time() - state.started_at, 2), **data_info,
    }
    if train_rows:
        summary["first_loss"], summary["final_loss"] = train_rows[0]["loss"], train_rows[-1]["loss"]
        summary["final_acc"] = train_rows[-1]["acc"]
    if eval_rows:
        summary["final_eval"] = {k: v for k, v in eval_rows[-1].items() if k not in ("kind", "time")}
    if job.best is not None:
        summary["best_" + config.output.best_metric] = job.best
    return summary
