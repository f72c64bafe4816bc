"""Run: owns the background training of a process; the GUI polls snapshot() and never blocks on training.

One run at a time per process. The run trains in a child process (`python -m embedgui train`, or torchrun with one
process per GPU when there are several) that a follower thread here watches: rank 0's events (the ones a training
thread would report) and its log. A child has its own interpreter lock and its own CPU threads, so a busy web
server never stalls a step (scripts/loadtest.py measured it; docs/reliability.md), and its memory is all given back
when it ends. Run(in_process=True) trains in a thread of this process instead (tests with fakes). The state lives
here, not in a browser page, so a reloaded page or a second tab shows the same run. In hosted mode
(single_user=False) a run belongs to the browser session that started it: others can watch it, only the owner can
stop or resume it.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import gc
import hashlib
import json
import logging
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .callbacks import Callback, QueueCallback, TimeLimit, TrainState, read_events
from .config import Config, ConfigError
from .data import find_pairs_path
from .errors import USER_ERRORS
from .files import atomic_write_text, new_lines
from .modeling import resolve_model_path
from .runs import PROCESS_LOG_NAME, clear_error, load_history, record_error
from .trainer import CONFIG_NAME, EVAL_SPLIT_NAME, METRICS_NAME, Trainer

# A run in torchrun's processes: the config it was launched with, the events rank 0 writes, the file that asks it to
# stop, and everything the processes printed.
LAUNCH_NAME, EVENTS_NAME, STOP_NAME = ".launch_config.json", ".events.jsonl", ".stop"
HOSTED_NAME = ".hosted.json"  # a hosted run's owner (a hash of the browser session) and training seconds used
# What a run folder holds before its first step: a Start that ends there leaves no empty run in the list.
_SET_UP_FILES = {CONFIG_NAME, EVAL_SPLIT_NAME, METRICS_NAME, LAUNCH_NAME, EVENTS_NAME, STOP_NAME, PROCESS_LOG_NAME,
                 HOSTED_NAME}


class RunBusyError(RuntimeError):
    """A second start while a run is going."""


class RunOwnerError(RuntimeError):
    """Hosted mode: a visitor tried to stop, resume or replace a run another visitor started."""


OWNER_MESSAGE = "This run was started by another visitor; you can watch it, but only they can stop or resume it."


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
    precision_reason: str = ""  # why this precision (auto's probe, the snapshot's precision on resume, ...)
    hard_negatives_per_row: float = 0.0  # mean hard negatives per row the trainer actually uses
    rows: int = 0  # training rows, once the run has read its data (the run list shows them while it trains)
    run_dir: str = ""
    message: str = ""
    phase: str = ""  # what the run is busy with (callbacks.PHASES: data, model, resume, train, eval)
    started_at: float = 0.0
    logs: list[dict[str, Any]] = field(default_factory=list)  # one per log step: step, loss, acc, lr, ...
    evals: list[dict[str, Any]] = field(default_factory=list)  # one per evaluation: step, recall@1, ...
    log_lines: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status in ("starting", "running", "stopping")


class _RingHandler(logging.Handler):
    """Keeps the last lines the run's own thread logged; crawl, search and other requests log from other threads."""

    def __init__(self, lines: collections.deque, thread_id: int):
        super().__init__(logging.INFO)
        self.lines, self.thread_id = lines, thread_id
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.thread_id and bool(super().filter(record))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class _History(Callback):
    """On resume, queues the rows metrics.jsonl already has up to the snapshot, so charts start at step 1."""

    def __init__(self, q: queue.Queue, run_dir: str):
        self.q, self.run_dir = q, run_dir

    def on_train_begin(self, state: TrainState) -> None:
        # The trainer has cut the file at the snapshot step by now; the step filter also drops stale rows if not.
        self.q.put_nowait(("history", state.to_dict(), load_history(self.run_dir, up_to_step=state.step)))


