"""Config tab: a form field for every config field, grouped like the JSON sections; load, save, validate."""

from __future__ import annotations

import dataclasses
import json
import shlex
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from ..engine import config as cfg
from ..engine.config import Config, ConfigError, config_from_dict
from .context import AppContext, inside
from .i18n import t

CHOICES = {"device": cfg.DEVICES, "dtype": cfg.DTYPES, "pooling": cfg.POOLINGS, "optim.name": cfg.OPTIMIZERS,
           "optim.scheduler": cfg.SCHEDULERS, "hf.loader": cfg.LOADERS,
           "output.best_metric": cfg.EVAL_METRICS}
SECTIONS = ("train", "optim", "data", "output", "hf")


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
        if f.metadata.get("internal") or dataclasses.is_dataclass(hints[f.name]):
            continue
        args = typing.get_args(hints[f.name]) or (hints[f.name],)
        kinds = [a for a in args if a is not type(None)]
        path = prefix + f.name
        out.append(FieldSpec(path, kinds[0], type(None) in args, CHOICES.get(path)))
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


def config_to_values(config: Config) -> list[Any]:
    """Form values in field_specs() order (None shown as an empty box)."""
    return [_get(config, s.path) if _get(config, s.path) is not None or s.kind is not str else ""
            for s in field_specs()]


def values_to_dict(values: list[Any]) -> dict[str, Any]:
    """Form values -> the nested JSON dict of a config.json (empty optional boxes become null)."""
    data: dict[str, Any] = {}
    for spec, value in zip(field_specs(), values):
        if isinstance(value, str):
            value = value.strip()
        if value in ("", None):
            value = None
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
    return problems


def validation_markdown(lang: str, errors: list[str]) -> str:
    if not errors:
        return f"✅ {t(lang, 'config.ok')}"
    return f"**{t(lang, 'config.errors')}**\n\n" + "\n".join(f"- ❌ `{e.split(':', 1)[0]}`:{e.split(':', 1)[1]}"
                                                            if ":" in e else f"- ❌ {e}" for e in errors)


def command_markdown(config_path: str) -> str:
    return f"```bash\npython -m embedgui train --config {shlex.quote(config_path)}\n```"


class ConfigTab:
    """The form's components, in field_specs() order, and the load/save widgets."""

    def __init__(self, lang: str, initial: Config, config_path: Path):
        self.specs = field_specs()
        self.config_path = config_path
        self.fields: list[gr.components.Component] = []
        values = dict(zip([s.path for s in self.specs], config_to_values(initial)))
        groups = [("config.section.model", [s for s in self.specs if "." not in s.path])]
        groups += [(section, [s for s in self.specs if s.path.startswith(section + ".")]) for section in SECTIONS]
        with gr.Row():
            self.load_file = gr.File(label=t(lang, "config.load"), file_types=[".json"], type="filepath", scale=1)
            with gr.Column(scale=1):
                self.save_btn = gr.Button(t(lang, "config.save"), variant="secondary")
                self.download = gr.File(label="config.json", interactive=False)
            with gr.Column(scale=2):
                self.command = gr.Markdown(command_markdown(str(config_path)), label=t(lang, "config.command"))
                self.validation = gr.Markdown(validation_markdown(lang, []), elem_id="config-validation")
        self.model_box = None
        for title, specs in groups:
            with gr.Accordion(t(lang, title) if title.startswith("config.") else title,
                              open=title in ("config.section.model", "train", "optim", "data")) as box:
                if title == "config.section.model":
                    self.model_box = box  # the JSON section names (train, optim, ...) stay as they are
                with gr.Row(equal_height=False):
                    for spec in specs:
                        self.fields.append(self._widget(spec, values[spec.path], lang))

    def _widget(self, spec: FieldSpec, value: Any, lang: str) -> gr.components.Component:
        label, info = spec.path, t(lang, spec.path)
        elem_id = "cfg-" + spec.path.replace(".", "-")
        common = {"label": label, "info": info, "elem_id": elem_id, "min_width": 220}
        if spec.choices:
            widget = gr.Dropdown(list(spec.choices), value=value, **common)
        elif spec.kind is bool:
            widget = gr.Checkbox(value=value, **common)
        elif spec.kind in (int, float):
            widget = gr.Number(value=value, precision=0 if spec.kind is int else None, **common)
        else:
            widget = gr.Textbox(value=value, **common)
        return widget


def load_config_file(path: str | None) -> tuple[list[Any] | None, list[str]]:
    """A dropped config.json -> form values, or the problems (the form keeps what it had)."""
    if not path:
        return None, []
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, json.JSONDecodeError) as e:
        return None, [f"{Path(path).name}: not a readable JSON file ({e})"]
    try:
        return config_to_values(config_from_dict(data, Path(path).name)), []
    except ConfigError as e:
        return None, e.errors
