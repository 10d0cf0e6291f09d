"""A beam-search KV cache that holds each mention's prompt once, shared by its beams.

The ``k`` beams of a mention continue the same prompt. :class:`~.beam_cache.SlotCache`
keeps a copy of the prompt's keys and values in every beam's row, so each decoding step
reads the prompt ``k`` times per layer and a forked beam copies it; on a CPU, with prompts of
100-250 tokens, that reading is about as slow as the step's matrix multiplies.

:class:`PromptCache` keeps, per layer:

- the prompt keys and values once per mention, in a *mention slot* (left-aligned, as long as
  the prompt);
- the generated keys and values per beam, in a *row* (left-aligned, as long as the beam).

A step's attention (:func:`prompt_shared_attention`, registered with transformers'
``AttentionInterface`` and selected only for the step's forward pass) scores each query
against its mention's prompt, the queries of a mention's beams together in one matrix
multiply, and against its row's generated tokens; one softmax runs over both. The result is
the model's attention over ``prompt + generated`` (up to float rounding), with no prompt
copied or read more than once per mention. A forked beam copies only its generated tokens;
a finished mention frees its slot for the next prompt (continuous batching), so no position
ever needs dropping.

It is used for model types whose attention is plain scaled dot-product attention over the
cache (the Llama family, :data:`SHARED_PROMPT_MODEL_TYPES`), run with ``sdpa`` or
``eager``; other models use :class:`~.beam_cache.SlotCache` or
:class:`~.beam_cache.ReorderingCache`.
"""
from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import ContextManager, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .beam_cache import SlotCache, assign_slots

try:  # transformers >= 4.56 (the cache is a list of layers)
    from transformers.cache_utils import DynamicLayer
except ImportError:  # pragma: no cover
    DynamicLayer = None  # type: ignore

# model types whose attention is softmax(q k^T * scaling + mask) v over the cache's keys and
# values, with grouped-query heads as repeat_kv lays them out (query head h reads kv head h // g)
SHARED_PROMPT_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")
ATTENTION = "syncabel_prompt_shared"  # the name registered with AttentionInterface
KWARG = "syncabel_prompt_cache"  # the forward kwarg that carries the cache to the attention
# per model config (by id) in a step with shared prompts: (steps running, attention before),
# so that steps of several threads switch the attention once and put it back once
_SWITCHED: Dict[int, Tuple[int, str]] = {}
_SWITCH_LOCK = threading.Lock()


def prompt_shared_attention(module, query: torch.Tensor, key: torch.Tensor,
                            value: torch.Tensor, attention_mask: Optional[torch.Tensor],
                            scaling: Optional[float] = None, dropout: float = 0.0, **kwargs
                            ) -> Tuple[torch.Tensor, None]:
    """transformers' attention interface: a decoding step against a :class:`PromptCache`
    (passed as ``kwargs[KWARG]``); anything else (another thread's forward pass while a step
    runs) goes to the attention the model had before the step."""
    cache = kwargs.pop(KWARG, None)
    if cache is None:
        return _attention_before(module)(module, query, key, value, attention_mask,
                                         dropout=dropout, scaling=scaling, **kwargs)
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    return cache.attend(module.layer_idx, query, key, value, attention_mask, scaling), None


def _before(config) -> str:
    with _SWITCH_LOCK:
        return _SWITCHED.get(id(config), (0, "sdpa"))[1]


def _mask_before(**kwargs):
    """transformers' mask interface: the mask of the model's own attention, for a forward
    pass that builds one (another thread's prefill) while a step has the attention switched."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    return ALL_MASK_ATTENTION_FUNCTIONS[_before(kwargs.get("config"))](**kwargs)


def _attention_before(module):
    """The model's own attention function (``eager`` or ``sdpa``) for a forward pass that runs
    while the model's attention is switched to :func:`prompt_shared_attention`."""
    before = _before(getattr(module, "config", None))
    if before == "eager":
        eager = getattr(sys.modules.get(type(module).__module__), "eager_attention_forward", None)
        if eager is not None:
            return eager
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    return sdpa_attention_forward


