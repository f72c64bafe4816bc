"""Data-parallel training on PyTorch's own distributed engine: torchrun starts the processes, torch.distributed talks.

`torchrun --nproc_per_node N -m embedgui train --config PATH` starts N copies of the train command; each reads its
rank from the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), joins one process
group (NCCL on GPUs, gloo on CPUs) and trains on its own share of every batch. What crosses between processes:

- the embeddings of each step (`gather_batch`), so every anchor is scored against the positives and hard negatives
  of the whole global batch (FlagEmbedding's negatives_cross_device, sentence-transformers' gather_across_devices).
  The gather is torch.distributed.nn's differentiable all_gather, whose backward sums each rank's gradient back to
  the rank that owns the embedding;
- the gradients after backward (`average_gradients`): averaged over the ranks, as DistributedDataParallel does, so
  every rank takes the same optimizer step. With the loss of rank r scaled by N * B_r / B (B the global batch), the
  average is exactly the gradient of the single-process loss on the concatenated batch;
- a few numbers per step (`max_over_ranks`, `any_rank`): stop asked (Stop, Ctrl-C, early stopping on rank 0), the
  steps a time budget planned on rank 0, a non-finite loss; so all ranks stop at the same step.

Why not wrap the model in DistributedDataParallel: DDP's reducer expects one backward per forward, and a contrastive
step runs the model several times (anchors, candidates, and with gradient caching a replay per chunk inside a
backward hook), which DDP only allows with no_sync juggling around every call. Averaging the gradients once the
step's backward is done is the same arithmetic (DDP's buckets, flattened all_reduce) without that coupling; what is
lost is DDP's overlap of communication with the backward pass.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

log = logging.getLogger(__name__)

BUCKET_BYTES = 25 * 1024 * 1024  # DDP's default bucket size: gradients are all-reduced in flat chunks of this size
TIMEOUT = datetime.timedelta(minutes=30)  # a rank evaluating or saving keeps the others waiting this long at most


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs, evaluates, saves snapshots and the model, and writes metrics."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


def env_world() -> World:
    """The world torchrun describes in the environment (RANK, WORLD_SIZE, LOCAL_RANK); one process without it."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        return World()
    return World(rank, size, local) if size > 1 else World()


def current() -> World:
    """The world of the process group this process has joined (one process when none)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), env_world().local_rank)
    return World()


def init(device: torch.device) -> World:
    """Join torchrun's process group (once per process) for training on `device`; one process: nothing to do.

    NCCL for CUDA devices, gloo otherwise. A CUDA rank trains on GPU LOCAL_RANK.
    """
    world = env_world()
    if not world.active or not dist.is_available():
        return World()
    if not dist.is_initialized():
        # Imported before the group exists: its functions take `group=group.WORLD` as a default argument, bound when
        # the module is first imported (by transformers when it builds a model, by the differentiable all_gather).
        # Imported after init, every default holds the process group, destroy_process_group cannot end it, and its
        # gloo threads, still holding Python tensors, race the interpreter's exit: a rank then died with SIGABRT
        # ("terminate called without an active exception") after saving, about one torchrun run in fifteen.
        import torch.distributed.nn  # noqa: F401

        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(world.local_rank)
        dist.init_process_group(backend=backend, timeout=TIMEOUT)
        log.info("Joined the process group: rank %d of %d (%s)", world.rank, world.size, backend)
    return current()


def device_for(device: torch.device, world: World) -> torch.device:
    """The device this rank trains on: its own GPU (LOCAL_RANK) when training on CUDA with several processes."""
    if world.active and device.type == "cuda":
        return torch.device("cuda", world.local_rank)
    return device


def shutdown() -> None:
    """Leave the process group (at the end of a run; the next run in this process joins again)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(rows: Sequence[Any], world: World) -> Sequence[Any]:
    """This rank's contiguous share of a global batch: sizes differ by at most one, rank order = row order.

    Contiguous shares keep the concatenation of the ranks' batches equal to the global batch, so the gathered loss
    is the single-process loss on that batch.
    """
    if not world.active:
        return rows
    base, extra = divmod(len(rows), world.size)
    start = world.rank * base + min(world.rank, extra)
    return rows[start : start + base + (1 if world.rank < extra else 0)]


class ShardCollator:
    """A collator that collates only this rank's share of each global batch (the loader yields global batches)."""

    def __init__(self, collator: Any, world: World):
        self.collator, self.world = collator, world

    def __call__(self, rows: Sequence[Any]) -> dict[str, Any]:
        return self.collator(shard(rows, self.world))

    def __getattr__(self, name: str) -> Any:  # the token cache and row lengths of the wrapped collator
        if name == "collator" or name.startswith("__"):  # not set yet (unpickling in a DataLoader worker)
            raise AttributeError(name)
        return getattr(self.collator, name)


def _sizes(n: int, device: torch.device) -> list[int]:
    sizes = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([n], dtype=torch.long, device=device))
    return [int(s) for s in sizes]


