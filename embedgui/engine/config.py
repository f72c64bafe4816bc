"""The config.json schema as nested dataclasses: load, save, validate.

A config in the original command-line trainer's format (top-level model_id/tokenizer_id/device/dtype, sections
train/optim/data/output/hf) loads unchanged; every field added since has a default. Unknown keys are errors with a
did-you-mean suggestion, and validation reports every problem at once.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import atomic_write_text

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"

DEVICES = ("auto", "cuda", "mps", "cpu")
DTYPES = ("auto", "float32", "float16", "bfloat16")
DTYPE_ALIASES = {"fp32": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"}
POOLINGS = ("auto", "mean", "cls", "last")
LORA_KEYS = ("r", "alpha", "dropout", "target_modules")
OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULERS = ("linear", "cosine", "constant")
LOADERS = ("automodel", "sentence_transformer")
# What evaluation during training reports (embedgui.engine.evaluate, default cut-offs); keep_best compares one.
EVAL_METRICS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")


@dataclass
class TrainConfig:
    batch_size: int = 32
    epochs: int = 1
    max_length: int = 128
    grad_accum_steps: int = 1
    # Fixed optimizer steps per epoch (the data is cycled or cut to fit); None = one pass over the data.
    steps_per_epoch: int | None = None
    grad_checkpointing: bool = False
    num_workers: int = 0
    pad_to_multiple_of: int | None = None
    # InfoNCE temperature: logits = cosine / temperature (sentence-transformers' scale = 1 / temperature).
    temperature: float = 0.05
    # Learn the temperature (as log(temperature), starting from train.temperature, kept within 0.01-1).
    learn_temperature: bool = False
    # Dropout probability for every dropout layer of the model while training (0 = off, which also makes a step
    # faster). None = automatic: off on a CPU (unless attention_dropout is set), where drawing the random masks took a
    # fifth of a MiniLM step at 32 tokens and, with attention dropout, 40% at 128; with three seeds that gave Korean
    # 1.66x sentence-transformers' recall@1 gain against 1.56x, WordNet and the glossaries the same (docs/recipes.md).
    # The model's own elsewhere (0.1 for BERT-like models). A LoRA adapter's dropout is train.lora.dropout.
    dropout: float | None = None
    # Dropout on the attention weights alone while training. None = train.dropout's rate (so off on a CPU by
    # default; without it a step at 128 tokens takes 0.6x the time). A number sets it on every device and, with
    # train.dropout unset, keeps the model's other dropout.
    attention_dropout: float | None = None
    log_every: int = 10
    # Evaluate every N optimizer steps (0 = only at the end) when eval data is configured.
    eval_every: int = 0
    # A time budget for the whole train command, in minutes: the number of steps (and with it the epochs and the
    # schedule's warmup and decay) is planned from the measured speed of the first steps so that the run ends,
    # evaluated and saved, within the budget. None = train.epochs decides.
    max_minutes: float | None = None
    # Stop when output.best_metric has not improved for this many evaluations in a row (needs eval data and
    # eval_every); None = never.
    early_stopping_patience: int | None = None
    # Write a resumable snapshot every N optimizer steps (0 = only when stopped or finished).
    save_every: int = 0
    resume: bool = False
    # LoRA through peft: {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": [...]}; {} = LoRA with the
    # defaults for the architecture; None = full fine-tuning. Only the adapter weights train.
    lora: dict[str, Any] | None = None
    # Matryoshka: InfoNCE also at these truncated, re-normalised sizes, e.g. [256, 128, 64]; None = off.
    matryoshka_dims: list[int] | None = None
    # Also score each positive against every anchor (document-to-query) and average the two directions. Off by
    # default: with three seeds at lr 5e-5 the one-way loss gave the larger recall@1 gain on all three data sets
    # of docs/recipes.md (WordNet 1.10x against 0.96x, glossaries 2.50x against 2.25x, Korean 1.55x against 1.51x).
    symmetric: bool = False
    # (H9, performance) Batches of rows of similar length, shuffled (less padding; in-memory data only).
    group_by_length: bool = True
    # Batches of rows that share rare words (TF-IDF of their tokens, within windows of 16 batches): in-batch
    # negatives that are harder to tell apart, at no extra cost per step (topic-aware sampling). With
    # group_by_length, within bands of rows of similar length. In-memory data only.
    similar_batches: bool = False
    # Gradient caching: embed N texts at a time (a batch far larger than memory allows); 0 = off; null = on only
    # when the batch would not fit in memory (embedgui.engine.gradcache.choose_chunk).
    gradcache_chunk: int | None = None
    # Under torchrun: score every anchor against the positives and hard negatives of all ranks (the global batch);
    # null = on when training on several processes, false = each rank's own batch only.
    gather_negatives: bool | None = None


@dataclass
class OptimConfig:
    name: str = "adamw"
    # 5e-5: measured with three seeds on three data sets in the same time as sentence-transformers, it beat 1e-4 on
    # all three (docs/recipes.md); 2e-5 moves too little in a short run.
    lr: float = 5e-5
    # A run of fewer steps than this (its planned total, e.g. a small data set or a short time budget) trains at a
    # peak rate raised by sqrt(short_run_steps / steps), at most 2 x lr; None or 0 = always lr. 64: the sets
    # that got 9 and 27 steps in sentence-transformers' time gained more at 7e-5-1e-4, the sets that got 80-110
    # steps did not (docs/recipes.md).
    short_run_steps: int | None = 64
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    scheduler: str = "linear"
    max_grad_norm: float | None = 1.0


@dataclass
class DataConfig:
    # None: look for tools/data/pairs.jsonl and data/pairs.jsonl next to the config file, then in the cwd.
    pairs_path: str | None = None
    stream: bool = False
    eval_path: str | None = None
    # Hold out this share of the training rows for evaluation when eval_path is not set (0 = no split).
    eval_split: float = 0.0
    skip_invalid: bool = False
    shuffle: bool = True
    # Rows kept in memory to shuffle a streamed file (memory stays flat: this many rows at most).
    shuffle_buffer: int = 10000
    # Use at most this many hard negatives per row (None = all of them).
    max_hard_negatives: int | None = None
    # When the training rows have no hard negatives: mine this many per row with the model before training (its
    # false negatives filtered out), cached beside the pairs file and reused; None or 0 = do not mine. 1 by default:
    # with three seeds one mined negative a row raised WordNet's recall@1 gain from 1.05-1.10x sentence-transformers'
    # to 1.35-1.37x in the same time, at a small cost on Korean (1.38-1.50x against 1.47-1.55x; docs/recipes.md).
    mine_hard_negatives: int | None = 1
    # Prefixes put in front of every query (anchor) and document (positive, hard negative) text, in training,
    # evaluation, search and the saved model (sentence-transformers prompts "query" / "document").
    # None = the model folder's own prompts, if it declares any.
    query_prompt: str | None = None
    document_prompt: str | None = None


@dataclass
class OutputConfig:
    save_dir: str = "outputs"
    save_name: str = "embed-ft"
    save_metrics: bool = True
    # Resumable snapshots kept on disk (older ones are deleted).
    keep_snapshots: int = 2
    # Keep the model with the best eval metric instead of the last one (needs eval data).
    keep_best: bool = False
    best_metric: str = "ndcg@10"


@dataclass
class HFConfig:
    trust_remote_code: bool = False
    local_files_only: bool = False
    default_task: str | None = None
    loader: str = "automodel"
    revision: str | None = None


@dataclass
class Config:
    model_id: str = DEFAULT_MODEL_ID
    tokenizer_id: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    seed: int = 42
    # auto: the model folder's sentence-transformers pooling, else last token for decoder models, else mean.
    pooling: str = "auto"
    # None: follow the model (a sentence-transformers folder's Normalize module), else true.
    normalize: bool | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    hf: HFConfig = field(default_factory=HFConfig)
    # Folder of the config file it was loaded from, to resolve relative paths (not saved).
    base_dir: str | None = field(default=None, metadata={"internal": True})
    # A hosted app sets the folders every file the run reads must lie in (not saved); None = anywhere.
    allowed_roots: list[str] | None = field(default=None, metadata={"internal": True})

    def validate(self) -> list[str]:
        """Every problem with the values, one sentence each naming the field; empty when the config is usable."""
        return _check_values(self)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for f in dataclasses.fields(self):
            if _is_internal(f):
                out.pop(f.name)
        return out

    def save(self, path: str | os.PathLike) -> None:
        """Write config.json atomically (a crash never leaves half a file)."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")

    @property
    def run_dir(self) -> Path:
        """output.save_dir/output.save_name; a relative save_dir is taken from the working directory."""
        return Path(self.output.save_dir).expanduser() / self.output.save_name


