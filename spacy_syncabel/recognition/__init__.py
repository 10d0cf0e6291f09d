"""Finding mentions in raw text: a dictionary span proposer beside a trained NER."""
from .dictionary import PhraseDictionary, build_dictionary, fold

__all__ = ["PhraseDictionary", "build_dictionary", "fold"]
