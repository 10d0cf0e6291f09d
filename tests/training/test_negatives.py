"""Hard-negative mining: correctness by code, the pair rules, the JSONL round trip."""
import json

import pytest

from spacy_syncabel.training.negatives import (CASE_BELOW, CASE_GOLD, CASE_TOP1, Beam,
                                               PreferencePair, TrainMention, gold_target_name,
                                               is_correct, label_beams, mine_negatives,
                                               pair_beams, read_pairs, write_pairs)
from spacy_syncabel.training.examples import NameSelector
from spacy_syncabel.types import NO_CODE, Candidate


def beams(pattern):
    """'CWC' → beams of rank 1..n, correct where 'C'."""
    return [Beam(i, f"n{i}", "G" if ch == "C" else f"X{i}", -float(i), ch == "C")
            for i, ch in enumerate(pattern, start=1)]


def ranks(pairs):
    return [(c.rank, r.rank, case) for c, r, case in pairs]


@pytest.mark.parametrize("pattern,expected", [
    ("CWW", [(1, 2, CASE_TOP1)]),
    ("CCW", [(1, 3, CASE_TOP1)]),  # rank 2 is correct but no wrong beam above it
    ("CWCWC", [(1, 2, CASE_TOP1), (3, 2, CASE_BELOW), (5, 2, CASE_BELOW), (5, 4, CASE_BELOW)]),
    ("WCWC", [(2, 1, CASE_BELOW), (4, 1, CASE_BELOW), (4, 3, CASE_BELOW)]),
    ("WWWWC", [(5, r, CASE_BELOW) for r in (1, 2, 3, 4)]),
    ("CCCCC", []),  # no wrong beam
    ("WWWWW", []),  # no correct beam, no fallback
    ("C", []),
])
def test_pair_rules(pattern, expected):
    assert ranks(pair_beams(beams(pattern))) == expected


def test_gold_fallback_only_without_a_correct_beam():
    pairs = pair_beams(beams("WWW"), gold_name="gold name", gold_code="G", gold_fallback=True)
    assert ranks(pairs) == [(0, 1, CASE_GOLD)]
    assert pairs[0][0].name == "gold name" and pairs[0][0].code == "G"
    # off by default, and impossible without a gold name
    assert pair_beams(beams("WWW"), gold_name="gold name", gold_code="G") == []
    assert pair_beams(beams("WWW"), gold_name=None, gold_fallback=True) == []
    # a correct beam exists: the fallback is not used
    assert ranks(pair_beams(beams("WC"), gold_name="g", gold_code="G", gold_fallback=True)) \
        == [(2, 1, CASE_BELOW)]
    # no beams at all: nothing to reject
    assert pair_beams([], gold_name="g", gold_code="G", gold_fallback=True) == []


def test_correct_by_exact_code_set():
    assert is_correct("a", "a", "exact") and not is_correct("a", "b", "exact")
    assert is_correct("a+b", "b+a", "exact") and not is_correct("a+b", "a+b+c", "exact")
    assert not is_correct("a+b", "a", "exact") and not is_correct("a+b", "b", "exact")
    assert not is_correct("a", NO_CODE, "exact") and not is_correct("a", "", "exact")
    labelled = label_beams("a+b", [("x<SEP>y", "a"), ("x<SEP>z", "a+b"), ("w", NO_CODE),
                                   ("z<SEP>x", "b+a")], "exact")
    assert [b.correct for b in labelled] == [False, True, False, True]
    assert ranks(pair_beams(labelled)) == [(2, 1, CASE_BELOW), (4, 1, CASE_BELOW),
                                           (4, 3, CASE_BELOW)]
    # Candidate objects keep their log-prob
    cand = label_beams("a", [Candidate("n", "a", 0.5, -1.5)])[0]
    assert cand.logprob == -1.5 and cand.correct and cand.rank == 1


