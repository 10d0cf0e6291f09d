"""Training examples built from real SPACCC train rows and the SPACCC-lite KB."""
import warnings

import numpy as np
import pytest
import spacy

from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.corpus.spacy_docs import docs_to_spacy
from spacy_syncabel.evaluation.baseline import char_ngram_vectorizer
from spacy_syncabel.models import tiny_llama
from spacy_syncabel.prompting import SEP_TOKEN, encode_completion, encode_prompt
from spacy_syncabel.training import build_examples, build_kb_name_examples
from spacy_syncabel.training.examples import IGNORE_INDEX
from spacy_syncabel.types import CorpusDoc, GoldMention

from ..conftest import DATA, needs_data

pytestmark = needs_data


@pytest.fixture(scope="module")
def spaccc_docs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # W004: 22 known bad rows, skipped by the reader
        return read_corpus(DATA / "spaccc" / "train.tsv")[:25]


@pytest.fixture(scope="module")
def linker(spaccc_kb):
    lm, tok = tiny_llama(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                         vocab_size=600, seed=3)(spaccc_kb, None)
    nlp = spacy.blank("es")
    linker = nlp.add_pipe("syncabel_linker", config={"composite": True})
    linker.set_model(lm, tok, spaccc_kb)
    return linker


@pytest.fixture(scope="module")
def built(spaccc_docs, linker):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_examples(spaccc_docs, linker)


def test_targets_are_decodable_names_of_the_gold_code_closest_by_tfidf(built, linker):
    examples, stats = built
    kb = linker.kb
    assert len(examples) > 400 and stats.examples == len(examples)
    vec = char_ngram_vectorizer().fit(kb.names())
    for ex in examples:
        if "+" in ex.code:
            continue
        assert ex.completion in kb.names(ex.group)
        assert kb.lookup(ex.completion, ex.group) == ex.code
        names = [n for n in kb.names_of(ex.code, ex.group) if kb.lookup(n, ex.group) == ex.code]
        sims = (vec.transform(names) @ vec.transform([ex.mention]).T).toarray().ravel()
        assert sims[names.index(ex.completion)] == pytest.approx(sims.max())


def test_known_case(built, linker):
    """'diarrea con restos de moco' (62315008, whose first name is 'cuadro diarreico')."""
    examples, _ = built
    ex = next(e for e in examples if e.mention == "diarrea con restos de moco")
    assert ex.code == "62315008" and ex.group == "SINTOMA"
    assert linker.kb.names_of("62315008", "SINTOMA")[0] == "cuadro diarreico"
    assert ex.completion == "diarrea"


def test_prompts_are_the_components_and_labels_mask_the_prompt(built, linker, spaccc_docs):
    examples, _ = built
    tok = linker.tokenizer
    by_key = {}
    for ex in examples:
        by_key.setdefault((ex.doc_id, ex.mention, ex.group), set()).add(ex.prompt)
    nlp = spacy.blank("es")
    checked = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        docs = docs_to_spacy(nlp, spaccc_docs)
    for doc in docs:
        for ent in doc.ents:
            group = linker.group_for(ent.label_)
            key = (doc.user_data["id"], ent.text, group)
            if key in by_key:
                assert linker.mention_prompt(doc, ent, group) in by_key[key]
                checked += 1
    assert checked > 300
    for ex in examples:
        prompt_ids = encode_prompt(tok, ex.prompt)
        n = len(prompt_ids)
        assert ex.input_ids[:n] == prompt_ids
        assert ex.labels[:n] == [IGNORE_INDEX] * n
        assert ex.labels[n:] == ex.input_ids[n:]
        assert IGNORE_INDEX not in ex.labels[n:]
        assert ex.labels[-1] == tok.eos_token_id
        assert ex.input_ids[n:] == encode_completion(tok, ex.completion.split(SEP_TOKEN),
                                                     tok.convert_tokens_to_ids(SEP_TOKEN))


def _doc(text, mention, code, label="SINTOMA"):
    start = text.index(mention)
    return CorpusDoc("t", text, [GoldMention(start, start + len(mention), label, code)])


def test_composite_missing_and_top_k(linker):
    kb = linker.kb
    text = "Presenta diarrea y fiebre alta desde ayer."
    docs = [_doc(text, "diarrea y fiebre", "62315008+64882008"),
            _doc(text, "fiebre alta", "999999999"),
            _doc(text, "diarrea", "NO_CODE")]
    with pytest.warns(UserWarning, match="W060"):
        examples, stats = build_examples(docs, linker)
    assert stats.missing_code == 1 and stats.missing_codes == ["999999999"]
    assert stats.no_code == 1 and stats.mentions == 3
    assert len(examples) == 1
    comp = examples[0]
    assert comp.code == "62315008+64882008"
    first, second = comp.completion.split(SEP_TOKEN)
    assert kb.lookup(first, "SINTOMA") == "62315008"
    assert kb.lookup(second, "SINTOMA") == "64882008"
    assert linker.tokenizer.convert_tokens_to_ids(SEP_TOKEN) in comp.labels
    # " a<SEP>b" as one string, as SynCABEL tokenizes its targets, and a path of the tries
    tok = linker.tokenizer
    completion = comp.input_ids[comp.n_prompt:]
    assert completion == tok(f" {first}<SEP>{second}", add_special_tokens=False)["input_ids"] \
        + [tok.eos_token_id]
    assert linker.engine.tries["SINTOMA"].names_of(completion) == [first, second]
    # top-k: the k closest names of the code, closest first
    examples, _ = build_examples([_doc(text, "diarrea", "62315008")], linker, top_k_targets=3)
    assert [e.completion for e in examples][0] == "diarrea"
    assert len({e.completion for e in examples}) == 3
    assert len({e.prompt for e in examples}) == 1


def test_kb_name_examples(linker):
    small = [(c, n, g) for c, n, g in linker.kb.entries()][:5]
    examples = build_kb_name_examples(linker)
    assert len(examples) >= 0.99 * len(list(linker.kb.entries()))
    ex = next(e for e in examples if e.mention == small[0][1])
    assert ex.completion == small[0][1] and ex.code == small[0][0] and ex.source == "kb_name"
    assert ex.prompt.startswith(f"[{small[0][1]}]{{{small[0][2]}}}{SEP_TOKEN}")


def test_composite_gold_share_of_spaccc_train():
    """The rule `train` uses to turn composite mentions on (>= 1% of coded gold mentions)."""
    from spacy_syncabel.training.examples import composite_gold

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gold = composite_gold(read_corpus(DATA / "spaccc" / "train.tsv"))
    assert (gold.composite, gold.coded) == (1018, 18745)
    assert gold.wants_composite() and not gold.wants_composite(min_share=0.06)
    text = "Presenta diarrea y fiebre alta."
    plain = [_doc(text, "diarrea", "62315008"), _doc(text, "fiebre", "NO_CODE"),
             _doc(text, "fiebre alta", "64882008+")]  # an empty part: not composite
    assert composite_gold(plain).to_dict() == {"composite": 0, "coded": 2, "share": 0.0}
    assert not composite_gold(plain).wants_composite()
    assert not composite_gold([]).wants_composite()
