"""Acronyms and abbreviations of a concept's names pass the synthesis filters (real SPACCC
sentences; French and English clinical ones), other capitals and unrelated mentions do not."""
import pytest

from spacy_syncabel.synthesis import FilterConfig, parse_output
from spacy_syncabel.synthesis.abbreviations import abbreviates, is_acronym_of

# (lang, sentence as the LLM marks it, the concept's KB names); the first five are SPACCC
# training sentences with their concept's SNOMED CT names
ACCEPTED = [
    ("es", "Como antecedentes personales destacables presentaba [EPOC], HTA y ulcus duodenal "
           "con estenosis pilórica.", ["enfermedad pulmonar obstructiva crónica"]),
    ("es", "La [RTU de control] tras finalizar el tratamiento con BCG detectó múltiples focos de "
           "carcinoma en la vejiga.", ["resección transuretral de vías urinarias"]),
    ("es", "La radiografía de tórax mostraba [signos de ICC] sin derrame pleural.",
     ["insuficiencia cardíaca congestiva sintomática"]),
    ("es", "Mujer de 24 años, con [serología reactiva para VIH] desde 5 años atrás, sin "
           "tratamiento antirretroviral.",
     ["anticuerpos positivos contra virus de la inmunodeficiencia humana"]),
    ("es", "Tras el examen ultraestructural e inmunohistoquímico ([IHQ]), fue diagnóstico de "
           "tumor de nervio autónomo.", ["procedimiento de inmunohistoquímica"]),
    ("es", "Varón de 67 años con [DM2] en tratamiento con metformina y buen control.",
     ["diabetes mellitus tipo 2"]),
    ("es", "Ingresa por [IAM inferior] con elevación del ST en la derivación III.",
     ["infarto agudo de miocardio"]),
    ("es", "Antecedentes de [enf. card.] en seguimiento por cardiología desde hace años.",
     ["enfermedad cardíaca"]),
    ("fr", "Une [IRM] cérébrale a été réalisée le lendemain de son admission aux urgences.",
     ["imagerie par résonance magnétique"]),
    ("fr", "Patient de 72 ans suivi pour une [BPCO] sévère sous oxygénothérapie à domicile.",
     ["bronchopneumopathie chronique obstructive"]),
    ("en", "The patient was admitted with a [COPD exacerbation] requiring noninvasive "
           "ventilation.", ["chronic obstructive pulmonary disease"]),
    ("en", "He had a previous [MI] and was on aspirin and a statin since then.",
     ["myocardial infarction"]),
]


@pytest.mark.parametrize("lang,sentence,names", ACCEPTED)
def test_acronyms_and_abbreviations_are_accepted(lang, sentence, names):
    raw = "SENTENCE: " + sentence
    acc, rej = parse_output(raw, prefix="SENTENCE:", n_mentions=1, names=names, lang=lang)
    assert len(acc) == 1 and not rej, rej
    assert not acc[0].is_kb_name
    assert f"[{acc[0].mention}]" in sentence
    # without the rule (as before), the same sentence is rejected
    acc, rej = parse_output(raw, prefix="SENTENCE:", n_mentions=1, names=names, lang=lang,
                            filters=FilterConfig(accept_abbreviations=False))
    assert not acc and set(rej) <= {"all_caps", "unrelated_mention"}


@pytest.mark.parametrize("sentence,names,reason", [
    # an acronym, but of another concept
    ("Se solicita un [TAC] craneal urgente por la sospecha clínica.",
     ["infarto agudo de miocardio"], "all_caps"),
    ("Como antecedentes personales presentaba [EPOC] y ulcus duodenal.", ["neumonía"],
     "all_caps"),
    # a name shouted, not an acronym
    ("Se objetiva [FIEBRE ALTA] persistente en la exploración física de urgencias.",
     ["fiebre alta"], "all_caps"),
    # capitals inside a mention of something else
    ("Refiere [dolor lumbar tras TAC] desde hace tres días sin otros síntomas.",
     ["fiebre"], "unrelated_mention"),
])
def test_other_capitals_stay_rejected(sentence, names, reason):
    acc, rej = parse_output("SENTENCE: " + sentence, prefix="SENTENCE:", n_mentions=1,
                            names=names, lang="es")
    assert not acc and rej == {reason: 1}


def test_acronym_rules():
    assert is_acronym_of("HTA", "hipertensión arterial")  # a letter from inside a word
    assert is_acronym_of("I.A.M.", "infarto agudo de miocardio")  # dots, a function word
    assert is_acronym_of("EEG", "electroencefalograma")
    assert is_acronym_of("PIO", "prueba de presión intraocular")  # a generic head left out
    assert not is_acronym_of("AP", "apendicectomía")  # one word: three letters at least
    assert not is_acronym_of("HT", "hipertensión arterial")  # a short name keeps every word
    assert not is_acronym_of("AIM", "infarto agudo de miocardio")  # order matters
    assert not is_acronym_of("hta", "hipertensión arterial")  # not written as an acronym
    assert abbreviates("EPOC reagudizada", [
        "exacerbación aguda de enfermedad pulmonar obstructiva crónica"])
    assert not abbreviates("TAC de control", ["técnica de corte de tejido congelado"])
