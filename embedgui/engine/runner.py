"""Run: owns the background training thread of a process; the GUI polls snapshot() and never blocks on training.

One run at a time per process. The state lives here, not in a browser page, so a reloaded page or a second tab
shows the same run.
"""

from __future__ import annotations

import collections
import gc
import logging
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from .callbacks import QueueCallback
from .config import Config, ConfigError
from .data import PairsError
from .device import DeviceError
from .modeling import ModelLoadError
from .trainer import Trainer, TrainingError

# Errors a user can cause and fix; everything else is a bug and keeps its traceback in the log.
USER_ERRORS = (ConfigError, PairsError, ModelLoadError, DeviceError, TrainingError)


class RunBusyError(RuntimeError):
    """A second start while a run is going."""


@dataclass
class RunSnapshot:
    """Everything a UI needs to draw a run, as plain data."""

    status: str = "idle"  # idle | starting | running | stopping | stopped | finished | failed
    step: int = 0
    max_steps: int = 0
    epoch: int = 0
    epochs: int = 0
    device: str = ""
    precision: str = ""
    run_dir: str = ""
    message: str = ""
    started_at: float = 0.0
    logs: list[dict[str, Any]] = field(default_factory=list)  # one per log step: step, loss, acc, lr, ...
    evals: list[dict[str, Any]] = field(default_factory=list)  # one per evaluation: step, recall@1, ...
    log_lines: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status in ("starting", "running", "stopping")


class _RingHandler(logging.Handler):
    def __init__(self, lines: collections.deque):
        super().__init__(logging.INFO)
        self.lines = lines
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class Run:
    """start(config) / stop() / snapshot(); thread-safe."""

    def __init__(self, max_log_lines: int = 200):
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._queue: queue.Queue = queue.Queue()
        self._snap = RunSnapshot()
        self._lines: collections.deque[str] = collections.deque(maxlen=max_log_lines)
        self._handler = _RingHandler(self._lines)

    @property
    def active(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, config: Config) -> None:
        """Validate, then train in a daemon thread; RunBusyError if a run is going, ConfigError if invalid."""
        errors = config.validate()
        if errors:
            raise ConfigError(errors)
        with self._lock:
            if self.active:
                raise RunBusyError("A training run is already going; stop it first, or wait until it ends.")
            self._stop = threading.Event()
            self._queue = queue.Queue()
            self._lines.clear()
            self._snap = RunSnapshot(status="starting", epochs=config.train.epochs, run_dir=str(config.run_dir),
                                     started_at=time.time(), message="Loading the model and the data...")
            self._thread = threading.Thread(target=self._work, args=(config, self._stop, self._queue),
                                            name="embedgui-train", daemon=True)
            self._thread.start()

    def stop(self) -> bool:
        """Ask the run to stop at the next step boundary (it saves a snapshot); False when nothing runs."""
        if not self.active:
            return False
        self._stop.set()
        self._queue.put(("stopping", None, None))
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run's thread ends (tests, CLI); True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.active

    def _work(self, config: Config, stop: threading.Event, q: queue.Queue) -> None:
        root = logging.getLogger("embedgui")
        root.addHandler(self._handler)
        previous_level = root.level
        root.setLevel(logging.INFO)
        trainer = None
        try:
            trainer = Trainer(config, callbacks=[QueueCallback(q)])
            result = trainer.fit(stop)
            q.put(("done", trainer.state.to_dict(), result.status))
        except USER_ERRORS as e:
            logging.getLogger("embedgui").error("%s", e)
            q.put(("error", trainer.state.to_dict() if trainer else None, str(e)))
        except Exception as e:  # a bug: keep the traceback for the log, show one line
            logging.getLogger("embedgui").error("Unexpected error:\n%s", traceback.format_exc())
            q.put(("error", trainer.state.to_dict() if trainer else None,
                   f"Unexpected error ({type(e).__name__}: {e}); the log below has the details."))
        finally:
            root.removeHandler(self._handler)
            root.setLevel(previous_level)
            del trainer
            _release_memory()

    def snapshot(self) -> RunSnapshot:
        """Drain queued events into the run's history and return a copy (a pure value for the UI to draw)."""
        with self._lock:
            s = self._snap
            while True:
                try:
                    event, state, payload = self._queue.get_nowait()
                except queue.Empty:
                    break
                if state:
                    for key in ("step", "max_steps", "epoch", "epochs", "device", "precision", "run_dir"):
                        setattr(s, key, state[key])
                    if state.get("status") in ("running", "starting"):
                        s.status = "stopping" if self._stop.is_set() else state["status"]
                if event == "begin":
                    s.message = f"Training on {s.device} ({s.precision})."
                elif event == "log":
                    s.logs.append({"step": state["step"], "epoch": state["epoch"], **payload})
                elif event == "eval":
                    s.evals.append({"step": state["step"], **payload})
                elif event == "stopping" and s.active:  # a Stop that lands after the end changes nothing
                    s.status, s.message = "stopping", "Stopping after this step and saving a snapshot..."
                elif event == "done":
                    s.status = payload
                    s.message = state.get("message") or payload
                elif event == "error":
                    s.status, s.message = "failed", payload
            if self._thread is not None and not self._thread.is_alive() and s.active and self._queue.empty():
                s.status, s.message = "failed", s.message or "The training thread ended unexpectedly."
            s.log_lines = list(self._lines)
            return RunSnapshot(**{**s.__dict__, "logs": list(s.logs), "evals": list(s.evals)})


def _release_memory() -> None:
    """Give GPU/CPU memory back when a run ends, so the next run (or the search tab) has it."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            torch.mps.empty_cache()
    except (ImportError, RuntimeError):
        pass