def test_correct_by_intersecting_codes_is_the_default():
    """ANGEL's rule: a beam is correct when its codes share one with the gold's."""
    assert is_correct("a+b", "a") and is_correct("a", "a+c") and is_correct("a+b", "c+b")
    assert not is_correct("a+b", "c") and not is_correct("a", NO_CODE)
    assert not is_correct("a", "") and not is_correct("NO_CODE", NO_CODE)
    labelled = label_beams("a+b", [("x", "c"), ("y", "a"), ("w", NO_CODE), ("z", "b+d")])
    assert [b.correct for b in labelled] == [False, True, False, True]
    assert ranks(pair_beams(labelled)) == [(2, 1, CASE_BELOW), (4, 1, CASE_BELOW),
                                           (4, 3, CASE_BELOW)]
    with pytest.raises(ValueError, match="E363"):
        is_correct("a", "a", "superset")


def test_top_k_of_the_beams_are_labelled():
    """Hand-made 10 beams: only the first 5 are labelled (ANGEL: --num_beams 10 --dpo_topk 5),
    so a correct beam at rank 7 makes no pair."""
    ten = [(f"n{i}", "G" if i == 7 else f"X{i}") for i in range(1, 11)]
    labelled = label_beams("G", ten, top_k=5)
    assert [b.rank for b in labelled] == [1, 2, 3, 4, 5] and not any(b.correct for b in labelled)
    assert pair_beams(labelled) == []
    every = label_beams("G", ten)
    assert len(every) == 10 and ranks(pair_beams(every))[0] == (7, 1, CASE_BELOW)


class StubTokenizer:
    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": [text]}  # the prompt itself stands for its ids


class StubEngine:
    """Mines preset candidate lists (keyed by prompt); records the beam count asked for."""

    def __init__(self, kb, beams_by_mention):
        self.kb, self.tokenizer, self.beams = kb, StubTokenizer(), beams_by_mention
        self.seen_k = None

    def mine(self, prompts, groups, k):
        self.seen_k = k
        return [self.beams[p[0]] for p in prompts]


def test_mine_negatives_counts_and_gold_target(small_kb):
    def cand(name, code):
        return Candidate(name, code, 0.5, -1.0)

    hta, dm2 = "38341003", "44054006"
    mentions = [TrainMention(f"d#{i}", "d", f"prompt {i}", m, code, "ENFERMEDAD")
                for i, (m, code) in enumerate([("HTA", hta), ("hipertensión", hta),
                                               ("diabetes tipo 2", dm2), ("DM2", dm2)])]
    beams_by_mention = {
        "HTA": [cand("HTA", hta), cand("DM2", dm2), cand("neumonía", "233604007")],
        "hipertensión": [cand("DM2", dm2), cand("hipertensión arterial", hta)],
        "diabetes tipo 2": [cand("diabetes mellitus", "73211009"), cand("neumonía", "233604007")],
        "DM2": [cand("DM2", dm2), cand("diabetes mellitus tipo 2", dm2)],
    }
    by_prompt = {m.prompt: beams_by_mention[m.mention] for m in mentions}
    linker = StubEngine(small_kb, by_prompt)
    pairs, stats = mine_negatives(linker, mentions, k=5)
    assert linker.seen_k == 10  # ANGEL: the top 5 of 10 beams
    assert [(p.mention_id, p.chosen, p.rejected, p.case) for p in pairs] == [
        ("d#0", "HTA", "DM2", CASE_TOP1),
        ("d#1", "hipertensión arterial", "DM2", CASE_BELOW)]
    assert stats.by_case == {CASE_TOP1: 1, CASE_BELOW: 1, CASE_GOLD: 0}
    assert (stats.top1_correct, stats.correct_below, stats.no_correct, stats.all_correct) \
        == (2, 1, 1, 1)
    # gold fallback: the SFT target (closest synonym of the gold code) against the top beam
    pairs, stats = mine_negatives(linker, mentions, k=5, gold_fallback=True)
    gold = [p for p in pairs if p.case == CASE_GOLD]
    assert len(gold) == 1 and gold[0].chosen == "diabetes mellitus tipo 2"
    assert gold[0].rejected == "diabetes mellitus" and gold[0].chosen_rank == 0
    assert gold[0].chosen_code == dm2 and gold[0].rejected_code == "73211009"
    selector = NameSelector(small_kb)
    assert gold_target_name(selector, "HTA", hta, "ENFERMEDAD") == "HTA"
    assert gold_target_name(selector, "hipertension arterial", f"{hta}+{dm2}", "ENFERMEDAD") \
        == "hipertensión arterial<SEP>diabetes mellitus tipo 2"
    with pytest.raises(ValueError, match="E080"):
        mine_negatives(linker, mentions, k=1)
    with pytest.raises(ValueError, match="E080"):
        mine_negatives(linker, mentions, k=5, num_beams=4)