class Run:
    """start(config) / stop() / snapshot(); thread-safe."""

    def __init__(self, max_log_lines: int = 200, single_user: bool = True, max_minutes: float | None = None,
                 processes: int | None = None, in_process: bool = False):
        self._lock = threading.Lock()
        # Training processes per run: None = one per GPU when there are several (torchrun), else one. A hosted app
        # always trains in one (its caps and owners live here).
        self.processes = processes
        self.in_process = in_process  # train in a thread of this process (tests that replace parts of the trainer)
        self.max_minutes = max_minutes  # a hosted app's cap on one run's training time (None = no cap)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._queue: queue.Queue = queue.Queue()
        self._snap = RunSnapshot()
        self._lines: collections.deque[str] = collections.deque(maxlen=max_log_lines)
        self.single_user = single_user
        self._run_dir: str | None = None
        logger = logging.getLogger("embedgui")
        if logger.level == logging.NOTSET:
            # The run's log shows INFO lines. Set once here when nobody (launch.py) chose a level, never per run:
            # other threads share this logger.
            logger.setLevel(logging.INFO)

    @property
    def active(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def current_dir(self) -> str | None:
        """The run folder of the active run, or of the last one started; None before any."""
        return self._run_dir

    def _may_act(self, run_dir: str | None, owner: str | None) -> bool:
        if self.single_user or run_dir is None:
            return True
        started_by = _hosted_record(run_dir).get("owner")  # kept in the run folder: it outlives a restart
        return started_by is None or started_by == _owner_hash(owner)  # older runs belong to nobody

    def can_control(self, owner: str | None, run_dir: str | os.PathLike | None = None) -> bool:
        """Whether this session may stop or resume run_dir (default: the current run); always True for one user."""
        return self._may_act(str(run_dir) if run_dir else self._run_dir, owner)

    def start(self, config: Config, resume: bool = False, owner: str | None = None) -> None:
        """Validate, then train in a daemon thread; RunBusyError if a run is going, ConfigError if invalid.

        The caller's config is never changed: resume (an action, not a setting) applies to a copy. In hosted mode
        RunOwnerError when the run going, or the run to resume, was started by another session.
        """
        config = copy.deepcopy(config)
        config.train.resume = bool(resume)
        errors = config.validate()
        if errors:
            raise ConfigError(errors)
        run_dir = str(config.run_dir)
        with self._lock:
            if self.active:
                if not self._may_act(self._run_dir, owner):
                    raise RunOwnerError("Another visitor's run is training; you can watch it, and start yours when "
                                        "it ends.")
                raise RunBusyError("A training run is already going; stop it first, or wait until it ends.")
            if resume and not self._may_act(run_dir, owner):
                raise RunOwnerError(OWNER_MESSAGE)
            created = not Path(run_dir).exists()
            if not resume:
                _write_config(config, run_dir)
            if not self.single_user and not resume:
                _write_hosted_record(run_dir, owner=_owner_hash(owner), seconds=0.0)
            self._run_dir = run_dir
            self._stop = threading.Event()
            self._queue = queue.Queue()
            self._lines.clear()
            self._snap = RunSnapshot(status="starting", epochs=config.train.epochs, run_dir=run_dir,
                                     started_at=time.time(), message="Loading the model and the data...")
            self._thread = threading.Thread(target=self._work, args=(config, self._stop, self._queue, created),
                                            kwargs={"processes": self._processes_for(config)},
                                            name="embedgui-train", daemon=True)
            self._thread.start()

    def stop(self, owner: str | None = None) -> bool:
        """Ask the run to stop at the next step boundary (it saves a snapshot); False when nothing runs."""
        if not self.active:
            return False
        if not self._may_act(self._run_dir, owner):
            raise RunOwnerError(OWNER_MESSAGE)
        self._stop.set()
        self._queue.put(("stopping", None, None))
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run's thread ends (tests, CLI); True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.active

    def _processes_for(self, config: Config) -> int:
        if self.processes is not None:
            return max(1, self.processes)
        if not self.single_user:  # a hosted app's caps and owners live in this process: one GPU at most
            return 1
        forced = os.environ.get("EMBEDGUI_PROCESSES", "").strip()
        if forced.isdigit() and int(forced) > 0:  # 1: one training process, even with several GPUs
            return int(forced)
        if config.device not in ("auto", "cuda"):
            return 1
        import torch

        return max(1, torch.cuda.device_count())

    def _work(self, config: Config, stop: threading.Event, q: queue.Queue, created: bool, processes: int = 1) -> None:
        # Attach/detach only: the logger's level is shared with every other thread and stays as it is.
        handler = _RingHandler(self._lines, threading.get_ident())
        log = logging.getLogger("embedgui")
        log.addHandler(handler)
        run_dir = str(config.run_dir)
        state: dict[str, Any] | None = None  # the run's last state, as the trainer reported it
        failure = None
        try:
            with contextlib.suppress(OSError):
                clear_error(run_dir)
            if processes > 1 or not self.in_process:
                state, failure = self._train_in_processes(config, processes, stop, q)
            else:
                callbacks: list[Callback] = [QueueCallback(q)]
                if config.train.resume:
                    callbacks.insert(0, _History(q, run_dir))
                limit = None
                if self.max_minutes:  # the cap counts every start of this run, so resuming does not reset it
                    limit = TimeLimit(self.max_minutes, _hosted_record(run_dir).get("seconds", 0.0))
                    callbacks.append(limit)
                trainer = Trainer(config, callbacks=callbacks)
                try:
                    trainer.fit(stop)
                finally:
                    state = trainer.state.to_dict()
                    del trainer
                    if limit is not None and Path(run_dir).is_dir():
                        _write_hosted_record(run_dir, seconds=limit.used)
            if failure is None:
                q.put(("done", state, state.get("status") or "finished"))
        except USER_ERRORS as e:
            log.error("%s", e)
            failure = str(e)
        except Exception as e:  # a bug: keep the traceback for the log, show one line
            log.error("Unexpected error:\n%s", traceback.format_exc())
            failure = f"Unexpected error ({type(e).__name__}: {e}); the log below has the details."
        finally:
            log.removeHandler(handler)
            _tidy(run_dir, created, failure, state["step"] if state else 0)
            if failure is not None:
                q.put(("error", state, failure))
            _release_memory()

    def _train_in_processes(self, config: Config, processes: int, stop: threading.Event,
                            q: queue.Queue) -> tuple[dict[str, Any], str | None]:
        """`python -m embedgui train` (torchrun with one process per GPU when processes > 1), followed until it
        ends: (rank 0's last state, failure or None)."""
        run_dir = Path(config.run_dir).resolve()
        launch_data = _launch_config(config)  # paths resolved (and checked) here, before a process starts
        run_dir.mkdir(parents=True, exist_ok=True)
        launch, events, stop_file = run_dir / LAUNCH_NAME, run_dir / EVENTS_NAME, run_dir / STOP_NAME
        stop_file.unlink(missing_ok=True)
        events.unlink(missing_ok=True)  # a previous start's events are not this one's
        atomic_write_text(launch, json.dumps(launch_data, indent=2, ensure_ascii=False) + "\n")
        launcher = [sys.executable, "-m", "embedgui"] if processes == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
            "-m", "embedgui"]
        command = launcher + ["train", "--config", str(launch), "--no-bar", "--events", str(events), "--stop-file",
                              str(stop_file)] + (["--resume"] if config.train.resume else [])
        used = _hosted_record(run_dir).get("seconds", 0.0) if self.max_minutes else 0.0
        if self.max_minutes:  # the cap counts every start of this run, so resuming does not reset it
            command += ["--time-limit", f"{self.max_minutes:g}", "--time-used", f"{used:.1f}"]
        for root in config.allowed_roots or []:  # a hosted app's folders: the process's loaders confine to them too
            command += ["--allowed-root", str(root)]
        package_root = str(Path(__file__).resolve().parents[2])  # embedgui importable whatever the cwd
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        if processes > 1:
            logging.getLogger("embedgui").info("Training on %d processes: %s", processes, " ".join(command))
        state: dict[str, Any] = {}
        log_path = run_dir / PROCESS_LOG_NAME
        offset, log_offset, last_line = 0, log_path.stat().st_size if log_path.exists() else 0, ""
        with log_path.open("ab") as out:  # a resumed run's log goes on from where it was
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
            began = time.monotonic()  # the hosted cap counts the process's set-up as well (TimeLimit)
            try:
                while True:
                    ended = proc.poll() is not None
                    if stop.is_set() and not stop_file.exists():
                        stop_file.touch()  # rank 0 sees it after its step; every process stops at that step
                    found, offset = read_events(events, offset)
                    for event, event_state, payload in found:
                        if event == "begin":
                            if config.train.resume:  # the charts start at step 1, as in a thread
                                q.put(("history", event_state, load_history(run_dir, up_to_step=event_state["step"])))
                        q.put((event, event_state, payload))
                        state = event_state
                    lines, log_offset = new_lines(log_path, log_offset)
                    for line in lines:
                        if line.startswith("step "):  # --no-bar's row lines: the charts show them, and 200 of
                            continue  # them would push the warnings out of the app's log view
                        self._lines.append(line)
                        if line.startswith("error"):
                            last_line = line
                    if ended:
                        break
                    time.sleep(0.5)
            finally:
                if proc.poll() is None:  # this process is going down: the run stops saved, not orphaned
                    stop_file.touch()
                if self.max_minutes:
                    _write_hosted_record(run_dir, seconds=used + time.monotonic() - began)
        stop_file.unlink(missing_ok=True)
        if proc.returncode == 0:
            return state, None
        failure = last_line.split(": ", 1)[-1] if last_line else (
            f"The training process ended with exit code {proc.returncode}; {run_dir / PROCESS_LOG_NAME} has "
            "what it printed.")
        return state, failure

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
                    for key in ("step", "max_steps", "epoch", "epochs", "device", "precision", "run_dir",
                                "precision_reason", "hard_negatives_per_row", "rows"):
                        setattr(s, key, state.get(key, getattr(s, key)))
                    if state.get("status") in ("running", "starting"):
                        s.status = "stopping" if self._stop.is_set() else state["status"]
                if event == "history":  # a resumed run: its earlier rows come before anything new
                    s.logs[:0], s.evals[:0] = payload
                elif event == "begin":
                    s.phase, s.message = "train", f"Training on {s.device} ({s.precision})."
                elif event == "phase":
                    s.phase = payload
                    if s.status == "starting":  # set-up says what it is doing; a running run keeps its line
                        s.message = state.get("message") or s.message
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


