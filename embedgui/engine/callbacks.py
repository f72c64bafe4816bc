"""Training state and callbacks: what the trainer tells the outside world (CLI progress bar, GUI charts, files)."""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .device import ThreadGovernor
from .files import new_lines


@dataclass
class TrainState:
    """Where a run is; JSON-serialisable so it can be saved, queued and shown."""

    step: int = 0
    max_steps: int = 0
    epoch: int = 0  # 1-based epoch the current step belongs to
    epochs: int = 0
    status: str = "idle"  # idle | starting | running | stopping | stopped | finished | failed
    device: str = ""
    precision: str = ""
    run_dir: str = ""
    message: str = ""
    started_at: float = 0.0
    precision_reason: str = ""  # why this precision, e.g. "auto: this GPU supports bfloat16"
    hard_negatives_per_row: float = 0.0  # mean hard negatives per training row actually used
    rows: int = 0  # training rows (after the held-out split), once the data is read

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# The phases on_phase reports: set-up reads the data, loads the model and (on resume) restores the snapshot, then
# training alternates with evaluation. A UI shows them in its own words, keyed by these names.
PHASES = {"data": "reading the data", "model": "loading the model", "mine": "mining hard negatives",
          "resume": "restoring the snapshot",
          "train": "training", "eval": "evaluating"}


@dataclass
class TrainerControl:
    """What callbacks may ask of the loop (transformers' TrainerControl.should_training_stop); read between steps.

    A stop asked here ends the run as the Stop button does: a snapshot and the model are saved, status "stopped".
    """

    should_stop: bool = False
    reason: str = ""
    planned_steps: int | None = None  # a new total of steps for the run (a time budget's plan), applied by the loop

    def stop(self, reason: str) -> None:
        """Ask the run to stop after the current step; the reason ends up in the run's final message."""
        self.should_stop, self.reason = True, reason

    def plan(self, steps: int) -> None:
        """Ask the run to end at step `steps` as a finished run (its schedule stretched or shrunk to fit)."""
        self.planned_steps = int(steps)


class Callback:
    """Override the hooks you need; the trainer calls them in its own thread.

    `self.control` is set by the trainer when fit() starts: a hook may call `self.control.stop("why")` (a time
    budget, early stopping).
    """

    control: TrainerControl

    def on_train_begin(self, state: TrainState) -> None:
        pass

    def on_phase(self, state: TrainState, phase: str) -> None:
        """What the run is busy with now, one of PHASES; state.message says it in English."""

    def on_step_end(self, state: TrainState) -> None:
        pass

    def on_log(self, state: TrainState, logs: dict[str, float]) -> None:
        pass

    def on_evaluate(self, state: TrainState, metrics: dict[str, float]) -> None:
        pass

    def on_save(self, state: TrainState, path: str) -> None:
        pass

    def on_train_end(self, state: TrainState) -> None:
        pass


class JsonlCallback(Callback):
    """Appends one JSON row per log step ("kind": "train") and per evaluation ("kind": "eval") to metrics.jsonl."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def _append(self, row: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()

    def on_log(self, state: TrainState, logs: dict[str, float]) -> None:
        self._append({"kind": "train", "step": state.step, "epoch": state.epoch, "time": time.time(), **logs})

    def on_evaluate(self, state: TrainState, metrics: dict[str, float]) -> None:
        self._append({"kind": "eval", "step": state.step, "epoch": state.epoch, "time": time.time(), **metrics})


class QueueCallback(Callback):
    """Puts (event, state dict, payload) on a queue for a UI thread to drain; never blocks the trainer."""

    def __init__(self, q: queue.Queue):
        self.q = q

    def _put(self, event: str, state: TrainState, payload: Any = None) -> None:
        self.q.put_nowait((event, state.to_dict(), payload))

    def on_train_begin(self, state: TrainState) -> None:
        self._put("begin", state)

    def on_phase(self, state: TrainState, phase: str) -> None:
        self._put("phase", state, phase)

    def on_log(self, state: TrainState, logs: dict[str, float]) -> None:
        self._put("log", state, dict(logs))

    def on_evaluate(self, state: TrainState, metrics: dict[str, float]) -> None:
        self._put("eval", state, dict(metrics))

    def on_save(self, state: TrainState, path: str) -> None:
        self._put("save", state, path)

    def on_train_end(self, state: TrainState) -> None:
        self._put("end", state)


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a metrics.jsonl (a torn last line from a crash is ignored)."""
    rows = []
    try:
        with Path(path).open(encoding="utf-8") as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    except FileNotFoundError:
        return []
    return rows


class TimeLimit(Callback):
    """Stops a run after `minutes` of training (a hosted app's cap); the run ends as a Stop does, saved.

    used: seconds this run already trained before (earlier starts of a resumed run), so resuming does not
    restart the clock; `used` grows as the run trains. The clock starts when the callback is made, just before the
    trainer: downloading the model and mining negatives hold the app's one run as training does, so they count.
    """

    def __init__(self, minutes: float, used: float = 0.0):
        self.seconds = minutes * 60.0
        self.used = self.before = used
        self.started = time.monotonic()

    def _tick(self) -> None:
        self.used = self.before + time.monotonic() - self.started

    def on_step_end(self, state: TrainState) -> None:
        self._tick()
        if self.used >= self.seconds:
            self.control.stop(f"the {self.seconds / 60:g}-minute limit of this app was reached")

    def on_train_end(self, state: TrainState) -> None:
        self._tick()


