"""Exhaustive scoring of given completions (a mention's candidate names) by teacher forcing.

Each prompt is encoded once; its KV cache is expanded to its candidates, and every candidate's
tokens are scored in one forward pass (no sequential decoding steps). :func:`completion_logprobs`
keeps the autograd graph (it is the forward pass of candidate-ranking training);
:func:`score_completions` is its inference wrapper.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch

from .beam_search import _prefill


def completion_logprobs(model, prompts: Sequence[Sequence[int]],
                        completions: Sequence[Sequence[Sequence[int]]], pad_id: int,
                        ) -> Tuple[torch.Tensor, torch.Tensor, List[Tuple[int, int]]]:
    """Summed log-prob of every completion (EOS included in its ids) given its prompt.

    Returns ``(logprobs, lengths, rows)``: one entry per (prompt i, completion j) in ``rows``
    order, prompts without completions skipped. Differentiable when grad is enabled.
    """
    rows = [(i, j) for i, comps in enumerate(completions) for j in range(len(comps))]
    device = next(model.parameters()).device
    if not rows:
        empty = torch.zeros(0, device=device)
        return empty, empty, rows
    keep = sorted({i for i, _ in rows})
    slot = {i: s for s, i in enumerate(keep)}
    first, cache, mask, last_pos = _prefill(model, [prompts[i] for i in keep], pad_id, device)
    seqs = [completions[i][j] for i, j in rows]
    src = torch.as_tensor([slot[i] for i, _ in rows], device=device)
    cache.reorder_cache(src)
    width = max(len(c) for c in seqs)
    first_tok = torch.as_tensor([c[0] for c in seqs], device=device)
    total = first.index_select(0, src).gather(1, first_tok.unsqueeze(1)).squeeze(1)
    lengths = torch.as_tensor([len(c) for c in seqs], dtype=total.dtype, device=device)
    if width > 1:
        ids = torch.full((len(seqs), width - 1), pad_id, dtype=torch.long)
        tgt = torch.full((len(seqs), width - 1), pad_id, dtype=torch.long)
        valid = torch.zeros((len(seqs), width - 1), dtype=torch.bool)
        for r, c in enumerate(seqs):
            n = len(c) - 1
            if n:
                ids[r, :n] = torch.as_tensor(c[:-1])
                tgt[r, :n] = torch.as_tensor(c[1:])
                valid[r, :n] = True
        ids, tgt, valid = ids.to(device), tgt.to(device), valid.to(device)
        attn = torch.cat([mask.index_select(0, src),
                          torch.ones((len(seqs), width - 1), dtype=mask.dtype, device=device)],
                         -1)  # right padding only follows real tokens: harmless
        pos = last_pos.index_select(0, src).unsqueeze(1) + 1 + torch.arange(width - 1,
                                                                              device=device)
        total = total + _continuation_logprobs(model, ids, attn, pos, cache, tgt, valid)
    return total, lengths, rows


def _continuation_logprobs(model, ids: torch.Tensor, attn: torch.Tensor, pos: torch.Tensor,
                           cache, tgt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Summed log-prob of ``tgt`` at the ``valid`` positions of each row.

    The output head runs only on the valid (non-padding) positions: candidate names differ in
    length, and the head (hidden × vocabulary) dominates the cost of a small model. Models
    without a separable base and head get the full forward pass."""
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if base is None or head is None or base is model:
        logits = model(input_ids=ids, attention_mask=attn, position_ids=pos,
                       past_key_values=cache, use_cache=True).logits
        logp = torch.log_softmax(logits.float(), -1).gather(2, tgt.unsqueeze(2)).squeeze(2)
        return (logp * valid).sum(1)
    hidden = base(input_ids=ids, attention_mask=attn, position_ids=pos, past_key_values=cache,
                  use_cache=True).last_hidden_state
    rows, cols = valid.nonzero(as_tuple=True)
    logits = head(hidden[rows, cols]).float()
    logp = logits.gather(1, tgt[rows, cols].unsqueeze(1)).squeeze(1) - logits.logsumexp(1)
    return torch.zeros(ids.shape[0], dtype=logp.dtype, device=ids.device).index_add_(0, rows,
                                                                                    logp)


@torch.inference_mode()
def score_completions(model, prompts: Sequence[Sequence[int]],
                      completions: Sequence[Sequence[Sequence[int]]], pad_id: int,
                      ) -> List[List[float]]:
    """Summed log-prob of each completion (EOS included in its ids) given its prompt."""
    out: List[List[float]] = [[] for _ in prompts]
    total, _, rows = completion_logprobs(model, prompts, completions, pad_id)
    for (i, _), value in zip(rows, total.tolist()):
        out[i].append(value)
    return out
