"""A batched beam search over many mentions at once, optionally constrained by token tries.

It ranks hypotheses exactly as ``model.generate(num_beams=k, length_penalty=lp,
early_stopping=False, prefix_allowed_tokens_fn=...)`` of transformers does (see
:func:`beam_search`), but costs less:

- the prompt of every mention is encoded once (``generate`` copies each prompt ``k`` times
  before the first forward pass);
- only live beams are run: a mention whose search is over leaves the batch, and a beam slot
  that has no allowed continuation (a constrained search often has fewer than ``k``) is not
  padded with a dead row;
- the KV cache is not copied at every step (:mod:`.beam_cache`): a beam that goes on stays in
  its row, a step writes its token in place, and only forked beams are copied;
- for the Llama family, a mention's beams share one copy of its prompt's keys and values
  (:mod:`.prompt_cache`): a step reads each prompt once per mention, not once per beam, and a
  forked beam copies only the tokens it generated;
- the next prompts join the search as mentions finish (continuous batching), so a step keeps
  about ``batch_size * k`` rows instead of trailing off with a few long searches; they are
  encoded in passes of at most ``PREFILL_TOKENS`` padded tokens;
- with a trie, the scores of the allowed tokens are gathered and normalised by the row's
  logsumexp, instead of a log-softmax over the whole vocabulary followed by a mask.

Where the time goes on SmolLM2-135M (CPU, docs/experiments.md): the matrix multiplies of the
prefill and the steps (about 60%), which ``generate`` runs as well; the prefill is a quarter
(short prompts) to two fifths (long ones) of ours.
"""
from __future__ import annotations

import inspect
from collections import deque
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import Errors
from .beam_cache import ReorderingCache, SlotCache, admits_prompts
from .prompt_cache import PromptCache
from .trie import ROOT, TokenTrie

NEG_INF = float("-inf")
# padded prompt tokens per prefill forward pass when prompts join a running search: on a CPU
# a larger pass runs its matrix multiplies no faster, and pads more (measured: the 32 longest
# of the benchmark's prompts prefill in 7.7 s in passes of 8, 11.8 s in one)
PREFILL_TOKENS = 2048


def beam_cache(cache, ids: Sequence[int], lengths: Sequence[int], mentions: int,
               num_beams: int, room: int, model=None):
    """The cache beam search reorders, for a prefilled ``cache`` of prompts ``ids`` (their
    ``lengths``, left-padded) of ``model``: prompts shared by a mention's beams
    (:class:`~.prompt_cache.PromptCache`) for the Llama family, slots for other plain
    attention layers, else the cache's own ``reorder_cache``. Room for ``mentions`` at once,
    ``num_beams`` each, ``room`` generated positions before the buffers grow."""
    if model is not None and PromptCache.suits(model, cache):
        return PromptCache(cache, ids, lengths, mentions, num_beams, room)
    if SlotCache.supports(cache):
        return SlotCache(cache, ids, lengths, mentions * num_beams, room)
    return ReorderingCache(cache, ids, lengths)



