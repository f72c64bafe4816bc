"""Loss objects the trainer is given: `loss(model, batch) -> LossOutput`, as sentence-transformers' losses are modules.

InfoNCE with in-batch and hard negatives and false negatives masked out; its symmetric form (document-to-query
as well); and Matryoshka, which wraps either and adds the loss at truncated embedding sizes. A new loss is a new
class with the same call; the training loop does not change. build_loss(config) picks them from the config.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from .distributed import GlobalBatch, gather_batch, local_batch

if TYPE_CHECKING:
    from .config import Config

# A learned temperature stays in this range (CLIP caps its logit scale at 100, i.e. a temperature of 0.01; above 1
# the softmax over cosines in [-1, 1] is nearly flat and teaches little).
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 1.0


@dataclass
class LossOutput:
    loss: torch.Tensor  # a scalar the trainer calls backward on
    # Share of anchors whose own positive scores highest; a 0-dim tensor so reading it waits for the log row
    # (a .item() here would make the host wait for the device on every micro-batch).
    accuracy: torch.Tensor
    logits: torch.Tensor | None = None


def false_negative_mask(anchor_ids: torch.Tensor, positive_ids: torch.Tensor, candidate_ids: torch.Tensor,
                        candidate_rows: torch.Tensor) -> torch.Tensor:
    """[B, C] bool: True where candidate j must not count as a negative for anchor i.

    anchor_ids/positive_ids [B] are per-text ids (equal text -> equal id); candidate_ids [C] the text ids of the
    candidates and candidate_rows [C] the row each came from (-1 for a hard negative). The own positive
    (column i) is never masked.
    """
    same_text = candidate_ids.unsqueeze(0) == positive_ids.unsqueeze(1)
    is_positive = candidate_rows >= 0
    rows = candidate_rows.clamp(min=0)
    same_anchor = is_positive.unsqueeze(0) & (anchor_ids[rows].unsqueeze(0) == anchor_ids.unsqueeze(1))
    mask = same_text | same_anchor
    own = torch.arange(anchor_ids.numel(), device=mask.device)
    mask[own, own] = False
    return mask


def info_nce(anchors: torch.Tensor, candidates: torch.Tensor, temperature: float | torch.Tensor,
             mask: torch.Tensor | None = None, targets: torch.Tensor | None = None, scale: float = 1.0) -> LossOutput:
    """InfoNCE where candidates[:B] are the anchors' positives in order, candidates[B:] extra negatives.

    anchors [B, d] and candidates [C, d] should be L2-normalised (then the dot product is the cosine). The
    logits and the softmax run in float32 whatever the input dtype, so half precision cannot overflow here.
    targets: the column of each anchor's positive when it is not anchor i -> column i (this rank's anchors among
    gathered candidates); scale multiplies the mean loss (a rank's weight in the global mean).
    """
    # Outside autocast: the trainer runs the loss under autocast, which would take this matmul back to half.
    with torch.autocast(anchors.device.type, enabled=False):
        logits = anchors.float() @ candidates.float().T / temperature
        if mask is not None:
            logits = logits.masked_fill(mask, float("-inf"))
        target = torch.arange(anchors.size(0), device=logits.device) if targets is None else targets
        loss = F.cross_entropy(logits, target)
        if scale != 1.0:
            loss = loss * scale
    with torch.no_grad():
        accuracy = (logits.argmax(dim=1) == target).float().mean()
    return LossOutput(loss=loss, accuracy=accuracy, logits=logits)


class InfoNCELoss(nn.Module):
    """InfoNCE over in-batch negatives and hard negatives, with false negatives masked out.

    Also known as MultipleNegativesRankingLoss (sentence-transformers) or the NT-Xent/contrastive loss of
    van den Oord et al. 2018, "Representation Learning with Contrastive Predictive Coding" (arXiv:1807.03748).
    Each anchor i is scored against every candidate in the batch: all positives, then all hard negatives.
    logits = cos(anchor, candidate) / temperature (sentence-transformers' scale = 1 / temperature), and the loss
    is cross-entropy with anchor i's own positive as the target.

    A candidate that is really a positive for anchor i must not be pushed away: a duplicate of i's positive text
    (the same definition appears in two rows, or a hard negative equal to the positive), or the positive of
    another row with the same anchor text. Those logits are set to -inf before the softmax.
    """

    def __init__(self, temperature: float = 0.05, mask_false_negatives: bool = True, learn_temperature: bool = False,
                 gather: bool = False):
        super().__init__()
        self.temperature = temperature
        self.mask_false_negatives = mask_false_negatives
        # Cross-device negatives: under torchrun, score against the candidates of every rank (see distributed.py).
        self.gather = gather
        # Learned as log(temperature): the optimizer's steps are then relative changes and it can never turn
        # negative. A parameter of this module, so the trainer's optimizer and snapshots include it.
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature))) if learn_temperature else None

    def tau(self) -> float | torch.Tensor:
        """The temperature in use: the fixed value, or the learned one clamped to [MIN, MAX]_TEMPERATURE."""
        if self.log_temperature is None:
            return self.temperature
        log_t = self.log_temperature.float()
        # Straight-through clamp: the value stays in range, the gradient still reaches the parameter, so a
        # temperature pushed past a bound can come back (a plain clamp would freeze it there, gradient 0).
        clamped = log_t.clamp(math.log(MIN_TEMPERATURE), math.log(MAX_TEMPERATURE))
        return (log_t + (clamped - log_t).detach()).exp()

    def embed(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(anchor embeddings [B, d], candidate embeddings [C, d]) of a collated batch."""
        return model(batch["anchor"]), model(batch["candidates"])

    def global_batch(self, anchors: torch.Tensor, candidates: torch.Tensor, batch: dict[str, Any],
                     with_anchors: bool = False) -> GlobalBatch:
        """The batch the loss is taken over: this process's, or every rank's when gathering under torchrun."""
        if self.gather:
            return gather_batch(anchors, candidates, batch, with_anchors)
        return local_batch(anchors, candidates, batch)

    def score(self, anchors: torch.Tensor, candidates: torch.Tensor, batch: dict[str, Any]) -> LossOutput:
        """The loss of given embeddings (Matryoshka calls this once per truncated size)."""
        g = self.global_batch(anchors, candidates, batch)
        mask = None
        if self.mask_false_negatives:
            mask = false_negative_mask(g.anchor_ids, g.positive_ids, g.candidate_ids, g.candidate_rows)[g.rows]
        return info_nce(anchors, g.candidates, self.tau(), mask, g.targets, g.scale)

    def forward(self, model: nn.Module, batch: dict[str, Any]) -> LossOutput:
        """batch: a PairCollator batch already on the model's device."""
        return self.score(*self.embed(model, batch), batch)

    def extra_repr(self) -> str:
        learned = ", learned" if self.log_temperature is not None else ""
        return f"temperature={self.temperature}, scale={1 / self.temperature:g}{learned}"


class SymmetricInfoNCELoss(InfoNCELoss):
    """InfoNCE in both directions, averaged: query-to-document (as InfoNCELoss) and document-to-query.

    Also known as MultipleNegativesSymmetricRankingLoss (sentence-transformers) or the CLIP loss. The second
    direction scores each positive against every anchor in the batch, with anchor i as the target; anchors that
    are the same text as anchor i, or whose positive is the same text as positive i, are masked out. It helps
    when documents are also used as queries (document-to-document search, deduplication) or queries and
    documents are alike; for plain query-to-passage retrieval it rarely beats the one-way loss.
    """

    def score(self, anchors: torch.Tensor, candidates: torch.Tensor, batch: dict[str, Any]) -> LossOutput:
        g = self.global_batch(anchors, candidates, batch, with_anchors=True)
        mask = None
        if self.mask_false_negatives:
            mask = false_negative_mask(g.anchor_ids, g.positive_ids, g.candidate_ids, g.candidate_rows)[g.rows]
        forward = info_nce(anchors, g.candidates, self.tau(), mask, g.targets, g.scale)
        positives = candidates[: anchors.size(0)]
        mask = None
        if self.mask_false_negatives:
            a, p = g.anchor_ids, g.positive_ids
            mask = (a.unsqueeze(0) == a.unsqueeze(1)) | (p.unsqueeze(0) == p.unsqueeze(1))
            own = torch.arange(g.total, device=mask.device)
            mask[own, own] = False
            mask = mask[g.rows]
        backward = info_nce(positives, g.anchors, self.tau(), mask, g.targets, g.scale)
        return LossOutput(loss=(forward.loss + backward.loss) / 2, accuracy=forward.accuracy, logits=forward.logits)


def shrink(x: torch.Tensor, dim: int, normalize: bool = True) -> torch.Tensor:
    """The first dim components of each embedding, re-normalised to unit length when the model normalises."""
    x = x[..., :dim]
    return F.normalize(x.float(), p=2, dim=-1, eps=1e-6) if normalize else x


class MatryoshkaLoss(nn.Module):
    """A base loss summed over truncated embedding sizes: sum_d weight_d * base(first d dims, re-normalised).

    Kusupati et al. 2022, "Matryoshka Representation Learning" (arXiv:2205.13147); sentence-transformers'
    MatryoshkaLoss (a weighted sum, weights 1 by default). The model runs once per batch; each size re-scores
    the same embeddings. Truncated vectors are re-normalised only when the model normalises its embeddings
    (normalize true), so with just the full size this equals the base loss either way. Accuracy is that of
    the largest size.
    """

    def __init__(self, base: InfoNCELoss, dims: Sequence[int], weights: Sequence[float] | None = None):
        super().__init__()
        if not dims:
            raise ValueError("train.matryoshka_dims: give at least one embedding size.")
        order = sorted(range(len(dims)), key=lambda i: -dims[i])
        self.base = base
        self.dims = [int(dims[i]) for i in order]
        self.weights = [float(weights[i]) for i in order] if weights is not None else [1.0] * len(self.dims)

    def check(self, model_dim: int) -> None:
        """ValueError naming the field when a size is larger than the model's embedding."""
        too_big = [d for d in self.dims if d > model_dim]
        if too_big:
            raise ValueError(f"train.matryoshka_dims: {too_big} is more than this model's {model_dim} dimensions; "
                             f"give sizes of at most {model_dim}.")

    def forward(self, model: nn.Module, batch: dict[str, Any]) -> LossOutput:
        anchors, candidates = self.base.embed(model, batch)
        self.check(anchors.size(-1))
        normalize = bool(getattr(model, "normalize", True))
        total: torch.Tensor | None = None
        first: LossOutput | None = None
        for dim, weight in zip(self.dims, self.weights):
            out = self.base.score(shrink(anchors, dim, normalize), shrink(candidates, dim, normalize), batch)
            first = first or out
            total = weight * out.loss if total is None else total + weight * out.loss
        return LossOutput(loss=total, accuracy=first.accuracy, logits=first.logits)

    def extra_repr(self) -> str:
        return f"dims={self.dims}, weights={self.weights}"


def learned_temperature(loss: Any) -> float | None:
    """The current learned temperature of a loss (wrappers included), or None when its temperature is fixed."""
    modules = loss.modules() if isinstance(loss, nn.Module) else []
    for module in modules:
        if isinstance(module, InfoNCELoss) and module.log_temperature is not None:
            with torch.no_grad():
                return float(module.tau())
    return None


def build_loss(config: Config) -> nn.Module:
    """The loss a config asks for: InfoNCE (symmetric when train.symmetric), in Matryoshka when matryoshka_dims.

    Under torchrun the loss gathers every rank's candidates unless train.gather_negatives is false.
    """
    t = config.train
    gather = t.gather_negatives is not False  # null (the default) = on; it only acts in a process group
    base = (SymmetricInfoNCELoss if t.symmetric else InfoNCELoss)(t.temperature, gather=gather,
                                                                   learn_temperature=bool(t.learn_temperature))
    return MatryoshkaLoss(base, t.matryoshka_dims) if t.matryoshka_dims else base
