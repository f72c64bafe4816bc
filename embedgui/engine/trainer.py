"""The training loop: one Trainer used by the CLI and the GUI.

config -> data + model on the best device -> loss steps (InfoNCE unless another loss object is given) with mixed
precision, accumulation, clipping and a warmup/decay schedule -> callbacks (logs, evals, stop requests) ->
resumable snapshots -> the final model in Hugging Face and sentence-transformers format, metrics.jsonl and a
summary in output.save_dir/output.save_name.

fit() is a short loop over named steps: _set_up, _optimizer_step, _after_step (log, evaluate and keep the best,
periodic snapshot), _finish; every error ends the run through _fail.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from . import distributed
from .callbacks import (
    PHASES,
    Callback,
    CpuThreads,
    EarlyStopping,
    JsonlCallback,
    TimeBudget,
    TrainerControl,
    TrainState,
)
from .config import Config, ConfigError
from .data import PairCollator, make_loader, write_pairs
from .device import precision_for_resume, resolve_device
from .distributed import ShardCollator, World
from .files import SaveError, atomic_write_text, save_error, unwritable_reason
from .gradcache import with_gradcache
from .loss import build_loss, learned_temperature
from .mining import MiningStopped
from .model_files import RUN_CONFIG_NAME as CONFIG_NAME  # one name for the file, shared with the model loader
from .modeling import Embedder, enable_gradient_checkpointing, load_embedder_from_config, set_training_dropout
from .optimization import (
    build_optimizer,
    build_scheduler,
    follow_config,
    resize_schedule,
    seed_everything,
    short_run_note,
)
from .snapshots import (
    BEST_NAME,
    SNAPSHOT_DIR,
    latest_snapshot,
    read_meta,
    restore_snapshot,
    rng_state,
    save_best,
    save_snapshot,
    truncate_metrics,
)
from .train_data import load_training_data, log_negative_stats, nothing_to_learn, plan_batches
from .train_job import (
    Job,
    TrainingError,
    TrainResult,
    Window,
    finish_seconds,
    not_finite_message,
    oom_message,
    run_summary,
    to_device,
)
from .train_mining import mine_training_data

log = logging.getLogger(__name__)

EVAL_SPLIT_NAME = "eval_pairs.jsonl"  # the held-out rows of data.eval_split, so a run can be scored again later
METRICS_NAME = "metrics.jsonl"
SUMMARY_NAME = "metrics_summary.json"

__all__ = ["BEST_NAME", "CONFIG_NAME", "EVAL_SPLIT_NAME", "METRICS_NAME", "SNAPSHOT_DIR", "SUMMARY_NAME",
           "TrainResult", "Trainer", "TrainingError", "build_optimizer", "latest_snapshot", "seed_everything"]


class Trainer:
    """Runs one training job described by a Config; `fit(stop_event)` is safe to call from a background thread.

    loss: an object called as loss(model, batch) -> LossOutput (see embedgui.engine.loss); when None, the one
    the config describes (build_loss: InfoNCE, symmetric, Matryoshka).
    """

    def __init__(self, config: Config, callbacks: list[Callback] | None = None, loss: Callable | None = None):
        errors = config.validate()
        if errors:
            raise ConfigError(errors)
        self.config = config
        self.callbacks = list(callbacks or [])
        self.loss = loss if loss is not None else with_gradcache(build_loss(config), config)
        self.state = TrainState(epochs=config.train.epochs)
        self.control = TrainerControl()
        self.run_dir = config.run_dir
        self.data_info: dict[str, Any] = {}
        self._job: Job | None = None
        self._ended = False
        self._stop_event = threading.Event()
        self.world = World()  # one process; torchrun's rank and world size once fit() joins the process group
        # train.max_minutes: the clock starts now, so reading the data and loading the model count
        self.budget = TimeBudget(config.train.max_minutes, self._finish_seconds) if config.train.max_minutes else None
        self._logged_plan = 0
        if self.budget is not None:
            self.callbacks.append(self.budget)

    # -- the loop --------------------------------------------------------------------------------------------
    def fit(self, stop_event: threading.Event | None = None) -> TrainResult:
        """Train to the end, or until stop_event is set or a callback asks to stop (then a snapshot is saved)."""
        stop_event = self._stop_event = stop_event or threading.Event()
        self.control = TrainerControl()
        self._own_group = False
        try:
            job = self._set_up()
            self._attach_control()
            self.state.status = "running"
            self._emit("on_train_begin")
            while True:
                # What callbacks asked for (a stop, a planned number of steps), agreed by every process.
                stop, planned = distributed.max_over_ranks(
                    [float(stop_event.is_set() or self.control.should_stop), float(self.control.planned_steps or 0)],
                    job.device)
                if planned and int(planned) != self.state.max_steps:
                    self._replan(job, int(planned))
                if self.state.step >= self.state.max_steps:
                    break
                if stop:
                    job.status = "stopped"
                    break
                self._optimizer_step(job)
                self._after_step(job)
                self._emit("on_step_end")
            return self._finish(job)
        except MiningStopped:  # Stop while the negatives were mined: nothing trained, nothing changed on disk
            self.state.status = "stopped"
            self.state.message = f"stopped while mining hard negatives; {self.run_dir} was left as it was"
            self._end()
            return TrainResult("stopped", self.state.step, self.state.max_steps, str(self.run_dir), {})
        except Exception as e:
            error = self._fail(e)
            if error is e:
                raise
            raise error from e
        finally:
            if self._own_group:  # a process group this run joined is left at its end
                distributed.shutdown()

    # -- callbacks -------------------------------------------------------------------------------------------
    def _emit(self, hook: str, *args: Any) -> None:
        if not self.world.is_main:  # under torchrun only rank 0 reports (logs, metrics, progress)
            return
        for cb in self.callbacks:
            getattr(cb, hook)(self.state, *args)

    def _phase(self, phase: str) -> None:
        """Say what the run is busy with (PHASES); the message is English, a UI translates the phase name."""
        self.state.message = PHASES[phase]
        self._emit("on_phase", phase)

    def _attach_control(self) -> None:
        for cb in self.callbacks:
            cb.control = self.control

    def _end(self) -> None:
        """on_train_end, exactly once however the run ends."""
        if not self._ended:
            self._ended = True
            self._emit("on_train_end")

    # -- set-up: device, precision, data, model, optimizer, resume ------------------------------------------
    def _set_up(self) -> Job:
        c, state = self.config, self.state
        state.status, state.started_at, state.run_dir = "starting", time.time(), str(self.run_dir)
        device = resolve_device(c.device)
        in_group = distributed.current().active
        world = self.world = distributed.init(device)
        self._own_group = world.active and not in_group
        device = distributed.device_for(device, world)
        if device.type == "mps":
            os.environ.setdefault("PYTORCH_MPS_HIGH_WATERMARK_RATIO", "0.0")
        snapshot = latest_snapshot(self.run_dir) if c.train.resume else None
        if c.train.resume and snapshot is None:
            raise TrainingError(f"Cannot resume: no snapshot in {self.run_dir / SNAPSHOT_DIR}; start without resume "
                                "(or check output.save_dir and output.save_name).")
        meta = read_meta(snapshot) if snapshot else {}
        precision = precision_for_resume(c.dtype, device, meta.get("precision"), meta.get("device"))
        state.device, state.precision, state.precision_reason = str(device), precision.name, precision.reason
        log.info("Device %s, precision %s (%s)", device, precision.name, precision.reason)

        seed_everything(c.seed)
        self._phase("data")
        data = load_training_data(c)
        self.data_info = {**data.info, "hard_negatives_per_row": data.negatives.summary()}
        ranks = world.size  # under torchrun train.batch_size is each process's share of the global batch
        batch_size, min_last, steps_per_epoch = plan_batches(data, c, ranks)
        if problem := nothing_to_learn(data, batch_size * ranks):
            raise TrainingError(problem)
        state.hard_negatives_per_row = log_negative_stats(data.negatives)
        state.rows = data.rows
        accum = c.train.grad_accum_steps
        state.max_steps = steps_per_epoch * c.train.epochs
        if self.budget is not None:
            # The budget plans the total after a few timed steps; until then the run must not end on its own.
            state.max_steps = max(state.max_steps, self.budget.calibrate + 2)
            if snapshot is not None and meta.get("max_steps"):  # a resumed budgeted run keeps its plan (at most)
                state.max_steps = self.budget.planned = self.budget.cap = int(meta["max_steps"])
        if snapshot is not None and meta["step"] >= state.max_steps:
            raise TrainingError(f"Nothing to resume: the run in {self.run_dir} finished at step {meta['step']}/"
                                f"{state.max_steps}. Start a new run without resume, or raise train.epochs to "
                                "train further.")
        if world.is_main:
            self._check_writable()  # before the model: a wrong folder should not cost a minute of loading

        job = self._job = Job(device, precision, data, batch_size, accum, steps_per_epoch,
                               self.run_dir / METRICS_NAME, resumed_from=snapshot,
                               old_folder_pending=snapshot is None, world=world)
        self._phase("model")
        job.model, job.math_attention = self._load_model(device)
        distributed.broadcast_parameters(job.model)  # every process starts from rank 0's weights, as DDP does
        if c.data.mine_hard_negatives:
            self._mine(job)
        if hasattr(self.loss, "check"):  # e.g. Matryoshka sizes larger than the model's embedding
            try:
                self.loss.check(job.model.dim)
            except ValueError as e:
                raise TrainingError(str(e)) from None
        if hasattr(self.loss, "to"):
            self.loss.to(device)  # a loss with its own weights or buffers
        job.optimizer = build_optimizer(job.model, c, self.loss if isinstance(self.loss, torch.nn.Module) else None)
        # Under a time budget the first few steps follow the epochs' schedule until the budget has timed them and
        # resizes it (a longer provisional warmup would waste those steps of a short run at a near-zero rate).
        # A budget's provisional total says nothing of the run's length: the short-run raise waits for its plan.
        job.scheduler = build_scheduler(job.optimizer, c, state.max_steps, short_runs=self.budget is None)
        job.short_run_steps = c.optim.short_run_steps
        job.scaler = torch.amp.GradScaler(device.type) if precision.use_grad_scaler else None
        job.data_key = {"batch_size": batch_size, "grad_accum_steps": accum, "stream": c.data.stream,
                        "rows": data.rows, "seed": c.seed,
                        "group_by_length": c.train.group_by_length, "similar_batches": c.train.similar_batches,
                        "processes": ranks}
        if snapshot is not None:
            self._phase("resume")
            self._resume(job, snapshot)
        if self.budget is None or snapshot is not None:
            self._log_peak(job)  # a new budgeted run says it once the budget has planned its steps
        if data.eval_rows and c.data.eval_split and not c.data.eval_path and world.is_main:
            write_pairs(self.run_dir / EVAL_SPLIT_NAME, data.eval_rows)
        if c.train.early_stopping_patience and job.data.eval_rows:  # the config has eval data and eval_every
            self.callbacks.append(EarlyStopping(c.output.best_metric, c.train.early_stopping_patience))
        if c.train.similar_batches and (c.data.stream or not c.data.shuffle):
            what = "streamed data (data.stream)" if c.data.stream else "unshuffled data (data.shuffle false)"
            log.warning("train.similar_batches has no effect on %s: it groups the rows of a shuffled pass held in "
                        "memory.", what)
        if device.type == "cpu" and not any(isinstance(cb, CpuThreads) for cb in self.callbacks):
            self.callbacks.append(CpuThreads())  # the machine may get busy later: threads follow the free cores
        if c.output.save_metrics and world.is_main and not any(isinstance(cb, JsonlCallback) for cb in self.callbacks):
            self.callbacks.append(JsonlCallback(job.metrics_path))
        # The collator cuts texts at the model's real limit (train.max_length capped to its position table).
        collator = PairCollator(job.model.tokenizer, job.model.max_length, c.train.pad_to_multiple_of,
                                c.data.max_hard_negatives, query_prompt=job.model.prompt("query"),
                                document_prompt=job.model.prompt("document"))
        # The loader draws global batches (the same on every process); each process collates its own share.
        loader = make_loader(data.source, ShardCollator(collator, world) if world.active else collator,
                             batch_size=batch_size * ranks, min_last=min_last, seed=c.seed, shuffle=c.data.shuffle,
                             start_batch=job.consumed, num_workers=c.train.num_workers,
                             pin_memory=device.type == "cuda", shuffle_buffer=c.data.shuffle_buffer,
                             skip_invalid=c.data.skip_invalid, group_by_length=c.train.group_by_length,
                             similar_batches=c.train.similar_batches)
        job.batches = iter(loader)
        job.step_start_consumed = job.consumed
        state.epoch = min(state.step // steps_per_epoch + 1, c.train.epochs)
        return job

    def _check_writable(self) -> None:
        if why := unwritable_reason(self.run_dir):
            raise TrainingError(f"Cannot write to the output folder {self.run_dir} ({why}); choose "
                                "another output.save_dir, or make the folder writable.")

    def _load_model(self, device: torch.device) -> tuple[Embedder, bool]:
        """The model to train, and whether its steps should use the plain attention kernel (Job.attention_kernels)."""
        c = self.config
        model = load_embedder_from_config(c, for_training=True)
        model.to(device)
        if c.train.grad_checkpointing and not enable_gradient_checkpointing(model):
            log.warning("train.grad_checkpointing: this model does not support it; training without.")
        model.train()
        math_attention = set_training_dropout(model, c.train.dropout, c.train.attention_dropout, device)
        if model.max_length < c.train.max_length:
            log.warning("train.max_length %d is more than this model takes; using %d.", c.train.max_length,
                        model.max_length)
        return model, math_attention

    def _mine(self, job: Job) -> None:
        """data.mine_hard_negatives (train_mining.py); a resumed run finds the same negatives in the cache."""
        self._phase("mine")
        # A Stop click reaches the mining of a large data set; under torchrun the processes must stop together, so
        # there they finish mining and stop at the first step.
        stop = None if job.world.active else self._stop_event
        # Encoding without gradients holds far less than a training step of the same texts, so twice the batch
        # (at most 128) is safe; in the training precision it is about twice as fast as float32 on a bf16 CPU
        # (WordNet's 2039 texts: 4.4 s in float32 at 32 a batch, 2.1 s in bf16 at 128).
        info = mine_training_data(job.data, self.config.data, job.model, write=job.world.is_main,
                                  batch_size=min(128, 2 * job.batch_size),
                                  autocast_dtype=job.precision.autocast_dtype, stop=stop,
                                  roots=self.config.allowed_roots)
        if info is not None:
            self.state.hard_negatives_per_row = log_negative_stats(job.data.negatives)
            self.data_info.update({"hard_negatives_per_row": job.data.negatives.summary(), "mined": info})

    def _resume(self, job: Job, snapshot: Path) -> None:
        configured = list(job.scheduler.base_lrs)  # optim.lr as the config now says (the snapshot has its own)
        step, job.consumed, extra = restore_snapshot(snapshot, job.model, job.optimizer, job.scheduler, job.scaler,
                                                   loss=self.loss)
        self.state.step = step
        if not extra.get("short_runs"):
            job.short_run_steps = None  # its schedule predates optim.short_run_steps: it goes on at optim.lr
        follow_config(job.scheduler, configured, self.state.max_steps, job.short_run_steps)
        changed = {k: (v, job.data_key[k]) for k, v in extra.get("data", {}).items() if job.data_key.get(k) != v}
        if changed:
            log.warning("Resuming with changed data settings %s (snapshot value, now): the batches after the "
                        "snapshot differ from an uninterrupted run.", changed)
        job.best = extra.get("best")
        if job.world.is_main:
            truncate_metrics(job.metrics_path, step)
            self._save_config()
        log.info("Resumed from %s (step %d)", snapshot, step)

    # -- one optimizer step: micro-batches, backward, clip, step ----------------------------------------------
    def _optimizer_step(self, job: Job) -> None:
        state = self.state
        job.phase, job.step_start_consumed, job.step_rng = "train", job.consumed, rng_state()
        job.optimizer.zero_grad(set_to_none=True)
        losses = []
        for _ in range(job.accum):
            batch = to_device(next(job.batches), job.device)
            job.consumed += 1
            # Backward too: gradient checkpointing and gradient caching run parts of the forward again in it.
            with job.attention_kernels():
                with torch.autocast(**job.autocast):
                    out = self.loss(job.model, batch)
                scaled = out.loss / job.accum
                (job.scaler.scale(scaled) if job.scaler else scaled).backward()
            losses.append(out.loss.detach().float())
            job.window.add(out, batch["size"])
        # Under torchrun: the mean gradient over the processes, so every process takes the same step.
        distributed.average_gradients(p for group in job.optimizer.param_groups for p in group["params"])
        if job.scaler:
            job.scaler.unscale_(job.optimizer)
        max_norm = self.config.optim.max_grad_norm or float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(job.model.parameters(), max_norm)
        self._check_finite(job, torch.stack(losses), grad_norm)
        job.lr, job.grad_norm = job.scheduler.get_last_lr()[0], grad_norm  # the rate this step uses
        if job.scaler:
            job.scaler.step(job.optimizer)  # skips the step when fp16 gradients overflowed, then lowers the scale
            job.scaler.update()
        else:
            job.optimizer.step()
        job.scheduler.step()
        state.step += 1
        job.steps_here += 1
        job.step_start_consumed = job.consumed
        state.epoch = min((state.step - 1) // job.steps_per_epoch + 1, self.config.train.epochs)
        if job.old_folder_pending:
            self._clear_old_run(job.metrics_path)
            job.old_folder_pending = False

    def _check_finite(self, job: Job, losses: torch.Tensor, grad_norm: torch.Tensor) -> None:
        """The step's one wait for the device: a NaN/inf loss (or grad norm, without fp16's scaler) ends the run."""
        finite = torch.isfinite(losses).all()
        if job.scaler is None:  # with a scaler an overflowing fp16 gradient is normal: the scaler skips the step
            finite = finite & torch.isfinite(grad_norm)
        if not distributed.any_rank([not bool(finite)], job.device)[0]:  # every process ends at the same step
            return
        bad = losses[~torch.isfinite(losses)]
        what, value = ("loss", bad[0].item()) if bad.numel() else ("gradient norm", grad_norm.item())
        if bool(finite):
            what, value = "loss of another process", "not finite"
        # The weights are still those before this step: the snapshot is the last good state.
        where = self._save(job, job.step_start_consumed, job.step_rng) if job.good_state else None
        raise TrainingError(not_finite_message(what, value, self.state.step + 1, where))

    def _replan(self, job: Job, total: int) -> None:
        """A callback's new total of steps (the time budget): the schedule's warmup and decay follow it."""
        state = self.state
        state.max_steps = max(total, state.step)
        resize_schedule(job.scheduler, state.max_steps, job.short_run_steps)
        state.epochs = max(1, -(-state.max_steps // job.steps_per_epoch))
        budget = self.budget
        # The budget re-plans as it times more steps: the first plan and changes of a tenth or more are logged.
        logged = self._logged_plan
        if budget and budget.step_seconds and (not logged or abs(state.max_steps - logged) >= 0.1 * logged):
            self._logged_plan = state.max_steps
            log.info("Time budget %g min: %.2f s a step, so %d steps in all (%.1f passes over the data), leaving "
                     "%.0f s for the final evaluation and saving", self.config.train.max_minutes,
                     budget.step_seconds, state.max_steps,
                     state.max_steps * job.batch_size * job.accum * job.world.size / max(job.data.rows, 1),
                     self._finish_seconds(budget.step_seconds))
            self._log_peak(job)

    @staticmethod
    def _log_peak(job: Job) -> None:
        """Say when optim.short_run_steps raises the peak learning rate, so the log shows the rate that trains."""
        if note := short_run_note(job.scheduler):
            log.info("%s", note)

    def _finish_seconds(self, step_seconds: float) -> float:
        return finish_seconds(self._job, step_seconds)

    # -- after a step: log, evaluate and keep the best, periodic snapshot --------------------------------------
    def _after_step(self, job: Job) -> None:
        c, step = self.config, self.state.step
        last = step == self.state.max_steps
        if step % c.train.log_every == 0 or last:
            self._log(job)
        if job.world.is_main and job.data.eval_rows and ((c.train.eval_every and step % c.train.eval_every == 0)
                                                         or last):
            self._evaluate(job)
        if c.train.save_every and step % c.train.save_every == 0 and not last:
            self._save(job)

    def _log(self, job: Job) -> None:
        """One log row: loss and accuracy averaged over the micro-batches since the last row, and the speed."""
        w = job.window
        grad_norm = job.grad_norm if job.grad_norm is not None else torch.zeros((), device=w.loss.device)
        # One read of the device per log row, however many micro-batches it averages (over all processes).
        samples = torch.tensor(float(w.samples), device=w.loss.device)
        values = torch.stack([w.loss, w.acc, grad_norm.float().to(w.loss.device), samples])
        loss, acc, norm, samples = distributed.mean_over_ranks(values).tolist()
        elapsed = max(time.perf_counter() - w.start, 1e-9)
        row = {"loss": loss / w.n, "acc": acc / w.n, "lr": job.lr, "grad_norm": norm,
               "samples_per_s": samples * job.world.size / elapsed, "steps_per_s": w.n / job.accum / elapsed,
               "elapsed_s": time.time() - self.state.started_at}
        temperature = learned_temperature(self.loss)  # train.learn_temperature: its value after this step
        if temperature is not None:
            row["temperature"] = temperature
        self._emit("on_log", row)
        job.window = Window()

    def _evaluate(self, job: Job) -> None:
        from .evaluate import evaluate_pairs

        c = self.config

        def encoder(prompt: str) -> Callable[[list[str]], torch.Tensor]:
            return lambda texts: job.model.encode(texts, batch_size=job.batch_size, prompt=prompt,
                                                  autocast_dtype=job.precision.autocast_dtype)

        job.phase = "eval"  # queries and documents get their prompts, as in training
        self._phase("eval")
        metrics = evaluate_pairs(encoder("query"), job.data.eval_rows, encode_corpus=encoder("document"),
                                 dims=c.train.matryoshka_dims or ())  # each trained size, as <metric>/dim<d>
        job.phase = "train"
        self._phase("train")
        self._emit("on_evaluate", metrics)
        score = metrics.get(c.output.best_metric)
        if c.output.keep_best and score is not None and (job.best is None or score > job.best):
            job.best = score
            save_best(job.model, self.run_dir / BEST_NAME)

    # -- snapshot ----------------------------------------------------------------------------------------------
    def _save(self, job: Job, consumed: int | None = None, rng: dict[str, Any] | None = None) -> Path:
        """A resumable snapshot of the state after the last completed step (or at `consumed`, `rng`)."""
        if job.world.active:  # rank 0 writes the one snapshot all resume from, with each process's RNG state
            rng = {**(rng or rng_state()), "ranks": distributed.gather_objects(rng or rng_state())}
            if not job.world.is_main:
                return self.run_dir / SNAPSHOT_DIR
        meta = {"precision": job.precision.name, "device": job.device.type, "max_steps": self.state.max_steps,
                "processes": job.world.size}
        path = save_snapshot(self.run_dir, self.state.step, job.model, job.optimizer, job.scheduler, job.scaler,
                             job.consumed if consumed is None else consumed, {"best": job.best, "data": job.data_key},
                             meta, self.config.output.keep_snapshots, rng, loss=self.loss)
        self._emit("on_save", str(path))
        return path

    def _save_config(self) -> None:
        """train_config.json: the settings this run trains with; resume is an action, never saved as a setting."""
        data = self.config.to_dict()
        data["train"]["resume"] = False
        atomic_write_text(self.run_dir / CONFIG_NAME, json.dumps(data, indent=2, ensure_ascii=False) + "\n")

    def _clear_old_run(self, metrics_path: Path) -> None:
        """Remove what a previous run left in this folder (its curve, snapshots, best weights); save our config."""
        if not self.world.is_main:
            return
        metrics_path.unlink(missing_ok=True)
        (self.run_dir / BEST_NAME).unlink(missing_ok=True)
        shutil.rmtree(self.run_dir / SNAPSHOT_DIR, ignore_errors=True)
        self._save_config()

    # -- finish ------------------------------------------------------------------------------------------------
    def _finish(self, job: Job) -> TrainResult:
        c, state = self.config, self.state
        if job.status == "stopped" and job.window.n:  # the steps since the last log row still get their point
            self._log(job)
        if job.steps_here == 0:
            state.status = "stopped"
            state.message = f"stopped before the first step; {self.run_dir} was left as it was"
            self._end()
            return TrainResult("stopped", state.step, state.max_steps, str(self.run_dir), {})
        self._save(job)
        if not job.world.is_main:
            distributed.barrier()  # wait for rank 0 to write the model: the run ends when its files are there
            state.status = job.status
            return TrainResult(job.status, state.step, state.max_steps, str(self.run_dir), {})
        if job.status == "finished" and c.output.keep_best and (self.run_dir / BEST_NAME).exists():
            job.model.load_state_dict(torch.load(self.run_dir / BEST_NAME, map_location=job.model.device))
            log.info("Keeping the best model (%s = %.4f)", c.output.best_metric, job.best)
        try:
            job.model.save(self.run_dir)
        except (OSError, RuntimeError) as e:  # safetensors reports a full disk as a RuntimeError
            raise save_error(self.run_dir / "model.safetensors", e) from e
        summary = run_summary(job, state, c, self.data_info)
        if c.output.save_metrics:
            atomic_write_text(self.run_dir / SUMMARY_NAME, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        state.status = job.status
        why = f" ({self.control.reason})" if job.status == "stopped" and self.control.should_stop else ""
        state.message = f"{job.status} at step {state.step}/{state.max_steps}{why}; model saved in {self.run_dir}"
        distributed.barrier()
        self._end()
        return TrainResult(job.status, state.step, state.max_steps, str(self.run_dir), summary)

    # -- failure: the one place a run ends on an error ------------------------------------------------------
    def _fail(self, error: Exception) -> Exception:
        """Status failed, one message, on_train_end once; returns the exception fit() raises."""
        job, state = self._job, self.state
        result: Exception = error
        if isinstance(error, torch.OutOfMemoryError) and job is not None:
            phase = job.phase
            result = TrainingError(oom_message(job.device, state.step, phase))
            # Under torchrun the other processes cannot join this snapshot: resume from the last periodic one.
            if job.optimizer is not None and job.good_state and not job.world.active:
                job.optimizer.zero_grad(set_to_none=True)  # frees the partial gradients so the snapshot has room
                try:
                    self._save(job, job.step_start_consumed, job.step_rng if phase == "train" else None)
                except (RuntimeError, OSError):
                    log.exception("Could not save a snapshot after running out of memory")
        elif isinstance(error, SaveError):  # disk full or folder gone while saving: the message names both
            result = TrainingError(f"{error} The run stopped at step {state.step}; resume from the last snapshot.")
        elif isinstance(error, OSError):  # folder removed, data file gone
            result = TrainingError(f"A file operation failed during training ({error}); check free disk space and "
                                   f"that {self.run_dir} and the data file are still there, then resume.")
        state.status, state.message = "failed", str(result)
        self._end()
        return result
