"""The composite gate (``composite_margin``): a composite answer only when the model ranks
``<SEP>`` at least the margin above stopping after each of its names, in rerank and in beam
search; the gate round-trips through the config, a pipeline saved without it links as before,
and calibration chooses it on dev."""
import math
from pathlib import Path

import pytest
import spacy
import torch

from spacy_syncabel.evaluation.metrics import composite_answers, link_results
from spacy_syncabel.linking import LinkSettings
from spacy_syncabel.linking.engine import gate_completions, passes_gate, sep_margins
from spacy_syncabel.prompting import SEP_TOKEN
from spacy_syncabel.training.calibration import OFF, choose_composite_margin

from .test_composite import FITTED, MENTION, _link, _nlp, fitted  # noqa: F401 (fixture)

COMPOSITE = "fiebre" + SEP_TOKEN + "cefalea"


def _true_margin(model, tok, prompt):
    """log P(<SEP>) - log P(EOS) right after " fiebre", straight from the model's logits."""
    first = tok(" fiebre", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + first])).logits[0, -1]
    logp = torch.log_softmax(logits.float(), -1)
    return float(logp[tok.convert_tokens_to_ids(SEP_TOKEN)] - logp[tok.eos_token_id])


def _names(nlp):
    """The answer and the n-best's (name, code): scores may differ in the last digits once
    the weights are saved."""
    code, nbest = _link(nlp)
    return code, [(c["name"], c["code"]) for c in nbest]


def test_gate_completions_and_margins():
    assert gate_completions([5, 6, 9, 7, 2], sep_id=9, eos_id=2) == [[5, 6, 2], [5, 6, 9]]
    three = gate_completions([5, 9, 7, 9, 8, 2], sep_id=9, eos_id=2)
    assert three == [[5, 2], [5, 9], [5, 9, 7, 2], [5, 9, 7, 9]]
    assert gate_completions([5, 6, 2], sep_id=9, eos_id=2) == []
    # the smallest <SEP> - EOS over the separators
    assert sep_margins([-3.0, -1.0, -2.0, -2.5]) == pytest.approx(-0.5)
    assert sep_margins([]) is None
    assert passes_gate(None, 5.0) and passes_gate(-9.0, None)
    assert passes_gate(0.0, 0.0) and not passes_gate(-0.01, 0.0)


def test_stubbed_scores_single_below_the_gate_composite_above(fitted, small_kb):  # noqa: F811
    model, tok, _ = fitted
    engine = _nlp(model, tok, small_kb, composite=True, mode="rerank",
                  candidates=2).get_pipe("syncabel_linker").engine
    # the composite ranks first by score; its <SEP> margin decides whether it may answer
    rows = [("cefalea", 0.4, -2.0, 3, None), (COMPOSITE, 0.9, -1.0, 5, -0.7)]
    assert engine.rank_scored(rows, "SINTOMA", 1.0, None)[0].code == FITTED
    assert engine.rank_scored(rows, "SINTOMA", 1.0, 0.0)[0].code == "25064002"
    assert engine.rank_scored(rows, "SINTOMA", 1.0, -1.0)[0].code == FITTED
    gated = engine.with_settings(composite_margin=0.0)  # the default gate is the setting's
    assert gated.rank_scored(rows, "SINTOMA", 1.0)[0].code == "25064002"
    assert [c.code for c in gated.rank_scored(rows, "SINTOMA", 1.0)] == ["25064002"]


def test_rerank_margin_is_the_models_sep_over_eos(fitted, small_kb):  # noqa: F811
    model, tok, prompt = fitted
    engine = _nlp(model, tok, small_kb, composite=True, mode="rerank",
                  candidates=2).get_pipe("syncabel_linker").engine
    scored = engine.score_candidates([prompt], ["SINTOMA"], [MENTION])[0]
    margins = {row[0]: row[4] for row in scored}
    assert all(m is None for name, m in margins.items() if SEP_TOKEN not in name)
    assert margins[COMPOSITE] == pytest.approx(_true_margin(model, tok, prompt), abs=1e-3)