def gather(t: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """Every rank's t (rows may differ in number) concatenated in rank order, and the row count of each rank.

    Tensors that need a gradient keep it: the backward of torch.distributed.nn's all_gather sums every rank's
    gradient for a row back to the rank that owns it. Shorter parts are padded to the longest for the collective.
    """
    sizes = _sizes(t.size(0), t.device)
    longest = max(sizes)
    padded = t
    if t.size(0) < longest:
        pad = [0, 0] * (t.dim() - 1) + [0, longest - t.size(0)]
        padded = F.pad(t, pad)
    if t.requires_grad:
        parts = _all_gather_with_grad(padded.contiguous(), longest)
    else:
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:n] for p, n in zip(parts, sizes)]), sizes


def _all_gather_with_grad(t: torch.Tensor, rows: int) -> list[torch.Tensor]:
    """torch's differentiable all_gather: its backward sums every rank's gradient for a part back to its owner."""
    try:
        from torch.distributed._functional_collectives import all_gather_single
    except ImportError:  # the older public form (deprecated in torch 2.9 in favour of the one above)
        from torch.distributed.nn.functional import all_gather

        return list(all_gather(t))
    return list(all_gather_single(t, 0, dist.group.WORLD).split(rows))


@dataclass
class GlobalBatch:
    """A step's embeddings and text ids across all ranks, laid out as the single-process batch would be.

    candidates: all ranks' positives in rank order, then all ranks' hard negatives in rank order. rows: this rank's
    anchors among the global ones (start, count of total). anchors: every rank's anchors (only when asked).
    """

    anchors: torch.Tensor | None
    candidates: torch.Tensor
    anchor_ids: torch.Tensor
    positive_ids: torch.Tensor
    candidate_ids: torch.Tensor
    candidate_rows: torch.Tensor
    start: int
    count: int
    total: int
    ranks: int = 1

    @property
    def rows(self) -> slice:
        return slice(self.start, self.start + self.count)

    @property
    def targets(self) -> torch.Tensor:
        """The column of each local anchor's own positive among the candidates."""
        return torch.arange(self.start, self.start + self.count, device=self.candidates.device)

    @property
    def scale(self) -> float:
        """Rank r's loss weight N * B_r / B: averaged over the ranks (as the gradients are) it is the global mean."""
        return self.ranks * self.count / self.total


def local_batch(anchors: torch.Tensor, candidates: torch.Tensor, batch: dict[str, Any]) -> GlobalBatch:
    """One process: the batch as it is."""
    n = anchors.size(0)
    return GlobalBatch(anchors, candidates, batch["anchor_ids"], batch["positive_ids"], batch["candidate_ids"],
                       batch["candidate_rows"], 0, n, n)


def gather_batch(anchors: torch.Tensor, candidates: torch.Tensor, batch: dict[str, Any],
                 with_anchors: bool = False) -> GlobalBatch:
    """The global batch of this step (cross-device negatives); the local batch when not in a process group.

    Text ids must mean the same on every rank (the collator's ids are hashes of the folded text), so the
    false-negative mask works across ranks.
    """
    world = current()
    if not world.active:
        return local_batch(anchors, candidates, batch)
    n = anchors.size(0)
    positives, sizes = gather(candidates[:n])
    negatives, _ = gather(candidates[n:])
    anchor_ids, _ = gather(batch["anchor_ids"])
    positive_ids, _ = gather(batch["positive_ids"])
    negative_ids, _ = gather(batch["candidate_ids"][n:])
    total = sum(sizes)
    device = positives.device
    rows = torch.cat([torch.arange(total, device=device),
                      torch.full((negatives.size(0),), -1, dtype=torch.long, device=device)])
    all_anchors = gather(anchors)[0] if with_anchors else None
    return GlobalBatch(all_anchors, torch.cat([positives, negatives]), anchor_ids, positive_ids,
                       torch.cat([positive_ids, negative_ids]), rows, sum(sizes[: world.rank]), n, total, world.size)


def average_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Average the gradients over the ranks in flat buckets (what DistributedDataParallel's reducer computes)."""
    world = current()
    if not world.active:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    bucket: list[torch.Tensor] = []
    size = 0
    for g in grads + [None]:
        if g is not None and (not bucket or (g.dtype == bucket[0].dtype and size < BUCKET_BYTES)):
            bucket.append(g)
            size += g.numel() * g.element_size()
            continue
        if bucket:
            flat = torch.cat([b.reshape(-1) for b in bucket])
            dist.all_reduce(flat)
            flat /= world.size
            offset = 0
            for b in bucket:
                b.copy_(flat[offset : offset + b.numel()].view_as(b))
                offset += b.numel()
        bucket, size = ([g], g.numel() * g.element_size()) if g is not None else ([], 0)


def any_rank(flags: Sequence[bool], device: torch.device) -> list[bool]:
    """Each flag true on any rank (one small all_reduce); the flags themselves in one process."""
    if not current().active:
        return list(flags)
    t = torch.tensor([1.0 if f else 0.0 for f in flags], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def max_over_ranks(values: Sequence[float], device: torch.device) -> list[float]:
    """Each value's maximum over the ranks (one small all_reduce): a flag any rank raised, a number rank 0 chose."""
    if not current().active:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64 if device.type != "mps" else torch.float32,
                     device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def mean_over_ranks(t: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over the ranks (log rows show the whole global batch's loss and accuracy)."""
    if not current().active:
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t / dist.get_world_size()


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Rank 0's weights on every rank (as DistributedDataParallel does when it wraps a model)."""
    if not current().active:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's obj (picklable), in rank order."""
    if not current().active:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if current().active:
        dist.barrier()
