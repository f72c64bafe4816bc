"""Train tab: Start / Stop / Resume, live charts drawn from the run's snapshot by a timer, and every run kept.

The run list shows each run folder (status, steps, data, settings, final metrics); a picked run can be shown
again, resumed, evaluated, searched with, exported (zip, Hub) or deleted (after a confirmation).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from ..engine import runs
from ..engine.config import ConfigError, config_from_dict
from ..engine.runner import RunBusyError, RunOwnerError, RunSnapshot
from ..engine.trainer import CONFIG_NAME, EVAL_SPLIT_NAME
from .base import UI, note, quota_note
from .charts import training_figures
from .config_tab import save_config, validate
from .engine_text import engine_text
from .i18n import t
from .language import language_warning
from .train_view import chart_titles, hide_visitor_paths, message_markdown, progress_html, runs_table

CHART_SECONDS = 3.0  # see TrainTab.tick
# How often a page polls: every second, every two when more pages than BUSY_PAGES ticked in the last PAGE_SECONDS.
# A tick costs the server about 17 ms of CPU (almost all Gradio's request handling); twenty pages a second took a
# third of a core from a run training beside the app (scripts/loadtest.py).
BUSY_PAGES, PAGE_SECONDS = 4, 6.0


def poll_seconds(pages: dict[str, float], page: str, now: float) -> float:
    """The timer interval for a page that ticks now; `pages` (page -> its last tick) is updated in place."""
    pages[page] = now
    for gone in [p for p, at in pages.items() if now - at > PAGE_SECONDS]:
        del pages[gone]
    return 1.0 if len(pages) <= BUSY_PAGES else 2.0


class TrainTab:
    def __init__(self, ui: UI):
        self.ui, tx = ui, ui.texts
        self._figure_cache: tuple | None = None  # (key, figures) shared by every open page
        self._pages: dict[str, float] = {}  # open pages (their browser's id) -> when each last ticked
        self._pages_lock = threading.Lock()
        self.owner = ui.owner  # the browser's id (app.py makes it outside the tabs)
        self.last_drawn = gr.State(None)
        self.view = gr.State("")  # a finished run's folder whose saved charts are shown; "" follows the live run
        with gr.Row():
            self.start_btn = tx.make(gr.Button, "train.start", "value", variant="primary", elem_id="train-start")
            self.stop_btn = tx.make(gr.Button, "train.stop", "value", variant="stop", elem_id="train-stop",
                                    interactive=False)
            self.resume_btn = tx.make(gr.Button, "train.resume", "value", elem_id="train-resume")
        self.progress = gr.HTML(elem_id="train-progress-box")
        self.message = gr.Markdown(t(tx.lang, "train.idle"), elem_id="train-message")
        self.notice = gr.Markdown(elem_id="train-notice")
        self.notice_config = gr.State(None)  # the config the notice was written for: the language switch rewrites it
        self.smooth = tx.make(gr.Checkbox, "train.smooth", value=False, elem_id="train-smooth")
        with gr.Row():
            self.loss_plot = gr.Plot(elem_id="chart-loss", show_label=False)
            self.acc_plot = gr.Plot(elem_id="chart-acc", show_label=False)
        with gr.Row():
            self.lr_plot = gr.Plot(elem_id="chart-lr", show_label=False)
            self.eval_plot = gr.Plot(elem_id="chart-eval", show_label=False)
        self.log = tx.make(gr.Textbox, "train.log", lines=8, max_lines=8, interactive=False, elem_id="train-log",
                           autoscroll=True)
        with tx.make(gr.Accordion, "train.runs", open=True):
            self.runs = tx.make(gr.Dataframe, "train.runs_table", interactive=False, wrap=True, elem_id="runs-table",
                                column_widths=["24%", "8%", "8%", "16%", "6%", "24%", "14%"])
            with gr.Row():
                self.pick = tx.make(gr.Dropdown, "train.pick", choices=[], elem_id="runs-pick", scale=3)
                self.show_btn = tx.make(gr.Button, "train.show", "value", elem_id="runs-show", scale=1)
                self.resume_run_btn = tx.make(gr.Button, "train.resume_run", "value", elem_id="runs-resume", scale=1)
                self.eval_btn = tx.make(gr.Button, "train.eval_run", "value", elem_id="runs-eval", scale=1)
                self.search_btn = tx.make(gr.Button, "train.search_run", "value", elem_id="runs-search", scale=1)
                self.delete_btn = tx.make(gr.Button, "train.delete", "value", variant="stop", elem_id="runs-delete",
                                          scale=1)
            with gr.Row(visible=False) as self.confirm_row:
                self.confirm_btn = tx.make(gr.Button, "train.delete_confirm", "value", variant="stop",
                                           elem_id="runs-delete-confirm")
                self.cancel_btn = tx.make(gr.Button, "train.delete_cancel", "value", elem_id="runs-delete-cancel")
            self.runs_message = gr.Markdown(elem_id="runs-message")
            with tx.make(gr.Accordion, "train.export", open=False):
                with gr.Row():
                    self.zip_btn = tx.make(gr.Button, "train.export_zip", "value", elem_id="runs-zip")
                    self.zip_file = tx.make(gr.File, "train.zip_file", interactive=False, elem_id="runs-zip-file")
                with gr.Row():
                    self.repo = tx.make(gr.Textbox, "train.hub_repo", elem_id="hub-repo", scale=2)
                    self.private = tx.make(gr.Checkbox, "train.hub_private", value=True, scale=1)
                    # a hosted app never pushes with the operator's HF_TOKEN (runs.push_to_hub)
                    label = "train.hub_token_hosted" if ui.ctx.hosted else "train.hub_token"
                    self.token = tx.make(gr.Textbox, label, type="password", elem_id="hub-token", scale=2)
                    self.push_btn = tx.make(gr.Button, "train.hub_push", "value", elem_id="hub-push", scale=1)
            with tx.make(gr.Accordion, "train.compare", open=False):
                with gr.Row():
                    self.run_a = tx.make(gr.Dropdown, "train.compare_a", choices=[], elem_id="compare-a")
                    self.run_b = tx.make(gr.Dropdown, "train.compare_b", choices=[], elem_id="compare-b")
                    self.compare_btn = tx.make(gr.Button, "train.compare_btn", "value", elem_id="compare-run")
                self.compare_table = tx.make(gr.Dataframe, "train.compare_table", interactive=False,
                                             elem_id="compare-table")
        self.timer = gr.Timer(1.0)

    @property
    def tick_targets(self) -> list:
        return [self.progress, self.message, self.loss_plot, self.acc_plot, self.lr_plot, self.eval_plot, self.log]

    @property
    def list_targets(self) -> list:
        tabs = self.ui.tabs
        return [self.runs, self.pick, self.run_a, self.run_b, tabs["eval"].model, tabs["search"].model,
                self.resume_btn, self.resume_run_btn]

    # -- pure-ish helpers ------------------------------------------------------------------------------------
    def _active_dir(self) -> str | None:
        run = self.ui.ctx.run
        return run.current_dir if run.active else None

    def _runs(self, owner: str) -> list[runs.RunInfo]:
        infos = runs.list_runs(self.ui.ctx.visitor(owner).runs_dir, active_dir=self._active_dir())
        live = next((i for i in infos if i.status == "running"), None)
        if live is not None:  # its folder has no summary yet: the rows and the planned steps come from the run
            snap = self.ui.ctx.run.snapshot()
            live.rows = live.rows if live.rows is not None else (snap.rows or None)
            live.max_steps = snap.max_steps or live.max_steps
            if snap.precision:  # the precision it trains in (dtype auto chose it), as its finished row will say
                live.settings["precision"] = snap.precision
        return infos

    def runs_frame(self, lang: str, owner: str) -> pd.DataFrame:
        """The run list as its table shows it, in lang."""
        return runs_table(self._runs(owner), lang)

    def list_updates(self, lang: str, picked: str | None = None, owner: str = "") -> dict:
        """The run list, the pickers, and the Evaluate/Search model lists (runs that hold a model)."""
        infos = self._runs(owner)
        names = [r.name for r in infos]
        models = [r.path for r in infos if r.has_model]
        keep = picked if picked in names else (names[0] if names else None)
        idle = not self.ui.ctx.run.active
        resumable = {r.name for r in infos if r.resumable}
        return {self.runs: runs_table(infos, lang), self.pick: gr.update(choices=names, value=keep),
                self.run_a: gr.update(choices=names), self.run_b: gr.update(choices=names),
                self.ui.tabs["eval"].model: gr.update(choices=models),
                self.ui.tabs["search"].model: gr.update(choices=models),
                # a Resume that could only answer "nothing to resume" is not offered
                self.resume_btn: gr.update(interactive=idle and bool(resumable)),
                self.resume_run_btn: gr.update(interactive=idle and keep in resumable)}

    def pick_buttons(self, picked: str | None, owner: str = "") -> dict:
        """"Resume this run" follows the picked run: on only for one with a snapshot to go on from."""
        info = runs.run_info(self._folder(picked, owner)) if picked else None
        resumable = info is not None and info.resumable
        return {self.resume_run_btn: gr.update(interactive=resumable and not self.ui.ctx.run.active)}

    def buttons(self, active: bool) -> dict:
        """Start is off and Stop on while a run is going (the engine refuses a second run anyway); the Resume
        buttons go off with it, and come back from the run list (list_updates) when it ends."""
        out = {self.start_btn: gr.update(interactive=not active), self.stop_btn: gr.update(interactive=active)}
        if active:
            out.update({self.resume_btn: gr.update(interactive=False),
                        self.resume_run_btn: gr.update(interactive=False)})
        return out

    def _figures(self, snap: RunSnapshot, lang: str, smooth: bool, key: tuple) -> list:
        """The four charts, computed once per new log row for every open page (they all see the same run)."""
        key = (*key, lang, smooth)
        cached = self._figure_cache
        if cached is None or cached[0] != key:
            cached = (key, list(training_figures(snap.logs, snap.evals, chart_titles(lang, smooth))))
            self._figure_cache = cached  # one tuple assignment: safe under concurrent ticks
        return cached[1]

    def _folder(self, name: str | None, owner: str) -> Path:
        """A run of this visitor's (a hosted app's visitors each have their own runs folder)."""
        return runs.run_folder(self.ui.ctx.visitor(owner).runs_dir, name or "")

    # -- handlers --------------------------------------------------------------------------------------------
    def _hides_paths(self, owner: str) -> bool:
        """Whether this page watches another visitor's run of a hosted app (then it sees none of their paths)."""
        ctx = self.ui.ctx
        return ctx.hosted and not ctx.run.can_control(owner or None)

    def tick(self, lang: str, last: Any, smooth: bool, view: str, picked: str | None, owner: str = "") -> dict:
        snap = self.ui.ctx.run.snapshot()
        # alive: the run's thread or process has not yet exited; it outlives the status change by its clean-up, and
        # the run list (its "running" row, the Resume buttons) is drawn again once it has
        alive = self.ui.ctx.run.active
        key = (lang, snap.status, snap.step, len(snap.logs), len(snap.evals), len(snap.log_lines), snap.message,
               smooth, view, alive)
        # last: (key drawn, when this page's charts were last sent, whether they show that key, its timer interval)
        prev_key, charts_at, charts_current, every_was = last if isinstance(last, (list, tuple)) and len(last) == 4 \
            else (None, 0.0, False, 1.0)
        now = time.monotonic()
        with self._pages_lock:
            every = poll_seconds(self._pages, owner or "anonymous", now)
        timer = {self.timer: gr.Timer(value=every)} if every != every_was else {}
        chart_seconds = CHART_SECONDS * every  # twice as far apart while many pages are open, as the ticks
        if key == prev_key and (charts_current or now - charts_at < chart_seconds):
            # Nothing new for this page: only the clock moves. Twenty open pages must not redraw (and
            # re-serialise) four charts a second each while a run trains.
            # (never an empty dict: Gradio takes {} for one output value and fails the event)
            viewing = view and view != snap.run_dir  # the line is the viewed run's, drawn with its charts
            progress = progress_html(snap, lang) if snap.active and not viewing else None
            if progress is not None and self._hides_paths(owner):
                progress = hide_visitor_paths(progress)
            out = {self.progress: gr.skip() if progress is None else progress, **timer}
            if timer:
                out[self.last_drawn] = (prev_key, charts_at, charts_current, every)
            return out
        changed = prev_key is None or prev_key[:2] != key[:2] or prev_key[7:] != key[7:]  # language, status, view
        # While a run trains, a page's charts follow at most every CHART_SECONDS: serialising four Plotly figures
        # per page per step is what slowed training most under load (scripts/loadtest.py); the progress line,
        # the message and the log still follow every tick, and the last state is always drawn.
        charts_due = changed or not snap.active or now - charts_at >= chart_seconds
        out: dict = {self.last_drawn: (key, now if charts_due else charts_at, charts_due, every),
                     **self.buttons(snap.active), **timer}
        log_lines = snap.log_lines
        if view and view != snap.run_dir:
            # everything under the buttons is the viewed run's: its charts, its progress line and its own log
            logs, evals = runs.load_history(view)
            info = runs.run_info(view)
            shown = RunSnapshot(status=info.status if info else "idle", step=info.step if info else 0,
                                max_steps=info.max_steps if info else 0, logs=logs, evals=evals)
            figs = self._figures(shown, lang, smooth, ("view", view, len(logs), len(evals))) if charts_due else None
            progress, message = progress_html(shown, lang), t(lang, "train.viewing", name=Path(view).name)
            log_lines = runs.log_tail(view)
        else:
            figs = self._figures(snap, lang, smooth, (snap.run_dir, snap.started_at, len(snap.logs),
                                                      len(snap.evals))) if charts_due else None
            progress, message = progress_html(snap, lang), message_markdown(snap, lang)
        shown = {self.progress: progress, self.message: message, self.log: "\n".join(log_lines)}
        if self._hides_paths(owner):  # one look at the run's owner a tick (it reads the run folder)
            shown = {k: hide_visitor_paths(v) for k, v in shown.items()}
        out.update(shown)
        if figs is not None:
            out.update(zip([self.loss_plot, self.acc_plot, self.lr_plot, self.eval_plot], figs))
        if prev_key is None or prev_key[1] != snap.status or prev_key[0] != lang or prev_key[9:] != key[9:]:
            # a run started or ended (its status, then its thread)
            out.update(self.list_updates(lang, picked, owner))
            if snap.status == "failed" and snap.step == 0 and snap.run_dir and not Path(snap.run_dir).exists():
                out.update({self.notice: "", self.notice_config: None})  # "Started in X", but X was removed
        elif snap.active and charts_due:  # the running run's row follows its steps, the pickers stay as they are
            out[self.runs] = self.runs_frame(lang, owner)
        return out

    def start(self, lang: str, owner: str, *values) -> dict:
        # A refusal goes under the progress line (the notice), not in the run's message: the timer redraws that
        # message from the run, and on a page whose first tick came just after the click it erased the refusal
        # before it was read.
        ctx = self.ui.ctx.visitor(owner)
        config, errors = validate(ctx, values)
        if errors:
            return self._refused(note(lang, "error", t(lang, "train.fix_config") + "\n\n" +
                                      "\n".join(f"- {engine_text(e, lang)}" for e in errors)))
        save_config(ctx, config)  # what the form shows is what trains, and what a reload shows
        if over := ctx.over_quota():  # a new run folder would add a model and its snapshot
            return self._refused(quota_note(lang, over))
        config.output.save_dir = str(ctx.runs_dir)  # every Start is a new run folder; no run overwrites another
        config.output.save_name = runs.new_run_name(config, ctx.runs_dir)
        try:
            ctx.run.start(config, owner=owner or None)
        except (RunBusyError, RunOwnerError) as e:
            busy = str(e) if isinstance(e, RunOwnerError) else t(lang, "train.busy")
            return self._refused(note(lang, "busy", busy))
        except ConfigError as e:  # the runner's check when it starts the run (config.validate, the data paths)
            return self._refused(note(lang, "error", "\n".join(f"- {engine_text(x, lang)}" for x in e.errors)))
        started = config.to_dict()
        return {self.notice: self.notice_text(started, lang, owner), self.notice_config: started, self.view: "",
                **self.buttons(True)}

    def _refused(self, text: str) -> dict:
        return {self.notice: text, self.notice_config: None}

    def notice_text(self, started: dict | None, lang: str, owner: str = "") -> str:
        """Under the progress line after a Start: the language warning, else which folder the new run is in. The
        config's paths are read as the run reads them: beside the (visitor's) workspace, inside its folders."""
        if not started:
            return ""
        ctx = self.ui.ctx.visitor(owner)
        config = config_from_dict(started)
        config.base_dir = str(ctx.workspace)
        config.allowed_roots = [str(r) for r in ctx.allowed_roots] if ctx.hosted else None
        return language_warning(config, lang) or t(lang, "train.started_in", name=config.output.save_name)

    def resume(self, lang: str, owner: str, name: str | None) -> dict:
        """Resume a run: the picked one, else the current/last one. Never changes the saved workspace config."""
        ctx = self.ui.ctx.visitor(owner)
        current = ctx.run.current_dir
        if not name and current and Path(current).parent.resolve() == ctx.runs_dir.resolve():
            name = Path(current).name  # the last run started, when it is this visitor's
        if not name:
            infos = runs.list_runs(ctx.runs_dir, active_dir=self._active_dir())
            name = next((r.name for r in infos if r.resumable), None)
        if not name:
            return {self.runs_message: note(lang, "error", t(lang, "train.no_run"))}
        try:
            folder = self._folder(name, owner)
            info = runs.run_info(folder)
            if info is None or not info.resumable:
                return {self.runs_message: note(lang, "error", t(lang, "train.not_resumable", name=name))}
            config = runs.run_config(folder)
            if ctx.hosted:
                config.base_dir, config.allowed_roots = str(ctx.workspace), [str(r) for r in ctx.allowed_roots]
            ctx.run.start(config, resume=True, owner=owner or None)
        except (RunBusyError, RunOwnerError) as e:
            return {self.runs_message: note(lang, "busy", str(e) if isinstance(e, RunOwnerError) else
                                            t(lang, "train.busy"))}
        except (runs.RunsError, ConfigError) as e:
            return {self.runs_message: note(lang, "error", str(e))}
        return {self.runs_message: t(lang, "train.resumed", name=name), self.view: "", **self.buttons(True)}

    def stop(self, lang: str, owner: str) -> dict:
        run = self.ui.ctx.run
        if not run.can_control(owner or None):
            from ..engine.runner import OWNER_MESSAGE

            return {self.message: note(lang, "busy", OWNER_MESSAGE)}
        return {self.message: t(lang, "train.stopping" if run.stop(owner=owner or None) else "train.nothing")}

    def show(self, lang: str, name: str | None, owner: str = "") -> dict:
        if not name:
            return {self.runs_message: note(lang, "error", t(lang, "train.no_run"))}
        try:
            folder = self._folder(name, owner)
        except runs.RunsError as e:
            return {self.runs_message: note(lang, "error", str(e))}
        live = self.ui.ctx.run.current_dir
        view = "" if live and Path(live).resolve() == folder.resolve() else str(folder)
        return {self.view: view, self.runs_message: ""}

    def ask_delete(self, lang: str, name: str | None) -> dict:
        if not name:
            return {self.runs_message: note(lang, "error", t(lang, "train.no_run"))}
        return {self.confirm_row: gr.update(visible=True), self.runs_message: t(lang, "train.delete_ask", name=name)}

    def _not_owner(self, lang: str, owner: str, name: str | None) -> dict | None:
        """Hosted: a message when this visitor did not start the run (only its owner deletes or publishes it)."""
        from ..engine.runner import OWNER_MESSAGE

        if not name or self.ui.ctx.run.can_control(owner or None, self.ui.ctx.visitor(owner).runs_dir / name):
            return None
        return {self.runs_message: note(lang, "busy", OWNER_MESSAGE)}

    def delete(self, lang: str, owner: str, name: str | None, view: str, eval_pairs: str = "") -> dict:
        out = {self.confirm_row: gr.update(visible=False)}
        if refused := self._not_owner(lang, owner, name):
            return {**out, **refused}
        try:
            runs.delete_run(self.ui.ctx.visitor(owner).runs_dir, name or "", active_dir=self._active_dir())
        except runs.RunsError as e:
            return {**out, self.runs_message: note(lang, "error", str(e))}
        if view and Path(view).name == name:
            out[self.view] = ""
        # The Evaluate and Search tabs may have shown the deleted run: they move to the newest run left.
        moved = self.ui.tabs["eval"].refresh_models(eval_pairs, owner, from_config=True)
        return {**out, **self.list_updates(lang, owner=owner), **moved,
                self.runs_message: t(lang, "train.deleted", name=name)}

    def _model_folder(self, lang: str, name: str | None, owner: str) -> tuple[Path | None, str]:
        if not name:
            return None, note(lang, "error", t(lang, "train.no_run"))
        try:
            folder = self._folder(name, owner)
        except runs.RunsError as e:
            return None, note(lang, "error", str(e))
        info = runs.run_info(folder)
        if info is None or not info.has_model:
            return None, note(lang, "error", t(lang, "train.no_model", name=name))
        return folder, ""

    def export_zip(self, lang: str, name: str | None, owner: str = "") -> dict:
        folder, problem = self._model_folder(lang, name, owner)
        if folder is None:
            return {self.runs_message: problem}
        try:
            path = runs.export_zip(folder, self.ui.ctx.export_dir())
        except runs.RunsError as e:
            return {self.runs_message: note(lang, "error", str(e))}
        return {self.zip_file: self.ui.ctx.servable(path), self.runs_message: note(lang, "ok", f"`{path.name}`")}

    def push(self, lang: str, owner: str, name: str | None, repo: str, private: bool, token: str) -> dict:
        if refused := self._not_owner(lang, owner, name):
            return {**refused, self.token: ""}
        folder, problem = self._model_folder(lang, name, owner)
        if folder is None:
            return {self.runs_message: problem, self.token: ""}  # a typed token never outlives the request
        try:
            url = runs.push_to_hub(folder, (repo or "").strip(), token=(token or "").strip() or None,
                                   private=bool(private))
        except runs.RunsError as e:
            return {self.runs_message: note(lang, "error", str(e)), self.token: ""}
        # the token lives only in this request: the box is cleared and nothing is written
        return {self.runs_message: note(lang, "ok", t(lang, "train.pushed", url=url)), self.token: ""}

    def compare(self, lang: str, a: str | None, b: str | None, owner: str = "") -> dict:
        if not a or not b:
            return {self.runs_message: note(lang, "error", t(lang, "train.no_run"))}
        try:
            rows = runs.compare_runs(self._folder(a, owner), self._folder(b, owner))
        except runs.RunsError as e:
            return {self.runs_message: note(lang, "error", str(e))}
        shown = [[r["metric"], *(None if r.get(k) is None else round(r[k], 4) for k in ("a", "b", "delta"))]
                 for r in rows]
        table = pd.DataFrame(shown,
                             columns=[t(lang, "col.metric"), "A", "B", t(lang, "col.delta")])
        return {self.compare_table: table, self.runs_message: ""}

    def to_eval(self, lang: str, name: str | None, owner: str = "") -> dict:
        folder, problem = self._model_folder(lang, name, owner)
        if folder is None:
            return {self.runs_message: problem}
        ev = self.ui.tabs["eval"]
        held_out = folder / EVAL_SPLIT_NAME
        out = {ev.model: str(folder), self.ui.tabs["tabs"]: gr.Tabs(selected="eval"), self.runs_message: ""}
        if held_out.exists():
            out[ev.pairs] = str(held_out)
        return out

    def to_search(self, lang: str, name: str | None, owner: str = "") -> dict:
        folder, problem = self._model_folder(lang, name, owner)
        if folder is None:
            return {self.runs_message: problem}
        se = self.ui.tabs["search"]
        return {se.model: str(folder), se.corpus: se.default_corpus(str(folder), owner),
                self.ui.tabs["tabs"]: gr.Tabs(selected="search"), self.runs_message: ""}

    def on_load(self, lang: str, owner: str, notice_lang: str | None = None) -> dict:
        """notice_lang: the language the page turns to right after the load (the one chosen before), in which the
        Start notice is written (the language switch that follows may not see the notice's config yet)."""
        out = {self.owner: owner, **self.list_updates(lang, owner=owner)}
        run = self.ui.ctx.run
        if run.active and run.current_dir and run.can_control(owner or None):
            # a reload mid-run keeps the Start notice (the language warning above all), rebuilt from the run's config
            started = runs.read_json(Path(run.current_dir) / CONFIG_NAME)
            if started:
                out.update({self.notice: self.notice_text(started, notice_lang or lang, owner),
                            self.notice_config: started})
        return out

    def wire(self) -> None:
        ui, lang = self.ui, self.ui.lang
        tabs, cfg = ui.tabs, ui.tabs["config"]
        btns = [self.start_btn, self.stop_btn, self.resume_btn, self.resume_run_btn]
        self.start_btn.click(self.start, [lang, self.owner, *cfg.fields],
                             [self.message, self.notice, self.notice_config, self.view, *btns])
        self.resume_btn.click(lambda lang, owner: self.resume(lang, owner, None), [lang, self.owner],
                              [self.runs_message, self.view, *btns])
        self.resume_run_btn.click(self.resume, [lang, self.owner, self.pick], [self.runs_message, self.view, *btns])
        self.stop_btn.click(self.stop, [lang, self.owner], self.message)
        tick_inputs = [lang, self.last_drawn, self.smooth, self.view, self.pick, self.owner]
        tick_outputs_ = list(dict.fromkeys([*self.tick_targets, self.notice, self.notice_config, self.last_drawn,
                                            *btns, *self.list_targets, self.timer]))
        self.timer.tick(self.tick, tick_inputs, tick_outputs_, show_progress="hidden")
        self.show_btn.click(self.show, [lang, self.pick, self.owner], [self.view, self.runs_message])
        self.pick.change(self.pick_buttons, [self.pick, self.owner], [self.resume_run_btn], show_progress="hidden")
        self.delete_btn.click(self.ask_delete, [lang, self.pick], [self.confirm_row, self.runs_message])
        self.cancel_btn.click(lambda: {self.confirm_row: gr.update(visible=False), self.runs_message: ""}, None,
                              [self.confirm_row, self.runs_message])
        ev, se = tabs["eval"], tabs["search"]
        self.confirm_btn.click(self.delete, [lang, self.owner, self.pick, self.view, ev.pairs],
                               [self.confirm_row, self.runs_message, self.view, *self.list_targets, ev.pairs,
                                se.corpus])
        self.zip_btn.click(self.export_zip, [lang, self.pick, self.owner], [self.zip_file, self.runs_message])
        self.push_btn.click(self.push, [lang, self.owner, self.pick, self.repo, self.private, self.token],
                            [self.runs_message, self.token])
        self.compare_btn.click(self.compare, [lang, self.run_a, self.run_b, self.owner],
                               [self.compare_table, self.runs_message])
        ev, se = tabs["eval"], tabs["search"]
        self.eval_btn.click(self.to_eval, [lang, self.pick, self.owner],
                            [ev.model, ev.pairs, tabs["tabs"], self.runs_message])
        self.search_btn.click(self.to_search, [lang, self.pick, self.owner],
                              [se.model, se.corpus, tabs["tabs"], self.runs_message])
