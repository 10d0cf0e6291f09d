"""Token tries: every path is a KB name + EOS, allowed sets are never empty, composites."""
import numpy as np
import pytest

from spacy_syncabel.decoding.trie import ROOT, TokenTrie, TrieSet, tokenize_names


def test_trie_spells_exactly_the_names(small_kb, tiny_lm):
    _, tok = tiny_lm
    tries = TrieSet.build(small_kb, tok)
    for group in [None] + small_kb.groups:
        trie = tries[group]
        names = small_kb.names(group)
        for name, ids in zip(names, tokenize_names(tok, names)):
            assert trie.name_of(ids + [tok.eos_token_id]) == name
            node = ROOT
            for t in ids:  # every prefix allows its next token, and only known tokens
                allowed = trie.allowed(node)
                assert len(allowed) > 0 and t in allowed
                node = trie.step(node, t)
        # a random walk following allowed tokens always ends on a name
        rng = np.random.default_rng(0)
        for _ in range(50):
            node, path = ROOT, []
            while True:
                allowed = trie.allowed(node)
                assert len(allowed) > 0, "a non-final node must allow something"
                t = int(rng.choice(allowed))
                path.append(t)
                if t == tok.eos_token_id:
                    break
                node = trie.step(node, t)
            assert trie.name_of(path) in names


def test_group_tries_hold_only_their_group(small_kb, tiny_lm):
    _, tok = tiny_lm
    tries = TrieSet.build(small_kb, tok)
    ids = tokenize_names(tok, ["fiebre"])[0] + [tok.eos_token_id]
    assert tries["SINTOMA"].name_of(ids) == "fiebre"
    assert tries["ENFERMEDAD"].name_of(ids) is None
    assert tries[None].name_of(ids) == "fiebre"


def test_names_tokenize_as_after_a_prompt(tiny_lm):
    """The completion ' name' encoded apart must be what follows the prompt's tokens."""
    _, tok = tiny_lm
    ids = tokenize_names(tok, ["fiebre"])[0]
    assert ids == tok(" fiebre", add_special_tokens=False)["input_ids"]
    assert ids != tok("fiebre", add_special_tokens=False)["input_ids"]


def test_composite_separator_restarts_at_root(small_kb, tiny_lm):
    _, tok = tiny_lm
    trie = TrieSet.build(small_kb, tok, "<SEP>", composite=True)["SINTOMA"]
    sep = tok.convert_tokens_to_ids("<SEP>")
    a, b = tokenize_names(tok, ["fiebre", "cefalea"])
    node = trie.walk(a)
    assert sep in trie.allowed(node) and tok.eos_token_id in trie.allowed(node)
    assert trie.step(node, sep) == ROOT
    assert trie.names_of(a + [sep] + b + [tok.eos_token_id]) == ["fiebre", "cefalea"]
    assert sep not in trie.allowed(ROOT)  # no empty name before a separator


def test_prefix_names_and_collisions():
    trie = TokenTrie.from_sequences([[5], [5, 6], [7, 8, 9], [5, 6]], ["a", "ab", "xyz", "dup"],
                                    eos_id=0)
    assert trie.collisions == 1
    assert set(trie.allowed(trie.walk([5])).tolist()) == {0, 6}
    assert trie.name_of([5, 0]) == "a" and trie.name_of([5, 6, 0]) == "ab"
    assert trie.step(ROOT, 42) == -1 and trie.name_of([7, 8, 0]) is None


def test_tokenizer_without_eos_is_an_error(small_kb, tiny_lm):
    _, tok = tiny_lm

    class NoEos:
        eos_token_id = None

    with pytest.raises(ValueError, match="E011"):
        TrieSet.build(small_kb, NoEos())
