"""Config tab: a form field for every config field, grouped like the JSON sections; load, save, validate.

The form is the workspace's config.json: it is filled from that file when a page loads and saved back whenever
it is valid, so a reload shows what will train. Empty optional boxes mean "not set" (null), never 0.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shlex
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from ..engine import config as cfg
from ..engine.compose import held_out_path
from ..engine.config import Config, ConfigError, config_from_dict, load_config
from ..engine.data import PairsError, find_pairs_path
from ..engine.paths import inside
from .base import UI
from .context import HOSTED_CAPS, SAMPLE_PAIRS, AppContext
from .engine_text import engine_text
from .i18n import field_info, field_label, t
from .language import language_warning

log = logging.getLogger(__name__)

CHOICES = {"device": cfg.DEVICES, "dtype": cfg.DTYPES, "pooling": cfg.POOLINGS, "optim.name": cfg.OPTIMIZERS,
           "optim.scheduler": cfg.SCHEDULERS, "hf.loader": cfg.LOADERS,
           "output.best_metric": cfg.EVAL_METRICS}
SECTIONS = ("train", "optim", "data", "output", "hf")
# Resume is an action (the Resume buttons), not a setting that sticks in the saved config.
NOT_IN_FORM = {"train.resume"}
# An optional true/false (normalize: null = follow the model) is a three-way choice; a check box has no "not set".
FOLLOW_CHOICES = ("auto", "true", "false")


@dataclass(frozen=True)
class FieldSpec:
    path: str  # "train.batch_size" or "model_id"
    kind: type  # bool, int, float or str
    optional: bool
    choices: tuple[str, ...] | None


def _specs_of(cls: type, prefix: str) -> list[FieldSpec]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal") or dataclasses.is_dataclass(hints[f.name]) or prefix + f.name in NOT_IN_FORM:
            continue
        args = typing.get_args(hints[f.name]) or (hints[f.name],)
        kinds = [a for a in args if a is not type(None)]
        path = prefix + f.name
        optional = type(None) in args
        choices = CHOICES.get(path) or (FOLLOW_CHOICES if kinds[0] is bool and optional else None)
        out.append(FieldSpec(path, kinds[0], optional, choices))
    return out


def field_specs() -> list[FieldSpec]:
    """Every config field in form order: the top-level model fields, then each section."""
    specs = _specs_of(Config, "")
    for section in SECTIONS:
        specs += _specs_of(typing.get_type_hints(Config)[section], f"{section}.")
    return specs


def _get(config: Config, path: str) -> Any:
    obj = config
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _json_field(spec: FieldSpec) -> bool:
    """A list or object field (train.lora, train.matryoshka_dims): edited as JSON text in a box."""
    return typing.get_origin(spec.kind) in (list, dict)


def _text_box(spec: FieldSpec) -> bool:
    # Optional numbers are text boxes: a gr.Number shows (and sends) 0 for a null value, so "not set" would be lost.
    # So are all decimal numbers: a browser's number box is briefly empty while "7e-5" is typed ("7e" is no number),
    # and a fast typist's learning rate ended as -5 (seen in Chromium); text keeps what was typed, e.g. 5e-05.
    return spec.kind in (str, float) or (spec.optional and spec.kind is int) or _json_field(spec)


def config_to_values(config: Config) -> list[Any]:
    """Form values in field_specs() order (None shown as an empty box)."""
    out = []
    for s in field_specs():
        value = _get(config, s.path)
        if _json_field(s):
            out.append("" if value is None else json.dumps(value, ensure_ascii=False))
            continue
        if s.choices == FOLLOW_CHOICES:
            out.append("auto" if value is None else "true" if value else "false")
            continue
        out.append(("" if value is None else str(value) if s.kind is not str else value) if _text_box(s) else value)
    return out


def _number(text: str, kind: type) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text  # the config's own check names the field and says what it wants
    return int(number) if kind is int and number.is_integer() else number


def values_to_dict(values: list[Any]) -> dict[str, Any]:
    """Form values -> the nested JSON dict of a config.json (empty optional boxes become null)."""
    data: dict[str, Any] = {}
    for spec, value in zip(field_specs(), values):
        if isinstance(value, str):
            # a prompt keeps its spaces ("query: " ends in one); other boxes are trimmed
            value = value if spec.path.endswith("_prompt") and value.strip() else value.strip()
        if spec.choices == FOLLOW_CHOICES and value in FOLLOW_CHOICES:
            value = {"auto": None, "true": True, "false": False}[value]
        if value in ("", None):
            value = None
        elif _json_field(spec) and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass  # kept as text: the config's own check names the field and shows an example
        elif spec.kind in (int, float) and isinstance(value, str):
            value = _number(value, spec.kind)
        elif spec.kind is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if value is None and not spec.optional:
            continue  # an emptied required box falls back to its default
        *parents, leaf = spec.path.split(".")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return data


def values_to_config(values: list[Any], base_dir: str | None = None) -> tuple[Config | None, list[str]]:
    """(config, []) when the form is valid, else (None, every problem)."""
    try:
        config = config_from_dict(values_to_dict(values))
    except ConfigError as e:
        return None, e.errors
    config.base_dir = base_dir
    return config, []


def hosted_problems(config: Config, ctx: AppContext) -> list[str]:
    """What a hosted (public) app refuses: remote code, and files or folders outside the app's own folders."""
    problems = []
    if config.hf.trust_remote_code:
        problems.append("hf.trust_remote_code: not allowed on a hosted app (it would run a model repository's "
                        "code on the server); run embedgui locally for such models.")
    for name in ("model_id", "tokenizer_id", "data.pairs_path", "data.eval_path"):
        if problem := ctx.refuse_path(_get(config, name), name):
            problems.append(problem)
    if not inside(config.run_dir, ctx.workspace):
        problems.append(f"output.save_dir: {config.output.save_dir} is outside the app's workspace; "
                        "use a folder inside it.")
    for name, cap in HOSTED_CAPS.items():
        value = _get(config, name)
        if value is not None and value > cap:
            problems.append(f"{name}: {value} is more than this shared app allows ({cap}); lower it, or run "
                            "embedgui on your own machine for larger jobs.")
    return problems