def test_mining_labels_top_k_of_n_beams_by_intersection(small_kb):
    """The published rule end to end on hand-made beams: 6 beams decoded, the top 3
    labelled; a composite gold is matched by a beam coding one of its parts."""
    hta, dm2, asma = "38341003", "44054006", "195967001"

    def cand(name, code):
        return Candidate(name, code, 0.5, -1.0)

    mentions = [TrainMention("d#0", "d", "p0", "HTA y DM2", f"{hta}+{dm2}", "ENFERMEDAD"),
                TrainMention("d#1", "d", "p1", "asma", asma, "ENFERMEDAD")]
    linker = StubEngine(small_kb, {
        "p0": [cand("neumonía", "233604007"), cand("DM2", dm2), cand("asma", asma),
               cand("HTA<SEP>DM2", f"{hta}+{dm2}"), cand("x", "1"), cand("y", "2")],
        "p1": [cand("DM2", dm2), cand("HTA", hta), cand("neumonía", "233604007"),
               cand("asma", asma), cand("x", "1"), cand("y", "2")]})
    pairs, stats = mine_negatives(linker, mentions, k=3, num_beams=6)
    assert linker.seen_k == 6
    assert [(p.mention_id, p.chosen, p.rejected, p.case) for p in pairs] == [
        ("d#0", "DM2", "neumonía", CASE_BELOW)]  # asma at rank 4 is beyond the top 3
    assert (stats.correct_below, stats.no_correct) == (1, 1)
    # the exact rule: DM2 alone is not the composite gold, and its exact beam is rank 4
    pairs, _ = mine_negatives(linker, mentions, k=3, num_beams=6, match="exact")
    assert pairs == []
    pairs, _ = mine_negatives(linker, mentions, k=4, num_beams=6, match="exact")
    assert [(p.mention_id, p.chosen_rank) for p in pairs][:1] == [("d#0", 4)]


def test_pairs_jsonl_round_trip(tmp_path):
    pairs = [PreferencePair("d#0", "ctx<SEP>[HTA] es", "HTA", "DM2", "1", "2", 1, 2, CASE_TOP1,
                            "1", mention="HTA", group="ENFERMEDAD", doc_id="d",
                            chosen_logprob=-1.0, rejected_logprob=-2.0),
             PreferencePair("d#1", "p", "a<SEP>b", "c", "1+2", "3", 0, 1, CASE_GOLD, "1+2")]
    path = write_pairs(pairs, tmp_path / "round-1" / "pairs.jsonl")
    lines = [json.loads(line) for line in path.read_text("utf8").splitlines()]
    assert lines[0]["prompt"] == "ctx<SEP>[HTA] es" and lines[0]["chosen_rank"] == 1
    assert {"mention_id", "chosen", "rejected", "chosen_code", "rejected_code", "case",
            "rejected_rank"} <= set(lines[0])
    back = read_pairs(path)
    assert back == pairs and back[1].chosen_names == ["a", "b"]
    (tmp_path / "bad.jsonl").write_text('{"mention_id": 1}\n')
    with pytest.raises(ValueError, match="E084"):
        read_pairs(tmp_path / "bad.jsonl")
