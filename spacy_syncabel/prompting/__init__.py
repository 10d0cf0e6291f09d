"""The prompting layer: a mention, as plain data, rendered as the LM's prompt.

``template`` writes a mention marked in its sentence as text, ``encoding`` turns prompts and
completions into token ids, ``builder`` is the one :class:`PromptBuilder` every caller uses
(the component, training, ``render``, evaluation), ``docs`` turns spaCy docs and corpus
documents into its plain :class:`Mention` records, ``labels`` holds the label → group map.
"""
from .builder import LazyPromptIds, Mention, PromptBuilder
from .encoding import after_sep_ids, encode_completion, encode_prompt, strip_sep
from .labels import label_map
from .template import (DEFAULT_TEMPLATE, SEP_TOKEN, VERBS, PromptTemplate, context_bounds,
                       mark_mention, render_prompt, verb_for)

__all__ = ["SEP_TOKEN", "VERBS", "DEFAULT_TEMPLATE", "PromptTemplate", "verb_for",
           "context_bounds", "mark_mention", "render_prompt", "label_map", "encode_prompt",
           "after_sep_ids", "strip_sep", "encode_completion", "Mention", "PromptBuilder",
           "LazyPromptIds"]
