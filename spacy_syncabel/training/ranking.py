"""Candidate-ranking fine-tuning: the LM learns to choose the gold name among the mention's
top TF-IDF candidates, scored exactly as the linker ranks them at inference.

The linker's candidate mode (``candidates`` > 0, ``rerank``) scores each of a mention's top-N
TF-IDF names by its mean token log-prob plus ``prior_weight`` × its TF-IDF cosine. Plain SFT
trains only the gold name's likelihood, so the LM never sees the names it must beat, and the
prior is added afterwards as an untrained term. Here each training example is a mention, its
SFT target and its ``k`` top TF-IDF candidates; the loss is

    NLL(target) + rank_weight × listwise cross-entropy over the candidates' inference scores,

every name of the gold code counting as correct (as Recall@1 counts it). Hard negatives come
from the retriever, as in ANGEL they come from the model's beams; the prior is inside the
softmax, so the LM learns what TF-IDF gets wrong instead of re-learning what it gets right.
Each prompt is encoded once and its KV cache expanded to its candidates
(:func:`~spacy_syncabel.decoding.scoring.completion_logprobs`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

import torch

from ..decoding.scoring import completion_logprobs
from .examples import TrainExample
from .linker import Linker


@dataclass
class RankExample:
    """A mention's prompt, its SFT target (completion 0) and candidate names (EOS included)."""

    prompt_ids: List[int]
    completions: List[List[int]]
    sims: List[float]
    positive: List[bool]
    source: str = "real"

    def features(self) -> Dict[str, Any]:
        # input_ids: for the Trainer's length-grouped sampler only
        return {"input_ids": self.prompt_ids + self.completions[0], "rank_example": self}


def build_rank_examples(examples: Sequence[TrainExample], linker: Linker,
                        k: int) -> List[RankExample]:
    """One :class:`RankExample` per training example: its target plus the mention's ``k`` top
    TF-IDF names in its group (names of the gold code are positives; the target's own name
    is not repeated)."""
    engine = linker.engine
    kb, eos = engine.kb, engine.eos_id
    top = engine.retrieve([ex.mention for ex in examples], [ex.group for ex in examples], k)
    # the target's prior as inference computes it (a composite: the parts' mean)
    target_sims = [engine.prior(ex.mention, [ex.completion], None)[0] for ex in examples]
    out: List[RankExample] = []
    for ex, cands, tsim in zip(examples, top, target_sims):
        n_prompt = ex.n_prompt
        completions = [list(ex.input_ids[n_prompt:])]
        sims, positive = [tsim], [True]
        for name, sim in cands:
            if name == ex.completion or not engine.has_name(name):
                continue
            completions.append(engine.name_tokens(name) + [eos])
            sims.append(sim)
            positive.append(kb.lookup(name, ex.group) == ex.code)
        out.append(RankExample(list(ex.input_ids[:n_prompt]), completions, sims, positive,
                               ex.source))
    return out


class RankCollator:
    """Batches :class:`RankExample` objects as they are (the loss encodes them)."""

    def __call__(self, features: List[Dict[str, Any]]) -> Dict[str, Any]:
        return {"rank_batch": [f["rank_example"] for f in features]}


def rank_loss(model, batch: Sequence[RankExample], pad_id: int, *, prior_weight: float,
              rank_weight: float = 1.0) -> Dict[str, torch.Tensor]:
    """``{"loss", "nll", "rank"}`` of a batch: the targets' token-level NLL (SFT's loss) plus
    ``rank_weight`` × the mean listwise cross-entropy of the inference scores (mean token
    log-prob + ``prior_weight`` × cosine), all gold-code names counting as correct."""
    prompts = [ex.prompt_ids for ex in batch]
    completions = [ex.completions for ex in batch]
    total, lengths, rows = completion_logprobs(model, prompts, completions, pad_id)
    device = total.device
    sims = torch.as_tensor([batch[i].sims[j] for i, j in rows], dtype=total.dtype,
                           device=device)
    positive = torch.as_tensor([batch[i].positive[j] for i, j in rows], device=device)
    owner = torch.as_tensor([i for i, _ in rows], device=device)
    is_target = torch.as_tensor([j == 0 for _, j in rows], device=device)
    nll = -total[is_target].sum() / lengths[is_target].sum()
    scores = total / lengths + prior_weight * sims
    # listwise cross-entropy per example: logsumexp(all) - logsumexp(positives)
    width = max(len(ex.completions) for ex in batch)
    slot = torch.as_tensor([j for _, j in rows], device=device)
    grid = torch.full((len(batch), width), float("-inf"), dtype=scores.dtype, device=device)
    grid = grid.index_put((owner, slot), scores)
    pos_grid = torch.full_like(grid, float("-inf")).index_put(
        (owner, slot), torch.where(positive, scores, torch.full_like(scores, float("-inf"))))
    has_negative = torch.zeros(len(batch), dtype=torch.long, device=device).index_add_(
        0, owner, (~positive).long()) > 0
    listwise = torch.logsumexp(grid, 1) - torch.logsumexp(pos_grid, 1)
    rank = listwise[has_negative].mean() if bool(has_negative.any()) else nll.new_zeros(())
    return {"loss": nll + rank_weight * rank, "nll": nll.detach(), "rank": rank.detach()}


__all__ = ["RankExample", "RankCollator", "build_rank_examples", "rank_loss"]
