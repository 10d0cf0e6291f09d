"""End-to-end scores with a label map, CANTEMIST alternative ``/H`` codes, composite golds and
NO_CODE: an entity ruler finds the spans and a small component gives each span a fixed code,
so every expected count follows from the cases below."""
import warnings
from types import SimpleNamespace

import pytest
import spacy
from spacy.language import Language

from spacy_syncabel.decoding.candidates import CandidateIndex
from spacy_syncabel.evaluation.end_to_end import end_to_end_metrics
from spacy_syncabel.kb import ConceptKB
from spacy_syncabel.types import CorpusDoc, GoldMention

MORF = "MORFOLOGIA_NEOPLASIA"
KB_ROWS = [("8000/6", "neoplasia metastásica", MORF), ("8000/3", "neoplasia maligna", MORF),
           ("8140/3", "adenocarcinoma", MORF), ("8010/3", "carcinoma", MORF),
           ("D003920", "diabetes", "Disease"), ("D006973", "hipertensión", "Disease")]
# (mention, gold label, gold code, predicted label, predicted code, right type?, right code?)
CASES = [
    # CANTEMIST alternative code: 8000/6/H is 8000/6
    ("metástasis hepática", MORF, "8000/6/H", MORF, "8000/6", True, True),
    # composite gold, parts predicted in the other order
    ("adenocarcinoma y neoplasia maligna", MORF, "8140/3+8000/3", MORF, "8000/3+8140/3",
     True, True),
    # composite gold with an alternative part
    ("carcinoma con metástasis", MORF, "8010/3+8000/6/H", MORF, "8000/6+8010/3", True, True),
    # one part of a composite is not the composite
    ("adenocarcinoma metastásico", MORF, "8140/3+8000/6", MORF, "8140/3", True, False),
    # label map: NCBI-style classes scored as their group
    ("diabetes", "SpecificDisease", "D003920", "DiseaseClass", "D003920", True, True),
    ("hipertensión", "Modifier", "D006973", "Disease", "D006973", True, True),
    # a gold without a code in the KB: a "no code" answer must not find it
    ("tumor de origen incierto", MORF, "NO_CODE", MORF, "NO_CODE", True, False),
]
LABEL_MAP = {"SpecificDisease": "Disease", "Modifier": "Disease", "DiseaseClass": "Disease"}
PREDICTED = {}  # mention -> predicted code, read by the component below


@Language.component("test_fixed_codes")
def fixed_codes(doc):
    for ent in doc.ents:
        for token in ent:
            token.ent_kb_id_ = PREDICTED.get(ent.text, "NIL")
    return doc


@pytest.fixture(scope="module")
def setup():
    kb = ConceptKB(KB_ROWS, aliases={f"{c}/H": c for c, _, g in KB_ROWS if g == MORF})
    nlp = spacy.blank("es")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": c[3], "pattern": c[0]} for c in CASES])
    nlp.add_pipe("test_fixed_codes")
    PREDICTED.update({c[0]: c[4] for c in CASES})
    linker = SimpleNamespace(kb=kb, label_map=LABEL_MAP, name="test_fixed_codes",
                             group_for=lambda label: LABEL_MAP.get(label, label),
                             mentions=lambda doc: list(doc.ents), spans_key=None,
                             candidate_index=CandidateIndex(kb))
    corpus = []
    for i, (mention, label, code, *_) in enumerate(CASES):
        text = f"Paciente con {mention}. Sin otros hallazgos."
        start = text.index(mention)
        corpus.append(CorpusDoc(f"d{i}", text, [GoldMention(start, start + len(mention),
                                                             label, code)]))
    return nlp, linker, corpus


def _metrics(setup):
    nlp, linker, corpus = setup
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return end_to_end_metrics(nlp, corpus, linker=linker, baseline=False)


def test_label_map_alternative_and_composite_codes(setup):
    m = _metrics(setup)
    n = len(CASES)
    right_type = sum(c[5] for c in CASES)
    right_code = sum(c[6] for c in CASES)
    assert (m["ner_tp"], m["ner_p"], m["ner_r"]) == (right_type, right_type / n, right_type / n)
    assert m["linking_tp"] == right_code
    assert m["linking_r"] == pytest.approx(right_code / n)  # every gold with a code counts
    per = m["per_label_end_to_end"]
    assert set(per) == {"Disease", MORF}  # the gold and predicted labels under the label map
    disease = [c for c in CASES if LABEL_MAP.get(c[1]) == "Disease"]
    assert per["Disease"]["n_gold"] == per["Disease"]["n_predicted"] == len(disease)
    assert per["Disease"]["linking_tp"] == sum(c[6] for c in disease)


def test_no_code_answer_is_no_prediction(setup):
    m = _metrics(setup)
    coded = [c for c in CASES if c[4] not in ("NIL", "NO_CODE")]
    assert m["end_to_end"]["n_gold_unreachable"] == 1  # the NO_CODE gold
    assert m["end_to_end"]["n_predicted_linked"] == len(coded)
    assert m["linking_p"] == pytest.approx(sum(c[6] for c in coded) / len(coded))


def test_tfidf_baseline_codes_are_canonical_too(setup):
    nlp, linker, corpus = setup
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = end_to_end_metrics(nlp, corpus, linker=linker, baseline=True)
    # "diabetes" and "hipertensión" are exact KB names of their group (through the label map)
    assert m["per_label_end_to_end"]["Disease"]["baseline_tfidf_linking_tp"] == 2