class ConfigError(ValueError):
    """A config that cannot be used; .errors lists every problem, one sentence each."""

    def __init__(self, errors: list[str], source: str | None = None):
        self.errors = errors
        where = f"{source}: " if source else ""
        super().__init__(where + ("; ".join(errors) if len(errors) == 1 else f"{len(errors)} problems:\n  - "
                                  + "\n  - ".join(errors)))


def _is_internal(f: dataclasses.Field) -> bool:
    return bool(f.metadata.get("internal"))


def _allowed(tp: Any) -> tuple[set[type], bool]:
    """The plain JSON types a field accepts, and whether null is allowed."""
    args = typing.get_args(tp) if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union else (tp,)
    nullable = type(None) in args
    return {a for a in args if a is not type(None)}, nullable


_BAD = object()  # a converter's "this value is not of the kind"


def _to_int(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, float) and value.is_integer() else _BAD


def _to_float(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:  # "2e-5" written as a string is a common slip; accept it.
            return float(value)
        except ValueError:
            pass
    return _BAD


# (kind, converter, what to write instead) in the order a field's kinds are tried; an int field that also takes
# floats is a float field.
_CONVERTERS = (
    (bool, lambda v: v if isinstance(v, bool) else _BAD, "use true or false"),
    (int, _to_int, "give a whole number"),
    (float, _to_float, "give a number"),
    (str, lambda v: v if isinstance(v, str) else _BAD, "give a text string"),
)


def _coerce(name: str, value: Any, tp: Any, errors: list[str]) -> Any:
    kinds, nullable = _allowed(tp)
    if value is None:
        if nullable:
            return None
        errors.append(f"{name}: null is not allowed; give a {_type_words(kinds)}.")
        return None
    for kind, convert, instead in _CONVERTERS:
        if kind in kinds and not (kind is int and float in kinds):
            converted = convert(value)
            if converted is _BAD:
                errors.append(f"{name}: {json.dumps(value)} is not allowed; {instead}.")
                return None
            return converted
    return value


def _type_words(kinds: set[type]) -> str:
    words = {bool: "true/false", int: "whole number", float: "number", str: "text"}
    return " or ".join(sorted(words[k] for k in kinds))


def _homes(key: str) -> list[str]:
    """Where a key is a setting of the config: temperature -> ["train.temperature"]."""
    homes, hints = [], typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        if _is_internal(f):
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            homes += [f"{f.name}.{g.name}" for g in dataclasses.fields(tp) if g.name == key and not _is_internal(g)]
        elif f.name == key:
            homes.append(key)
    return homes


def _unknown(name: str, key: str, known: list[str]) -> str:
    # A setting in the wrong section (the original trainer's tips say "temperature" without its section) is named
    # where it belongs, before any near spelling here.
    if homes := [h for h in _homes(key) if h != name]:
        return f"{name}: unknown key here; it is {homes[0]}, so move it {_where(homes[0])}."
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else f"known keys are: {', '.join(known)}."
    return f"{name}: unknown key; {hint}"


def _where(path: str) -> str:
    return f'into the "{path.split(".")[0]}" section' if "." in path else "to the top level"


def _fill(obj: Any, data: dict[str, Any], prefix: str, errors: list[str]) -> None:
    hints = typing.get_type_hints(type(obj))
    fields = {f.name: f for f in dataclasses.fields(obj) if not _is_internal(f)}
    for key, value in data.items():
        # Keys starting with "_" or "//" are comments (a common JSON convention); they are kept out of the config.
        if key.startswith(("_", "//")):
            continue
        name = f"{prefix}{key}"
        if key not in fields:
            errors.append(_unknown(name, key, list(fields)))
            continue
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                errors.append(f"{name}: must be an object {{...}} of settings, not {json.dumps(value)}.")
                continue
            _fill(getattr(obj, key), value, f"{name}.", errors)
            continue
        value = _coerce(name, value, tp, errors)
        if value is not None or _allowed(tp)[1]:
            setattr(obj, key, value)


def config_from_dict(data: dict[str, Any], source: str | None = None) -> Config:
    """Build a Config from parsed JSON; raises ConfigError listing every unknown key, bad type and bad value."""
    if not isinstance(data, dict):
        raise ConfigError(["the file must hold one JSON object {...} of settings"], source)
    config = Config()
    errors: list[str] = []
    _fill(config, data, "", errors)
    config.dtype = DTYPE_ALIASES.get(str(config.dtype).lower(), str(config.dtype).lower())
    config.device = str(config.device).lower()
    config.optim.name = str(config.optim.name).lower()
    config.pooling = str(config.pooling).lower()
    config.output.best_metric = str(config.output.best_metric).lower()
    errors += _check_values(config)  # fields with a type error kept their default, so no double report
    if errors:
        raise ConfigError(errors, source)
    return config


def load_config(path: str | os.PathLike) -> Config:
    """Read config.json; errors name the file, and the line for JSON syntax errors."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(["file not found; check the path or create one from assets/config.example.json"],
                          str(path)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        offset = e.start + (3 if raw.startswith(b"\xef\xbb\xbf") else 0)  # utf-8-sig counts after the BOM
        line = raw[:offset].count(b"\n") + 1
        raise ConfigError([f"byte {offset} (line {line}) is 0x{raw[offset]:02x}, which is not UTF-8 text "
                           f"({e.reason}); save the file as UTF-8"], str(path)) from None
    if not text.strip():  # an editor that saved nothing, or a file made with touch
        raise ConfigError(['the file is empty; write a JSON object such as {"model_id": ..., "data": {"pairs_path": '
                           '...}}, or start from assets/config.example.json'], str(path))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError([f"line {e.lineno} column {e.colno}: invalid JSON ({e.msg})"], str(path)) from None
    config = config_from_dict(data, str(path))
    config.base_dir = str(path.resolve().parent)
    return config


def _choice(errors: list[str], name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        close = difflib.get_close_matches(str(value), allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        errors.append(f"{name}: {json.dumps(value)} is not allowed{hint}; choose one of {', '.join(allowed)}.")


def _at_least(errors: list[str], name: str, value: Any, low: float, optional: bool = False) -> None:
    if value is None and optional:
        return
    if value is None or value < low:
        errors.append(f"{name}: {json.dumps(value)} is not allowed; it must be {low:g} or more.")


def _check_values(c: Config) -> list[str]:
    e: list[str] = []
    if not str(c.model_id or "").strip():
        e.append("model_id: empty; give a Hugging Face model id or a local model folder.")
    _choice(e, "device", c.device, DEVICES)
    _choice(e, "dtype", c.dtype, DTYPES)
    _choice(e, "pooling", c.pooling, POOLINGS)
    _choice(e, "optim.name", c.optim.name, OPTIMIZERS)
    _choice(e, "optim.scheduler", c.optim.scheduler, SCHEDULERS)
    _choice(e, "hf.loader", c.hf.loader, LOADERS)
    t = c.train
    _at_least(e, "train.batch_size", t.batch_size, 1)
    _at_least(e, "train.epochs", t.epochs, 1)
    _at_least(e, "train.max_length", t.max_length, 8)
    _at_least(e, "train.grad_accum_steps", t.grad_accum_steps, 1)
    _at_least(e, "train.steps_per_epoch", t.steps_per_epoch, 1, optional=True)
    _at_least(e, "train.num_workers", t.num_workers, 0)
    _at_least(e, "train.pad_to_multiple_of", t.pad_to_multiple_of, 1, optional=True)
    _at_least(e, "train.log_every", t.log_every, 1)
    _at_least(e, "train.eval_every", t.eval_every, 0)
    _at_least(e, "train.save_every", t.save_every, 0)
    _at_least(e, "train.early_stopping_patience", t.early_stopping_patience, 1, optional=True)
    if t.max_minutes is not None and not t.max_minutes > 0:
        e.append(f"train.max_minutes: {t.max_minutes} is not allowed; give a number of minutes above 0, or null for "
                 "no budget.")
    _at_least(e, "train.gradcache_chunk", t.gradcache_chunk, 0, optional=True)
    e += _check_lora(t.lora)
    e += _check_dims(t.matryoshka_dims)
    if t.temperature is not None and not 0 < t.temperature <= 10:
        e.append(f"train.temperature: {t.temperature} is not allowed; use a value in (0, 10], typically 0.02-0.1.")
    elif t.learn_temperature and t.temperature is not None and not 0.01 <= t.temperature <= 1:
        e.append(f"train.temperature: {t.temperature} is outside 0.01-1, the range a learned temperature is kept in "
                 "(train.learn_temperature); start it from a value in that range, e.g. 0.05.")
    if t.dropout is not None and not 0 <= t.dropout < 1:
        e.append(f"train.dropout: {t.dropout} is not allowed; use a probability in [0, 1), e.g. 0 (off) or 0.1, or "
                 "leave it empty for the model's own.")
    if t.attention_dropout is not None and not 0 <= t.attention_dropout < 1:
        e.append(f"train.attention_dropout: {t.attention_dropout} is not allowed; use a probability in [0, 1), e.g. 0 "
                 "(off) or 0.1, or leave it empty for the automatic choice (off on a CPU).")
    if t.learn_temperature and t.gradcache_chunk:
        e.append("train.learn_temperature: gradient caching (train.gradcache_chunk) does not pass a gradient to the "
                 "temperature; set train.gradcache_chunk to 0, or train.learn_temperature to false.")
    o = c.optim
    if o.lr is not None and not 0 < o.lr < 1:
        e.append(f"optim.lr: {o.lr} is not allowed; use a learning rate in (0, 1), typically 1e-5 to 1e-4.")
    _at_least(e, "optim.short_run_steps", o.short_run_steps, 0, optional=True)
    _at_least(e, "optim.weight_decay", o.weight_decay, 0)
    if o.warmup_ratio is not None and not 0 <= o.warmup_ratio < 1:
        e.append(f"optim.warmup_ratio: {o.warmup_ratio} is not allowed; use a share in [0, 1), e.g. 0.1.")
    if o.max_grad_norm is not None and o.max_grad_norm <= 0:
        e.append(f"optim.max_grad_norm: {o.max_grad_norm} is not allowed; use a positive number, or null for none.")
    d = c.data
    if d.eval_split is not None and not 0 <= d.eval_split < 1:
        e.append(f"data.eval_split: {d.eval_split} is not allowed; use a share in [0, 1), e.g. 0.1.")
    if d.eval_split and d.stream:
        e.append("data.eval_split: cannot split a streamed file; set data.eval_path or turn data.stream off.")
    _at_least(e, "data.shuffle_buffer", d.shuffle_buffer, 1)
    _at_least(e, "data.mine_hard_negatives", d.mine_hard_negatives, 0, optional=True)
    _at_least(e, "data.max_hard_negatives", d.max_hard_negatives, 0, optional=True)
    for name in ("query_prompt", "document_prompt"):
        value = getattr(d, name)
        if value is not None and not isinstance(value, str):
            e.append(f"data.{name}: {json.dumps(value)} is not allowed; give the text put in front of each "
                     "text, or null.")
    out = c.output
    name = str(out.save_name or "").strip()
    # "." or ".." would make the run folder save_dir itself or its parent: a fresh run would clear other runs.
    if not name or name in (".", "..") or any(ch in name for ch in "/\\\0"):
        e.append(f"output.save_name: {json.dumps(out.save_name)} is not allowed; give a plain folder name "
                 "(no slashes, not . or ..).")
    if not str(out.save_dir or "").strip():
        e.append("output.save_dir: empty; give the folder runs are written to, e.g. outputs.")
    _at_least(e, "output.keep_snapshots", out.keep_snapshots, 1)
    _choice(e, "output.best_metric", out.best_metric, EVAL_METRICS)
    if out.keep_best and not d.eval_path and not d.eval_split:
        e.append("output.keep_best: needs eval data; set data.eval_path or data.eval_split (e.g. 0.1).")
    # Early stopping watches evaluations during training: without them the run would quietly train to the end.
    if c.train.early_stopping_patience and not d.eval_path and not d.eval_split:
        e.append("train.early_stopping_patience: needs eval data; set data.eval_path or data.eval_split (e.g. 0.1), "
                 "or leave it empty.")
    elif c.train.early_stopping_patience and not c.train.eval_every:
        e.append("train.early_stopping_patience: needs evaluations during training; set train.eval_every (e.g. "
                 "100 steps), or leave it empty.")
    return e



def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_lora(lora: Any) -> list[str]:
    if lora is None:
        return []
    example = 'e.g. {"r": 8, "alpha": 16, "dropout": 0.05}, {} for the defaults, or null for full fine-tuning'
    if not isinstance(lora, dict):
        return [f"train.lora: {json.dumps(lora)} is not allowed; give an object of LoRA settings ({example})."]
    e = [_unknown(f"train.lora.{k}", k, list(LORA_KEYS)) for k in lora if k not in LORA_KEYS]
    r, alpha, dropout = lora.get("r"), lora.get("alpha"), lora.get("dropout")
    if r is not None and not (_whole(r) and r >= 1):
        e.append(f"train.lora.r: {json.dumps(r)} is not allowed; give the adapter rank, a whole number like 8 or 16.")
    if alpha is not None and not (isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and alpha > 0):
        e.append(f"train.lora.alpha: {json.dumps(alpha)} is not allowed; give a positive number, usually 2 x r.")
    if dropout is not None and not (isinstance(dropout, (int, float)) and not isinstance(dropout, bool)
                                    and 0 <= dropout < 1):
        e.append(f"train.lora.dropout: {json.dumps(dropout)} is not allowed; use a share in [0, 1), e.g. 0.05.")
    targets = lora.get("target_modules")
    if targets is not None and not (isinstance(targets, str) and targets.strip()) and not (
            isinstance(targets, list) and targets and all(isinstance(x, str) and x.strip() for x in targets)):
        e.append(f"train.lora.target_modules: {json.dumps(targets)} is not allowed; give module names like "
                 '["query", "value"], "all-linear", or null for the defaults of the architecture.')
    return e


def _check_dims(dims: Any) -> list[str]:
    if dims is None:
        return []
    if not isinstance(dims, list) or not dims or not all(_whole(d) and d >= 1 for d in dims):
        return [f"train.matryoshka_dims: {json.dumps(dims)} is not allowed; give embedding sizes as whole numbers, "
                "e.g. [384, 256, 128, 64], or null for none."]
    if len(set(dims)) != len(dims):
        return [f"train.matryoshka_dims: {json.dumps(dims)} lists a size twice; give each size once."]
    return []
