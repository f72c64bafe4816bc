"""Gradient caching (GradCache): a contrastive batch far larger than memory allows, with the same loss and gradients.

Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup" (arXiv:2101.06983), as
sentence-transformers' CachedMultipleNegativesRankingLoss does it:

1. embed the batch in chunks of `chunk` texts without building a graph (the RNG state before each chunk is kept);
2. compute the loss on all embeddings at once (the same InfoNCE, false-negative mask and temperature) and its
   gradient with respect to the embeddings only: the graph is tiny;
3. when the trainer calls backward on the loss, a hook re-embeds each chunk with a graph (same RNG state, so
   the same dropout masks; same autocast) and back-propagates the cached embedding gradients, scaled by the
   gradient that reached the loss (1/grad_accum_steps, the fp16 loss scale).

Peak memory is that of one chunk's activations, not the whole batch's; the price is a second forward pass (about
a third more compute). The trainer's loop is unchanged: it calls loss(model, batch) and .backward() on the result.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .loss import LossOutput

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger(__name__)

AUTO_BATCH_SHARE = 0.5  # automatic: cache when the plain step's activations would need more than this of free memory
AUTO_CHUNK_SHARE = 0.1  # ... and then take the largest power-of-two chunk whose activations fit in this share
MIN_AUTO_CHUNK = 8


class _RngState:
    """The CPU (and CUDA device) RNG state at one moment, to replay a chunk's dropout exactly."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    @contextmanager
    def replay(self) -> Iterator[None]:
        # fork_rng puts the run's RNG back afterwards: replaying does not shift the random stream of later steps.
        devices = [self.device] if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
            yield


def _chunks(features: dict[str, torch.Tensor], size: int) -> Iterator[dict[str, torch.Tensor]]:
    """Row slices of tokenised features; right-padded chunks are cut to their own longest text."""
    mask = features["attention_mask"]
    for start in range(0, mask.size(0), size):
        part = {k: v[start : start + size] for k, v in features.items()}
        m = part["attention_mask"]
        if m.size(1) and not bool(m[:, -1].any()):  # right padding (a left-padded chunk keeps its positions)
            keep = int(m.any(dim=0).nonzero().max()) + 1 if bool(m.any()) else m.size(1)
            part = {k: v[:, :keep] for k, v in part.items()}
        yield part


class CachedInfoNCELoss(nn.Module):
    """GradCache around an InfoNCE-style loss (one with score(anchors, candidates, batch), e.g. InfoNCELoss).

    Also known as CachedMultipleNegativesRankingLoss (sentence-transformers). chunk: texts embedded at a time;
    None = automatic: plain computation when the whole batch fits (see choose_chunk), else cached.
    """

    def __init__(self, base: nn.Module, chunk: int | None = None):
        super().__init__()
        if not hasattr(base, "score"):
            raise ValueError(f"gradient caching needs a loss with score(anchors, candidates, batch); "
                             f"{type(base).__name__} has none. Set train.gradcache_chunk to 0.")
        self.base = base
        self.chunk = chunk
        self._decided = chunk is not None  # automatic: decided once, on the first batch, so every step matches

    def check(self, model_dim: int) -> None:
        if hasattr(self.base, "check"):
            self.base.check(model_dim)

    def forward(self, model: nn.Module, batch: dict[str, Any]) -> LossOutput:
        if not self._decided:
            self.chunk = choose_chunk(model, batch["anchor"]["attention_mask"].size(0),
                                      batch["candidates"]["attention_mask"].size(0))
            self._decided = True
        if not self.chunk:
            return self.base(model, batch)
        device_type = batch["anchor"]["input_ids"].device.type
        autocast = (torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type))
        sides = [batch["anchor"], batch["candidates"]]
        embeddings, states = [], []
        with torch.no_grad():
            for features in sides:
                parts = []
                for part in _chunks(features, self.chunk):
                    states.append(_RngState(part["input_ids"].device))
                    parts.append(model(part))
                embeddings.append(torch.cat(parts).detach().requires_grad_())
        with torch.enable_grad():
            out = self.base.score(embeddings[0], embeddings[1], batch)
            grads = torch.autograd.grad(out.loss, embeddings)
        loss = out.loss.detach().requires_grad_()
        # The trainer's backward reaches this leaf first; the hook then runs the chunked backward through the model.
        loss.register_hook(partial(_replay, model=model, sides=sides, grads=grads, states=states, chunk=self.chunk,
                                   autocast=(device_type, *autocast)))
        logits = out.logits.detach() if out.logits is not None else None
        return LossOutput(loss=loss, accuracy=out.accuracy, logits=logits)

    def extra_repr(self) -> str:
        return f"chunk={self.chunk if self._decided else 'auto'}"


