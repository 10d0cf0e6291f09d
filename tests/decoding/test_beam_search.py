"""Our batched beam search against transformers' generate(prefix_allowed_tokens_fn=...)."""
import importlib

import numpy as np
import pytest
import torch

from spacy_syncabel.decoding import BeamSearchConfig, TrieSet, beam_search
from spacy_syncabel.prompting import encode_prompt, render_prompt

from ..conftest import TEXTS


def _prompts(tok, kb):
    """Realistic prompts: every KB name occurring in the texts, marked in its sentence."""
    out = []
    for text in TEXTS:
        for code, name, group in kb.entries():
            i = text.find(name)
            if i >= 0:
                p = render_prompt(text, i, i + len(name), group)
                out.append((encode_prompt(tok, p), group))
    return out


def _generate(model, tok, prompt, trie, k, length_penalty):
    """generate()'s n-best as (tokens, beam score), junk slots (score <= -1e8) left out.

    With k=1 generate runs greedy search, which reports no beam score (None)."""
    plen = len(prompt)

    def allowed(_, ids):
        node = trie.walk(ids[plen:].tolist())
        allowed = trie.allowed(node).tolist() if node >= 0 else []
        return allowed or [tok.eos_token_id]  # finished beams still get asked

    extra = {"length_penalty": length_penalty} if k > 1 else {}
    out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, plen, dtype=torch.long),
                         num_beams=k, num_return_sequences=k, prefix_allowed_tokens_fn=allowed,
                         max_new_tokens=48, do_sample=False,
                         early_stopping=False, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id, return_dict_in_generate=True,
                         output_scores=True, **extra)
    scores = out.sequences_scores.tolist() if k > 1 else [None]
    seqs = []
    for s, score in zip(out.sequences, scores):
        if score is not None and score <= -1e8:
            continue
        s = s[plen:].tolist()
        seqs.append((s[: s.index(tok.eos_token_id) + 1] if tok.eos_token_id in s else s, score))
    return seqs


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_same_beams_as_generate(tiny_lm, small_kb, k, length_penalty):
    """Same top-1, same n-best in the same order, same beam scores as generate()."""
    model, tok = tiny_lm
    tries = TrieSet.build(small_kb, tok)
    cases = _prompts(tok, small_kb)
    assert len(cases) >= 10
    cfg = BeamSearchConfig(num_beams=k, n_best=k, length_penalty=length_penalty)
    ours = beam_search(model, [p for p, _ in cases], [tries[g] for _, g in cases],
                       tok.eos_token_id, tok.pad_token_id, cfg)
    for (prompt, group), hyps in zip(cases, ours):
        ref = _generate(model, tok, prompt, tries[group], k, length_penalty)
        assert [h.tokens for h in hyps] == [s for s, _ in ref]
        if k > 1:
            assert [h.rank_score(length_penalty) for h in hyps] == pytest.approx(
                [score for _, score in ref], abs=1e-4)
        # every hypothesis is a name of the mention's group
        for h in hyps:
            assert tries[group].name_of(h.tokens) in small_kb.names(group)


def test_length_penalty_changes_the_ranking(tiny_lm, small_kb):
    """The n-best is ordered by logprob / n_tokens ** length_penalty (EOS counted)."""
    model, tok = tiny_lm
    tries = TrieSet.build(small_kb, tok)
    cases = _prompts(tok, small_kb)
    prompts, mention_tries = [p for p, _ in cases], [tries[g] for _, g in cases]
    orders = {}
    for lp in (0.0, 1.0):
        cfg = BeamSearchConfig(num_beams=5, n_best=5, length_penalty=lp)
        hyps = beam_search(model, prompts, mention_tries, tok.eos_token_id, tok.pad_token_id, cfg)
        for hs in hyps:
            keys = [h.logprob / len(h.tokens) ** lp for h in hs]
            assert keys == sorted(keys, reverse=True)
        orders[lp] = [[h.tokens for h in hs] for hs in hyps]
    assert orders[0.0] != orders[1.0]


def test_default_length_penalty_is_generates():
    assert BeamSearchConfig().length_penalty == 1.0


def test_scores_are_model_log_probs(tiny_lm, small_kb):
    """The beam log-prob is the model's log-prob of the name given the prompt."""
    model, tok = tiny_lm
    tries = TrieSet.build(small_kb, tok)
    prompt, group = _prompts(tok, small_kb)[0]
    hyp = beam_search(model, [prompt], [tries[group]], tok.eos_token_id, tok.pad_token_id,
                      BeamSearchConfig(num_beams=3, n_best=3))[0][0]
    ids = torch.tensor([prompt + hyp.tokens])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0].float(), -1)
    expected = sum(logp[len(prompt) - 1 + i, t].item() for i, t in enumerate(hyp.tokens))
    assert hyp.logprob == pytest.approx(expected, abs=1e-3)
    assert hyp.score == pytest.approx(torch.tensor(expected / len(hyp.tokens)).exp().item(), rel=1e-4)
    assert 0.0 < hyp.score <= 1.0