def _owner_hash(owner: str | None) -> str | None:
    return hashlib.sha256(owner.encode()).hexdigest() if owner else None


def _hosted_record(run_dir: str | os.PathLike) -> dict[str, Any]:
    try:
        return json.loads((Path(run_dir) / HOSTED_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_hosted_record(run_dir: str | os.PathLike, **values: Any) -> None:
    with contextlib.suppress(OSError):  # an unwritable folder is reported by the trainer, with what to do
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        record = {**_hosted_record(run_dir), **values}
        atomic_write_text(Path(run_dir) / HOSTED_NAME, json.dumps(record) + "\n")


def _write_config(config: Config, run_dir: str) -> None:
    """A fresh run's train_config.json right away, so the run list shows it while the model loads."""
    path = Path(run_dir) / CONFIG_NAME
    if path.exists():  # an older run in this folder keeps its files until the new one has trained a step
        return
    with contextlib.suppress(OSError):  # an unwritable folder is reported by the trainer, with what to do
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(config.to_dict(), indent=2, ensure_ascii=False) + "\n")


def _launch_config(config: Config) -> dict[str, Any]:
    """The config for processes started elsewhere: every path resolved here, exactly as the loaders would."""
    data = config.to_dict()
    data["train"]["resume"] = False  # an action: --resume says it
    data["model_id"] = resolve_model_path(config.model_id, config.base_dir, config.allowed_roots)
    if config.tokenizer_id:
        data["tokenizer_id"] = resolve_model_path(config.tokenizer_id, config.base_dir, config.allowed_roots,
                                                  "tokenizer_id")
    data["data"]["pairs_path"] = str(find_pairs_path(config.data.pairs_path, config.base_dir,
                                                     roots=config.allowed_roots).resolve())
    if config.data.eval_path:
        data["data"]["eval_path"] = str(find_pairs_path(config.data.eval_path, config.base_dir, "data.eval_path",
                                                        roots=config.allowed_roots).resolve())
    data["output"]["save_dir"] = str(Path(config.output.save_dir).expanduser().resolve())
    return data


def _tidy(run_dir: str, created: bool, failure: str | None, step: int) -> None:
    """Remove a folder this start made where nothing was trained; else note a failure for the run list."""
    folder = Path(run_dir)
    with contextlib.suppress(OSError):
        if created and step == 0 and folder.is_dir() and {p.name for p in folder.iterdir()} <= _SET_UP_FILES:
            shutil.rmtree(folder)
        elif failure is not None:
            record_error(folder, failure, step)


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
