"""Optimizer, learning-rate schedule and seeding for the trainer."""

from __future__ import annotations

import math
import random
from typing import Any

import torch

from .config import Config

# Learning rate floor for a loss's own parameters (the learned temperature): at a fine-tuning rate of 2e-5 Adam
# moves log(temperature) by at most ~2e-5 a step, so it would never move; 1e-3 lets it change by up to ~10% in
# 100 steps. The schedule (warmup, decay) applies to it as to the model.
LOSS_PARAM_MIN_LR = 1e-3


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:
        pass


def short_run_factor(total_steps: int, short_run_steps: int | None) -> float:
    """optim.short_run_steps: a run of fewer steps than this trains at a peak rate raised by
    sqrt(short_run_steps / steps), at most twice optim.lr (None or 0 = never raised).

    Why: in the same time as sentence-transformers, the small data sets (106 and 423 pairs: 9 and 27 steps) gained
    more at 7e-5 and 1e-4 than at 5e-5, while the sets that got 80-110 steps did as well or better at 5e-5
    (docs/recipes.md). A run of a few dozen steps, a tenth of them warming up, otherwise ends before it has moved.
    """
    if not short_run_steps or total_steps >= short_run_steps:
        return 1.0
    return min(2.0, math.sqrt(short_run_steps / max(1, total_steps)))


class Schedule:
    """The learning-rate factor of a step: linear warmup over warmup_ratio of the steps, then linear/cosine decay or
    constant, times short_run_factor for a short run. An object, not a closure: a time budget resizes it once it
    knows how many steps fit, and LambdaLR keeps its fields (kind, warmup, total, peak) in the snapshot, so a
    resumed run follows the same schedule."""

    def __init__(self, kind: str, warmup_ratio: float, total: int, short_run_steps: int | None = None):
        self.kind, self.warmup_ratio, self.short_run_steps = kind, warmup_ratio, short_run_steps
        self.resize(total)

    def resize(self, total: int) -> None:
        self.total = max(1, int(total))
        self.warmup = int(self.warmup_ratio * self.total)
        self.peak = short_run_factor(self.total, self.short_run_steps)

    def __call__(self, step: int) -> float:
        return self.peak * self._shape(step)

    def _shape(self, step: int) -> float:
        warmup, total = self.warmup, self.total
        if warmup and step < warmup:
            return (step + 1) / warmup  # the first step already gets a small, non-zero learning rate
        if self.kind == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        if self.kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return max(0.0, 1.0 - progress)


def build_optimizer(model: torch.nn.Module, config: Config,
                    loss: torch.nn.Module | None = None) -> torch.optim.Optimizer:
    """AdamW/Adam/SGD with no weight decay on biases and normalisation weights (the usual BERT recipe).

    loss: a loss module with trainable parameters of its own (a learned temperature); they get a group of their
    own, without weight decay (it would pull log(temperature) towards 0, i.e. the temperature towards 1).
    """
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    groups = [{"params": decay, "weight_decay": config.optim.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    loss_params = [p for p in loss.parameters() if p.requires_grad] if isinstance(loss, torch.nn.Module) else []
    if loss_params:
        groups.append({"params": loss_params, "weight_decay": 0.0,
                       "lr": max(config.optim.lr, LOSS_PARAM_MIN_LR)})
    name, lr = config.optim.name, config.optim.lr
    # The fused kernels update every tensor in one pass instead of ~400 small ops a step (profiled on CPU: 7% of a
    # MiniLM step); they exist for CPU and CUDA float parameters.
    params = [p for g in groups for p in g["params"]]
    fused = bool(params) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    if name in ("adamw", "adam"):
        cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
        return cls(groups, lr=lr, fused=fused or None)
    return torch.optim.SGD(groups, lr=lr, momentum=0.9)


def build_scheduler(optimizer: torch.optim.Optimizer, config: Config, total_steps: int,
                    short_runs: bool = True) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over optim.warmup_ratio of the steps, then linear/cosine decay or constant (see Schedule).

    short_runs=False: no short-run raise yet (a time budget's provisional total says nothing about the run's
    length; its first plan turns the raise on through resize_schedule)."""
    schedule = Schedule(config.optim.scheduler, config.optim.warmup_ratio, total_steps,
                        config.optim.short_run_steps if short_runs else None)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


_KEEP = object()


def resize_schedule(scheduler: torch.optim.lr_scheduler.LambdaLR, total_steps: int,
                    short_run_steps: Any = _KEEP) -> None:
    """Stretch or shrink the schedule to total_steps (a time budget's plan); steps taken keep their rates.
    short_run_steps: set optim.short_run_steps as well (the budget's first plan, a resumed run's config)."""
    for fn in scheduler.lr_lambdas:
        if isinstance(fn, Schedule):
            if short_run_steps is not _KEEP:
                fn.short_run_steps = short_run_steps
            fn.resize(total_steps)


def follow_config(scheduler: torch.optim.lr_scheduler.LambdaLR, base_lrs: list[float], total_steps: int,
                  short_run_steps: int | None) -> None:
    """After a resume: the rates of the config it resumes with (optim.lr, optim.short_run_steps) and the run's
    total of steps, from the step it resumes at. The snapshot restores its own base rates and schedule, so without
    this a lower optim.lr (the advice after a NaN) or more train.epochs would change nothing, or train the added
    steps at a rate of zero. With the config unchanged every rate is the one the snapshot had."""
    scheduler.base_lrs = list(base_lrs)
    resize_schedule(scheduler, total_steps, short_run_steps)
    for group, base, fn in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["initial_lr"] = base
        group["lr"] = base * fn(scheduler.last_epoch)  # the next step's rate, as LambdaLR.step() would set it
    scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]


def short_run_note(scheduler: torch.optim.lr_scheduler.LambdaLR) -> str | None:
    """The log's sentence when optim.short_run_steps raises the peak rate (None when it does not)."""
    fn = next((fn for fn in scheduler.lr_lambdas if isinstance(fn, Schedule)), None)
    if fn is None or fn.peak <= 1.0:
        return None
    lr = scheduler.base_lrs[0]
    return (f"A short run ({fn.total} steps, fewer than optim.short_run_steps {fn.short_run_steps}): peak learning "
            f"rate {lr * fn.peak:.2g}, {fn.peak:.2f} x optim.lr {lr:.2g} (set optim.short_run_steps to 0 to train "
            "at optim.lr).")


def peak_factor(scheduler: torch.optim.lr_scheduler.LambdaLR) -> float:
    """How far the schedule raises optim.lr at its peak (short_run_factor); 1.0 for a normal run."""
    return max((fn.peak for fn in scheduler.lr_lambdas if isinstance(fn, Schedule)), default=1.0)
