"""Mention-guided local generation (hf-guided backend) and the fluency filter."""
import random
import warnings

import pytest
import spacy
import torch
from typer.testing import CliRunner

from spacy_syncabel.cli import app
from spacy_syncabel.models import save_pretrained
from spacy_syncabel.synthesis import (GuidedHFGenerator, MentionGuide, PromptBuilder,
                                      corpus_vocabulary, parse_output,
                                      style_examples_from_corpus, synthesize)
from spacy_syncabel.types import CorpusDoc, GoldMention

from ..conftest import DATA, TEXTS, needs_data


def _corpus():
    docs = []
    for i, text in enumerate(TEXTS):
        for name, code, label in (("fiebre", "386661006", "SINTOMA"),
                                  ("neumonía adquirida en la comunidad", "385093006", "ENFERMEDAD"),
                                  ("apendicectomía", "80146002", "PROCEDIMIENTO")):
            if name in text:
                s = text.index(name)
                docs.append(CorpusDoc(f"d{i}", text, [GoldMention(s, s + len(name), label, code)]))
    return docs


@pytest.fixture(scope="module")
def generator(tiny_lm):
    model, tok = tiny_lm
    return GuidedHFGenerator(model=lambda kb, texts: (model, tok), batch_size=4, seed=0,
                             tokens_per_sentence=24)


def test_registered(tiny_lm):
    gen = spacy.registry.resolve({"g": {"@misc": "spacy_syncabel.GuidedHFGenerator.v1",
                                        "max_left": 5}})["g"]
    assert isinstance(gen, GuidedHFGenerator) and gen.max_left == 5 and gen.name == "hf-guided"


def test_every_line_holds_one_kb_name_in_brackets(generator, small_kb):
    """A random model never writes a bracket by itself: the guide makes every line parse."""
    builder = PromptBuilder(small_kb, lang="es", corpus=_corpus(), n_mentions=3)
    prompts = [builder.build(c) for c in sorted(small_kb.codes)]
    assert any("Término:" in generator.rows(p)[0][0] for p in prompts)
    raws = generator.generate(prompts)
    assert len(raws) == len(prompts)
    for p, raw in zip(prompts, raws):
        lines = raw.split("\n")
        assert len(lines) == p.n_mentions
        for line in lines:
            assert line.startswith(p.prefix + " ")
            assert line.count("[") == 1 and line.count("]") == 1
            assert line[line.index("[") + 1:line.index("]")] in p.names
        _, rejected = parse_output(raw, prefix=p.prefix, n_mentions=p.n_mentions, names=p.names,
                                   lang="es")
        structural = {"missing_line", "no_prefix", "no_mention", "several_mentions",
                      "empty_mention", "unrelated_mention"}
        assert not structural & set(rejected), rejected


def test_max_left_zero_puts_the_mention_first(tiny_lm, small_kb):
    model, tok = tiny_lm
    gen = GuidedHFGenerator(model=lambda kb, texts: (model, tok), max_left=0,
                            tokens_per_sentence=8)
    p = PromptBuilder(small_kb, lang="es", n_mentions=2).build("25064002")
    for line in gen.generate([p])[0].split("\n"):
        assert line.startswith(f"{p.prefix} [")


def test_mention_start_is_moved_to_the_bracket(tiny_lm):
    """When the model would start writing the mention, it opens the bracket instead."""
    _, tok = tiny_lm
    guide = MentionGuide(tok, width=3, mentions=["cefalea"], max_left=50, torch=torch)
    start = sorted(guide.starts[0])
    assert start, "the tokenizer splits 'cefalea' into tokens of fewer than 3 letters"
    scores = torch.zeros(1, len(tok))
    scores[0, start[0]] = 10.0
    out = guide(torch.zeros(1, 3, dtype=torch.long), scores.clone())
    assert out[0, start[0]] == float("-inf")
    assert out[0, guide.open_id] >= 10.0
    assert out[0, guide.newline].max() == float("-inf")  # no line break before the mention


def test_cli_hf_backend_is_guided(tiny_lm, kb_tsv, tmp_path):
    model, tok = tiny_lm
    folder = save_pretrained(model, tok, tmp_path / "tiny")
    out = tmp_path / "hf.jsonl"
    res = CliRunner().invoke(app, ["synth", str(kb_tsv), str(out), "--backend", "hf", "--model",
                                   str(folder), "--limit", "3", "--no-progress", "--device", "cpu",
                                   "--n-mentions", "2"])
    assert res.exit_code == 0, res.output
    assert '"concepts_done":3' in res.output
    assert '"no_mention"' not in res.output and '"missing_line"' not in res.output


def test_fluency_filter_rejects_invented_words():
    vocab = corpus_vocabulary(_corpus())
    real = "SENTENCE: Varón de 54 años con [cefalea] y diabetes mellitus tipo 2 que acude por fiebre."
    fake = "SENTENCE: Varún de 54 añus con [cefalea] y diabitos melletus tipa 2 qua acudo pur fiebra."
    for raw, n_ok in ((real, 1), (fake, 0)):
        sents, rejected = parse_output(raw, prefix="SENTENCE:", n_mentions=1, names=["cefalea"],
                                       lang="es", vocabulary=vocab)
        assert len(sents) == n_ok
        assert bool(rejected.get("unknown_words")) == (n_ok == 0)
    looped = ("SENTENCE: La necesidad de la necesidad de la necesidad de la necesidad de la "
              "[cefalea] de la necesidad.")
    assert parse_output(looped, prefix="SENTENCE:", n_mentions=1, names=["cefalea"],
                        lang="es")[1] == {"repetitive": 1}
    # Without a vocabulary the check is off.
    assert len(parse_output(fake, prefix="SENTENCE:", n_mentions=1, names=["cefalea"],
                            lang="es")[0]) == 1


def _scramble(word, rng):
    if len(word) < 4:
        return word
    inner = list(word[1:-1])
    rng.shuffle(inner)
    return word[0] + "".join(inner) + word[-1]


@needs_data
def test_fluency_threshold_on_real_spaccc_sentences():
    """Held-out real sentences pass (vocabulary from train); the same with scrambled words fail."""
    from spacy_syncabel.corpus import read_corpus

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train = read_corpus(DATA / "spaccc" / "train.tsv")
    docs = train[-60:]  # documents held out of the vocabulary
    vocab = corpus_vocabulary(train[:-60])
    sents = [s for pool in style_examples_from_corpus(docs).values() for s in pool]
    assert len(sents) > 100
    rng = random.Random(0)
    passed = scrambled_passed = 0
    for s in sents:
        mention = s[s.index("[") + 1:s.index("]")]
        fake = " ".join(w if "[" in w or "]" in w else _scramble(w, rng) for w in s.split())
        for line, counter in ((s, "real"), (fake, "fake")):
            ok, _ = parse_output(f"SENTENCE: {line}", prefix="SENTENCE:", n_mentions=1,
                                 names=[mention], lang="es", vocabulary=vocab)
            if counter == "real":
                passed += len(ok)
            else:
                scrambled_passed += len(ok)
    assert passed / len(sents) >= 0.8
    assert scrambled_passed / len(sents) <= 0.1
