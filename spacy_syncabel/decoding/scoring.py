"""Exhaustive scoring of given completions (a mention's candidate names) by teacher forcing.

Each prompt is encoded once. :func:`completion_logprobs` expands its KV cache to its
candidates and scores every candidate's tokens in one forward pass; it keeps the autograd graph
(it is the forward pass of candidate-ranking training). :func:`score_completions` (inference)
shares prefixes instead: a mention's candidate names form a small trie, each distinct prefix is
one position of a single sequence on top of the prompt's cache, and a tree attention mask lets
every position see the prompt and its own ancestors only.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from .beam_search import _cache_kwarg, _prefill


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
        logits = model(input_ids=ids, attention_mask=attn, position_ids=pos, use_cache=True,
                       **{_cache_kwarg(model): cache}).logits
        logp = torch.log_softmax(logits.float(), -1).gather(2, tgt.unsqueeze(2)).squeeze(2)
        return (logp * valid).sum(1)
    hidden = base(input_ids=ids, attention_mask=attn, position_ids=pos, use_cache=True,
                  **{_cache_kwarg(model): cache}).last_hidden_state
    rows, cols = valid.nonzero(as_tuple=True)
    logits = head(hidden[rows, cols]).float()
    logp = logits.gather(1, tgt[rows, cols].unsqueeze(1)).squeeze(1) - logits.logsumexp(1)
    return torch.zeros(ids.shape[0], dtype=logp.dtype, device=ids.device).index_add_(0, rows,
                                                                                    logp)


@torch.inference_mode()
def score_completions(model, prompts: Sequence[Sequence[int]],
                      completions: Sequence[Sequence[Sequence[int]]], pad_id: int,
                      prefix_shared: bool = True) -> List[List[float]]:
    """Summed log-prob of each completion (EOS included in its ids) given its prompt.

    With ``prefix_shared`` (default) each distinct prefix of a prompt's completions is run
    once (:func:`_prefix_tree`); otherwise every completion is run on its own row."""
    out: List[List[float]] = [[] for _ in prompts]
    if prefix_shared:
        return _shared_prefix_scores(model, prompts, completions, pad_id)
    total, _, rows = completion_logprobs(model, prompts, completions, pad_id)
    for (i, _), value in zip(rows, total.tolist()):
        out[i].append(value)
    return out


def _prefix_tree(comps: Sequence[Sequence[int]]) -> Tuple[List[int], List[int], List[List[int]]]:
    """The distinct proper, non-empty prefixes of ``comps`` as tree nodes.

    Returns ``(token, parent, path)``: node n stands for a prefix ending with ``token[n]``
    whose own prefix is node ``parent[n]`` (-1: the prompt); parents come before children.
    ``path[j]`` lists, for each token of completion j, the node whose output predicts it
    (-1: the prompt's last position)."""
    index: Dict[Tuple[int, ...], int] = {}
    token: List[int] = []
    parent: List[int] = []
    paths: List[List[int]] = []
    for comp in comps:
        path = [-1]
        for d in range(1, len(comp)):
            key = tuple(comp[:d])
            node = index.get(key)
            if node is None:
                node = index[key] = len(token)
                token.append(int(comp[d - 1]))
                parent.append(path[-1])
            path.append(node)
        paths.append(path)
    return token, parent, paths


def _shared_prefix_scores(model, prompts: Sequence[Sequence[int]],
                          completions: Sequence[Sequence[Sequence[int]]], pad_id: int,
                          ) -> List[List[float]]:
    out: List[List[float]] = [[] for _ in prompts]
    keep = [i for i, comps in enumerate(completions) if comps]
    if not keep:
        return out
    device = next(model.parameters()).device
    first, cache, mask, last_pos = _prefill(model, [prompts[i] for i in keep], pad_id, device)
    trees = [_prefix_tree(completions[i]) for i in keep]
    width = max(len(t[0]) for t in trees)
    totals = [np.zeros(len(completions[i])) for i in keep]
    for s, (i, (_, _, paths)) in enumerate(zip(keep, trees)):
        firsts = torch.as_tensor([c[0] for c in completions[i]], device=device)
        totals[s] += first[s].index_select(0, firsts).double().cpu().numpy()
    if width:
        totals = _add_node_scores(model, trees, [completions[i] for i in keep], totals, cache,
                                  mask, last_pos, width, pad_id, device)
    for s, i in enumerate(keep):
        out[i] = totals[s].tolist()
    return out


def _add_node_scores(model, trees, comps, totals, cache, mask, last_pos, width: int,
                     pad_id: int, device) -> List[np.ndarray]:
    """One forward pass of every mention's prefix nodes under a tree attention mask; adds to
    each completion the log-probs of its tokens after the first."""
    n, prompt_width = len(trees), mask.shape[1]
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    depth = torch.ones((n, width), dtype=torch.long)
    sees = torch.zeros((n, width, width), dtype=torch.bool)  # node q sees node j
    for s, (token, parent, _) in enumerate(trees):
        m = len(token)
        ids[s, :m] = torch.as_tensor(token, dtype=torch.long)
        anc = np.zeros((width, width), dtype=bool)
        np.fill_diagonal(anc, True)  # padding positions see themselves only
        for q in range(m):
            if parent[q] >= 0:
                anc[q] |= anc[parent[q]]
                depth[s, q] = depth[s, parent[q]] + 1
        sees[s] = torch.from_numpy(anc)
    allowed = torch.cat([mask.bool().unsqueeze(1).expand(n, width, prompt_width),
                         sees.to(device)], dim=-1)
    dtype = next(model.parameters()).dtype
    attn = torch.zeros(allowed.shape, dtype=dtype, device=device)
    attn.masked_fill_(~allowed, torch.finfo(dtype).min)
    pos = last_pos.unsqueeze(1) + depth.to(device)
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    kwargs = {"input_ids": ids.to(device), "attention_mask": attn.unsqueeze(1),
              "position_ids": pos, "use_cache": True, _cache_kwarg(model): cache}
    # logits only at the real node positions (the head dominates a small model's cost)
    rows = torch.cat([torch.full((len(t[0]),), s, dtype=torch.long) for s, t in enumerate(trees)])
    cols = torch.cat([torch.arange(len(t[0])) for t in trees])
    if base is None or head is None or base is model:
        logits = model(**kwargs).logits[rows.to(device), cols.to(device)].float()
    else:
        hidden = base(**kwargs).last_hidden_state
        logits = head(hidden[rows.to(device), cols.to(device)]).float()
    lse = logits.logsumexp(-1)
    offsets = np.r_[0, np.cumsum([len(t[0]) for t in trees])]
    edge_node, edge_tok, edge_owner = [], [], []  # flat node index, next token, (s, j)
    for s, ((_, _, paths), cs) in enumerate(zip(trees, comps)):
        for j, (path, comp) in enumerate(zip(paths, cs)):
            for node, tok in zip(path[1:], comp[1:]):
                edge_node.append(offsets[s] + node)
                edge_tok.append(tok)
                edge_owner.append((s, j))
    if edge_node:
        en = torch.as_tensor(edge_node, device=device)
        et = torch.as_tensor(edge_tok, device=device)
        vals = (logits[en, et] - lse[en]).double().cpu().numpy()
        for (s, j), v in zip(edge_owner, vals):
            totals[s][j] += v
    return totals
