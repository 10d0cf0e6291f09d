"""Training in several processes (``torchrun``, ``accelerate launch``): who writes, and a dev
evaluation the processes share instead of repeating.

Every process runs the same training script. The main process (global rank 0) alone writes
checkpoints' shared files, logs and pipeline folders; the others wait at :func:`barrier` where
they would otherwise read what it writes. The dev set is decoded once in all: each rank
decodes its own slice and the hit counts are summed across ranks, so every rank gets the same
Recall@1 and takes the same best-model and early-stopping decisions.

Before the trainer starts the process group, the rank comes from ``RANK`` (set by torchrun and
accelerate).
"""
from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any, List, Sequence, Tuple, TypeVar

from ..errors import Errors, Warnings

if TYPE_CHECKING:  # pragma: no cover
    from ..pipeline import SynCABELLinker
    from .examples import DevSet

T = TypeVar("T")


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def world() -> Tuple[int, int]:
    """``(rank, world_size)`` of this process: from the process group once it exists, else
    from the launcher's ``RANK`` / ``WORLD_SIZE`` (``(0, 1)`` for a plain run)."""
    dist = _dist()
    if dist is not None:
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", "0") or 0), int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    return world()[0] == 0


def is_multi_process() -> bool:
    return world()[1] > 1


def barrier() -> None:
    """Wait for every process (no-op without a process group)."""
    dist = _dist()
    if dist is not None:
        dist.barrier()


def shard(items: Sequence[T], rank: int, world_size: int) -> List[T]:
    """Rank ``rank``'s share of ``items``: every ``world_size``-th item from ``rank`` (the
    shares are disjoint and cover ``items``)."""
    return list(items[rank::world_size])


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "false").strip().lower() in ("1", "true", "yes")


def sharded_launch() -> bool:
    """Whether ``accelerate launch`` shards the weights across processes: an FSDP config
    (``ACCELERATE_USE_FSDP``) or DeepSpeed ZeRO stage 3."""
    return _env_flag("ACCELERATE_USE_FSDP") or (
        _env_flag("ACCELERATE_USE_DEEPSPEED")
        and os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "").strip() == "3")


def dev_decoding_possible() -> bool:
    """False when the weights are sharded (W170): decoding through the sharded model would
    need every rank to take the same decoding steps."""
    if sharded_launch():
        if is_main_process():
            warnings.warn(Warnings.W170, stacklevel=2)
        return False
    return True


def shared_dev_recall(linker: "SynCABELLinker", dev: "DevSet", device: Any = None) -> float:
    """Dev Recall@1 by the linker's constrained decoding, each mention decoded by one rank.

    ``device``: where the hit counts are summed (the rank's GPU under NCCL, see
    ``TrainingArguments.device``). Every rank must call it; each gets the same value.
    """
    from ..evaluation.metrics import hit

    if not len(dev):
        return 0.0
    rank, n = world()
    idx = shard(range(len(dev)), rank, n)
    cands = linker.decode([dev.prompt_ids[i] for i in idx], [dev.groups[i] for i in idx],
                          [dev.mentions[i] for i in idx]) if idx else []
    hits = sum(hit(dev.codes[i], [c[0].code] if c else [], 1) for i, c in zip(idx, cands))
    dist = _dist()
    if dist is not None and n > 1:
        import torch

        t = torch.tensor([float(hits)], dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        hits = int(round(float(t.item())))
    return hits / len(dev)


def final_model(trainer: Any) -> Any:
    """The trained weights as a plain model (LoRA merged) on the main process, None on the
    others. Every rank must call it: under FSDP or DeepSpeed the full state dict is gathered
    to rank 0 (CPU, whatever the checkpoints' ``fsdp_state_dict_type``) and loaded into a fresh
    copy of the architecture (LoRA with sharded weights is not supported here: E170)."""
    from .sft import merged_copy

    sharded = bool(getattr(trainer, "is_fsdp_enabled", False)
                   or getattr(trainer, "is_deepspeed_enabled", False))
    if not sharded:
        return merged_copy(trainer.model) if trainer.is_world_process_zero() else None
    import torch
    from transformers import AutoModelForCausalLM

    wrapped = trainer.model_wrapped
    state = trainer.accelerator.get_state_dict(wrapped)  # collective; full on rank 0 (CPU)
    if not trainer.is_world_process_zero():
        return None
    config = trainer.accelerator.unwrap_model(wrapped).config
    with torch.device("meta"):
        fresh = AutoModelForCausalLM.from_config(config)
    result = fresh.load_state_dict(state, assign=True, strict=False)
    fresh.tie_weights()
    missing = [k for k, v in fresh.state_dict().items() if v.is_meta]
    if missing:
        raise RuntimeError(Errors.E170.format(n=len(missing), first=missing[:3],
                                              unexpected=result.unexpected_keys[:3]))
    return fresh.eval()


__all__ = ["world", "is_main_process", "is_multi_process", "barrier", "shard",
           "sharded_launch", "dev_decoding_possible", "shared_dev_recall", "final_model"]