@dataclass(frozen=True)
class BeamSearchConfig:
    num_beams: int = 5
    n_best: int = 5
    max_new_tokens: int = 48
    # ranking score = summed log-prob / n_tokens ** length_penalty, n_tokens counting EOS
    # (transformers' default, 1.0, is the SynCABEL reference's)
    length_penalty: float = 1.0
    # the composite gate: the separator ``sep_id`` may follow a complete name only when
    # log P(<SEP>) - log P(EOS) >= sep_margin there (None: no gate, <SEP> competes as any token)
    sep_id: Optional[int] = None
    sep_margin: Optional[float] = None

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
                gate: Optional[Tuple[int, int, float]] = None,
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every allowed (row, token) continuation with its accumulated log-prob.

    A constrained row offers its trie's allowed tokens; a free row its ``n_keep`` best tokens
    (a superset of what can enter its mention's top ``n_keep``). Scores are the row's beam
    score plus ``logits - logsumexp(logits)``, i.e. ``generate``'s log-softmax. ``gate``:
    ``(sep_id, eos_id, margin)``, the separator is offered only where its logit beats EOS's
    by ``margin`` (the composite gate; the log-softmax's normaliser cancels)."""
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
    if gate is not None:
        sep_id, eos_id, margin = gate
        at_sep = np.nonzero(t_np == sep_id)[0]
        if len(at_sep):
            rs = torch.from_numpy(r_np[at_sep]).to(logits.device)
            gap = (logits[rs, sep_id] - logits[rs, eos_id]).cpu().numpy()
            scores[at_sep[gap < margin]] = NEG_INF
    return r_np, t_np, scores


@torch.inference_mode()
def beam_search(model, prompts: Sequence[Sequence[int]], tries: Sequence[Optional[TokenTrie]],
                eos_id: int, pad_id: int, config: BeamSearchConfig = BeamSearchConfig(),
                batch_size: Optional[int] = None) -> List[List[Hypothesis]]:
    """Beam search for every prompt; returns the n-best hypotheses of each, best first.

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

    At most ``batch_size`` mentions (None: all) are searched at once, longest prompt first.
    With a cache of plain attention layers (:class:`~.beam_cache.SlotCache`), the next prompts
    join the search as soon as enough mentions are over (continuous batching): a step then
    keeps about ``batch_size * k`` rows instead of trailing off with a few long searches.
    Otherwise the prompts go in waves of ``batch_size``. Results do not depend on either.
    """
    if not prompts:
        return []
    batch = len(prompts) if not batch_size else max(1, min(batch_size, len(prompts)))
    # longest first: a prompt joining later is never wider than the cache's prompt part
    pending = deque(sorted(range(len(prompts)), key=lambda i: -len(prompts[i])))
    search = _Search(model, prompts, tries, eos_id, pad_id, config, batch)
    while pending:
        search.run(pending)
    return [men.finished[:config.n_best] for men in search.mentions]


class _Search:
    """The state of one beam search: one row per live beam (see :func:`beam_search`)."""

    def __init__(self, model, prompts, tries, eos_id: int, pad_id: int,
                 config: BeamSearchConfig, batch: int) -> None:
        self.model, self.prompts, self.config = model, prompts, config
        self.eos_id, self.pad_id, self.batch = eos_id, pad_id, batch
        self.device = next(model.parameters()).device
        self.cache_kw = _cache_kwarg(model)
        self.mentions = [_Mention(t) for t in tries]
        self.prompt_pos = np.zeros(len(prompts), dtype=np.int64)  # last prompt position
        self.joining = admits_prompts(model)  # prompts can join a running search
        self.row_steps = self.mention_steps = 0  # rows and live mentions, summed over steps
        self.gate = None if config.sep_id is None or config.sep_margin is None else \
            (int(config.sep_id), int(eos_id), float(config.sep_margin))

    def _prefill(self, ids: List[int]):
        logits, cache, _, pos = _prefill_logits(self.model, [self.prompts[i] for i in ids],
                                                self.pad_id, self.device)
        self.prompt_pos[ids] = pos.cpu().numpy()
        return logits, cache

    def _clear_rows(self) -> None:
        self.row_mention = np.zeros(0, dtype=np.int64)
        self.row_beam = np.zeros(0, dtype=np.int64)  # rank of the beam in its mention
        self.row_score = np.zeros(0, dtype=np.float32)
        self.row_node = np.zeros(0, dtype=np.int64)
        self.row_hist: List[List[int]] = []  # tokens generated

    def _new_rows(self, ids: List[int]) -> None:
        n = len(ids)
        self.row_mention = np.r_[self.row_mention, np.asarray(ids, dtype=np.int64)]
        self.row_beam = np.r_[self.row_beam, np.zeros(n, dtype=np.int64)]
        self.row_score = np.r_[self.row_score, np.zeros(n, dtype=np.float32)]
        self.row_node = np.r_[self.row_node, np.full(n, ROOT, dtype=np.int64)]
        self.row_hist = self.row_hist + [[] for _ in ids]

    def _pass(self, pending: deque, limit: int) -> List[int]:
        """The next prompts of one prefill forward pass: at most ``limit`` of them and
        ``PREFILL_TOKENS`` padded tokens (at least one prompt)."""
        width = max(len(self.prompts[pending[0]]), 1)
        n = max(1, min(limit, len(pending), PREFILL_TOKENS // width))
        return [pending.popleft() for _ in range(n)]

    def _room(self) -> int:
        """How many more mentions fit the row target (``batch * num_beams`` rows, what
        ``generate`` runs for ``batch`` mentions): a live mention counts at the larger of its
        rows and the average rows of a live mention so far (``num_beams`` until measured)."""
        k = self.config.num_beams
        per = k if self.mention_steps < self.batch else min(
            k, max(1.0, self.row_steps / self.mention_steps))
        live = len(set(self.row_mention.tolist()))
        projected = max(len(self.row_mention), live * per)
        return int((self.batch * k - projected) // per)

    def _admit(self, pending: deque, kv, logits: Optional[torch.Tensor]):
        """Prefill the next prompts into free slots of the cache, as their first rows, when
        a quarter of the batch fits the row target (any number when no row is live)."""
        room = self._room()
        if not pending or room <= 0 or (len(self.row_mention) and room < max(1, self.batch // 4)):
            return logits
        while pending and room > 0:
            ids = self._pass(pending, room)
            room -= len(ids)
            new_logits, cache = self._prefill(ids)
            kv.admit(cache, ids, [len(self.prompts[i]) for i in ids],
                     next_width=len(self.prompts[pending[0]]) if pending else 0)
            self._new_rows(ids)
            logits = new_logits if logits is None else torch.cat([logits, new_logits])
        return logits

    def run(self, pending: deque) -> None:
        """Search the next ``batch`` prompts; with a cache that admits prompts, go on with the
        others as mentions finish, until every prompt is done."""
        k, lp, cfg = self.config.num_beams, self.config.length_penalty, self.config
        # a cache that admits prompts starts with one prefill pass and takes in the rest of
        # the batch pass by pass; one that can only be reordered searches a wave of ``batch``
        ids = self._pass(pending, self.batch) if self.joining else \
            [pending.popleft() for _ in range(min(self.batch, len(pending)))]
        logits, cache = self._prefill(ids)
        # positions for every step of the longest search (rows grow as prompts join)
        kv = beam_cache(cache, ids, [len(self.prompts[i]) for i in ids],
                        self.batch, k, room=cfg.max_new_tokens, model=self.model)
        admits = hasattr(kv, "admit")
        self._clear_rows()
        self._new_rows(ids)
        if admits:
            logits = self._admit(pending, kv, logits)
        vocab = logits.shape[-1]
        while True:
            self.row_steps += len(self.row_mention)
            self.mention_steps += len(set(self.row_mention.tolist()))
            row_trie = [self.mentions[m].trie for m in self.row_mention]
            cand_row, cand_tok, cand_score = _candidates(logits, self.row_beam, self.row_score,
                                                         self.row_node, row_trie, 2 * k,
                                                         self.gate)
            keep = np.isfinite(cand_score)
            cand_row, cand_tok, cand_score = cand_row[keep], cand_tok[keep], cand_score[keep]
            # rank per mention: best score first, ties by generate's flat index (beam, token)
            order = np.lexsort((self.row_beam[cand_row] * vocab + cand_tok, -cand_score,
                                self.row_mention[cand_row]))
            cand_mention = self.row_mention[cand_row[order]]
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
                men = self.mentions[m]
                done = len(self.row_hist[int(cand_row[order[lo]])])  # tokens generated so far
                last_step = done == cfg.max_new_tokens - 1
                running: List[Tuple[int, int, float]] = []
                for rank, c in enumerate(order[lo:min(hi, lo + 2 * k)]):
                    r, tok, sc = int(cand_row[c]), int(cand_tok[c]), float(cand_score[c])
                    if tok == self.eos_id or last_step:
                        if rank < k:
                            men.add(Hypothesis(self.row_hist[r] + [tok], sc,
                                               tok == self.eos_id), k, lp)
                    elif len(running) < k:
                        running.append((r, tok, sc))
                if not running or _is_done(men, running[0][2], k, lp, done + 1):
                    continue
                for b, (r, tok, sc) in enumerate(running):
                    node = ROOT if men.trie is None else men.trie.step(int(self.row_node[r]), tok)
                    src.append(r)
                    nxt_tok.append(tok)
                    nxt_mention.append(m)
                    nxt_beam.append(b)
                    nxt_score.append(sc)
                    nxt_node.append(node)
                    nxt_hist.append(self.row_hist[r] + [tok])
            if not src:
                if not (admits and pending):
                    return
                empty = np.zeros(0, dtype=np.int64)
                kv.select(empty, empty)
                self._clear_rows()
                logits = self._admit(pending, kv, None)
                continue
            perm = kv.select(np.asarray(src, dtype=np.int64),
                             np.asarray(nxt_mention, dtype=np.int64))
            self.row_mention = np.asarray(nxt_mention, dtype=np.int64)[perm]
            self.row_beam = np.asarray(nxt_beam, dtype=np.int64)[perm]
            self.row_score = np.asarray(nxt_score, dtype=np.float32)[perm]
            self.row_node = np.asarray(nxt_node, dtype=np.int64)[perm]
            self.row_hist = [nxt_hist[i] for i in perm.tolist()]
            done = np.asarray([len(h) for h in self.row_hist], dtype=np.int64)
            positions = torch.as_tensor(self.prompt_pos[self.row_mention] + done,
                                        device=self.device)
            ids_t = torch.as_tensor(np.asarray(nxt_tok, dtype=np.int64)[perm], device=self.device)
            inputs = kv.step_inputs(self.row_mention, done, self.device)
            with kv.attending(self.model):
                out = self.model(input_ids=ids_t.unsqueeze(-1),
                                 position_ids=positions.unsqueeze(-1), use_cache=True,
                                 **{self.cache_kw: kv.cache}, **inputs)
            kv.cache = _out_cache(out)
            logits = out.logits[:, -1, :].float()
            if admits:
                logits = self._admit(pending, kv, logits)


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
