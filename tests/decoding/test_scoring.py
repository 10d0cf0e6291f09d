"""Teacher-forced scoring of candidate names equals the beam search's log-probs."""
import pytest

from spacy_syncabel.decoding import BeamSearchConfig, TrieSet, beam_search
from spacy_syncabel.decoding.scoring import score_completions

from .test_beam_search import _prompts


def test_scores_match_beam_log_probs(tiny_lm, small_kb):
    model, tok = tiny_lm
    tries = TrieSet.build(small_kb, tok)
    cases = _prompts(tok, small_kb)[:6]
    hyps = beam_search(model, [p for p, _ in cases], [tries[g] for _, g in cases],
                       tok.eos_token_id, tok.pad_token_id, BeamSearchConfig(num_beams=3, n_best=3))
    completions = [[h.tokens for h in hs] for hs in hyps]
    completions[1] = []  # a mention without candidates is skipped
    scores = score_completions(model, [p for p, _ in cases], completions, tok.pad_token_id)
    assert scores[1] == []
    for hs, comp, sc in zip(hyps, completions, scores):
        if comp:
            assert sc == pytest.approx([h.logprob for h in hs], abs=1e-3)


def _alone(model, prompt, comp):
    """Summed log-prob of one completion by a plain forward pass over prompt + completion."""
    import torch

    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([prompt + comp])).logits[0].float(), -1)
    return sum(logp[len(prompt) - 1 + i, t].item() for i, t in enumerate(comp))


def test_prefix_shared_scores_equal_each_name_alone(tiny_lm, small_kb):
    """Candidates sharing prefixes (a whole name inside a longer one, duplicates, one-token
    names) score the same, shared or alone, across left-padded prompts of different lengths."""
    model, tok = tiny_lm
    tries = TrieSet.build(small_kb, tok)
    eos = tok.eos_token_id
    cases = _prompts(tok, small_kb)[:5]
    prompts = [p for p, _ in cases]
    names = ["diabetes mellitus", "diabetes mellitus tipo 2", "dolor abdominal",
             "dolor de cabeza", "neumonía", "neumonía adquirida en la comunidad", "TAC"]
    seqs = [tries.sequences[n] + [eos] for n in names]
    # shared prefixes really occur (else the test would not test sharing)
    assert seqs[0][:-1] == seqs[1][:len(seqs[0]) - 1]
    completions = [seqs, seqs[::-1] + [seqs[0]], [], [seqs[2]], [[eos], seqs[3][:1] + [eos]]]
    shared = score_completions(model, prompts, completions, tok.pad_token_id)
    alone = score_completions(model, prompts, completions, tok.pad_token_id, prefix_shared=False)
    assert shared[2] == []
    for p, comps, sh, al in zip(prompts, completions, shared, alone):
        assert sh == pytest.approx(al, abs=1e-4)
        assert sh == pytest.approx([_alone(model, p, c) for c in comps], abs=1e-4)
