"""spacy-syncabel: generative biomedical entity linking for spaCy.

``nlp.add_pipe("syncabel_linker")`` links ``doc.ents`` to knowledge-base codes by
trie-constrained generation with a causal LM (SynCABEL), trained with synthetic data and
hard negatives (ANGEL).
"""
from .errors import Errors, Warnings
from .lazy_exports import lazy_exports
from .types import NIL, NO_CODE, Candidate, CorpusDoc, GoldMention

__version__ = "0.1.0"

# lazy: importing the package must stay light
__getattr__, __dir__ = lazy_exports(__name__, {"SynCABELLinker": "pipeline", "ConceptKB": "kb"})

__all__ = ["Errors", "Warnings", "NIL", "NO_CODE", "Candidate", "CorpusDoc", "GoldMention",
           "SynCABELLinker", "ConceptKB", "__version__"]
