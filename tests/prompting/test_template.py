"""render_prompt: the mention in its sentence, SynCABEL's input, within a token budget."""
import pytest

from spacy_syncabel.prompting import PromptTemplate, render_prompt

TEMPLATE = PromptTemplate(verb="es")
TEXT = ("Antecedentes sin interés.\nMujer de 69 años ingresada por astenia y fatiga en el "
        "curso de un brote de arteritis de la temporal en tratamiento con glucocorticoides. "
        "Buena evolución.")
MENTION = "arteritis de la temporal"
START = TEXT.index(MENTION)
END = START + len(MENTION)
SENTENCE = (TEXT.index("Mujer"), TEXT.index("Buena") - 1)


def _words(text):
    return len(text.split())


@pytest.mark.parametrize("window", [0, None])
def test_whole_sentence_is_syncabel_input(window):
    prompt = render_prompt(TEXT, START, END, "ENFERMEDAD", sentence=SENTENCE, template=TEMPLATE,
                           window_chars=window)
    assert prompt == ("Mujer de 69 años ingresada por astenia y fatiga en el curso de un brote "
                      "de [arteritis de la temporal]{ENFERMEDAD} en tratamiento con "
                      "glucocorticoides.<SEP>[arteritis de la temporal] es")


def test_without_sentences_the_whole_text_is_the_context():
    prompt = render_prompt(TEXT, START, END, "ENFERMEDAD", template=TEMPLATE, window_chars=0)
    assert prompt.startswith("Antecedentes sin interés. Mujer de 69")  # line break -> blank
    assert prompt.split("<SEP>")[0].endswith("glucocorticoides. Buena evolución.")


def test_text_is_cleaned_as_syncabel_does():
    text = "Dolor  [intenso]\u00a0en {zona}\tlumbar con fiebre alta."
    start = text.index("fiebre")
    prompt = render_prompt(text, start, start + 6, "SINTOMA", sentence=(0, len(text)),
                           template=TEMPLATE, window_chars=0)
    assert prompt == ("Dolor (intenso) en (zona) lumbar con [fiebre]{SINTOMA} alta."
                      "<SEP>[fiebre] es")


def test_character_window_keeps_whole_words():
    prompt = render_prompt(TEXT, START, END, "ENFERMEDAD", sentence=SENTENCE, template=TEMPLATE,
                           window_chars=11)
    context = prompt.split("<SEP>")[0]
    left, right = context.split("[arteritis")[0], context.split("]{ENFERMEDAD}")[1]
    assert left == "brote de " and right == " en"  # "n brote de ", " en tratami": cut at words


@pytest.mark.parametrize("window", [0, 300])
def test_token_budget_keeps_the_widest_context_that_fits(window):
    full = render_prompt(TEXT, START, END, "ENFERMEDAD", sentence=SENTENCE, template=TEMPLATE,
                         window_chars=window)
    budget = _words(full) - 6
    fitted = render_prompt(TEXT, START, END, "ENFERMEDAD", sentence=SENTENCE,
                           template=TEMPLATE, window_chars=window, count_tokens=_words,
                           max_tokens=budget)
    assert _words(fitted) <= budget
    assert "[arteritis de la temporal]{ENFERMEDAD}" in fitted
    assert fitted.split("<SEP>")[0] in full  # a cut of the same sentence around the mention
    # bisection: 9 more characters each side would not fit (the search stops within 4)
    context = fitted.split("<SEP>")[0]
    left = len(context.split("[arteritis")[0])
    right = len(context.split("]{ENFERMEDAD}")[1])
    wider = render_prompt(TEXT, START, END, "ENFERMEDAD", sentence=SENTENCE, template=TEMPLATE,
                          window_chars=max(left, right) + 9)
    assert _words(wider) > budget
    # a prompt within the budget is left alone
    assert render_prompt(TEXT, START, END, "ENFERMEDAD", sentence=SENTENCE, template=TEMPLATE,
                         window_chars=window, count_tokens=_words,
                         max_tokens=_words(full)) == full


def test_mention_over_the_budget_is_kept_whole_without_context():
    prompt = render_prompt(TEXT, START, END, "ENFERMEDAD", sentence=SENTENCE, template=TEMPLATE,
                           window_chars=0, count_tokens=_words, max_tokens=3)
    assert prompt == "[arteritis de la temporal]{ENFERMEDAD}<SEP>[arteritis de la temporal] es"


def test_a_long_note_without_sentences_is_never_tokenized_whole():
    text = "Texto de relleno sin puntos " * 4000 + MENTION + " y más relleno" * 4000
    start = text.index(MENTION)
    seen = []

    def count(prompt):
        seen.append(len(prompt))
        return _words(prompt)

    prompt = render_prompt(text, start, start + len(MENTION), "ENFERMEDAD", template=TEMPLATE,
                           window_chars=0, count_tokens=count, max_tokens=40)
    assert _words(prompt) <= 40 and "[arteritis de la temporal]{ENFERMEDAD}" in prompt
    assert max(seen) < 2 * 16 * 40 + 200 < len(text) // 50
