"""Training in several processes (``torchrun``, ``accelerate launch``): who writes, and the
decoding work the processes share instead of repeating.

Every process runs the same training script. The main process (global rank 0) alone writes
logs, state files and pipeline folders (the trainer's checkpoints are written as transformers
does: the weights by the main process, one RNG state per rank); the others wait at
:func:`barrier` where they would otherwise read what it writes. Decoding is split, not
repeated: each rank decodes its slice of the dev set and the hit counts are summed across
ranks (every rank gets the same Recall@1, so all take the same best-model and early-stopping
decisions), and DPO's negatives are mined in slices and gathered on every rank.

With sharded weights (FSDP, DeepSpeed ZeRO-3) the dev set is not decoded during training
(W170), and the final weights are gathered to the main process before saving.

Before the process group exists, the rank comes from ``RANK`` (set by torchrun and
accelerate).
"""
from __future__ import annotations

import copy
import os
import warnings
from typing import TYPE_CHECKING, Any, List, Sequence, Tuple, TypeVar

from ..errors import Errors, Warnings
from ..evaluation.metrics import hit
from .negatives import MiningStats, mine_negatives

if TYPE_CHECKING:  # pragma: no cover
    from ..linking import LinkingEngine
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


def ensure_process_group() -> None:
    """Start the process group now when launched in several processes (it is otherwise started
    by the first trainer): code that runs before it can then synchronise. Uses accelerate's
    ``PartialState``, which the trainers share later."""
    if world()[1] > 1 and _dist() is None:
        from accelerate import PartialState

        PartialState()


def any_rank(flag: bool, device: Any = None) -> bool:
    """True when ``flag`` is True on any process (all processes must call it)."""
    dist = _dist()
    if dist is None:
        return flag
    import torch

    t = torch.tensor([1.0 if flag else 0.0], device=_reduce_device(device))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def _reduce_device(device: Any = None) -> Any:
    dist = _dist()
    if device is None and dist is not None and dist.get_backend() == "nccl":
        import torch

        return torch.device("cuda", torch.cuda.current_device())
    return device


def shared_dev_recalls(engine: "LinkingEngine", dev: "DevSet", ks: Sequence[int] = (1,),
                       device: Any = None) -> List[float]:
    """Dev Recall@k for each k of ``ks`` by the engine in its own mode (the paper's hit rule,
    as :func:`~.examples.dev_recall_at_1`), each mention decoded by one rank and the hits
    summed across ranks. Every rank must call it; each gets the same values. ``device``: where
    the counts are summed (default: the rank's GPU under NCCL, else the CPU)."""
    if not len(dev):
        return [0.0 for _ in ks]
    rank, n = world()
    idx = shard(range(len(dev)), rank, n)
    cands = engine.link([dev.prompt_ids[i] for i in idx], [dev.groups[i] for i in idx],
                        [dev.mentions[i] for i in idx]) if idx else []
    hits = [0.0 for _ in ks]
    for i, cs in zip(idx, cands):
        codes = [c.code for c in cs]
        for j, k in enumerate(ks):
            hits[j] += hit(dev.codes[i], codes, k, kb=engine.kb)
    dist = _dist()
    if dist is not None and n > 1:
        import torch

        t = torch.tensor(hits, dtype=torch.float64, device=_reduce_device(device))
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        hits = [float(x) for x in t.tolist()]
    return [h / len(dev) for h in hits]


def shared_dev_recall(engine: "LinkingEngine", dev: "DevSet", device: Any = None) -> float:
    """Dev Recall@1 (see :func:`shared_dev_recalls`)."""
    return shared_dev_recalls(engine, dev, (1,), device)[0]


def shared_mine(engine: "LinkingEngine", mentions: Sequence[Any], **kwargs: Any):
    """:func:`~.negatives.mine_negatives` with each rank decoding a contiguous slice of
    ``mentions``; every rank gets all pairs, in the order one process would produce them,
    and the summed statistics."""
    rank, n = world()
    dist = _dist()
    if dist is None or n == 1:
        return mine_negatives(engine, mentions, **kwargs)
    size = -(-len(mentions) // n)
    pairs, stats = mine_negatives(engine, list(mentions[rank * size:(rank + 1) * size]),
                                  **kwargs)
    gathered: List[Any] = [None] * n
    dist.all_gather_object(gathered, (pairs, stats.to_dict()))
    merged = MiningStats()
    all_pairs: List[Any] = []
    for part_pairs, part_stats in gathered:
        all_pairs.extend(part_pairs)
        for key, value in part_stats.items():
            if isinstance(value, dict):
                into = getattr(merged, key)
                for case, count in value.items():
                    into[case] = into.get(case, 0) + count
            else:
                setattr(merged, key, getattr(merged, key) + value)
    return all_pairs, merged


def merged_copy(model):
    """A plain model with the LoRA weights merged in (the training model is left as it is)."""
    if hasattr(model, "merge_and_unload"):
        return copy.deepcopy(model).merge_and_unload()
    return model


def final_model(trainer: Any) -> Any:
    """The trained weights as a plain model (LoRA merged) on the main process, None on the
    others. Every rank must call it: under FSDP or DeepSpeed the full state dict is gathered
    to rank 0 (CPU, whatever the checkpoints' ``fsdp_state_dict_type``) and loaded into a fresh
    copy of the architecture (LoRA with sharded weights is not supported here: E170)."""
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
    dtype = next((v.dtype for v in state.values() if v.is_floating_point()), torch.float32)
    fresh = AutoModelForCausalLM.from_config(config, dtype=dtype)  # CPU, like the state
    result = fresh.load_state_dict(state, strict=False)
    fresh.tie_weights()
    own = fresh.state_dict()
    loaded = {own[k].data_ptr() for k in state if k in own}
    missing = [k for k in result.missing_keys if own[k].data_ptr() not in loaded]  # not tied
    if missing:
        raise RuntimeError(Errors.E170.format(n=len(missing), first=missing[:3],
                                              unexpected=result.unexpected_keys[:3]))
    return fresh.eval()


__all__ = ["world", "is_main_process", "is_multi_process", "barrier", "shard",
           "sharded_launch", "dev_decoding_possible", "ensure_process_group",
           "shared_dev_recalls", "shared_dev_recall", "shared_mine", "merged_copy", "final_model"]