class TimeBudget(Callback):
    """train.max_minutes: plans the run so that it ends, evaluated and saved, within the budget.

    The clock starts when the trainer is made (before data and model loading, which count). The first step, with
    its warm-up, is not timed. From the first timed step on, after every step, it asks the loop for as many steps
    as the time left holds at the average time of the last 50 steps (the median while there are fewer than five
    timings, so one odd step cannot skew the first plan; then the mean, the first timing left out), keeping
    `reserve(step_seconds)` for the final evaluation and saving and half the slowest recent step as a margin;
    the loop sizes the learning-rate schedule (warmup, decay) to that total, so a budgeted run is complete, not
    cut off. Steps differ in time (length-grouped batches: a batch of long texts takes several times a short
    one), so a plan made from one step is only a first guess: re-planning at every step uses the whole budget
    when the first timed steps were slow, and shrinks the plan when the machine gets busier.
    """

    def __init__(self, minutes: float, reserve: Callable[[float], float] | None = None, calibrate: int = 1,
                 window: int = 50):
        self.seconds = minutes * 60.0
        self.reserve = reserve or (lambda step_seconds: 0.0)
        self.calibrate, self.window = calibrate, window
        self.started = time.monotonic()
        self.last_mark: float | None = None  # the clock after the last step of this process
        self.timings = 0  # steps timed so far
        self.first_gap = 0.0  # the first timing (may still carry warm-up)
        self.gaps: deque[float] = deque(maxlen=window)  # the later timings, the last `window` of them
        self.step_seconds: float | None = None
        self.planned: int | None = None
        self.cap: int | None = None  # a resumed run keeps the plan it was started with as its most

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.started)

    def on_step_end(self, state: TrainState) -> None:
        now, last = time.monotonic(), self.last_mark
        self.last_mark = now
        if last is None:
            return
        self.timings += 1
        if self.timings == 1:
            self.first_gap = now - last
        else:
            self.gaps.append(now - last)
        if self.timings < self.calibrate:
            return
        # Later, the first timing is left out too: it may still carry warm-up (kernels for new shapes).
        early = self.timings < 5
        recent = [self.first_gap, *self.gaps] if early else list(self.gaps)
        self.step_seconds = sorted(recent)[len(recent) // 2] if early else sum(recent) / len(recent)
        spare = self.left() - self.reserve(self.step_seconds) - 0.5 * max(recent[-10:])
        total = state.step + max(0, int(spare // max(self.step_seconds, 1e-9)))
        if self.cap is not None:
            total = min(total, self.cap)
        # A shorter plan is taken at once (the deadline); a longer one when it adds a few percent, so the
        # schedule is not resized at every step for a rounding.
        if self.planned is None or total < self.planned or total >= self.planned + max(2, 0.03 * self.planned):
            self.planned = total
            self.control.plan(total)


class EarlyStopping(Callback):
    """Stops a run when `metric` has not improved for `patience` evaluations in a row (train.early_stopping_patience).

    Improvement means more than min_delta above the best so far (all metrics here are higher-is-better). The run
    ends as a Stop does: a snapshot and the model are saved; with output.keep_best the best weights are kept.
    """

    def __init__(self, metric: str, patience: int, min_delta: float = 0.0):
        self.metric, self.patience, self.min_delta = metric, patience, min_delta
        self.best: float | None = None
        self.waited = 0

    def on_evaluate(self, state: TrainState, metrics: dict[str, float]) -> None:
        value = metrics.get(self.metric)
        if value is None:
            return
        if self.best is None or value > self.best + self.min_delta:
            self.best, self.waited = value, 0
            return
        self.waited += 1
        if self.waited >= self.patience:
            self.control.stop(f"{self.metric} has not improved on {self.best:.4f} for {self.waited} evaluations")


class CpuThreads(Callback):
    """A CPU run keeps torch's threads at the cores other processes leave free (device.ThreadGovernor)."""

    def __init__(self, every: float = 5.0):
        self.governor = ThreadGovernor(every)

    def on_step_end(self, state: TrainState) -> None:
        change = self.governor.update()
        if change:
            logging.getLogger("embedgui").info("%s", change)


def watch_stop_file(path: str | os.PathLike, stop: threading.Event, every: float = 0.2) -> threading.Thread:
    """Sets `stop` when `path` appears: the app's Stop for a run in another process. Watched from the start, so a Stop
    while the model loads ends the run before its first step, as Stop does for a run in a thread."""
    target = Path(path)

    def watch() -> None:
        while not stop.is_set():
            if target.exists():
                stop.set()
                return
            time.sleep(every)

    thread = threading.Thread(target=watch, name="embedgui-stop-file", daemon=True)
    thread.start()
    return thread


class EventFile(QueueCallback):
    """QueueCallback's events as JSON lines in a file: what a run in another process tells the app that follows it."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("", encoding="utf-8")

    def _put(self, event: str, state: TrainState, payload: Any = None) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps([event, state.to_dict(), payload], ensure_ascii=False) + "\n")


def read_events(path: str | os.PathLike, offset: int) -> tuple[list[tuple[str, dict, Any]], int]:
    """The complete event lines of an EventFile from byte `offset` on, and the offset after them."""
    lines, offset = new_lines(path, offset)
    events = []
    for line in lines:
        try:
            event, state, payload = json.loads(line)
        except (ValueError, TypeError):
            continue
        events.append((event, state, payload))
    return events, offset
