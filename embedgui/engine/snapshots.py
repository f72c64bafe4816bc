"""Resumable snapshots of a run: model + optimizer + scheduler + scaler + RNG + data position, written atomically.

A snapshot is a folder checkpoints/step-00000042 holding model.pt, trainer_state.pt and meta.json (step,
precision, device: what a resume must know before it loads the model). It is written as step-....tmp and renamed,
so resume only ever sees complete snapshots; a failed write removes the .tmp and leaves older snapshots as they were.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from .files import SaveError, atomic_path, atomic_write_text, save_error

log = logging.getLogger(__name__)

SNAPSHOT_DIR = "checkpoints"
BEST_NAME = "best_model.pt"
META_NAME = "meta.json"


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _complete(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp"))


def latest_snapshot(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete snapshot folder (half-written ones end in .tmp and are never chosen)."""
    done = _complete(Path(run_dir) / SNAPSHOT_DIR)
    return done[-1] if done else None


def read_meta(snapshot: Path) -> dict[str, Any]:
    """meta.json of a snapshot: step, precision, device (older snapshots have only trainer_state.pt: step only)."""
    try:
        return json.loads((snapshot / META_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = torch.load(snapshot / "trainer_state.pt", map_location="cpu", weights_only=False)
        return {"step": state["step"]}


def _nbytes(tensors: Iterable[Any]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


def save_snapshot(run_dir: Path, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                  scheduler: Any, scaler: Any, consumed: int, extra: dict[str, Any], meta: dict[str, Any],
                  keep: int, rng: dict[str, Any] | None = None, loss: torch.nn.Module | None = None) -> Path:
    """Write checkpoints/step-<step> atomically, then prune to the newest `keep`; SaveError names the free space.

    loss: a loss with state of its own (a learned temperature), saved with the trainer state.
    """
    root = run_dir / SNAPSHOT_DIR
    final = root / f"step-{step:08d}"
    root.mkdir(parents=True, exist_ok=True)
    model_state = model.state_dict()
    try:
        with atomic_path(final) as tmp:
            shutil.rmtree(tmp, ignore_errors=True)  # left by a process killed while writing
            tmp.mkdir()
            torch.save(model_state, tmp / "model.pt")
            torch.save({
                "step": step, "consumed_batches": consumed, "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler else None,
                "rng": rng or rng_state(), "extra": extra, "loss": _loss_state(loss),
            }, tmp / "trainer_state.pt")
            (tmp / META_NAME).write_text(json.dumps({"step": step, **meta}, indent=2) + "\n", encoding="utf-8")
            # Only now, with the new one complete, may a snapshot of the same step (a stop right after a
            # periodic save) make way for it.
            shutil.rmtree(final, ignore_errors=True)
    except SaveError as e:
        optimizer_bytes = _nbytes(v for s in optimizer.state.values() for v in s.values())
        raise save_error(final, e.__cause__ or e, _nbytes(model_state.values()) + optimizer_bytes) from e
    for old in _complete(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _loss_state(loss: torch.nn.Module | None) -> dict[str, Any] | None:
    state = loss.state_dict() if isinstance(loss, torch.nn.Module) else {}
    return state or None  # a loss without parameters or buffers (the usual fixed temperature) saves nothing


def restore_snapshot(snapshot: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                     scaler: Any, loss: torch.nn.Module | None = None) -> tuple[int, int, dict[str, Any]]:
    """Load a snapshot into the given objects and restore the RNG; returns (step, consumed batches, extra)."""
    model.load_state_dict(torch.load(snapshot / "model.pt", map_location=next(model.parameters()).device))
    state = torch.load(snapshot / "trainer_state.pt", map_location="cpu", weights_only=False)
    if isinstance(loss, torch.nn.Module) and _loss_state(loss):
        saved = state.get("loss")
        if saved is None:  # snapshot of a run with a fixed temperature: the learned one starts from train.temperature
            log.warning("The snapshot %s has no learned temperature; it starts again from train.temperature.",
                        snapshot)
        else:
            # The loss is already on the training device; load_state_dict copies the values onto it.
            loss.load_state_dict(saved)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler and state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    set_rng_state(_own_rng(state["rng"]))
    extra = dict(state.get("extra", {}))
    # A snapshot from before optim.short_run_steps trained at optim.lr: its run goes on so (the trainer reads this).
    saved = [fn for fn in state["scheduler"].get("lr_lambdas") or [] if isinstance(fn, dict)]
    extra["short_runs"] = any("short_run_steps" in fn for fn in saved)
    return state["step"], state["consumed_batches"], extra


def _own_rng(rng: dict[str, Any]) -> dict[str, Any]:
    """This process's RNG state from a snapshot: under torchrun each rank saved its own (dropout draws differ)."""
    from .distributed import current

    world, ranks = current(), rng.get("ranks")
    if ranks and len(ranks) == world.size:
        return ranks[world.rank]
    if ranks and world.size > 1:
        log.warning("The snapshot was taken with %d processes and this run has %d: dropout masks after the resume "
                    "differ from an uninterrupted run.", len(ranks), world.size)
    return rng


def save_best(model: torch.nn.Module, path: Path) -> None:
    """The best weights so far, replaced atomically (a failed write keeps the previous best)."""
    state = model.state_dict()
    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except SaveError as e:
        raise save_error(path, e.__cause__ or e, _nbytes(state.values())) from e


def truncate_metrics(path: Path, step: int) -> None:
    """Drop rows logged after the snapshot: the resumed run logs those steps again."""
    if not path.exists():
        return
    rows = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and _row_step(line) <= step]
    atomic_write_text(path, "".join(r + "\n" for r in rows))


def _row_step(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
        return 1 << 62  # a torn line is dropped

