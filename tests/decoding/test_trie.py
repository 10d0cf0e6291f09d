"""Token tries: every path is a KB name + EOS, allowed sets are never empty, composites."""
import numpy as np
import pytest

from spacy_syncabel.decoding.trie import ROOT, TokenTrie, TrieSet, tokenize_names
from spacy_syncabel.prompting import after_sep_ids


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


def test_composite_separator_continues_in_names_spelled_after_it(small_kb, tiny_lm):
    """After <SEP> the trie holds the names as the tokenizer spells them right after the
    separator (" a<SEP>b": no blank), in the same group, and any number of parts."""
    _, tok = tiny_lm
    trie = TrieSet.build(small_kb, tok, "<SEP>", composite=True)["SINTOMA"]
    sep, eos = tok.convert_tokens_to_ids("<SEP>"), tok.eos_token_id
    a = tokenize_names(tok, ["fiebre"])[0]
    b, c = after_sep_ids(tok, ["cefalea", "dolor abdominal"])
    assert b != tokenize_names(tok, ["cefalea"])[0]  # the blank makes other tokens here
    node = trie.walk(a)
    assert sep in trie.allowed(node) and eos in trie.allowed(node)
    second_root = trie.step(node, sep)
    assert second_root == trie.offset  # the after-separator trie's root
    firsts = {ids[0] for ids in after_sep_ids(tok, small_kb.names("SINTOMA"))}
    assert set(trie.allowed(second_root).tolist()) == firsts
    assert sep not in trie.allowed(second_root) and sep not in trie.allowed(ROOT)
    assert trie.names_of(a + [sep] + b + [eos]) == ["fiebre", "cefalea"]
    assert trie.names_of(a + [sep] + b + [sep] + c + [eos]) == ["fiebre", "cefalea",
                                                                 "dolor abdominal"]
    assert trie.walk(a + [sep] + b + [sep] + c + [eos]) >= 0
    # the leading-space spelling is not a name after the separator, nor another group's name
    assert trie.walk(a + [sep] + tokenize_names(tok, ["cefalea"])[0]) == -1
    assert trie.walk(a + [sep] + after_sep_ids(tok, ["neumonía"])[0]) == -1
    assert trie.names_of(a + [sep] + tokenize_names(tok, ["cefalea"])[0] + [eos]) is None


def test_composite_random_walks_spell_names(small_kb, tiny_lm):
    _, tok = tiny_lm
    tries = TrieSet.build(small_kb, tok, "<SEP>", composite=True)
    sep, eos = tries.sep_id, tok.eos_token_id
    rng = np.random.default_rng(0)
    for group in [None] + small_kb.groups:
        trie, names, parts_seen = tries[group], set(small_kb.names(group)), 0
        for _ in range(60):
            node, path = ROOT, []
            while True:
                allowed = trie.allowed(node)
                assert len(allowed) > 0
                t = int(rng.choice(allowed))
                path.append(t)
                if t == eos:
                    break
                node = trie.step(node, t)
                assert node >= 0
            got = trie.names_of(path)
            assert got is not None and set(got) <= names
            parts_seen = max(parts_seen, path.count(sep) + 1)
        assert parts_seen > 1  # the walks did go through separators


def test_single_part_and_composite_share_the_first_trie(small_kb, tiny_lm):
    _, tok = tiny_lm
    single = TrieSet.build(small_kb, tok)
    composite = single.with_composite(small_kb, tok, "<SEP>")
    assert not single.composite and single.after_sep is None
    assert composite.composite and composite.trie is single.trie
    assert composite.single_part().trie is single.trie and not composite.single_part().composite
    assert composite.nbytes == single.nbytes + composite.after_sep.nbytes
    assert composite.after_sep.names is single.names  # the name strings are kept once
    restricted = composite.restricted(["fiebre", "cefalea"], "SINTOMA")
    a = composite.tokens_of("fiebre")
    b = composite.after_sep.tokens_of("cefalea")
    assert restricted.names_of(a + [composite.sep_id] + b) == ["fiebre", "cefalea"]
    assert restricted.walk(a + [composite.sep_id] + composite.after_sep.tokens_of("disnea")) \
        == -1


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


