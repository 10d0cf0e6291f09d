"""KV caches for :func:`~spacy_syncabel.decoding.beam_search.beam_search`: what a step costs
beside the model's own matmuls.

Each step, beam search picks the rows (live beams) of the next step, each the continuation
of a row of the last one. transformers' ``DynamicCache`` then copies its whole cache twice
per step and layer: ``reorder_cache`` gathers every row's keys and values (prompt included),
and ``update`` concatenates the new token onto them. With a prompt of 100 tokens and 2
generated ones, 98% of that copying moves prompt keys that did not change: every beam of a
mention holds the same prompt.

:class:`SlotCache` keeps each layer's keys and values in buffers allocated once, one *slot*
(row of the buffer) per live beam:

- a step writes its token's keys and values in place (no concatenation);
- the first continuation of a beam stays in its slot; only the other rows (forked beams) are
  copied, from their parent's slot into a free one (:func:`assign_slots`);
- prompts joining later are written right-aligned into free slots (continuous batching), and
  positions no live row needs are dropped now and then;
- attention reads views of the buffers, as long as the sequence so far.

It takes the place of the plain ``DynamicLayer`` of each layer of a ``DynamicCache``, so the
model's own forward pass (masks, positions, attention kernels) is unchanged. A cache with
other layers (sliding windows, linear attention, quantized, older transformers) goes through
:class:`ReorderingCache`: ``reorder_cache`` as ``generate`` does it. The Llama family goes
through :class:`~.prompt_cache.PromptCache` instead, which also shares a mention's prompt
between its beams (:func:`beam_cache` chooses).

All three have the same protocol: ``select`` (the next step's rows), ``step_inputs`` (the
step's forward kwargs), ``attending`` (the attention the step runs with) and, for the first
two, ``admit`` (prompts joining the search).
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import ContextManager, Dict, List, Sequence, Tuple

import numpy as np
import torch

try:  # transformers >= 4.56 (the cache is a list of layers)
    from transformers.cache_utils import DynamicLayer
except ImportError:  # pragma: no cover
    DynamicLayer = None  # type: ignore

GROWTH = 16  # positions added to the buffers at a time
COMPACT = 64  # dead positions (before every live row's start) that trigger a compaction


def assign_slots(src: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slots for the rows of the next step, row i continuing the row in slot ``src[i]``.

    Returns ``(perm, dst, dst_src)``: slot p holds row ``perm[p]`` (slots ``0 .. len(src) -
    1``); the first row continuing a slot below ``len(src)`` stays in it (nothing to copy);
    every other row goes to a free slot ``dst[j]`` and is copied there from ``dst_src[j]``.
    A free slot is never a source: a slot with a continuation below ``len(src)`` is kept."""
    n = len(src)
    perm = np.full(n, -1, dtype=np.int64)
    moved: List[int] = []
    for row, slot in enumerate(src.tolist()):
        if slot < n and perm[slot] < 0:
            perm[slot] = row
        else:
            moved.append(row)
    dst = np.nonzero(perm < 0)[0]
    perm[dst] = moved
    return perm, dst, src[np.asarray(moved, dtype=np.int64)]


