"""Trie-constrained decoding: token tries over KB names and a batched beam search."""
from .trie import CompositeTrie, TokenTrie, TrieSet
from .beam_search import BeamSearchConfig, Hypothesis, beam_search

__all__ = ["TokenTrie", "CompositeTrie", "TrieSet", "BeamSearchConfig", "Hypothesis", "beam_search"]
