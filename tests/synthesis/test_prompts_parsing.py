"""Prompts, parsing and filtering of synthetic sentences."""
import pytest

from spacy_syncabel.errors import Errors
from spacy_syncabel.kb import ConceptKB
from spacy_syncabel.synthesis import (REASONS, FilterConfig, PromptBuilder, looks_foreign,
                                      parse_output)
from spacy_syncabel.types import CorpusDoc, GoldMention

from ..conftest import KB_ROWS, TEXTS


@pytest.fixture(scope="module")
def kb_def():
    return ConceptKB(KB_ROWS, definitions={"386661006": "elevación de la temperatura corporal"},
                     warn=False)


def _corpus():
    text = TEXTS[0]
    start = text.index("hipertensión arterial")
    fever = text.index("fiebre")
    return [CorpusDoc("d0", text, [GoldMention(start, start + 21, "ENFERMEDAD", "38341003"),
                                   GoldMention(fever, fever + 6, "SINTOMA", "386661006")])]


@pytest.mark.parametrize("lang", ["es", "fr", "en"])
def test_packaged_prompts_load(kb_def, lang):
    builder = PromptBuilder(kb_def, lang=lang)
    p = builder.build("386661006")
    assert p.prompt_version.startswith(f"syncabel-synth-{lang}/")
    assert "fiebre" in p.user and "386661006" in p.user and "SINTOMA" in p.user
    assert "pirexia" in p.user  # the other names
    assert "elevación de la temperatura corporal" in p.user  # the definition
    assert p.prefix == "SENTENCE:" and p.prefix in p.user
    assert "{" not in p.user and "{" not in p.system
    assert [m["role"] for m in p.messages] == ["system", "user"]


def test_n_mentions_default_and_examples(kb_def):
    es = PromptBuilder(kb_def, lang="es", corpus=_corpus())
    assert es.style == "clinical" and es.n_mentions == 5  # clinical Spanish
    assert PromptBuilder(kb_def, lang="en").n_mentions == 3
    assert PromptBuilder(kb_def, lang="es", style="abstract").n_mentions == 3
    p = es.build("25064002")  # a SINTOMA concept: the example comes from the fever mention
    assert p.examples and "[fiebre]" in p.examples[0] and "[fiebre]" in p.user
    q = es.build("73211009")  # ENFERMEDAD, no definition: no definition block
    assert "[hipertensión arterial]" in q.user and "Definición" not in q.user
    assert es.build("25064002").user == p.user  # deterministic


def test_bad_language_and_settings(kb_def, tmp_path):
    with pytest.raises(ValueError, match="E070"):
        PromptBuilder(kb_def, lang="xx")
    with pytest.raises(ValueError, match="E078"):
        PromptBuilder(kb_def, n_mentions=0)
    bad = tmp_path / "p.txt"
    bad.write_text("[user]\nhello {name}\n", encoding="utf8")
    with pytest.raises(ValueError, match="E072"):
        PromptBuilder(kb_def, prompt_file=bad)


RAW = """Sure! Here they are:
SENTENCE: Varón de 54 años que consulta por [fiebre alta] de tres días de evolución y malestar.
2. SENTENCE: "El paciente refiere [pirexia] desde hace dos días, sin otros síntomas asociados."
SENTENCE: Se objetiva [FIEBRE ALTA] persistente en la exploración física de urgencias hoy.
SENTENCE: Paciente con [high fever] tras la cirugía programada de la semana pasada en planta.
Paciente con [fiebre] en una línea sin el prefijo pedido, que no se debe aceptar nunca.
SENTENCE: una línea de más con [fiebre] que supera el número de frases pedidas al modelo."""


def test_parse_output_offsets_and_reasons():
    acc, rej = parse_output(RAW, prefix="SENTENCE:", n_mentions=5, names=["fiebre", "pirexia"],
                            lang="es")
    assert [s.mention for s in acc] == ["fiebre alta", "pirexia"]
    for s in acc:
        assert s.text[s.start:s.end] == s.mention and "[" not in s.text
    assert acc[1].text.startswith("El paciente") and acc[1].is_kb_name
    assert rej == {"all_caps": 1, "foreign_language": 1, "no_prefix": 1, "surplus_line": 1}
    requested = 5
    assert len(acc) + sum(v for k, v in rej.items() if k != "surplus_line") == requested
    assert set(rej) <= set(REASONS) | {"surplus_line"}


@pytest.mark.parametrize("line,reason", [
    ("SENTENCE: sin mención entre corchetes en esta frase clínica de prueba.", "no_mention"),
    ("SENTENCE: dos menciones [fiebre] y [pirexia] en una sola frase de prueba.", "several_mentions"),
    ("SENTENCE: una mención [ ] vacía en esta frase de prueba clínica larga.", "empty_mention"),
    ("SENTENCE: Refiere [fiebre].", "sentence_too_short"),
    ("SENTENCE: Refiere [fiebre (de origen desconocido)] desde hace días en casa.", "parentheses"),
    ("SENTENCE: Refiere [dolor lumbar] desde hace tres días sin otros síntomas.", "unrelated_mention"),
    ("SENTENCE: Refiere [fiebre] " + "muy " * 60 + "alta.", "sentence_too_long"),
])
def test_single_rejections(line, reason):
    acc, rej = parse_output(line, prefix="SENTENCE:", n_mentions=1, names=["fiebre", "pirexia"],
                            lang="es")
    assert not acc and rej == {reason: 1}


def test_copied_duplicate_and_too_few():
    ex = "Varón de 54 años que acude por [fiebre] de tres días de evolución."
    raw = ("SENTENCE: Varón de 54 años que acude por [fiebre] de tres días de evolución.\n"
           "SENTENCE: Refiere [pirexia] desde hace dos días sin otros síntomas asociados.\n"
           "SENTENCE: Refiere [pirexia] desde hace dos días sin otros síntomas asociados.")
    acc, rej = parse_output(raw, prefix="SENTENCE:", n_mentions=3, names=["fiebre", "pirexia"],
                            lang="es", examples=[ex])
    assert len(acc) == 1 and rej == {"copied_example": 1, "duplicate": 1}
    acc, rej = parse_output(raw, prefix="SENTENCE:", n_mentions=3, names=["fiebre", "pirexia"],
                            lang="es", examples=[ex], filters=FilterConfig(min_valid_lines=2))
    assert not acc and rej["too_few_valid_lines"] == 1


def test_kb_acronym_and_foreign_heuristic():
    acc, _ = parse_output("SENTENCE: Antecedentes de [HTA] en tratamiento con enalapril desde 2010.",
                          prefix="SENTENCE:", n_mentions=1, names=["HTA"], lang="es")
    assert acc and acc[0].mention == "HTA"
    assert looks_foreign("pain in the chest", "es") and looks_foreign("chest pain", "es")
    assert looks_foreign("dolor de cabeza", "en") and looks_foreign("cardiac failure", "fr")
    assert not looks_foreign("síndrome de Down", "es")
    assert not looks_foreign("dolor torácico", "es")
    assert not looks_foreign("hypertension artérielle", "fr")
    assert not looks_foreign("type 2 diabetes", "en")


def test_error_codes_exist():
    for code in ("E070", "E071", "E072", "E073", "E074", "E075", "E076", "E077", "E078", "E079"):
        assert getattr(Errors, code).startswith(f"[{code}]")