@pytest.mark.parametrize("mode", ["rerank", "beam", "beam_in_candidates"])
def test_gate_keeps_single_below_and_admits_composite_above(fitted, small_kb, mode):  # noqa: F811
    model, tok, prompt = fitted
    margin = _true_margin(model, tok, prompt)
    assert margin > 0  # fitted to write <SEP> after "fiebre"
    config = dict(composite=True, mode=mode, candidates=2)
    assert _link(_nlp(model, tok, small_kb, **config))[0] == FITTED  # no gate
    admitted = _nlp(model, tok, small_kb, composite_margin=margin - 0.05, **config)
    assert _link(admitted)[0] == FITTED
    kept = _nlp(model, tok, small_kb, composite_margin=margin + 0.05, **config)
    code, nbest = _link(kept)
    assert code and "+" not in code
    assert all("+" not in c["code"] for c in nbest)


def test_gate_round_trips_and_old_pipelines_link_as_before(fitted, small_kb,  # noqa: F811
                                                           tmp_path):
    model, tok, prompt = fitted
    high = _true_margin(model, tok, prompt) + 0.05
    nlp = _nlp(model, tok, small_kb, composite=True, mode="rerank", candidates=2,
               composite_margin=high)
    nlp.to_disk(tmp_path / "gated")
    loaded = spacy.load(tmp_path / "gated")
    assert loaded.get_pipe("syncabel_linker").settings.composite_margin == high
    assert loaded.get_pipe("syncabel_linker").cfg["composite_margin"] == high
    assert _names(loaded) == _names(nlp) and "+" not in _names(loaded)[0]
    # a pipeline saved before the setting existed: no line in its config, no gate
    old = _nlp(model, tok, small_kb, composite=True, mode="rerank", candidates=2)
    old.to_disk(tmp_path / "old")
    cfg = Path(tmp_path / "old" / "config.cfg")
    text = cfg.read_text(encoding="utf-8")
    assert "composite_margin = null" in text
    cfg.write_text("\n".join(line for line in text.splitlines()
                             if not line.startswith("composite_margin")), encoding="utf-8")
    reloaded = spacy.load(tmp_path / "old")
    assert reloaded.get_pipe("syncabel_linker").settings.composite_margin is None
    assert _names(reloaded) == _names(old) and _names(reloaded)[0] == FITTED


def test_setting_is_checked():
    assert LinkSettings().composite_margin is None
    assert LinkSettings(composite_margin=-1.5).composite_margin == -1.5
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="composite_margin"):
            LinkSettings(composite_margin=bad)


def test_calibration_chooses_a_precise_gate_that_loses_nothing():
    def row(gate, recall, answers, right):
        return {"gate": gate, "recall@1": recall, "composite_answers": answers,
                "composite_precision": right / answers if answers else 0.0}

    rows = [row(None, 0.70, 40, 4), row(-1.0, 0.73, 12, 3), row(0.0, 0.72, 4, 2),
            row(1.0, 0.72, 2, 1), row(2.0, 0.71, 0, 0), row(OFF, 0.71, 0, 0)]
    # -1.0 has the best Recall@1 but a quarter of its composites right
    assert choose_composite_margin(rows)["gate"] == 0.0
    assert choose_composite_margin(rows, min_precision=0.25)["gate"] == -1.0
    # a gate below composite off's Recall@1 is no choice; none left: no gate
    assert choose_composite_margin(rows[:1] + [row(3.0, 0.69, 0, 0), row(OFF, 0.70, 0, 0)]
                                   )["gate"] is None
    # of equals, the lowest margin (the most composites the dev split allows)
    assert choose_composite_margin([row(2.0, 0.71, 0, 0), row(4.0, 0.71, 0, 0),
                                    row(OFF, 0.71, 0, 0)])["gate"] == 2.0


