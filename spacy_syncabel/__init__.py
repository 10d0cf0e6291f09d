"""spacy-syncabel: generative biomedical entity linking for spaCy.

``nlp.add_pipe("syncabel_linker")`` links ``doc.ents`` to knowledge-base codes by
trie-constrained generation with a causal LM (SynCABEL), trained with synthetic data and
hard negatives (ANGEL).
"""
from .errors import Errors, Warnings
from .types import NIL, NO_CODE, Candidate, CorpusDoc, GoldMention

__version__ = "0.1.0"


def __getattr__(name: str):  # lazy: importing the package must stay light
    if name == "SynCABELLinker":
        from .pipeline import SynCABELLinker

        return SynCABELLinker
    if name == "ConceptKB":
        from .kb import ConceptKB

        return ConceptKB
    raise AttributeError(name)


__all__ = ["Errors", "Warnings", "NIL", "NO_CODE", "Candidate", "CorpusDoc", "GoldMention",
           "SynCABELLinker", "ConceptKB", "__version__"]