def test_batch_composition_does_not_change_results(tiny_lm, small_kb):
    """Left padding, shared KV cache and mentions leaving the batch leave results unchanged."""
    model, tok = tiny_lm
    tries = TrieSet.build(small_kb, tok)
    cases = _prompts(tok, small_kb)
    cfg = BeamSearchConfig(num_beams=4, n_best=4)
    together = beam_search(model, [p for p, _ in cases], [tries[g] for _, g in cases],
                           tok.eos_token_id, tok.pad_token_id, cfg)
    for (p, g), hyps in zip(cases, together):
        alone = beam_search(model, [p], [tries[g]], tok.eos_token_id, tok.pad_token_id, cfg)[0]
        assert [h.tokens for h in alone] == [h.tokens for h in hyps]
        assert [h.logprob for h in alone] == pytest.approx([h.logprob for h in hyps], abs=1e-4)


@pytest.fixture(scope="module")
def gqa_lm(tiny_lm):
    """``tiny_lm``'s tokenizer with a random Llama of grouped-query attention (4 query heads
    on 2 key/value heads), as SmolLM2 and Llama 3 have."""
    from transformers import LlamaForCausalLM

    model, tok = tiny_lm
    config = model.config.__class__(**{**model.config.to_dict(), "num_key_value_heads": 2})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        gqa = LlamaForCausalLM(config).eval()
    return gqa, tok


@pytest.mark.parametrize("cache", ["prompt", "slot", "slot-default", "reorder"])
@pytest.mark.parametrize("batch_size", [1, 3, 5])
def test_continuous_batching_does_not_change_results(gqa_lm, small_kb, batch_size, cache,
                                                     monkeypatch):
    """Prompts joining the search as others finish give each mention's n-best as alone,
    through each cache: prompts shared by a mention's beams (prompts of other widths in freed
    mention slots), slots (prompts placed beside running beams, the cache compacted at every
    chance, or at its default threshold) and transformers' own ``reorder_cache`` (waves of
    ``batch_size``)."""
    from spacy_syncabel.decoding import beam_cache, prompt_cache
    beam_search_module = importlib.import_module("spacy_syncabel.decoding.beam_search")

    model, tok = gqa_lm
    tries = TrieSet.build(small_kb, tok)
    cases = _prompts(tok, small_kb)
    # prompts of many widths, in no order; with and without constraint
    prompts = [p[: len(p) - i % 7] for i, (p, _) in enumerate(cases)] * 2
    mention_tries = [tries[g] for _, g in cases] + [None] * len(cases)
    cfg = BeamSearchConfig(num_beams=3, n_best=3, max_new_tokens=12)
    alone = [beam_search(model, [p], [t], tok.eos_token_id, tok.pad_token_id, cfg)[0]
             for p, t in zip(prompts, mention_tries)]
    used = []
    for kind in (prompt_cache.PromptCache, beam_cache.SlotCache, beam_cache.ReorderingCache):
        monkeypatch.setattr(kind, "select", _spy(kind.select, used, kind.__name__))
    if cache != "prompt":
        monkeypatch.setattr(prompt_cache, "SHARED_PROMPT_MODEL_TYPES", ())
    if cache in ("slot", "reorder"):
        monkeypatch.setattr(beam_cache, "COMPACT", 1)
    if cache == "reorder":
        monkeypatch.setattr(beam_cache.SlotCache, "supports", staticmethod(lambda c: False))
    # buffers as small as can be: admissions, forks and steps all grow them
    small = beam_search_module.beam_cache
    monkeypatch.setattr(beam_search_module, "beam_cache",
                        lambda *a, **kw: small(*a[:3], 1, 1, room=1, model=kw.get("model")))
    used.clear()
    batched = beam_search(model, prompts, mention_tries, tok.eos_token_id, tok.pad_token_id,
                          cfg, batch_size=batch_size)
    expected = {"prompt": "PromptCache", "slot": "SlotCache", "slot-default": "SlotCache",
                "reorder": "ReorderingCache"}
    assert set(used) == {expected[cache]}
    assert model.config._attn_implementation == "sdpa"  # the step's attention is put back
    for a, b in zip(alone, batched):
        assert [h.tokens for h in a] == [h.tokens for h in b]
        assert [h.logprob for h in a] == pytest.approx([h.logprob for h in b], abs=1e-4)


