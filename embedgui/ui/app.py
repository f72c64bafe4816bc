"""create_app(ctx) -> gr.Blocks: five tabs over one background Run, in English or Korean."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr

from ..engine.config import Config, ConfigError, load_config
from ..engine.runner import RunBusyError
from ..engine.trainer import EVAL_SPLIT_NAME
from . import config_tab as ct
from .context import SAMPLE_PAIRS, AppContext
from .data_tab import DataTab, _preview_updates, accept_upload, run_compose, run_crawl
from .eval_tab import EvalTab, evaluate_rows
from .i18n import LANGUAGES, t
from .search_tab import IndexCache, SearchTab, search_tables
from .train_tab import TrainTab, tick_outputs

log = logging.getLogger(__name__)

CSS = """
#train-progress-box {min-height: 48px}
.gradio-container {max-width: 1280px !important}
"""


def default_config(ctx: AppContext) -> Config:
    """The config a first-time user starts from: packaged MiniLM, the sample glossary, quick CPU settings."""
    if ctx.config_path.exists():
        try:
            return load_config(ctx.config_path)
        except ConfigError as e:
            log.warning("Ignoring %s: %s", ctx.config_path, e)
    c = Config()
    c.data.pairs_path = str(SAMPLE_PAIRS)
    c.data.eval_split = 0.1
    c.output.save_dir = str(ctx.runs_dir)
    c.train.batch_size, c.train.max_length, c.train.epochs = 16, 64, 2
    c.train.log_every, c.train.eval_every, c.train.pad_to_multiple_of = 1, 10, 8
    c.optim.lr = 5e-5
    return c


def _field(tab: ct.ConfigTab, path: str) -> gr.components.Component:
    return tab.fields[[s.path for s in tab.specs].index(path)]


def create_app(ctx: AppContext) -> gr.Blocks:
    initial = default_config(ctx)
    lang = "en"
    cache = IndexCache()
    models = ctx.trained_models()
    pairs = initial.data.pairs_path or str(SAMPLE_PAIRS)
    with gr.Blocks(title="embedgui") as demo:
        lang_state = gr.State(lang)
        last_drawn = gr.State(None)
        with gr.Row():
            title = gr.Markdown(f"## {t(lang, 'title')}\n{t(lang, 'subtitle')}")
            lang_radio = gr.Radio(list(LANGUAGES), value="English", label=t(lang, "language"),
                                  elem_id="language", scale=0, min_width=220)
        with gr.Tabs():
            with gr.Tab(t(lang, "tab.data"), id="data") as tab_data:
                data = DataTab(lang, pairs)
            with gr.Tab(t(lang, "tab.config"), id="config") as tab_config:
                cfg = ct.ConfigTab(lang, initial, ctx.config_path)
            with gr.Tab(t(lang, "tab.train"), id="train") as tab_train:
                train = TrainTab(lang)
            with gr.Tab(t(lang, "tab.eval"), id="eval") as tab_eval:
                ev = EvalTab(lang, models, initial.model_id, initial.data.eval_path or pairs)
            with gr.Tab(t(lang, "tab.search"), id="search") as tab_search:
                se = SearchTab(lang, models, initial.model_id, pairs)

        # -- config: validate on every change, load, save ------------------------------------------------
        def validate(values) -> tuple[Config | None, list[str]]:
            """The form as a config, with every problem (hosted-mode refusals included)."""
            config, errors = ct.values_to_config(list(values), base_dir=str(ctx.workspace))
            if config is not None and ctx.hosted:
                errors = ct.hosted_problems(config, ctx)
            return (config if not errors else None), errors

        def check(lang: str, *values):
            return ct.validation_markdown(lang, validate(values)[1])

        gr.on([f.change for f in cfg.fields], check, [lang_state, *cfg.fields], cfg.validation,
              show_progress="hidden")

        def load_file(lang: str, path: str | None):
            values, errors = ct.load_config_file(path)
            if values is None:
                return [gr.skip()] * len(cfg.fields) + [ct.validation_markdown(lang, errors)]
            return [*values, ct.validation_markdown(lang, [])]

        cfg.load_file.upload(load_file, [lang_state, cfg.load_file], [*cfg.fields, cfg.validation])

        def save(lang: str, *values):
            config, errors = validate(values)
            if config is None:
                return None, ct.validation_markdown(lang, errors)
            config.save(ctx.config_path)
            return str(ctx.config_path), ct.validation_markdown(lang, [])

        cfg.save_btn.click(save, [lang_state, *cfg.fields], [cfg.download, cfg.validation])

        # -- train: start / resume / stop, and the timer that draws the run ------------------------------
        def start(resume: bool, lang: str, *values):
            config, errors = validate(values)
            if errors:
                return f"❌ {t(lang, 'train.fix_config')}\n\n" + "\n".join(f"- {e}" for e in errors)
            config.train.resume = resume
            try:
                ctx.run.start(config)
            except RunBusyError:
                return f"⚠️ {t(lang, 'train.busy')}"
            except ConfigError as e:
                return f"❌ {e}"
            config.save(ctx.config_path)  # so the command line shown in the Config tab runs the same thing
            return f"⏳ {t(lang, 'train.started')}"

        train.start_btn.click(lambda *a: start(False, *a), [lang_state, *cfg.fields], train.message)
        train.resume_btn.click(lambda *a: start(True, *a), [lang_state, *cfg.fields], train.message)
        train.stop_btn.click(lambda lang: t(lang, "train.stopping" if ctx.run.stop() else "train.nothing"),
                             lang_state, train.message)

        def tick(lang: str, last: Any):
            snap = ctx.run.snapshot()
            key = (lang, snap.status, snap.step, len(snap.logs), len(snap.evals), len(snap.log_lines), snap.message)
            if key == last and not snap.active:
                return [gr.skip()] * len(train.tick_targets) + [last]
            return [*tick_outputs(snap, lang), key]

        train.timer.tick(tick, [lang_state, last_drawn], [*train.tick_targets, last_drawn], show_progress="hidden")
        demo.load(tick, [lang_state, last_drawn], [*train.tick_targets, last_drawn])

        # -- data: upload, sample, crawl, compose -> the run's training data ------------------------------
        preview_outputs = [data.table_path, data.anchor_col, data.positive_col, data.preview, data.message]
        data.upload.upload(lambda f: accept_upload(ctx, f), data.upload, preview_outputs)
        data.sample_btn.click(lambda: _preview_updates(data.sample_table()), None, preview_outputs)
        data.crawl_btn.click(lambda s, u, n, progress=gr.Progress(): run_crawl(ctx, s, u, n, progress),
                             [data.sources, data.urls, data.limit],
                             [data.table_path, data.anchor_col, data.positive_col, data.preview, data.errors,
                              data.message])
        pairs_box, eval_box = _field(cfg, "data.pairs_path"), _field(cfg, "data.eval_path")
        split_box = _field(cfg, "data.eval_split")

        def compose_and_use(table, anchor, positive, hard_k, miner, ratio, model_id, progress=gr.Progress()):
            if miner == "model" and (problem := ctx.refuse_path(model_id, "model_id")):
                return [f"❌ {problem}"] + [gr.skip()] * 7
            report, out, eval_out, download = run_compose(ctx, table, anchor, positive, hard_k, miner, ratio,
                                                          model_id, progress)
            if out is None:
                return [report] + [gr.skip()] * 7
            # the new file becomes the run's training data (and its eval file, replacing the random split)
            return [report, download, out, out, eval_out or "", 0.0 if eval_out else gr.skip(), eval_out or out,
                    out]

        data.compose_btn.click(
            compose_and_use,
            [data.table_path, data.anchor_col, data.positive_col, data.hard_k, data.miner, data.eval_ratio,
             _field(cfg, "model_id")],
            [data.report, data.download, data.current, pairs_box, eval_box, split_box, ev.pairs, se.corpus],
        )

        # -- evaluate and search ------------------------------------------------------------------------
        def refresh_models(pairs: str):
            found = ctx.trained_models()
            newest = found[0] if found else None
            # score a run on the rows it held out (data.eval_split), not on the rows it trained on
            held_out = Path(newest) / EVAL_SPLIT_NAME if newest else None
            pairs = str(held_out) if held_out and held_out.exists() else pairs
            return (gr.update(choices=found, value=newest), gr.update(choices=found, value=newest), pairs)

        ev.refresh.click(refresh_models, ev.pairs, [ev.model, se.model, ev.pairs])
        demo.load(refresh_models, ev.pairs, [ev.model, se.model, ev.pairs])

        def pairs_for_model(model: str, pairs: str):
            held_out = Path(model or "") / EVAL_SPLIT_NAME
            return str(held_out) if model and held_out.exists() else pairs

        ev.model.change(pairs_for_model, [ev.model, ev.pairs], ev.pairs)
        def refused(**fields: str) -> str | None:
            problems = [p for name, value in fields.items() if (p := ctx.refuse_path(value, name))]
            return f"❌ {problems[0]}" if problems else None

        def evaluate(model: str, base: str, pairs: str, lang: str):
            if problem := refused(model=model, base=base, pairs=pairs):
                return gr.skip(), gr.skip(), problem
            return evaluate_rows(model, base, pairs, lang)

        ev.run_btn.click(evaluate, [ev.model, ev.base, ev.pairs, lang_state], [ev.table, ev.chart, ev.message])

        def upload_corpus(path: str | None):
            if not path:
                return gr.skip()
            dest = ctx.data_dir / f"corpus-{Path(path).name}"
            dest.write_bytes(Path(path).read_bytes())
            return str(dest)

        se.upload.upload(upload_corpus, se.upload, se.corpus)
        search_inputs = [se.query, se.k, se.model, se.base, se.corpus, se.column]
        search_outputs = [se.tuned_table, se.base_table, se.message]

        def search(query: str, k: float, model: str, base: str, corpus: str, column: str):
            if problem := refused(model=model, base=base, corpus=corpus):
                return gr.skip(), gr.skip(), problem
            return search_tables(cache, query, k, model, base, corpus, column)

        se.run_btn.click(search, search_inputs, search_outputs)
        se.query.submit(search, search_inputs, search_outputs)

        # -- language switch: every visible text follows ----------------------------------------------
        texts: list[tuple[Any, str, str]] = [
            (title, "title", ""), (lang_radio, "label", "language"),
            (tab_data, "label", "tab.data"), (tab_config, "label", "tab.config"), (tab_train, "label", "tab.train"),
            (tab_eval, "label", "tab.eval"), (tab_search, "label", "tab.search"),
            (data.crawl_box, "label", "data.crawl"), (data.upload_box, "label", "data.upload"),
            (data.compose_box, "label", "data.compose"), (cfg.model_box, "label", "config.section.model"),
            (data.current, "label", "data.current"), (data.sources, "label", "data.sources"),
            (data.urls, "label", "data.urls"), (data.limit, "label", "data.limit"),
            (data.crawl_btn, "value", "data.crawl_btn"), (data.errors, "label", "data.errors"),
            (data.upload, "label", "data.file"), (data.sample_btn, "value", "data.use_sample"),
            (data.anchor_col, "label", "data.anchor_col"), (data.positive_col, "label", "data.positive_col"),
            (data.preview, "label", "data.preview"), (data.hard_k, "label", "data.hard_k"),
            (data.miner, "label", "data.miner"), (data.eval_ratio, "label", "data.eval_ratio"),
            (data.compose_btn, "value", "data.compose_btn"), (data.download, "label", "data.download"),
            (cfg.load_file, "label", "config.load"), (cfg.save_btn, "value", "config.save"),
            (train.start_btn, "value", "train.start"), (train.stop_btn, "value", "train.stop"),
            (train.resume_btn, "value", "train.resume"), (train.log, "label", "train.log"),
            (ev.model, "label", "eval.model"), (ev.base, "label", "eval.base"), (ev.pairs, "label", "eval.pairs"),
            (ev.run_btn, "value", "eval.run"), (ev.refresh, "value", "eval.refresh"),
            (ev.table, "label", "eval.table"),
            (se.query, "label", "search.query"), (se.k, "label", "search.k"), (se.run_btn, "value", "search.run"),
            (se.model, "label", "eval.model"), (se.base, "label", "eval.base"),
            (se.corpus, "label", "search.corpus"), (se.upload, "label", "search.corpus_file"),
            (se.column, "label", "search.column"), (se.tuned_table, "label", "search.tuned"),
            (se.base_table, "label", "search.base"),
        ] + [(field, "info", spec.path) for field, spec in zip(cfg.fields, cfg.specs)]

        def switch(choice: str, *values):
            lang = LANGUAGES[choice]
            updates = []
            for _component, attr, key in texts:
                if key == "":
                    updates.append(f"## {t(lang, 'title')}\n{t(lang, 'subtitle')}")
                else:
                    updates.append(gr.update(**{attr: t(lang, key)}))
            return [lang, *updates, ct.validation_markdown(lang, validate(values)[1])]

        lang_radio.change(switch, [lang_radio, *cfg.fields],
                          [lang_state, *[c for c, _, _ in texts], cfg.validation])
    return demo


def launch_kwargs(ctx: AppContext) -> dict[str, Any]:
    """Arguments for demo.launch(): CSS, upload limit, and which folders may be served."""
    return {"css": CSS, "max_file_size": f"{ctx.max_upload_mb}mb", "allowed_paths": [str(ctx.workspace)]}