def model_prompts_note(config: Config, lang: str) -> str:
    """The prompts the model folder declares that training will use (where the form leaves them empty); "" if none."""
    from ..engine.model_files import saved_prompts
    from ..engine.modeling import resolve_model_path

    try:
        folder = resolve_model_path(config.model_id, config.base_dir, config.allowed_roots)
    except (OSError, ValueError, RuntimeError):  # RuntimeError: ModelLoadError, e.g. a file where a folder belongs
        return ""
    if not Path(folder).is_dir():
        return ""
    prompts = saved_prompts(folder)[0]
    used = [(side, prompts[side]) for side, own in (("query", config.data.query_prompt),
                                                   ("document", config.data.document_prompt))
            if own is None and prompts.get(side)]
    if not used:
        return ""
    shown = ", ".join(f"{t(lang, 'config.prompt_' + side)} `{text!r}`" for side, text in used)
    return t(lang, "config.model_prompts", prompts=shown)


def missing_files_note(config: Config, lang: str) -> str:
    """The pairs or eval file the form names but that is not there (Start would stop on it); "" when both are.

    A note, not a problem: the form still autosaves while a path is being typed or the file is still to come."""
    missing = []
    for name, value in (("data.pairs_path", config.data.pairs_path), ("data.eval_path", config.data.eval_path)):
        if name == "data.eval_path" and not value:
            continue
        try:
            find_pairs_path(value, config.base_dir, name, roots=config.allowed_roots)
        except (PairsError, OSError, ValueError) as e:
            missing.append(f"- {engine_text(str(e), lang)}")
    return "\n".join([t(lang, "config.missing_files"), *missing]) if missing else ""


