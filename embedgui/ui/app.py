"""create_app(ctx) -> gr.Blocks: five tabs over one background Run, in English or Korean.

This file lays out the tabs and nothing else: each tab builds its widgets and wires its own handlers (returning
updates by component), and every translatable component is registered in one Texts registry that the language
switch walks.
"""

from __future__ import annotations

import uuid
from typing import Any

import gradio as gr

from .base import UI
from .config_tab import ConfigTab, default_config, workspace_config
from .context import SAMPLE_PAIRS, AppContext
from .data_tab import DataTab
from .eval_tab import EvalTab
from .i18n import LANGUAGES, Texts, t
from .search_tab import SearchTab
from .train_tab import TrainTab

CSS = """
#train-progress-box {min-height: 48px}
.gradio-container {max-width: 1280px !important}
.config-checks > div {min-width: 320px}
#search-tuned td, #search-base-hits td {white-space: normal; word-break: break-word}
"""


def _title(lang: str) -> str:
    return f"## {t(lang, 'title')}\n{t(lang, 'subtitle')}"


def create_app(ctx: AppContext) -> gr.Blocks:
    # a hosted app's page starts from the first-time config; the page load fills in the visitor's own
    initial = default_config(ctx) if ctx.hosted else workspace_config(ctx)
    models = [] if ctx.hosted else ctx.trained_models()
    pairs = initial.data.pairs_path or str(SAMPLE_PAIRS)
    texts = Texts("en")
    with gr.Blocks(title="embedgui") as demo:
        # The browser's id. Outside the tabs: a tab's components mount only when the tab is first shown, and a
        # BrowserState that has not mounted neither reads nor writes localStorage, so a reload would get a new id.
        # A secret kept in the workspace lets the id (stored encrypted) be read again after the app restarts.
        owner = gr.BrowserState("", storage_key="embedgui-owner", secret=ctx.browser_secret())
        # The page's language, kept in the browser like the id: a reload comes back in the language last chosen.
        stored_lang = gr.BrowserState("", storage_key="embedgui-language", secret=ctx.browser_secret())
        ui = UI(ctx=ctx, texts=texts, lang=gr.State("en"), owner=owner)
        with gr.Row():
            texts.add(gr.Markdown(_title("en")), _title, "value")
            lang_radio = texts.make(gr.Radio, "language", choices=list(LANGUAGES), value="English",
                                    elem_id="language", scale=0, min_width=220)
        with gr.Tabs() as tabs:
            ui.tabs["tabs"] = tabs
            with texts.make(gr.Tab, "tab.data", id="data"):
                data = DataTab(ui, pairs)
            with texts.make(gr.Tab, "tab.config", id="config"):
                cfg = ConfigTab(ui)
            with texts.make(gr.Tab, "tab.train", id="train"):
                train = TrainTab(ui)
            with texts.make(gr.Tab, "tab.eval", id="eval"):
                ev = EvalTab(ui, models, initial.model_id, initial.data.eval_path or pairs)
            with texts.make(gr.Tab, "tab.search", id="search"):
                se = SearchTab(ui, models, initial.model_id, pairs)
        ui.tabs.update(data=data, config=cfg, train=train, eval=ev, search=se)
        for tab in (data, cfg, train, ev, se):
            tab.wire()

        # -- a page (re)load shows the current state: the saved config, the data in use, the runs, the run -------
        def on_load(lang: str, owner: str, pairs_now: str, saved_lang: str) -> dict:
            owner = owner or uuid.uuid4().hex  # a browser's first visit: the id it keeps (its workspace, its runs)
            # The language chosen before: setting the switch fires its change, which turns the page over.
            name = next((n for n, code in LANGUAGES.items() if code == saved_lang), None)
            out = {**cfg.on_load(lang, owner), **data.on_load(owner),
                   **train.on_load(lang, owner, saved_lang if name else None)}
            out.update(ev.refresh_models(pairs_now, owner, from_config=True))
            if name and saved_lang != lang:
                out[lang_radio] = name
            return out

        load_outputs = [*cfg.fields, cfg.validation, cfg.said, data.current, train.owner, *train.list_targets,
                        train.notice, train.notice_config, ev.model, se.model, ev.pairs, se.corpus, lang_radio]
        # No progress overlay: it would put a "0.0s" timer over the run's text on every reload.
        demo.load(on_load, [ui.lang, train.owner, ev.pairs, stored_lang], list(dict.fromkeys(load_outputs)),
                  show_progress="hidden")

        # -- language switch: every registered component follows ----------------------------------------------
        def switch(choice: str, owner: str, started: dict | None, *values) -> dict:
            lang = LANGUAGES[choice]
            out = {ui.lang: lang, stored_lang: lang, **texts.updates(lang),
                   cfg.validation: cfg.relabel(lang, owner, *values)}
            if started:  # the Start notice in the new language; a refusal note (no config) stays as it was
                out[train.notice] = train.notice_text(started, lang, owner)
            # the run list's rows in lang too (its headers, status words), with the label the registry gives it
            out[train.runs] = gr.update(**out[train.runs], value=train.runs_frame(lang, owner))
            return out

        components = [c for c in texts.components]
        lang_radio.change(switch, [lang_radio, train.owner, train.notice_config, *cfg.fields],
                          [ui.lang, stored_lang, *components, cfg.validation, train.notice],
                          show_progress="hidden")
    demo.ui = ui  # tests read the registry
    return demo


def launch_kwargs(ctx: AppContext) -> dict[str, Any]:
    """Arguments for demo.launch(): CSS, upload limit, and which folders may be served.

    A hosted app serves nothing from its workspace (configs, snapshots, other visitors' data): downloads are
    copied to a private temporary folder first (AppContext.servable), and Gradio serves those by hash.
    """
    if ctx.hosted:
        return {"css": CSS, "max_file_size": f"{ctx.max_upload_mb}mb", "allowed_paths": [],
                "blocked_paths": [str(ctx.workspace)]}
    return {"css": CSS, "max_file_size": f"{ctx.max_upload_mb}mb", "allowed_paths": [str(ctx.workspace)]}