# -- layout, scale helpers, saving and loading --------------------------------------------------
def _spelled(trie, node=ROOT, prefix=()):
    """Every token path from ``node`` that ends with EOS (depth-first, for small tries)."""
    out = []
    for t in trie.allowed(node).tolist():
        if t == trie.eos_id:
            out.append(prefix + (t,))
        elif t != getattr(trie, "sep_id", None):
            out.extend(_spelled(trie, trie.step(node, t), prefix + (t,)))
    return out


def test_vectorized_build_spells_exactly_the_input_in_breadth_first_order():
    rng = np.random.default_rng(3)
    seqs = [rng.integers(1, 9, size=int(rng.integers(1, 6))).tolist() for _ in range(300)]
    names = [f"n{i}" for i in range(len(seqs))]
    trie = TokenTrie.from_sequences(seqs, names, eos_id=0)
    distinct = {tuple(s) for s in seqs}
    assert sorted(_spelled(trie)) == sorted(s + (0,) for s in distinct)
    assert trie.collisions == len(seqs) - len(distinct)
    ptr = trie.child_ptr
    assert all(ptr[i] >= i for i in range(trie.n_nodes))  # children have larger ids
    for s in distinct:  # the first of equal sequences keeps the name
        assert trie.name_of(list(s) + [0]) == names[seqs.index(list(s))]
        leaf = trie.walk(list(s) + [0])
        assert trie.path(leaf) == list(s) + [0]


def test_sequences_are_read_back_from_the_trie(small_kb, tiny_lm):
    _, tok = tiny_lm
    tries = TrieSet.build(small_kb, tok)
    names = small_kb.names()
    for name, ids in zip(names, tokenize_names(tok, names)):
        assert tries.tokens_of(name) == ids and tries.sequences[name] == ids
        assert name in tries.sequences
    assert sorted(tries.sequences) == names and len(tries.sequences) == len(names)
    assert tries.tokens_of("no such name") is None and "no such name" not in tries.sequences
    with pytest.raises(KeyError):
        tries.sequences["no such name"]


class _ListTokenizer:
    """A tokenizer given as a table: lets two names share one token sequence."""

    eos_token_id = 0

    def __init__(self, table):
        self.table = table

    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [list(self.table[t.strip()]) for t in texts]}

    def convert_tokens_to_ids(self, token):
        return 99

    def __len__(self):
        return 2000


def test_names_sharing_a_token_sequence_keep_their_own_group():
    from spacy_syncabel.kb import ConceptKB

    kb = ConceptKB([("A", "Fiebre", "G1"), ("B", "fiebre", "G2"), ("C", "tos", "G2")])
    tok = _ListTokenizer({"Fiebre": [5, 6], "fiebre": [5, 6], "tos": [7]})
    tries = TrieSet.build(kb, tok)
    assert tries[None].collisions == 1
    assert tries["G1"].name_of([5, 6, 0]) == "Fiebre"
    assert tries["G2"].name_of([5, 6, 0]) == "fiebre"
    assert tries["G1"].allowed(ROOT).tolist() == [5]  # "tos" is not in G1
    assert tries["G1"].step(ROOT, 7) == -1 and tries["G2"].step(ROOT, 7) > 0
    assert tries.tokens_of("fiebre") == [5, 6]


def _decode_all(tries, model, tok, groups):
    from spacy_syncabel.decoding import BeamSearchConfig, beam_search

    prompts = [tok(f"texto {i}: [dolor]{{X}} es", add_special_tokens=False)["input_ids"]
               for i in range(len(groups))]
    hyps = beam_search(model, prompts, [tries[g] for g in groups], tok.eos_token_id,
                       tok.eos_token_id, BeamSearchConfig(num_beams=3, n_best=3))
    return [[(h.tokens, round(h.logprob, 5), tries[g].names_of(h.tokens)) for h in hs]
            for g, hs in zip(groups, hyps)]