def validation_markdown(lang: str, errors: list[str], config: Config | None = None) -> str:
    """The form's problems, or "valid" with the language warning when the model cannot read the data's language,
    the model's own prompts where the form leaves them to the model, and a data file that is not there."""
    if not errors:
        missing = missing_files_note(config, lang) if config is not None else ""
        notes = [language_warning(config, lang), model_prompts_note(config, lang)] if config is not None else []
        # a missing file takes the place of "valid": the form is saved, but Start would stop on it
        return "\n\n".join([missing or t(lang, "config.ok"), *filter(None, notes)])
    errors = [engine_text(e, lang) for e in errors]
    return f"**{t(lang, 'config.errors')}**\n\n" + "\n".join(f"- `{e.split(':', 1)[0]}`:{e.split(':', 1)[1]}"
                                                            if ":" in e else f"- {e}" for e in errors)


def command_markdown(config_path: str) -> str:
    return f"```bash\npython -m embedgui train --config {shlex.quote(config_path)}\n```"


def default_config(ctx: AppContext) -> Config:
    """A first-time user's config: packaged MiniLM, the sample glossary, quick CPU settings."""
    c = Config()
    c.data.pairs_path = str(SAMPLE_PAIRS)
    c.data.eval_split = 0.1
    c.output.save_dir = str(ctx.runs_dir)
    c.train.batch_size, c.train.max_length, c.train.epochs = 16, 64, 2
    # Demo settings on top of the measured defaults (docs/recipes.md): the bundled sample has a few hundred short
    # rows, so small batches of short texts give a run with enough steps to see a curve in a minute, two passes,
    # and an evaluation every 10 steps on a tenth held out.
    c.train.log_every, c.train.eval_every, c.train.pad_to_multiple_of = 1, 10, 8
    return c


def workspace_config(ctx: AppContext) -> Config:
    """The workspace's saved config.json as it is now (read on every page load), else the first-time config."""
    if ctx.config_path.exists():
        try:
            config = load_config(ctx.config_path)
            config.train.resume = False  # an old file may still hold it; resume is an action
            return config
        except ConfigError as e:
            log.warning("Ignoring %s: %s", ctx.config_path, e)
    return default_config(ctx)


def validate(ctx: AppContext, values: list[Any]) -> tuple[Config | None, list[str]]:
    """The form as a config, with every problem (hosted-mode refusals included)."""
    config, errors = values_to_config(list(values), base_dir=str(ctx.workspace))
    if config is not None and ctx.hosted:
        errors = hosted_problems(config, ctx)
        config.allowed_roots = [str(r) for r in ctx.allowed_roots]  # the trainer's loaders check again
    return (config if not errors else None), errors


def follow_pairs_file(config: Config) -> str | None:
    """The eval file follows the pairs file it was split from: when data.eval_path is a held-out split as compose
    names it (X.eval.jsonl) but not the one of the pairs file the form now names, and that pairs file exists, it
    becomes that file's split where there is one, else none. Left as it was, a run on the new data would be scored
    on the old data's held-out rows. Returns the new eval_path ("" = none) when it changed, else None. A path still
    being typed (no such file yet) changes nothing; an eval file named otherwise is never touched."""
    pairs, current = config.data.pairs_path, config.data.eval_path
    if not pairs or not current or not current.endswith(".eval.jsonl"):
        return None
    try:  # where training will find it (beside the workspace, else the working directory)
        pairs_file = find_pairs_path(pairs, config.base_dir, roots=config.allowed_roots)
    except (PairsError, OSError, ValueError):
        return None
    own = held_out_path(pairs_file)
    if (Path(config.base_dir or ".") / current).resolve() == own.resolve():
        return None
    config.data.eval_path = str(own) if own.is_file() else None
    return config.data.eval_path or ""


def save_config(ctx: AppContext, config: Config) -> None:
    """The workspace config.json the command line and the next page load read; never with resume set."""
    config.train.resume = False
    config.save(ctx.config_path)


def load_config_file(path: str | None) -> tuple[list[Any] | None, list[str]]:
    """A dropped config.json -> form values, or the problems (the form keeps what it had)."""
    if not path:
        return None, []
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, json.JSONDecodeError) as e:
        return None, [f"{Path(path).name}: not a readable JSON file ({e})"]
    try:
        config = config_from_dict(data, Path(path).name)
    except ConfigError as e:
        return None, e.errors
    config.train.resume = False
    return config_to_values(config), []