class _SlotLayer(DynamicLayer if DynamicLayer is not None else object):  # type: ignore[misc]
    """One layer's keys and values in slot buffers ``(slots, heads, capacity, head_dim)``;
    the rows in use are ``0 .. rows - 1``, the positions ``0 .. length - 1``."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, slots: int, room: int) -> None:
        super().__init__()
        self.rows, _, self.length, _ = keys.shape
        shape = (max(slots, self.rows), keys.shape[1], self.length + room, keys.shape[-1])
        # zeros, not empty: a masked position is still multiplied (by 0) in attention
        self.keys = keys.new_zeros(shape)
        self.values = values.new_zeros(shape)
        self.keys[:self.rows, :, :self.length] = keys
        self.values[:self.rows, :, :self.length] = values
        self.device = keys.device
        self.is_initialized = True

    # -- what the model's attention calls ------------------------------------------------
    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
               ) -> Tuple[torch.Tensor, torch.Tensor]:
        end = self.length + key_states.shape[-2]
        if end > self.keys.shape[-2]:
            self._resize(end + GROWTH)
        self.keys[:self.rows, :, self.length:end] = key_states
        self.values[:self.rows, :, self.length:end] = value_states
        self.length = end
        return self.keys[:self.rows, :, :end], self.values[:self.rows, :, :end]

    def get_seq_length(self) -> int:
        return self.length

    def get_mask_sizes(self, query_length: int) -> Tuple[int, int]:
        return self.length + query_length, 0

    def get_max_length(self) -> int:
        return -1

    # -- beam search's side --------------------------------------------------------------
    def _resize(self, capacity: int, slots: int = 0) -> None:
        """Buffers of ``capacity`` positions and at least ``slots`` slots, the rows kept."""
        for name in ("keys", "values"):
            old = getattr(self, name)
            new = old.new_zeros((max(slots, old.shape[0]), old.shape[1], capacity,
                                 old.shape[3]))
            new[:self.rows, :, :self.length] = old[:self.rows, :, :self.length]
            setattr(self, name, new)

    def reserve(self, slots: int) -> None:
        """Room for ``slots`` rows (half more when the buffers must grow)."""
        if slots > self.keys.shape[0]:
            self._resize(self.keys.shape[-2], max(slots, self.keys.shape[0] * 3 // 2))

    def copy_rows(self, dst: torch.Tensor, src: torch.Tensor, start: int) -> None:
        """Rows ``dst`` take the positions ``start ..`` of rows ``src``."""
        for buf in (self.keys, self.values):
            buf[dst, :, start:self.length] = buf[src, :, start:self.length]  # gather: a copy

    def place(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Append a prefilled batch as rows, its prompts ending at the current length."""
        n, _, width, _ = keys.shape
        lo = self.length - width
        self.keys[self.rows:self.rows + n, :, lo:self.length] = keys
        self.values[self.rows:self.rows + n, :, lo:self.length] = values
        self.rows += n

    def shift(self, by: int) -> None:
        """Drop the first ``by`` positions of every row."""
        for buf in (self.keys, self.values):
            buf[:self.rows, :, :self.length - by] = buf[:self.rows, :, by:self.length].clone()
        self.length -= by


class _Starts:
    """The first position of each mention's prompt in the cache (left padding before it)."""

    def __init__(self, ids: Sequence[int], lengths: Sequence[int], width: int) -> None:
        self.start: Dict[int, int] = {}
        self.set(ids, lengths, width)

    def set(self, ids: Sequence[int], lengths: Sequence[int], end: int) -> None:
        for m, n in zip(ids, lengths):
            self.start[int(m)] = end - int(n)

    def mask(self, row_mention: np.ndarray, length: int, device) -> torch.Tensor:
        """The attention mask of the next step's rows (``length`` cached positions + 1)."""
        starts = torch.as_tensor([self.start[m] for m in row_mention.tolist()], device=device)
        return (torch.arange(length + 1, device=device)[None, :] >= starts[:, None]).long()