def _replay(grad_output: torch.Tensor, *, model: nn.Module, sides: list[dict[str, torch.Tensor]],
            grads: tuple[torch.Tensor, ...], states: list[_RngState], chunk: int, autocast: tuple) -> None:
    """Re-embed each chunk with a graph and back-propagate its part of the cached gradient."""
    device_type, enabled, dtype = autocast
    state = iter(states)
    with torch.enable_grad():
        for features, grad in zip(sides, grads):
            start = 0
            for part in _chunks(features, chunk):
                n = part["input_ids"].size(0)
                with next(state).replay(), torch.autocast(device_type, dtype=dtype, enabled=enabled):
                    emb = model(part)
                emb.backward(grad[start : start + n] * grad_output)
                start += n


# -- the automatic choice ------------------------------------------------------------------------------------------
def activation_bytes(model: nn.Module, texts: int, tokens: int) -> int:
    """Rough activation memory of a training forward of `texts` texts of `tokens` tokens (kept for backward).

    Per layer and token: about 17 hidden-size vectors (attention in/out, the feed-forward's 4x wide middle, layer
    norms, dropout masks) at the parameter dtype's width, plus per head a tokens x tokens score, softmax and dropout
    mask; the usual estimate for BERT-style encoders (Korthikanti et al. 2022, arXiv:2205.05198, section 4).
    """
    cfg = getattr(getattr(model, "backbone", model), "config", None)
    hidden = int(getattr(cfg, "hidden_size", 768) or 768)
    layers = int(getattr(cfg, "num_hidden_layers", 12) or 12)
    heads = int(getattr(cfg, "num_attention_heads", 12) or 12)
    width = next(model.parameters()).element_size()
    per_text = layers * (17 * tokens * hidden * width + heads * tokens * tokens * (2 * width + 1))
    return texts * per_text


def free_memory_bytes(device: torch.device) -> int | None:
    """Free memory where the activations live: the GPU's free memory, else the RAM this process may still take."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    for limit, usage in (("memory.max", "memory.current"), ("memory/memory.limit_in_bytes",
                                                             "memory/memory.usage_in_bytes")):
        try:
            cap = Path("/sys/fs/cgroup", limit).read_text().strip()
            if cap.isdigit() and int(cap) < 1 << 60:  # "max" or a huge number: no limit
                room = int(cap) - int(Path("/sys/fs/cgroup", usage).read_text().strip())
                available = room if available is None else min(available, room)
            break
        except (OSError, ValueError):
            continue
    return available


def choose_chunk(model: nn.Module, anchors: int, candidates: int) -> int:
    """0 (plain) when a step's activations fit in AUTO_BATCH_SHARE of free memory, else a chunk size that fits.

    Sized for texts of the model's max_length (the worst batch), so the choice holds for every step of the run.
    """
    tokens = int(getattr(model, "max_length", 512) or 512)
    texts = anchors + candidates
    device = next(model.parameters()).device
    free = free_memory_bytes(device)
    need = activation_bytes(model, texts, tokens)
    if free is None or need <= AUTO_BATCH_SHARE * free:
        return 0
    per_text = activation_bytes(model, 1, tokens)
    fits = max(1, int(AUTO_CHUNK_SHARE * free // per_text))
    chunk = max(MIN_AUTO_CHUNK, 2 ** int(math.log2(fits))) if fits >= MIN_AUTO_CHUNK else fits
    log.info("Gradient caching on: a step of %d texts of up to %d tokens needs about %.1f GB of activations and "
             "%.1f GB is free; embedding %d texts at a time (train.gradcache_chunk sets it).", texts, tokens,
             need / 1e9, free / 1e9, chunk)
    return chunk


def with_gradcache(loss: nn.Module, config: Config) -> nn.Module:
    """The config's loss, cached when train.gradcache_chunk asks (N: chunks of N; null: when it would not fit)."""
    from .config import ConfigError

    chunk = config.train.gradcache_chunk
    # A loss with weights of its own (a learned temperature) gets no gradient through the cached replay, which
    # only carries gradients to the embeddings: automatic mode leaves such a loss uncached (config.py refuses an
    # explicit chunk with it).
    own_weights = any(p.requires_grad for p in loss.parameters())
    if chunk == 0 or (chunk is None and (not hasattr(loss, "score") or own_weights)):
        return loss
    if not hasattr(loss, "score"):
        raise ConfigError([f"train.gradcache_chunk: {type(loss).__name__} cannot be computed with gradient caching "
                           "(e.g. with train.matryoshka_dims); set train.gradcache_chunk to 0 or null."])
    return CachedInfoNCELoss(loss, chunk)