class ConfigTab:
    """The form's components, in field_specs() order, and the load/save widgets."""

    def __init__(self, ui: UI):
        self.ui, tx, lang = ui, ui.texts, ui.texts.lang
        self.specs = field_specs()
        self._path: dict[int, str] = {}
        self.fields: list[gr.components.Component] = []
        self.said = gr.State([])  # the problems this page has already shown (a pop-up says only new ones)
        values = dict(zip([s.path for s in self.specs], config_to_values(workspace_config(ui.ctx))))
        groups = [("config.section.model", [s for s in self.specs if "." not in s.path])]
        groups += [(section, [s for s in self.specs if s.path.startswith(section + ".")]) for section in SECTIONS]
        with gr.Row():
            self.load_file = tx.make(gr.File, "config.load", file_types=[".json"], type="filepath", scale=1)
            with gr.Column(scale=1):
                self.save_btn = tx.make(gr.Button, "config.save", "value", variant="secondary", elem_id="config-save")
                self.download = gr.File(label="config.json", interactive=False)
            with gr.Column(scale=2):
                # a hosted app hands out no config file and its server's path is no visitor's: no command there
                self.command = gr.Markdown(command_markdown(str(ui.ctx.config_path)) if not ui.ctx.hosted else "",
                                           visible=not ui.ctx.hosted)
                self.validation = gr.Markdown(validation_markdown(lang, []), elem_id="config-validation")
        for title, specs in groups:
            kw = {"open": title in ("config.section.model", "train", "optim", "data")}
            if title.startswith("config."):
                box = tx.make(gr.Accordion, title, **kw)
            else:
                box = gr.Accordion(title, **kw)  # the JSON section names (train, optim, ...) stay as they are
            with box:
                # check boxes get a row of their own with room for their help; the other fields share rows
                boxes = [s for s in specs if s.kind is bool and not s.choices]
                with gr.Row(equal_height=False):
                    for spec in specs:
                        if spec not in boxes:
                            self.fields.append(self._widget(spec, values[spec.path]))
                if boxes:
                    with gr.Row(equal_height=False, elem_classes="config-checks"):
                        for spec in boxes:
                            self.fields.append(self._widget(spec, values[spec.path]))
        # the components were appended in layout order; keep them in field_specs() order for the handlers
        order = {s.path: i for i, s in enumerate(self.specs)}
        self.fields.sort(key=lambda c: order[self._path[id(c)]])

    def _widget(self, spec: FieldSpec, value: Any) -> gr.components.Component:
        tx = self.ui.texts
        common = {"label": field_label(tx.lang, spec.path), "info": field_info(tx.lang, spec.path),
                  "elem_id": "cfg-" + spec.path.replace(".", "-"), "min_width": 240}
        if spec.choices:
            widget = gr.Dropdown(list(spec.choices), value=value, **common)
        elif spec.kind is bool:
            widget = gr.Checkbox(value=value, min_width=320, **{k: v for k, v in common.items() if k != "min_width"})
        elif _text_box(spec) and spec.kind is not str:
            widget = gr.Textbox(value=value, placeholder=t(tx.lang, "config.not_set") if spec.optional else None,
                                **common)
            if spec.optional:  # empty = null, and the box says so
                tx.add(widget, "config.not_set", "placeholder")
        elif spec.kind is int:  # decimal numbers are text boxes (_text_box)
            widget = gr.Number(value=value, precision=0, **common)
        else:
            widget = gr.Textbox(value=value, **common)
        tx.add(widget, lambda lang, p=spec.path: field_label(lang, p), "label")
        tx.add(widget, lambda lang, p=spec.path: field_info(lang, p), "info")
        self._path[id(widget)] = spec.path
        return widget

    def field(self, path: str) -> gr.components.Component:
        return self.fields[[s.path for s in self.specs].index(path)]

    # -- handlers ------------------------------------------------------------------------------------------
    def form_updates(self, config: Config) -> dict:
        return dict(zip(self.fields, config_to_values(config)))

    def on_load(self, lang: str, owner: str) -> dict:
        """A page (re)load: the form shows the workspace config as saved now, not the app-start config."""
        ctx = self.ui.ctx.visitor(owner)
        config = workspace_config(ctx)
        errors = config.validate() + (hosted_problems(config, ctx) if ctx.hosted else [])
        if ctx.hosted:  # the notes under the form look only where a visitor's paths may point
            config.allowed_roots = [str(r) for r in ctx.allowed_roots]
        elif not errors and not ctx.config_path.exists():  # the command the tab shows must find the form's config
            save_config(ctx, config)
        return {**self.form_updates(config), self.validation: validation_markdown(lang, errors, config),
                self.said: errors}

    def wire(self) -> None:
        lang, owner = self.ui.lang, self.ui.tabs["train"].owner

        # A paste (or a browser's autofill) into a text box fires no input event in Gradio: leaving the box saves too.
        triggers = [f.input for f in self.fields] + [f.blur for f in self.fields if isinstance(f, gr.Textbox)]
        def edited_here(lang: str, owner: str, shown: list, *values) -> dict:
            out, problems = self._edit(lang, owner, values)
            # The list of problems sits at the top of a long form, out of sight of the field being typed in: a
            # problem that is new since the last edit (or the page load) also pops up where the user is looking.
            for problem in problems:
                if problem not in (shown or []):
                    gr.Warning(engine_text(problem, lang))
            return {**out, self.said: problems}

        gr.on(triggers, edited_here, [lang, owner, self.said, *self.fields],
              [self.validation, self.field("data.eval_path"), self.said], show_progress="hidden",
              trigger_mode="always_last")

        def load_file(lang: str, owner: str, path: str | None):
            values, errors = load_config_file(path)
            if values is None:
                return {self.validation: validation_markdown(lang, errors)}
            return {**dict(zip(self.fields, values)), **self.edited(lang, owner, *values)}

        self.load_file.upload(load_file, [lang, owner, self.load_file], [*self.fields, self.validation])

        self.save_btn.click(self.save, [lang, owner, *self.fields], [self.download, self.validation])

    def edited(self, lang: str, owner: str, *values) -> dict:
        """A form edit: its problems, and the autosave of a valid form (with the eval file following the pairs file
        it was split from: follow_pairs_file, unless that would make the config invalid)."""
        return self._edit(lang, owner, values)[0]

    def _edit(self, lang: str, owner: str, values: tuple | list) -> tuple[dict, list[str]]:
        """edited(), and the problems it found."""
        ctx = self.ui.ctx.visitor(owner)
        config, errors = validate(ctx, values)
        out = {}
        if config is not None:
            before = config.data.eval_path
            moved = follow_pairs_file(config)
            if moved is not None and (config.validate() or (hosted_problems(config, ctx) if ctx.hosted else [])):
                config.data.eval_path, moved = before, None  # e.g. keep_best needs eval data: the form decides
            if moved is not None:
                out[self.field("data.eval_path")] = moved
            save_config(ctx, config)  # autosave: a reload, Start and the command line see this form
        return {**out, self.validation: validation_markdown(lang, errors, config)}, errors

    def save(self, lang: str, owner: str, *values) -> dict:
        """Save the form as the workspace config and offer it for download; a hosted app serves no config file (it
        serves nothing from its workspace), it only saves."""
        ctx = self.ui.ctx.visitor(owner)
        config, errors = validate(ctx, values)
        if config is None:
            return {self.download: None, self.validation: validation_markdown(lang, errors)}
        save_config(ctx, config)
        if ctx.hosted:
            return {self.download: None,
                    self.validation: validation_markdown(lang, [], config) + "\n\n" + t(lang, "config.saved_hosted")}
        return {self.download: ctx.servable(ctx.config_path), self.validation: validation_markdown(lang, [], config)}

    def relabel(self, lang: str, owner: str, *values) -> str:
        """The validation text in the new language (after the language switch)."""
        config, errors = validate(self.ui.ctx.visitor(owner), values)
        return validation_markdown(lang, errors, config)
