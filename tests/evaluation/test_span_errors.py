"""Where the end-to-end loss is: exact, overlapping, spurious and missed spans."""
import spacy
from spacy.tokens import Span

from spacy_syncabel.evaluation.span_errors import span_errors
from spacy_syncabel.types import CorpusDoc, GoldMention

from ..conftest import TEXTS


def _char(text, s):
    return text.index(s), text.index(s) + len(s)


def test_counts_exact_overlap_spurious_and_missed(small_kb):
    nlp = spacy.blank("es")
    text = TEXTS[0]  # "... con hipertensión arterial y diabetes mellitus tipo 2 que acude por fiebre."
    gold = [GoldMention(*_char(text, "hipertensión arterial"), "ENFERMEDAD", "38341003"),
            GoldMention(*_char(text, "diabetes mellitus tipo 2"), "ENFERMEDAD", "44054006"),
            GoldMention(*_char(text, "fiebre"), "SINTOMA", "386661006")]
    doc = nlp.make_doc(text)

    def span(s, label, kb_id):
        return doc.char_span(*_char(text, s), label=label, kb_id=kb_id)

    doc.ents = [span("hipertensión arterial", "ENFERMEDAD", "38341003"),  # exact, right
                span("diabetes mellitus", "ENFERMEDAD", "73211009"),  # overlap, other code
                span("Varón", "SINTOMA", "386661006")]  # spurious
    out = span_errors([doc], [CorpusDoc("d", text, gold)], small_kb, {})
    assert (out["exact"], out["exact_linked"], out["overlap"], out["overlap_linked"],
            out["spurious"]) == (1, 1, 1, 0, 1)
    assert (out["gold_found"], out["gold_overlapped"], out["gold_missed"]) == (1, 1, 1)
    assert out["exact_link_accuracy"] == 1.0 and out["overlap_link_accuracy"] == 0.0
    # an entity of a type the document was not annotated for is left out
    unannotated = CorpusDoc("d", text, gold[:2], annotated_labels=["ENFERMEDAD"])
    assert span_errors([doc], [unannotated], small_kb, {})["spurious"] == 0
