"""PromptBuilder on plain data: no spaCy doc, no component."""
import warnings

import pytest

from spacy_syncabel.prompting import (Mention, PromptBuilder, PromptTemplate, encode_prompt,
                                      render_prompt)

from ..conftest import TEXTS

TEXT = TEXTS[0] + " " + TEXTS[1]
SENTENCE = (0, len(TEXTS[0]))


def _mention(text: str, type_: str = "SINTOMA") -> Mention:
    start = TEXT.index(text)
    return Mention(TEXT, start, start + len(text), type_, SENTENCE)


def test_a_plain_mention_is_rendered_in_its_sentence(tiny_lm):
    _, tok = tiny_lm
    builder = PromptBuilder(PromptTemplate(verb="es"), tok, max_context_tokens=512)
    m = _mention("fiebre")
    assert builder.prompt(m) == render_prompt(TEXT, m.start, m.end, "SINTOMA",
                                              sentence=SENTENCE,
                                              template=PromptTemplate(verb="es"), window_chars=0)
    assert builder.prompt(m).startswith("Varón de 54 años") and "cefalea" not in builder.prompt(m)
    assert builder.prompt_ids(m) == encode_prompt(tok, builder.prompt(m))


def test_the_token_budget_narrows_the_context_and_cuts_long_mentions(tiny_lm):
    _, tok = tiny_lm
    wide = PromptBuilder(PromptTemplate(verb="es"), tok, max_context_tokens=512)
    narrow = PromptBuilder(PromptTemplate(verb="es"), tok, max_context_tokens=24,
                           max_mention_tokens=2)
    m = _mention("diabetes mellitus tipo 2", "ENFERMEDAD")
    assert narrow.count_tokens(wide.prompt(m)) > 24
    with pytest.warns(UserWarning, match="W100"):
        cut = narrow.mention_text(m)
    assert "diabetes mellitus tipo 2".startswith(cut) and len(cut) < len(m.surface)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # W100 once per builder
        prompt = narrow.prompt(m)
    assert f"[{cut}]{{ENFERMEDAD}}" in prompt and len(prompt) < len(wide.prompt(m))


def test_lazy_ids_render_only_what_is_read(tiny_lm, monkeypatch):
    _, tok = tiny_lm
    builder = PromptBuilder(PromptTemplate(verb="es"), tok)
    rendered = []
    render = builder.prompt_ids
    monkeypatch.setattr(builder, "prompt_ids", lambda m: rendered.append(m.surface) or render(m))
    lazy = builder.lazy_ids([_mention("fiebre"), _mention("cefalea")])
    assert len(lazy) == 2 and rendered == []
    assert lazy[1] == lazy[1] and rendered == ["cefalea"]
