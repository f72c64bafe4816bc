"""python -m embedgui train --config PATH [--resume]; under torchrun, one of N training processes."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from ..engine.callbacks import Callback, EventFile, TimeLimit, TrainState, watch_stop_file
from ..engine.config import load_config
from ..engine.distributed import env_world
from ..engine.runner import USER_ERRORS
from ..engine.trainer import Trainer


class ProgressBar(Callback):
    """tqdm bar: step, loss, accuracy, it/s and ETA; eval metrics printed as they come."""

    def __init__(self):
        self.bar = None

    def on_train_begin(self, state: TrainState) -> None:
        from tqdm import tqdm

        print(f"device {state.device}, precision {state.precision} ({state.precision_reason}), {state.max_steps} "
              f"steps -> {state.run_dir}", file=sys.stderr)
        self.bar = tqdm(total=state.max_steps, initial=state.step, unit="step", dynamic_ncols=True)

    def on_log(self, state: TrainState, logs: dict[str, float]) -> None:
        self.bar.set_postfix(epoch=f"{state.epoch}/{state.epochs}", loss=f"{logs['loss']:.4f}",
                             acc=f"{logs['acc']:.3f}", lr=f"{logs['lr']:.2e}", refresh=False)
        self.bar.update(state.step - self.bar.n)

    def on_evaluate(self, state: TrainState, metrics: dict[str, float]) -> None:
        text = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        self.bar.write(f"eval @ step {state.step}: {text}")

    def on_train_end(self, state: TrainState) -> None:
        if self.bar is not None:
            self.bar.close()


class LogLines(Callback):
    """--no-bar: a plain line per log row and per evaluation, for a log file (and the app's log view)."""

    def on_log(self, state: TrainState, logs: dict[str, float]) -> None:
        print(f"step {state.step}/{state.max_steps}  epoch {state.epoch}/{state.epochs}  loss {logs['loss']:.4f}  "
              f"acc {logs['acc']:.3f}  lr {logs['lr']:.2e}", flush=True)

    def on_evaluate(self, state: TrainState, metrics: dict[str, float]) -> None:
        text = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        print(f"eval @ step {state.step}: {text}", flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="path to config.json (see assets/config.example.json)")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's latest snapshot")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, only the final line")
    parser.add_argument("--no-bar", action="store_true",
                        help="a plain line per log row and evaluation instead of the progress bar (for a log file)")
    parser.add_argument("--stop-file", help="stop cleanly (with a snapshot) when this file appears")
    parser.add_argument("--events", help="append the run's events as JSON lines to this file (the app follows it)")
    # a hosted app's cap on one run's training time, counting earlier starts of the run (the app passes them)
    parser.add_argument("--time-limit", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--time-used", type=float, default=0.0, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    main = env_world().is_main  # under torchrun only rank 0 speaks; the others log warnings and errors only
    quiet = args.quiet or not main
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(levelname)s %(message)s")
    stop = threading.Event()

    def on_interrupt(signum, frame):  # first Ctrl-C (or SIGTERM): stop cleanly with a snapshot; second: abort
        if stop.is_set():
            raise KeyboardInterrupt
        if main:
            print("\nStopping after this step and saving a snapshot (Ctrl-C again to abort)...", file=sys.stderr)
        stop.set()

    signal.signal(signal.SIGINT, on_interrupt)
    # A scheduler (Slurm, Kubernetes, torchrun's agent) ends a job with SIGTERM: save a snapshot as for Ctrl-C.
    signal.signal(signal.SIGTERM, on_interrupt)
    callbacks: list[Callback] = [] if quiet else [LogLines() if args.no_bar else ProgressBar()]
    if args.stop_file:
        watch_stop_file(args.stop_file, stop)  # every process watches; the loop agrees on the stop across ranks
    if args.time_limit:
        callbacks.append(TimeLimit(args.time_limit, args.time_used))
    try:
        if args.events and main:
            callbacks.append(EventFile(args.events))
        config = load_config(args.config)
        if args.resume:
            config.train.resume = True
        trainer = Trainer(config, callbacks=callbacks)
        result = trainer.fit(stop)
    except USER_ERRORS as e:  # every process says it: a fault may happen on one rank only (its GPU ran out)
        print(f"error: {e}" if main else f"error on rank {env_world().rank}: {e}", file=sys.stderr)
        return 2
    if not main:
        return 0
    print(trainer.state.message)
    if result.status == "stopped":
        print(f"Resume with: python -m embedgui train --config {args.config} --resume")
    return 0
