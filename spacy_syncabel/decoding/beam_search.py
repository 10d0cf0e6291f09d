"""A batched beam search over many mentions at once, optionally constrained by token tries.

It ranks hypotheses exactly as ``model.generate(num_beams=k, length_penalty=lp,
early_stopping=False, prefix_allowed_tokens_fn=...)`` of transformers does (see
:func:`beam_search`), but costs less:

- the prompt of every mention is encoded once and its KV cache is then expanded to the beams
  (``generate`` copies each prompt ``k`` times before the first forward pass);
- only live beams are run: a mention whose search is over leaves the batch, and a beam slot
  that has no allowed continuation (a constrained search often has fewer than ``k``) is not
  padded with a dead row, so the batch shrinks as names finish;
- with a trie, the scores of the allowed tokens are gathered and normalised by the row's
  logsumexp, instead of a log-softmax over the whole vocabulary followed by a mask.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

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
    # ranking score = summed log-prob / n_tokens ** length_penalty, n_tokens counting EOS
    # (transformers' default, 1.0, is the SynCABEL reference's)
    length_penalty: float = 1.0

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
        """``generate``'s beam score: summed log-prob / generated tokens ** length_penalty."""
        return self.logprob / (self.n_tokens ** length_penalty)


@dataclass
class _Mention:
    trie: Optional[TokenTrie]
    finished: List[Hypothesis] = field(default_factory=list)  # best first, at most k

    def add(self, hyp: Hypothesis, k: int, length_penalty: float) -> None:
        """Keep the k best finished hypotheses (``generate`` keeps ``num_beams`` of them)."""
        self.finished.append(hyp)
        self.finished.sort(key=lambda h: -h.rank_score(length_penalty))
        del self.finished[k:]


def _cache_kwarg(model) -> str:
    """``cache`` in transformers >= 5 (``past_key_values`` is deprecated there), else the old name."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def _out_cache(out):
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _prefill(model, prompts: Sequence[Sequence[int]], pad_id: int, device):
    """Encode left-padded prompts once; returns (last-token log-probs, cache, mask, positions)."""
    logits, cache, mask, pos = _prefill_logits(model, prompts, pad_id, device)
    return torch.log_softmax(logits, dim=-1), cache, mask, pos


def _prefill_logits(model, prompts: Sequence[Sequence[int]], pad_id: int, device):
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
    return out.logits[:, -1, :].float(), _out_cache(out), mask, pos[:, -1]


def _candidates(logits: torch.Tensor, row_beam: np.ndarray, row_score: np.ndarray,
                row_node: np.ndarray, row_trie: List[Optional[TokenTrie]], n_keep: int,
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every allowed (row, token) continuation with its accumulated log-prob.

    A constrained row offers its trie's allowed tokens; a free row its ``n_keep`` best tokens
    (a superset of what can enter its mention's top ``n_keep``). Scores are the row's beam
    score plus ``logits - logsumexp(logits)``, i.e. ``generate``'s log-softmax."""
    rows, toks = [], []
    free = [r for r, t in enumerate(row_trie) if t is None]
    for r, (node, trie) in enumerate(zip(row_node, row_trie)):
        if trie is None:
            continue
        allowed = trie.allowed(int(node))
        rows.append(np.full(len(allowed), r, dtype=np.int64))
        toks.append(allowed.astype(np.int64))
    if free:
        f = torch.as_tensor(free, device=logits.device)
        top = logits.index_select(0, f).topk(min(n_keep, logits.shape[-1]), dim=-1).indices
        rows.append(np.repeat(np.asarray(free, dtype=np.int64), top.shape[1]))
        toks.append(top.cpu().numpy().reshape(-1).astype(np.int64))
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float32)
    r_np, t_np = np.concatenate(rows), np.concatenate(toks)
    r = torch.from_numpy(r_np).to(logits.device)
    t = torch.from_numpy(t_np).to(logits.device)
    lse = logits.logsumexp(dim=-1)
    # float32 throughout, as generate accumulates its beam scores
    scores = (logits[r, t] - lse[r]).cpu().numpy() + row_score[r_np]
    return r_np, t_np, scores