@pytest.mark.parametrize("mmap", [True, False])
def test_saved_tries_load_and_decode_identically(small_kb, tiny_lm, tmp_path, mmap):
    model, tok = tiny_lm
    tries = TrieSet.build(small_kb, tok, "<SEP>", composite=True)
    tries.to_disk(tmp_path / "tries")
    loaded = TrieSet.from_disk(tmp_path / "tries", tok, small_kb.fingerprint(), mmap=mmap)
    assert loaded.groups == tries.groups and loaded.nbytes == tries.nbytes
    for group in [None] + small_kb.groups:
        assert loaded[group].n_nodes == tries[group].n_nodes
        for name in small_kb.names(group):
            ids = tokenize_names(tok, [name])[0] + [tok.eos_token_id]
            assert loaded[group].name_of(ids) == name
    groups = [None, "SINTOMA", "ENFERMEDAD", "PROCEDIMIENTO"]
    assert _decode_all(loaded, model, tok, groups) == _decode_all(tries, model, tok, groups)
    assert loaded.restricted(["fiebre", "cefalea"], "SINTOMA").names_of(
        tries.sequences["fiebre"] + [tok.eos_token_id]) == ["fiebre"]


def test_composite_tries_parts_are_checked_on_load(small_kb, tiny_lm, tmp_path):
    import json

    from spacy_syncabel.decoding.trie_io import sha256

    _, tok = tiny_lm
    folder = tmp_path / "tries"
    tries = TrieSet.build(small_kb, tok, "<SEP>", composite=True)
    tries.to_disk(folder)
    loaded = TrieSet.from_disk(folder, tok, small_kb.fingerprint())
    assert loaded.composite and loaded.sep_id == tries.sep_id
    assert loaded.after_sep.names is loaded.names
    assert loaded.after_sep.tokens_of("cefalea") == after_sep_ids(tok, ["cefalea"])[0]
    # a changed after-separator file, or its tries.json, no longer matches its checksum
    raw = bytearray((folder / "after_sep" / "child_tok.npy").read_bytes())
    raw[-1] ^= 1
    (folder / "after_sep" / "child_tok.npy").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="E143"):
        TrieSet.from_disk(folder)
    tries.to_disk(folder)
    sub_path = folder / "after_sep" / "tries.json"
    sub = json.loads(sub_path.read_text(encoding="utf-8"))
    sub["groups"] = sub["groups"][::-1]
    sub_path.write_text(json.dumps(sub), encoding="utf-8")
    with pytest.raises(ValueError, match="E143"):
        TrieSet.from_disk(folder)
    # ... and with its checksum rewritten, the parts disagree
    meta = json.loads((folder / "tries.json").read_text(encoding="utf-8"))
    meta["sha256"]["after_sep/tries.json"] = sha256(sub_path)
    (folder / "tries.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ValueError, match="E211"):
        TrieSet.from_disk(folder)
    # a single-part save over a composite one leaves no stale second part
    TrieSet.build(small_kb, tok).to_disk(folder)
    assert not (folder / "after_sep").exists()
    assert not TrieSet.from_disk(folder, tok).composite


def _resave(folder, key, arr):
    """Overwrite one array and its checksum, as a careless (or hostile) writer would."""
    import json

    from spacy_syncabel.decoding.trie_io import sha256

    np.save(folder / f"{key}.npy", arr, allow_pickle=False)
    meta = json.loads((folder / "tries.json").read_text(encoding="utf-8"))
    meta["sha256"][f"{key}.npy"] = sha256(folder / f"{key}.npy")
    (folder / "tries.json").write_text(json.dumps(meta), encoding="utf-8")


def test_damaged_or_foreign_tries_are_refused(small_kb, tiny_lm, tmp_path):
    _, tok = tiny_lm
    folder = tmp_path / "tries"
    TrieSet.build(small_kb, tok).to_disk(folder)
    with pytest.raises(ValueError, match="E140"):
        TrieSet.from_disk(tmp_path / "missing")
    with pytest.raises(ValueError, match="E142"):  # built for another KB
        TrieSet.from_disk(folder, tok, "0" * 64)

    class OtherEos:
        eos_token_id = 1

        def __len__(self):
            return len(tok)

    with pytest.raises(ValueError, match="E142"):
        TrieSet.from_disk(folder, OtherEos())
    raw = bytearray((folder / "child_tok.npy").read_bytes())
    raw[-1] ^= 1
    (folder / "child_tok.npy").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="E143"):
        TrieSet.from_disk(folder)
    TrieSet.build(small_kb, tok).to_disk(folder)
    delta = np.load(folder / "ptr_delta.npy")
    cyclic = np.zeros_like(delta)  # every node's children start at edge 0: a walk could loop
    for key, bad in (("ptr_delta", cyclic), ("ptr_delta", delta.astype(np.float64)),
                     ("child_tok", np.load(folder / "child_tok.npy")[::-1].copy()),
                     ("leaf_nodes", np.load(folder / "leaf_nodes.npy") + 1)):
        TrieSet.build(small_kb, tok).to_disk(folder)
        _resave(folder, key, bad)
        with pytest.raises(ValueError, match="E141"):
            TrieSet.from_disk(folder)
    TrieSet.build(small_kb, tok).to_disk(folder)
    (folder / "tries.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="E141"):
        TrieSet.from_disk(folder)


def test_packed_pointers_match_the_full_array_with_offsets_that_do_not_fit():
    from spacy_syncabel.decoding.trie import PackedPtr

    rng = np.random.default_rng(0)
    counts = rng.integers(0, 4, size=500)
    counts[0] = 70_000  # a root with more children than a uint16 offset holds
    ptr = np.concatenate([[0], np.cumsum(counts)])
    packed = PackedPtr.pack(ptr)
    assert len(packed.big) > 0
    assert np.array_equal(packed.unpack(), ptr)
    assert [packed[i] for i in range(len(ptr))] == ptr.tolist()
    for edge in rng.integers(0, int(ptr[-1]), size=200).tolist():
        owner = packed.owner(edge)
        assert ptr[owner] <= edge < ptr[owner + 1]


def test_group_set_ids_past_255_are_listed_apart():
    from spacy_syncabel.decoding.trie import SetIds

    rng = np.random.default_rng(1)
    ids = rng.integers(0, 600, size=2000)
    packed = SetIds.pack(ids)
    assert packed.ids.dtype == np.uint8 and np.array_equal(packed.full(), ids)
    assert [packed[i] for i in range(0, 2000, 7)] == ids[::7].tolist()
    for lo, hi in ((0, 10), (100, 357), (1990, 2000)):
        assert packed[lo:hi].tolist() == ids[lo:hi].tolist()


def test_loaded_tries_share_the_kb_name_table(small_kb, tiny_lm, tmp_path):
    from spacy_syncabel.kb import ConceptKB

    _, tok = tiny_lm
    TrieSet.build(small_kb, tok).to_disk(tmp_path / "tries")
    shared = TrieSet.from_disk(tmp_path / "tries", tok, names=small_kb.name_table)
    assert shared.names is small_kb.name_table
    other = ConceptKB([("X", "otra cosa", "SINTOMA")])
    own = TrieSet.from_disk(tmp_path / "tries", tok, names=other.name_table)
    assert own.names is not other.name_table and len(own.names) == len(small_kb.name_table)


def test_wide_nodes_keep_their_allowed_tokens_per_view():
    from spacy_syncabel.kb import ConceptKB

    n = 700  # more root children than trie._WIDE
    rows = [(f"C{i}", f"n{i}", "G1" if i % 3 else "G2") for i in range(n)]
    tok = _ListTokenizer({f"n{i}": [i + 1, 1000 + i % 5] for i in range(n)})
    tries = TrieSet.build(ConceptKB(rows), tok)
    for group, keep in ((None, lambda i: True), ("G1", lambda i: i % 3),
                        ("G2", lambda i: not i % 3)):
        first = tries[group].allowed(ROOT)
        assert first.tolist() == [i + 1 for i in range(n) if keep(i)]
        assert tries[group].allowed(ROOT) is first and not first.flags.writeable
    assert tries["G2"].step(ROOT, 2) == -1 and tries["G1"].step(ROOT, 2) > 0


def test_bulk_token_reads_match_name_by_name(small_kb, tiny_lm):
    _, tok = tiny_lm
    tries = TrieSet.build(small_kb, tok, "<SEP>", composite=True)
    names = small_kb.names()
    expected = dict(zip(names, tokenize_names(tok, names)))
    assert dict(tries.sequences.items()) == expected
    lengths = tries.token_lengths()
    assert {tries.names.restore_key(i): int(n) for i, n in enumerate(lengths) if n >= 0} == {
        n: len(ids) for n, ids in expected.items()}
    longest = max(len(ids) for ids in expected.values())
    assert tries.names_longer_than(longest) == []
    assert sorted(tries.names_longer_than(longest - 1)) == sorted(
        n for n, ids in expected.items() if len(ids) == longest)