@contextmanager
def switched_attention(model) -> Iterator[None]:
    """Run the model's attention through :func:`prompt_shared_attention` for the block: the
    first of overlapping blocks (several threads' steps) switches it, the last puts it back."""
    config = model.config
    key = id(config)
    with _SWITCH_LOCK:
        running, before = _SWITCHED.get(key, (0, config._attn_implementation))
        if not running:
            config._attn_implementation = ATTENTION
        _SWITCHED[key] = (running + 1, before)
    try:
        yield
    finally:
        with _SWITCH_LOCK:
            running, before = _SWITCHED.pop(key)
            if running == 1:
                config._attn_implementation = before
            else:
                _SWITCHED[key] = (running - 1, before)


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    # idempotent; a step passes its own mask, the mask function serves other threads
    AttentionInterface.register(ATTENTION, prompt_shared_attention)
    AttentionMaskInterface.register(ATTENTION, _mask_before)


class _Layer(DynamicLayer if DynamicLayer is not None else object):  # type: ignore[misc]
    """One layer: prompt keys/values ``(mention slots, heads, prompt positions, head_dim)``
    and generated ones ``(rows, heads, generated positions, head_dim)``."""

    def __init__(self, state: "PromptCache", keys: torch.Tensor, values: torch.Tensor,
                 slots: int, width: int, rows: int, room: int) -> None:
        super().__init__()
        _, heads, _, dim = keys.shape
        # zeros: a masked position is still multiplied (by 0) in attention; each in its own
        # dtype (under autocast, RoPE leaves keys in float32 and values in bfloat16)
        self.prompt_keys = keys.new_zeros((slots, heads, width, dim))
        self.prompt_values = values.new_zeros((slots, heads, width, values.shape[-1]))
        self.keys = keys.new_zeros((rows, heads, room, dim))
        self.values = values.new_zeros((rows, heads, room, values.shape[-1]))
        self.state = state
        self.device = keys.device
        self.is_initialized = True

    # -- what the model's attention calls ------------------------------------------------
    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
               ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Write the step's token of every row at its generated position; returns the
        rows' generated keys and values so far."""
        st = self.state
        rows, at = st.row_index, st.write_at
        self.keys[rows, :, at] = key_states[:, :, -1]
        self.values[rows, :, at] = value_states[:, :, -1]
        n, width = len(st.write_at), st.gen_width
        return self.keys[:n, :, :width], self.values[:n, :, :width]

    def get_seq_length(self) -> int:
        return self.state.prompt_width + self.state.gen_width

    def get_mask_sizes(self, query_length: int) -> Tuple[int, int]:
        return self.get_seq_length() + query_length, 0

    def get_max_length(self) -> int:
        return -1

    # -- beam search's side --------------------------------------------------------------
    @staticmethod
    def _grown(buf: torch.Tensor, dim: int, size: int) -> torch.Tensor:
        shape = list(buf.shape)
        shape[dim] = size
        new = buf.new_zeros(shape)
        new.narrow(dim, 0, buf.shape[dim]).copy_(buf)
        return new

    def reserve(self, slots: int, width: int, rows: int, room: int) -> None:
        """At least ``slots`` mention slots of ``width`` positions and ``rows`` rows of
        ``room`` positions (half more when a buffer must grow)."""
        for name, dim, need in (("prompt_keys", 0, slots), ("prompt_values", 0, slots),
                                ("prompt_keys", 2, width), ("prompt_values", 2, width),
                                ("keys", 0, rows), ("values", 0, rows),
                                ("keys", 2, room), ("values", 2, room)):
            buf = getattr(self, name)
            if need > buf.shape[dim]:
                setattr(self, name, self._grown(buf, dim, max(need, buf.shape[dim] * 3 // 2)))

    def place(self, slots: Sequence[int], keys: torch.Tensor, values: torch.Tensor,
              lengths: Sequence[int]) -> None:
        """Write left-padded prompt keys/values into ``slots``, left-aligned."""
        width = keys.shape[-2]
        for i, (slot, n) in enumerate(zip(slots, lengths)):
            self.prompt_keys[slot, :, :n] = keys[i, :, width - n:]
            self.prompt_values[slot, :, :n] = values[i, :, width - n:]

    def copy_rows(self, dst: torch.Tensor, src: torch.Tensor, width: int) -> None:
        """Rows ``dst`` take the generated positions ``0 .. width - 1`` of rows ``src``."""
        for buf in (self.keys, self.values):
            buf[dst, :, :width] = buf[src, :, :width]


class PromptCache:
    """Beam search's cache with prompts shared by a mention's beams (module docstring).

    Same protocol as :class:`~.beam_cache.SlotCache`: ``select`` reorders to the next step's
    rows, ``admit`` adds prefilled prompts, ``step_inputs`` gives the step's forward kwargs
    and ``attending`` selects the attention for the step."""

    def __init__(self, cache, ids: Sequence[int], lengths: Sequence[int], mentions: int,
                 num_beams: int, room: int) -> None:
        _register()
        width = cache.layers[0].keys.shape[-2]
        slots = max(mentions, len(ids))
        self.cache = cache
        self.layers = [_Layer(self, layer.keys, layer.values, slots, width, slots * num_beams,
                              room) for layer in cache.layers]
        self.slot_of: Dict[int, int] = {}  # mention -> its mention slot
        self.free: List[int] = []
        self.prompt_len = np.zeros(0, dtype=np.int64)  # per mention slot
        self.rows = 0
        self.row_index = torch.zeros(0, dtype=torch.long)
        self.write_at = torch.zeros(0, dtype=torch.long)
        # the last step's widest prompt and generated length (every live row took part in
        # it, so no row holds generated positions past ``gen_width``)
        self.prompt_width = self.gen_width = 0
        self.admit(cache, ids, lengths)
        for i in range(len(cache.layers)):
            cache.layers[i] = self.layers[i]

    @staticmethod
    def suits(model, cache) -> bool:
        """A model of :data:`SHARED_PROMPT_MODEL_TYPES` run with ``sdpa`` or ``eager``, and
        a prefilled cache of plain full-attention layers."""
        config = getattr(model, "config", None)
        return (getattr(config, "model_type", None) in SHARED_PROMPT_MODEL_TYPES
                and getattr(config, "_attn_implementation", None) in ("sdpa", "eager")
                and SlotCache.supports(cache))

    # -- beam search's side --------------------------------------------------------------
    def admit(self, cache, ids: Sequence[int], lengths: Sequence[int], next_width: int = 0
              ) -> None:
        """Add a prefilled batch of prompts (left-padded ``cache``) as new mentions, in free
        mention slots, one row each (appended after the live rows)."""
        slots = []
        for m in ids:
            slot = self.free.pop() if self.free else len(self.prompt_len)
            if slot == len(self.prompt_len):
                self.prompt_len = np.r_[self.prompt_len, 0]
            self.slot_of[int(m)] = slot
            slots.append(slot)
        self.prompt_len[slots] = np.asarray(lengths, dtype=np.int64)
        width = cache.layers[0].keys.shape[-2]
        for layer, new in zip(self.layers, cache.layers):
            layer.reserve(len(self.prompt_len), width, self.rows + len(ids), 0)
            layer.place(slots, new.keys, new.values, lengths)
        self.rows += len(ids)

    def select(self, src: np.ndarray, mention: np.ndarray) -> np.ndarray:
        """Reorder to the next step's rows (row i continues row ``src[i]``, of mention
        ``mention[i]``); returns ``perm``: row p of the cache holds row ``perm[p]``."""
        perm, dst, dst_src = assign_slots(src)
        for layer in self.layers:
            layer.reserve(0, 0, len(src), 0)
        if len(dst) and self.gen_width:
            device = self.layers[0].device
            dst_t = torch.as_tensor(dst, device=device)
            src_t = torch.as_tensor(dst_src, device=device)
            for layer in self.layers:
                layer.copy_rows(dst_t, src_t, self.gen_width)
        self.rows = len(src)
        live = set(mention.tolist())
        for m in [m for m in self.slot_of if m not in live]:
            self.free.append(self.slot_of.pop(m))
        return perm

    def step_inputs(self, row_mention: np.ndarray, done: np.ndarray, device
                    ) -> Dict[str, object]:
        """The forward kwargs of the next step: rows of ``row_mention`` that have generated
        ``done`` tokens each (the last of them is the step's input)."""
        slot = np.asarray([self.slot_of[int(m)] for m in row_mention.tolist()], dtype=np.int64)
        plen = self.prompt_len[slot]
        self.prompt_width, self.gen_width = int(plen.max()), int(done.max())
        for layer in self.layers:
            layer.reserve(0, 0, len(slot), self.gen_width)
        # a mention's rows side by side: rank of each row among its mention's
        order = np.argsort(slot, kind="stable")
        first = np.r_[0, np.nonzero(np.diff(slot[order]))[0] + 1]
        sizes = np.diff(np.r_[first, len(order)])
        rank = np.empty(len(slot), dtype=np.int64)
        rank[order] = np.arange(len(order)) - np.repeat(first, sizes)
        self.group = int(sizes.max())
        self.slots_used = int(slot.max()) + 1
        self.row_slot = torch.as_tensor(slot, device=device)
        self.row_rank = torch.as_tensor(rank, device=device)
        self.row_index = torch.arange(len(slot), device=device)
        self.write_at = torch.as_tensor(done - 1, device=device)
        dtype = self.layers[0].keys.dtype
        valid = np.concatenate([np.arange(self.prompt_width)[None, :] < plen[:, None],
                                np.arange(self.gen_width)[None, :] < done[:, None]], axis=1)
        bias = torch.zeros(valid.shape, dtype=dtype, device=device)
        bias.masked_fill_(torch.as_tensor(~valid, device=device), float("-inf"))
        return {"attention_mask": bias[:, None, None, :], KWARG: self}

    def attending(self, model) -> ContextManager[None]:
        """Run the model's attention through :func:`prompt_shared_attention` for the step
        (:func:`switched_attention`: put back after, so prefill and any other caller see the
        model as it was; another thread's forward pass meanwhile runs the model's own)."""
        return switched_attention(model)

    # -- the attention -------------------------------------------------------------------
    def attend(self, layer_idx: int, query: torch.Tensor, keys: torch.Tensor,
               values: torch.Tensor, bias: torch.Tensor, scaling: float) -> torch.Tensor:
        """``softmax(q [P; G]^T * scaling + bias) [P; G]`` for one query per row (a decoding
        step), P the row's mention's prompt, G its generated keys (``keys``/``values``, from
        ``update``); returns ``(rows, 1, heads, head_dim)``."""
        if query.shape[-2] != 1:  # pragma: no cover (beam search runs one token a step)
            raise ValueError(f"a step of {query.shape[-2]} tokens against shared prompts")
        layer = self.layers[layer_idx]
        rows, heads, _, dim = query.shape
        kv_heads = keys.shape[1]
        g = heads // kv_heads
        n_slot, group, width = self.slots_used, self.group, self.prompt_width
        q = query.reshape(rows, kv_heads, g, dim)
        # the queries of a mention's rows side by side: (slots, kv_heads, group * g, dim)
        grouped = q.new_zeros((n_slot, group, kv_heads, g, dim))
        grouped[self.row_slot, self.row_rank] = q
        grouped = grouped.permute(0, 2, 1, 3, 4).reshape(n_slot, kv_heads, group * g, dim)
        p_keys = layer.prompt_keys[:n_slot, :, :width]
        p_values = layer.prompt_values[:n_slot, :, :width]
        p_scores = torch.matmul(grouped, p_keys.transpose(-1, -2))
        p_scores = p_scores.view(n_slot, kv_heads, group, g, width)
        p_scores = p_scores[self.row_slot, :, self.row_rank]  # (rows, kv_heads, g, width)
        g_scores = torch.matmul(q, keys.transpose(-1, -2))  # (rows, kv_heads, g, gen)
        scores = torch.cat([p_scores, g_scores], dim=-1) * scaling
        scores = scores + bias.view(rows, 1, 1, -1)
        probs = torch.softmax(scores.float(), dim=-1).to(query.dtype)
        p_probs, g_probs = probs[..., :width], probs[..., width:]
        spread = probs.new_zeros((n_slot, group, kv_heads, g, width))
        spread[self.row_slot, self.row_rank] = p_probs
        spread = spread.permute(0, 2, 1, 3, 4).reshape(n_slot, kv_heads, group * g, width)
        out = torch.matmul(spread, p_values).view(n_slot, kv_heads, group, g, dim)
        out = out[self.row_slot, :, self.row_rank] + torch.matmul(g_probs, values)
        return out.reshape(rows, 1, heads, dim)