@torch.inference_mode()
def beam_search(model, prompts: Sequence[Sequence[int]], tries: Sequence[Optional[TokenTrie]],
                eos_id: int, pad_id: int, config: BeamSearchConfig = BeamSearchConfig(),
                ) -> List[List[Hypothesis]]:
    """Beam search for every prompt at once; returns the n-best hypotheses of each, best first.

    ``tries[i]`` constrains prompt i (None: free generation, stopped by EOS or the length
    limit). Hypotheses are ranked and the search of a mention stops as in ``generate(
    num_beams=k, length_penalty=lp, early_stopping=False, prefix_allowed_tokens_fn=...)``:

    - each step, the top ``2k`` continuations of the mention's beams are ranked; those among the
      first ``k`` that end with EOS become finished hypotheses, scored ``logprob /
      n_tokens ** lp`` with ``n_tokens`` the generated tokens, EOS included; the best ``k``
      others are the next beams; only the best ``k`` finished hypotheses are kept;
    - the search of a mention is over when it has ``k`` finished hypotheses and its best
      running beam, scored ``logprob / n_tokens ** lp`` at its current length, is no better
      than the worst of them;
    - at ``max_new_tokens`` the top ``k`` continuations are kept as unfinished hypotheses.
    """
    if not prompts:
        return []
    k, lp = config.num_beams, config.length_penalty
    device = next(model.parameters()).device
    cache_kw = _cache_kwarg(model)
    mentions = [_Mention(t) for t in tries]
    logits, cache, mask, last_pos = _prefill_logits(model, prompts, pad_id, device)

    # One row per live beam, rows of a mention contiguous and best first.
    row_mention = np.arange(len(prompts))
    row_beam = np.zeros(len(prompts), dtype=np.int64)  # rank of the beam in its mention
    row_score = np.zeros(len(prompts), dtype=np.float32)
    row_node = np.full(len(prompts), ROOT, dtype=np.int64)
    row_hist: List[List[int]] = [[] for _ in prompts]
    vocab = logits.shape[-1]
    for step in range(config.max_new_tokens):
        last_step = step == config.max_new_tokens - 1
        row_trie = [mentions[m].trie for m in row_mention]
        cand_row, cand_tok, cand_score = _candidates(logits, row_beam, row_score, row_node,
                                                     row_trie, 2 * k)
        keep = np.isfinite(cand_score)
        cand_row, cand_tok, cand_score = cand_row[keep], cand_tok[keep], cand_score[keep]
        # rank per mention: best score first, ties by generate's flat index (beam, token)
        order = np.lexsort((row_beam[cand_row] * vocab + cand_tok, -cand_score,
                            row_mention[cand_row]))
        cand_mention = row_mention[cand_row[order]]
        starts = np.r_[0, np.nonzero(np.diff(cand_mention))[0] + 1] if len(order) else []
        ends = np.r_[starts[1:], len(order)] if len(order) else []

        src: List[int] = []
        nxt_tok: List[int] = []
        nxt_mention: List[int] = []
        nxt_beam: List[int] = []
        nxt_score: List[float] = []
        nxt_node: List[int] = []
        nxt_hist: List[List[int]] = []
        for lo, hi in zip(starts, ends):
            m = int(cand_mention[lo])
            men = mentions[m]
            running: List[Tuple[int, int, float]] = []
            for rank, c in enumerate(order[lo:min(hi, lo + 2 * k)]):
                r, tok, sc = int(cand_row[c]), int(cand_tok[c]), float(cand_score[c])
                if tok == eos_id or last_step:
                    if rank < k:
                        men.add(Hypothesis(row_hist[r] + [tok], sc, tok == eos_id), k, lp)
                elif len(running) < k:
                    running.append((r, tok, sc))
            if not running or _is_done(men, running[0][2], k, lp, step + 1):
                continue
            for b, (r, tok, sc) in enumerate(running):
                node = ROOT if men.trie is None else men.trie.step(int(row_node[r]), tok)
                src.append(r)
                nxt_tok.append(tok)
                nxt_mention.append(m)
                nxt_beam.append(b)
                nxt_score.append(sc)
                nxt_node.append(node)
                nxt_hist.append(row_hist[r] + [tok])
        if not src:
            break
        src_t = torch.as_tensor(src, device=device)
        cache.reorder_cache(src_t)
        mask = torch.cat([mask.index_select(0, src_t),
                          torch.ones((len(src), 1), dtype=mask.dtype, device=device)], -1)
        last_pos = last_pos.index_select(0, src_t) + 1
        ids = torch.as_tensor(nxt_tok, device=device).unsqueeze(-1)
        out = model(input_ids=ids, attention_mask=mask, position_ids=last_pos.unsqueeze(-1),
                    use_cache=True, **{cache_kw: cache})
        cache = _out_cache(out)
        logits = out.logits[:, -1, :].float()
        row_mention = np.asarray(nxt_mention, dtype=np.int64)
        row_beam = np.asarray(nxt_beam, dtype=np.int64)
        row_score = np.asarray(nxt_score, dtype=np.float32)
        row_node = np.asarray(nxt_node, dtype=np.int64)
        row_hist = nxt_hist
    return [men.finished[:config.n_best] for men in mentions]


def _is_done(men: _Mention, best_running: float, k: int, length_penalty: float,
             cur_len: int) -> bool:
    """``generate``'s stopping rule with ``early_stopping=False``: the mention has k finished
    hypotheses and its best running beam, scored at its current length, cannot beat the worst.

    Exact for ``length_penalty <= 0`` (log-probs only fall as a beam grows); a heuristic,
    the same as ``generate``'s, for a positive length penalty."""
    if len(men.finished) < k:
        return False
    worst = men.finished[-1].rank_score(length_penalty)
    return best_running / (cur_len ** length_penalty) <= worst
