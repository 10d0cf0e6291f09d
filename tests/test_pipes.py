"""Finding the linker and the sentence segmenters it sees in a loaded pipeline."""
import pytest
import spacy
from spacy.language import Language

from spacy_syncabel.pipes import find_linker, sentence_segmenters


class SynCABELLinker:
    """Another component that only shares the linker's class name."""

    def __call__(self, doc):
        return doc


@Language.factory("test_namesake_of_the_linker")
def _make_namesake(nlp, name):
    return SynCABELLinker()


def test_find_linker_goes_by_the_component_type_not_its_class_name():
    nlp = spacy.blank("es")
    nlp.add_pipe("test_namesake_of_the_linker")
    with pytest.raises(ValueError, match="E181"):
        find_linker(nlp, "namesake-only")
    nlp.add_pipe("syncabel_sentencizer", name="sents")
    linker = nlp.add_pipe("syncabel_linker", name="el")  # any name
    nlp.add_pipe("syncabel_sentencizer", name="after")
    assert find_linker(nlp) is linker is nlp.get_pipe("el")
    # the segmenters the linker sees: those before it, not those after (nor the namesake)
    assert sentence_segmenters(nlp) == [nlp.get_pipe("sents")]
