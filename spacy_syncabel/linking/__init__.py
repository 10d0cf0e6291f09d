"""The linking engine (no spaCy pipeline code): settings, candidate generators, the engine."""
from ..lazy_exports import lazy_exports
from .settings import (DEFAULT_SETTINGS, MODE_BEAM, MODE_BEAM_IN_CANDIDATES, MODE_RERANK, MODES,
                       LinkSettings, setting_default)

_LAZY = {"LinkingEngine": "engine", "ScoredName": "engine", "rank_value": "engine",
         "CandidateGenerator": "candidates", "Retrieved": "candidates",
         "TfidfCandidates": "candidates", "DictionaryCandidates": "candidates",
         "tfidf_candidates": "candidates", "dictionary_candidates": "candidates"}


# torch and spaCy load only when the engine is used
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = ["LinkSettings", "DEFAULT_SETTINGS", "MODES", "MODE_BEAM", "MODE_BEAM_IN_CANDIDATES",
           "MODE_RERANK", "setting_default", *_LAZY]