class SlotCache:
    """A prefilled ``DynamicCache`` turned into slot buffers (see the module docstring)."""

    def __init__(self, cache, ids: Sequence[int], lengths: Sequence[int], slots: int,
                 room: int = GROWTH) -> None:
        self.cache = cache
        self.layers: List[_SlotLayer] = []
        for i, layer in enumerate(cache.layers):
            cache.layers[i] = _SlotLayer(layer.keys, layer.values, slots, room)
            self.layers.append(cache.layers[i])
        self.starts = _Starts(ids, lengths, self.length)
        self.slot_mention = np.asarray(ids, dtype=np.int64)

    @property
    def length(self) -> int:
        return self.layers[0].length

    @staticmethod
    def supports(cache) -> bool:
        """A cache of plain full-attention layers (``DynamicLayer``), prefilled."""
        layers = getattr(cache, "layers", None)
        return _plain(layers) and all(layer.keys is not None and layer.keys.dim() == 4
                                      and layer.keys.numel() > 0 for layer in layers)

    def select(self, src: np.ndarray, mention: np.ndarray) -> np.ndarray:
        """Reorder to the next step's rows (row i continues the row in slot ``src[i]``, of
        mention ``mention[i]``); returns ``perm``: slot p holds row ``perm[p]``."""
        perm, dst, dst_src = assign_slots(src)
        device = self.layers[0].device
        for layer in self.layers:
            layer.reserve(len(src))
        dst_t = torch.as_tensor(dst, device=device)
        src_t = torch.as_tensor(dst_src, device=device)
        start = min((self.starts.start[int(m)] for m in mention[perm[dst]].tolist()),
                    default=self.length)
        for layer in self.layers:
            if len(dst):
                layer.copy_rows(dst_t, src_t, max(start, 0))
            layer.rows = len(src)
        self.slot_mention = mention[perm]
        return perm

    def admit(self, cache, ids: Sequence[int], lengths: Sequence[int], next_width: int) -> None:
        """Add a prefilled batch of prompts (``cache``) as new rows. Its prompts end at the
        current length (they are no wider: prompts come longest first); first, positions
        before every live row's start are dropped when there are many, keeping room for a
        prompt of ``next_width`` tokens afterwards."""
        width = cache.layers[0].keys.shape[-2]
        live = [self.starts.start[int(m)] for m in self.slot_mention.tolist()]
        dead = min(live, default=self.length)
        dead = min(dead, self.length - max(width, next_width))
        if dead >= COMPACT:
            for layer in self.layers:
                layer.shift(dead)
            for m in set(self.slot_mention.tolist()):
                self.starts.start[m] -= dead
        if width > self.length:  # pragma: no cover (longest first rules it out)
            raise ValueError(f"a prompt of {width} tokens joins a cache of {self.length}")
        for layer, new in zip(self.layers, cache.layers):
            layer.reserve(layer.rows + len(ids))
            layer.place(new.keys, new.values)
        self.starts.set(ids, lengths, self.length)
        self.slot_mention = np.r_[self.slot_mention, np.asarray(ids, dtype=np.int64)]

    def step_inputs(self, row_mention: np.ndarray, done: np.ndarray, device
                    ) -> Dict[str, object]:
        """The forward kwargs of the next step (its attention mask)."""
        return {"attention_mask": self.starts.mask(row_mention, self.length, device)}

    def attending(self, model) -> ContextManager[None]:
        return nullcontext()  # the model's own attention


class ReorderingCache:
    """Any transformers cache, reordered with its own ``reorder_cache`` (as ``generate``
    does it: every row copied, prompt included). Its prompts are searched together: no
    prompt joins later."""

    def __init__(self, cache, ids: Sequence[int], lengths: Sequence[int]) -> None:
        self.cache = cache
        self.starts = _Starts(ids, lengths, max(lengths))

    def select(self, src: np.ndarray, mention: np.ndarray) -> np.ndarray:
        self.cache.reorder_cache(torch.as_tensor(src))  # moved to the cache's device there
        return np.arange(len(src), dtype=np.int64)

    def step_inputs(self, row_mention: np.ndarray, done: np.ndarray, device
                    ) -> Dict[str, object]:
        return {"attention_mask": self.starts.mask(row_mention, self.cache.get_seq_length(),
                                                   device)}

    def attending(self, model) -> ContextManager[None]:
        return nullcontext()


def admits_prompts(model) -> bool:
    """Whether the cache of ``model`` will take prompts joining a running search (a cache of
    plain full-attention layers), known before any forward pass from the layer types its
    config gives ``DynamicCache``."""
    try:
        from transformers import DynamicCache

        layers = DynamicCache(config=model.config).layers
    except Exception:  # noqa: BLE001 (older transformers, configs without layer types)
        return False
    return _plain(layers)


def _plain(layers) -> bool:
    """Whether ``layers`` are all plain full-attention layers (``DynamicLayer``)."""
    return DynamicLayer is not None and bool(layers) and all(
        type(layer) is DynamicLayer for layer in layers)