def test_cascade_under_the_gate_lets_the_lm_answer_composites_only():
    from spacy_syncabel.linking.cascade import Settlement
    from spacy_syncabel.training.calibration import cascade_answer
    from spacy_syncabel.types import Candidate

    ranked = (Candidate("fiebre", "386661006", 0.9, 0.0, 0.9),)
    settled = Settlement(ranked, margin=0.3)
    open_ = Settlement(ranked, margin=0.3, composite_open=True)
    assert cascade_answer(settled, 0.0, [FITTED]) == ["386661006"]
    assert cascade_answer(open_, 0.0, [FITTED]) == [FITTED]
    assert cascade_answer(open_, 0.0, ["25064002"]) == ["386661006"]  # a single: retriever's
    assert cascade_answer(open_, 0.5, ["25064002"]) == ["25064002"]  # not settled: the LM's


def test_engine_settles_coordinated_mentions_under_the_gate(fitted, small_kb):  # noqa: F811
    model, tok, prompt = fitted
    margin = _true_margin(model, tok, prompt)
    base = dict(composite=True, mode="rerank", candidates=2, cascade=True, cascade_margin=0.0)
    old = _nlp(model, tok, small_kb, **base).get_pipe("syncabel_linker").engine
    assert not old.settle([MENTION], ["SINTOMA"])[0].settled(0.0)  # no gate: never settled
    for gate, composite in ((margin - 0.05, True), (margin + 0.05, False)):
        engine = _nlp(model, tok, small_kb, composite_margin=gate,
                      **base).get_pipe("syncabel_linker").engine
        plan = engine.settle([MENTION], ["SINTOMA"])[0]
        assert plan.composite_open and plan.settled(0.0)
        top = engine.link([prompt], ["SINTOMA"], [MENTION])[0][0].code
        assert (top == FITTED) == composite
        if not composite:  # the retriever's answer, as without composite candidates
            assert top == plan.ranked[0].code


def test_composite_answers_precision():
    items = [("1+2", ["2+1"], "A"), ("3", ["3+4"], "A"), ("5", ["5"], "A"), ("6+7", ["6"], "A")]
    results, _ = link_results(items)
    assert composite_answers(results) == {"n": 2, "right": 1, "precision@1": 0.5}
    assert composite_answers(results[2:])["precision@1"] == 0.0


def test_calibrate_saves_the_gate_dev_asks_for(fitted, small_kb, tmp_path):  # noqa: F811
    import warnings

    from spacy_syncabel.training.calibration import calibrate_pipeline
    from spacy_syncabel.types import CorpusDoc, GoldMention

    from .test_composite import TEXT

    model, tok, prompt = fitted
    nlp = _nlp(model, tok, small_kb, composite=True, mode="rerank", candidates=2)
    nlp.to_disk(tmp_path / "pipe")
    start = TEXT.index(MENTION)
    dev = [CorpusDoc("d0", TEXT, [GoldMention(start, start + len(MENTION), "SINTOMA",
                                              "386661006+25064002")])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = calibrate_pipeline(tmp_path / "pipe", dev, weights=(0.0,), cascade=False)
    gate = result["composite_gate"]
    rows = {r["gate"]: r for r in gate["table"]}
    assert rows[OFF]["recall@1"] == 0.0 and rows[None]["recall@1"] == 1.0
    margin = _true_margin(model, tok, prompt)
    # every margin the composite passes answers it; the lowest of them is kept
    assert all(r["recall@1"] == float(g < margin) for g, r in rows.items()
               if g not in (None, OFF) and abs(g - margin) > 1e-3)
    assert gate["margin"] == min(g for g in rows if g not in (None, OFF)) < margin
    loaded = spacy.load(tmp_path / "pipe")
    assert loaded.get_pipe("syncabel_linker").settings.composite_margin == gate["margin"]
    assert _link(loaded)[0] == FITTED