@pytest.mark.parametrize("cache", ["prompt", "slot"])
def test_beam_search_under_bf16_autocast(gqa_lm, small_kb, cache, monkeypatch):
    """Under CPU bfloat16 autocast (the trainer's evaluation) keys come out of RoPE in float32
    and values in bfloat16; each cache keeps both, and every hypothesis is a KB name."""
    from spacy_syncabel.decoding import prompt_cache

    if cache == "slot":
        monkeypatch.setattr(prompt_cache, "SHARED_PROMPT_MODEL_TYPES", ())
    model, tok = gqa_lm
    tries = TrieSet.build(small_kb, tok)
    cases = _prompts(tok, small_kb)[:6]
    cfg = BeamSearchConfig(num_beams=3, n_best=3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = beam_search(model, [p for p, _ in cases], [tries[g] for _, g in cases],
                          tok.eos_token_id, tok.pad_token_id, cfg, batch_size=2)
    for (_, g), hyps in zip(cases, out):
        assert hyps and all(h.finished for h in hyps)
        for h in hyps:
            assert tries[g].walk(h.tokens[:-1]) >= 0 and tok.eos_token_id in tries[g].allowed(
                tries[g].walk(h.tokens[:-1])).tolist()


def test_two_threads_search_with_one_model(gqa_lm, small_kb):
    """Two threads searching at once with one model (shared prompts: each step switches the
    model's attention) give the results of one search, and the model's attention is put back."""
    import threading

    model, tok = gqa_lm
    tries = TrieSet.build(small_kb, tok)
    cases = _prompts(tok, small_kb) * 2
    prompts = [p[: len(p) - i % 5] for i, (p, _) in enumerate(cases)]
    mention_tries = [tries[g] for _, g in cases]
    cfg = BeamSearchConfig(num_beams=3, n_best=3)
    serial = beam_search(model, prompts, mention_tries, tok.eos_token_id, tok.pad_token_id,
                         cfg, batch_size=2)
    halves = [list(range(j, len(prompts), 2)) for j in range(2)]
    for _ in range(3):
        start, out, errors = threading.Barrier(2), [None, None], []

        def work(j):
            try:
                start.wait()
                out[j] = beam_search(model, [prompts[i] for i in halves[j]],
                                     [mention_tries[i] for i in halves[j]], tok.eos_token_id,
                                     tok.pad_token_id, cfg, batch_size=2)
            except Exception as e:  # pragma: no cover (reported below)
                errors.append(e)

        threads = [threading.Thread(target=work, args=(j,)) for j in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        for j in range(2):
            for i, hyps in zip(halves[j], out[j]):
                assert [h.tokens for h in hyps] == [h.tokens for h in serial[i]]
        assert model.config._attn_implementation == "sdpa"


def _spy(select, used, name):
    def spied(self, *args, **kwargs):
        used.append(name)
        return select(self, *args, **kwargs)
    return spied


def test_shared_prompts_give_generates_beams(gqa_lm, small_kb):
    """With grouped-query attention, beams over prompts shared by a mention's rows score as
    ``generate`` does (its attention runs over every row's own copy of the prompt)."""
    model, tok = gqa_lm
    tries = TrieSet.build(small_kb, tok)
    cases = _prompts(tok, small_kb)[:8]
    cfg = BeamSearchConfig(num_beams=3, n_best=3)
    ours = beam_search(model, [p for p, _ in cases], [tries[g] for _, g in cases],
                       tok.eos_token_id, tok.pad_token_id, cfg, batch_size=4)
    for (p, g), hyps in zip(cases, ours):
        ref = _generate(model, tok, p, tries[g], 3, cfg.length_penalty)
        assert [h.tokens for h in hyps] == [s for s, _ in ref]
        assert [h.rank_score(cfg.length_penalty) for h in hyps] == pytest.approx(
            [sc for _, sc in ref], abs=1e-4)


def test_slots_keep_continuing_beams_in_place():
    """A beam's first continuation stays in its slot; only forks and moves are copied, from
    slots that are kept, into slots that are not sources."""
    from spacy_syncabel.decoding.beam_cache import assign_slots

    src = np.array([0, 0, 2, 5, 2])  # slot 1 ended, 5 is past the new rows
    perm, dst, dst_src = assign_slots(src)
    assert sorted(perm.tolist()) == [0, 1, 2, 3, 4]
    assert perm[0] == 0 and perm[2] == 2  # continuations in place
    assert set(dst.tolist()) == {1, 3, 4} and not set(dst.tolist()) & set(dst_src.tolist())
    for slot, source in zip(dst.tolist(), dst_src.tolist()):
        assert src[perm[slot]] == source


def test_unconstrained_stops_at_eos_or_length(tiny_lm, small_kb):
    model, tok = tiny_lm
    prompt, _ = _prompts(tok, small_kb)[0]
    cfg = BeamSearchConfig(num_beams=2, n_best=2, max_new_tokens=6)
    hyps = beam_search(model, [prompt], [None], tok.eos_token_id, tok.pad_token_id, cfg)[0]
    assert hyps and all(len(h.tokens) <= 6 for h in hyps)
    assert all(h.finished == (h.tokens[-1] == tok.eos_token_id) for h in hyps)


def test_bad_beam_config():
    with pytest.raises(ValueError, match="E013"):
        BeamSearchConfig(num_beams=2, n_best=3)
