"""Synthetic training data for generative entity linking (the SynCABEL recipe).

An LLM (or KB-guided templates) writes contextualized sentences for every KB concept; the
linker trains on them beside the human-annotated corpus. See :func:`synthesize` and the
``synth`` command.
"""
from .backends import (Generator, HFGenerator, OpenAIGenerator, TemplateGenerator,
                       hf_generator, openai_generator, template_generator)
from .guided import GuidedHFGenerator, MentionGuide, guided_hf_generator
from .output import SynthWriter, done_path, read_done
from .parsing import REASONS, FilterConfig, SynthSentence, looks_foreign, parse_output
from .prompts import (ConceptPrompt, PromptBuilder, corpus_vocabulary, mention_cycle,
                      style_examples_from_corpus)
from .runner import SynthStats, build_records, parse_shard, select_concepts, synthesize

BACKENDS = ("hf", "openai", "template")

__all__ = [
    "Generator", "HFGenerator", "OpenAIGenerator", "TemplateGenerator",
    "hf_generator", "openai_generator", "template_generator",
    "GuidedHFGenerator", "MentionGuide", "guided_hf_generator",
    "SynthWriter", "done_path", "read_done",
    "REASONS", "FilterConfig", "SynthSentence", "looks_foreign", "parse_output",
    "ConceptPrompt", "PromptBuilder", "corpus_vocabulary", "mention_cycle",
    "style_examples_from_corpus",
    "SynthStats", "build_records", "parse_shard", "select_concepts", "synthesize", "BACKENDS",
]
