"""A batched beam search over many mentions at once, optionally constrained by token tries.

Unlike ``model.generate(num_beams=k)``, which copies each prompt ``k`` times before the first
forward pass, the prompt of every mention is encoded once and its KV cache is then expanded to
the beams. Mentions whose search is over leave the batch (their cache rows are dropped), so the
batch shrinks as the short names finish. Scores are log-softmax over the whole vocabulary (as
in ``generate``), masked to the trie's allowed tokens.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np
import torch

from ..errors import Errors
from .trie import ROOT, TokenTrie

NEG_INF = float("-inf")


@dataclass(frozen=True)
class BeamSearchConfig:
    num_beams: int = 5
    n_best: int = 5
    max_new_tokens: int = 48
    length_penalty: float = 0.0  # ranking score = logprob / n_tokens ** length_penalty

    def __post_init__(self) -> None:
        if self.num_beams < 1 or not 1 <= self.n_best <= self.num_beams:
            raise ValueError(Errors.E013.format(num_beams=self.num_beams, n_best=self.n_best))


@dataclass
class Hypothesis:
    """A finished (or, at the length limit, unfinished) beam."""

    tokens: List[int]  # generated ids, EOS included when finished
    logprob: float
    finished: bool = True

    @property
    def n_tokens(self) -> int:
        return max(len(self.tokens), 1)

    @property
    def score(self) -> float:
        """exp(mean token log-prob): a probability-like confidence in [0, 1]."""
        return float(np.exp(self.logprob / self.n_tokens))

    def rank_score(self, length_penalty: float) -> float:
        return self.logprob / (self.n_tokens ** length_penalty)


@dataclass
class _Mention:
    idx: int
    trie: Optional[TokenTrie]
    finished: List[Hypothesis] = field(default_factory=list)
    done: bool = False


def _prefill(model, prompts: Sequence[Sequence[int]], pad_id: int, device):
    """Encode left-padded prompts once; returns (last-token log-probs, cache, mask, positions)."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.as_tensor(p, dtype=torch.long)
        mask[i, width - len(p):] = 1
    ids, mask = ids.to(device), mask.to(device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                logits_to_keep=1)
    logprobs = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)
    return logprobs, out.past_key_values, mask, pos[:, -1]


def _mask_scores(scores: torch.Tensor, nodes: np.ndarray, tries: List[Optional[TokenTrie]],
                 ) -> torch.Tensor:
    """Keep the scores of tokens each row's trie allows (rows without a trie are left free)."""
    rows, cols = [], []
    free = []
    for r, (node, trie) in enumerate(zip(nodes, tries)):
        if node < 0:
            continue  # dead slot: stays -inf
        if trie is None:
            free.append(r)
            continue
        allowed = trie.allowed(int(node))
        rows.append(np.full(len(allowed), r, dtype=np.int64))
        cols.append(allowed.astype(np.int64))
    out = torch.full_like(scores, NEG_INF)
    if rows:
        r = torch.from_numpy(np.concatenate(rows)).to(scores.device)
        c = torch.from_numpy(np.concatenate(cols)).to(scores.device)
        out[r, c] = scores[r, c]
    if free:
        f = torch.as_tensor(free, device=scores.device)
        out[f] = scores[f]
    return out


