"""Trie-constrained decoding: token tries over KB names and a batched beam search."""
from .trie import TokenTrie, TrieSet
from .beam_search import BeamSearchConfig, Hypothesis, beam_search

__all__ = ["TokenTrie", "TrieSet", "BeamSearchConfig", "Hypothesis", "beam_search"]
