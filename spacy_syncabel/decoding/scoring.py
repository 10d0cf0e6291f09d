"""Exhaustive scoring of given completions (a mention's candidate names) by teacher forcing.

Each prompt is encoded once; its KV cache is expanded to its candidates, and every candidate's
tokens are scored in one forward pass (no sequential decoding steps).
"""
from __future__ import annotations

from typing import List, Sequence

import torch

from .beam_search import _prefill


@torch.inference_mode()
def score_completions(model, prompts: Sequence[Sequence[int]],
                      completions: Sequence[Sequence[Sequence[int]]], pad_id: int,
                      ) -> List[List[float]]:
    """Summed log-prob of each completion (EOS included in its ids) given its prompt."""
    out: List[List[float]] = [[] for _ in prompts]
    keep = [i for i, c in enumerate(completions) if c]
    if not keep:
        return out
    device = next(model.parameters()).device
    first, cache, mask, last_pos = _prefill(model, [prompts[i] for i in keep], pad_id, device)
    rows = [(j, c) for j, i in enumerate(keep) for c in completions[i]]
    src = torch.as_tensor([j for j, _ in rows], device=device)
    cache.reorder_cache(src)
    width = max(len(c) for _, c in rows)
    first_tok = torch.as_tensor([c[0] for _, c in rows], device=device)
    total = first.index_select(0, src).gather(1, first_tok.unsqueeze(1)).squeeze(1)
    if width > 1:
        ids = torch.full((len(rows), width - 1), pad_id, dtype=torch.long, device=device)
        tgt = torch.full((len(rows), width - 1), pad_id, dtype=torch.long, device=device)
        valid = torch.zeros((len(rows), width - 1), dtype=torch.bool, device=device)
        for r, (_, c) in enumerate(rows):
            n = len(c) - 1
            if n:
                ids[r, :n] = torch.as_tensor(c[:-1])
                tgt[r, :n] = torch.as_tensor(c[1:])
                valid[r, :n] = True
        attn = torch.cat([mask.index_select(0, src), valid.long() | (ids != pad_id).long()], -1)
        attn[:, mask.shape[1]:] = 1  # right padding only follows real tokens: harmless
        pos = last_pos.index_select(0, src).unsqueeze(1) + 1 + torch.arange(width - 1,
                                                                              device=device)
        logits = model(input_ids=ids, attention_mask=attn, position_ids=pos,
                       past_key_values=cache, use_cache=True).logits
        logp = torch.log_softmax(logits.float(), -1).gather(2, tgt.unsqueeze(2)).squeeze(2)
        total = total + (logp * valid).sum(1)
    for (j, _), value in zip(rows, total.tolist()):
        out[keep[j]].append(value)
    return out