@torch.inference_mode()
def beam_search(model, prompts: Sequence[Sequence[int]], tries: Sequence[Optional[TokenTrie]],
                eos_id: int, pad_id: int, config: BeamSearchConfig = BeamSearchConfig(),
                ) -> List[List[Hypothesis]]:
    """Beam search for every prompt at once; returns the n-best hypotheses of each.

    ``tries[i]`` constrains prompt i (None: free generation, stopped by EOS or the length
    limit). With ``length_penalty=0`` the search keeps the same hypotheses as
    ``generate(num_beams=k, length_penalty=0, prefix_allowed_tokens_fn=...)``.
    """
    if not prompts:
        return []
    k = config.num_beams
    device = next(model.parameters()).device
    mentions = [_Mention(i, t) for i, t in enumerate(tries)]
    logprobs, cache, mask, last_pos = _prefill(model, prompts, pad_id, device)

    # State of the running beams, one row per (active mention, beam slot).
    n = len(prompts)
    beam_scores = torch.full((n, 1), 0.0, device=device)
    nodes = np.zeros((n, 1), dtype=np.int64)  # trie node per beam (-1: dead slot)
    hist: List[List[List[int]]] = [[[]] for _ in range(n)]
    active = list(range(n))  # mention index per row-block
    width = 1  # beams per mention in the current state
    for step in range(config.max_new_tokens):
        m_count = len(active)
        row_tries = [mentions[m].trie for m in active for _ in range(width)]
        scores = logprobs + beam_scores.reshape(-1, 1)
        scores = _mask_scores(scores, nodes.reshape(-1), row_tries)
        vocab = scores.shape[-1]
        flat = scores.view(m_count, width * vocab)
        n_cand = min(2 * k, flat.shape[-1])
        top_scores, top_idx = flat.topk(n_cand, dim=-1)
        top_scores, top_idx = top_scores.cpu().numpy(), top_idx.cpu().numpy()

        next_src: List[int] = []  # source row of each next beam
        next_tok: List[int] = []
        next_score: List[float] = []
        next_node: List[int] = []
        next_hist: List[List[List[int]]] = []
        still: List[int] = []
        for j, m in enumerate(active):
            men = mentions[m]
            beams_src, beams_tok, beams_sc, beams_node, beams_hist = [], [], [], [], []
            for rank in range(n_cand):
                sc = float(top_scores[j, rank])
                if sc == NEG_INF:
                    break
                b, tok = divmod(int(top_idx[j, rank]), vocab)
                prev = hist[j][b]
                if tok == eos_id:
                    if rank < k:
                        men.finished.append(Hypothesis(prev + [tok], sc, True))
                    continue
                node = ROOT
                if men.trie is not None:
                    node = men.trie.step(int(nodes[j, b]), tok)
                beams_src.append(j * width + b)
                beams_tok.append(tok)
                beams_sc.append(sc)
                beams_node.append(node)
                beams_hist.append(prev + [tok])
                if len(beams_src) == k:
                    break
            men.done = _is_done(men, beams_sc, k, config.length_penalty, step + 1)
            if men.done:
                continue
            while len(beams_src) < k:  # pad with dead slots
                beams_src.append(j * width)
                beams_tok.append(pad_id)
                beams_sc.append(NEG_INF)
                beams_node.append(-1)
                beams_hist.append([])
            still.append(m)
            next_src += beams_src
            next_tok += beams_tok
            next_score += beams_sc
            next_node += beams_node
            next_hist.append(beams_hist)
        if not still:
            break
        src = torch.as_tensor(next_src, device=device)
        cache.reorder_cache(src)
        mask = torch.cat([mask.index_select(0, src), torch.ones((len(next_src), 1),
                                                               dtype=mask.dtype, device=device)], -1)
        last_pos = last_pos.index_select(0, src) + 1
        ids = torch.as_tensor(next_tok, device=device).unsqueeze(-1)
        out = model(input_ids=ids, attention_mask=mask, position_ids=last_pos.unsqueeze(-1),
                    past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        logprobs = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)
        beam_scores = torch.as_tensor(next_score, device=device)
        nodes = np.asarray(next_node, dtype=np.int64).reshape(len(still), k)
        hist = next_hist
        active = still
        width = k
    else:
        # length limit: unfinished beams compete with the finished ones
        for j, m in enumerate(active):
            for b in range(width):
                sc = float(beam_scores.reshape(len(active), width)[j, b])
                if sc > NEG_INF and hist[j][b]:
                    mentions[m].finished.append(Hypothesis(hist[j][b], sc, False))
    results = []
    for men in mentions:
        hyps = sorted(men.finished, key=lambda h: h.rank_score(config.length_penalty),
                      reverse=True)
        results.append(hyps[:config.n_best])
    return results


def _is_done(men: _Mention, running: List[float], k: int, length_penalty: float,
             cur_len: int) -> bool:
    """Stop when k hypotheses are finished and no running beam can beat the worst of them.

    Log-probs only fall as a beam grows, so with ``length_penalty <= 0`` the best running
    score bounds what it can still reach (``generate``'s rule with ``early_stopping=False``).
    """
    if not running:
        return True
    if len(men.finished) < k:
        return False
    ranked = sorted(h.rank_score(length_penalty) for h in men.finished)
    worst = ranked[-k]
    best_running = max(running) / (cur_len ** length_penalty)
    return worst >= best_running
