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
