"""The linking engine (no spaCy pipeline code): settings, candidate generators, the engine."""
from .settings import (DEFAULT_SETTINGS, MODE_BEAM, MODE_BEAM_IN_CANDIDATES, MODE_RERANK, MODES,
                       LinkSettings, setting_default)

_LAZY = {"LinkingEngine": "engine", "ScoredName": "engine", "rank_value": "engine",
         "CandidateGenerator": "candidates", "Retrieved": "candidates",
         "TfidfCandidates": "candidates", "DictionaryCandidates": "candidates",
         "tfidf_candidates": "candidates", "dictionary_candidates": "candidates"}


def __getattr__(name: str):  # torch and spaCy load only when the engine is used
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(name)


__all__ = ["LinkSettings", "DEFAULT_SETTINGS", "MODES", "MODE_BEAM", "MODE_BEAM_IN_CANDIDATES",
           "MODE_RERANK", "setting_default", *_LAZY]
