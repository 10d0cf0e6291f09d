"""Composite mentions spelled as SynCABEL spells them, " a<SEP>b": completions, tries, beam
search and teacher-forced scoring agree, for byte-level BPE and SentencePiece-style tokenizers."""
import warnings

import pytest

from spacy_syncabel.decoding import BeamSearchConfig, TrieSet, beam_search
from spacy_syncabel.decoding.scoring import completion_logprobs, score_completions
from spacy_syncabel.prompting import SEP_TOKEN, PromptTemplate, after_sep_ids, encode_completion

from ..conftest import KB_ROWS, TEXTS

# Llama-3's pre-tokenizer split (tiktoken's cl100k pattern)
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?"
                r"[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
CORPUS = TEXTS + [n for _, n, _ in KB_ROWS]
COMPOSITES = [["fiebre", "cefalea"], ["hipertensión arterial", "diabetes mellitus tipo 2"],
              ["dolor abdominal", "disnea", "pirexia"], ["TAC", "ecografía abdominal"]]


def _fast(backend, bos: str, eos: str):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=bos, eos_token=eos,
                                   pad_token=eos, additional_special_tokens=[SEP_TOKEN],
                                   clean_up_tokenization_spaces=False)


def llama3_style():
    """A byte-level BPE as Llama 3's: regex split, no prefix space, byte-level alphabet."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    backend.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", SEP_TOKEN]
    backend.train_from_iterator(CORPUS + [" " + t for t in CORPUS], trainers.BpeTrainer(
        vocab_size=600, special_tokens=specials, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return _fast(backend, "<|begin_of_text|>", "<|end_of_text|>")


def sentencepiece_style(scheme: str):
    """A SentencePiece-style BPE as transformers converts Llama 2's: ``▁`` for blanks, either
    the legacy normalizer (``▁`` prepended to every piece between special tokens) or a
    Metaspace pre-tokenizer prepending it to the first piece only."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    if scheme == "legacy":
        backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"),
                                                   normalizers.Replace(" ", "▁")])
    else:
        backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme)
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    specials = ["<unk>", "<s>", "</s>", SEP_TOKEN]
    alphabet = sorted(set("".join(CORPUS)) | {"▁"})
    backend.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=500, special_tokens=specials, show_progress=False,
        initial_alphabet=alphabet))
    return _fast(backend, "<s>", "</s>")


TOKENIZERS = {"llama3-bpe": llama3_style, "sentencepiece-legacy": lambda: sentencepiece_style(
    "legacy"), "sentencepiece-first": lambda: sentencepiece_style("first")}


@pytest.fixture(scope="module", params=sorted(TOKENIZERS))
def tokenizer(request):
    return TOKENIZERS[request.param]()


def test_completion_encodes_as_the_whole_string(tokenizer):
    """The ids of " a<SEP>b" built name by name (as the tries hold them) are the tokenizer's
    ids of the whole string, which is how SynCABEL tokenizes its targets."""
    sep = tokenizer.convert_tokens_to_ids(SEP_TOKEN)
    for names in COMPOSITES:
        text = PromptTemplate.completion(names)
        assert text == " " + "<SEP>".join(names)
        whole = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert encode_completion(tokenizer, names, sep) == whole + [tokenizer.eos_token_id]


def test_composite_tries_hold_the_completions(tokenizer, small_kb):
    sep = tokenizer.convert_tokens_to_ids(SEP_TOKEN)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no W211: names spelled as in whole strings
        tries = TrieSet.build(small_kb, tokenizer, SEP_TOKEN, composite=True)
    assert tries.check_whole_strings(tokenizer, n=len(small_kb.names())) == 0
    group_of = {n: g for _, n, g in KB_ROWS}
    for names in COMPOSITES:
        ids = encode_completion(tokenizer, names, sep)
        for group in (None, group_of[names[0]]):
            assert tries[group].walk(ids) >= 0
            assert tries[group].names_of(ids) == names


def test_names_after_the_separator_differ_from_the_first_name_spelling(tokenizer):
    """The reason for a second trie: after <SEP> a name starts without a blank."""
    first = tokenizer(" cefalea", add_special_tokens=False)["input_ids"]
    assert after_sep_ids(tokenizer, ["cefalea"])[0] != first


def test_a_separator_that_is_not_a_token_is_an_error():
    from transformers import PreTrainedTokenizerFast

    tok = llama3_style()
    plain = PreTrainedTokenizerFast(tokenizer_object=tok.backend_tokenizer.__class__.from_str(
        tok.backend_tokenizer.to_str()), eos_token="<|end_of_text|>")
    with pytest.raises(ValueError, match="E210"):
        after_sep_ids(plain, ["fiebre"], "<SP>")


# -- beam search and teacher forcing on a model that learnt one composite (conftest) --------
def test_beam_search_generates_the_composite_and_scores_agree(composite_lm, small_kb):
    model, tok, prompt, target = composite_lm
    tries = TrieSet.build(small_kb, tok, SEP_TOKEN, composite=True)
    hyps = beam_search(model, [prompt], [tries["SINTOMA"]], tok.eos_token_id, tok.pad_token_id,
                       BeamSearchConfig(num_beams=4, n_best=4))[0]
    assert hyps[0].tokens == target  # the training target, token for token
    assert tries["SINTOMA"].names_of(hyps[0].tokens) == ["fiebre", "cefalea"]
    completions = [h.tokens for h in hyps if h.finished]
    assert any(tries.sep_id in c for c in completions)
    prefix_shared = score_completions(model, [prompt], [completions], tok.pad_token_id)[0]
    one_row, _, _ = completion_logprobs(model, [prompt], [completions], tok.pad_token_id)
    for h, a, b in zip(hyps, prefix_shared, one_row.tolist()):
        assert a == pytest.approx(h.logprob, abs=1e-4)
        assert b == pytest.approx(h.logprob, abs=1e-4)


def test_engine_codes_composites_as_the_metric_does(composite_lm, small_kb):
    """The code of " fiebre<SEP>cefalea" is its parts sorted ("+"), as evaluation/metrics.py
    canonicalises them, with the names in the same order."""
    from spacy_syncabel.evaluation.metrics import canonical, hit
    from spacy_syncabel.linking import LinkingEngine, LinkSettings

    model, tok, prompt, _ = composite_lm
    engine = LinkingEngine(small_kb, tok, model, LinkSettings(composite=True, num_beams=4,
                                                              n_best=4))
    best = engine.link([prompt], ["SINTOMA"])[0][0]
    gold = "386661006+25064002"  # fiebre + cefalea, as annotated
    assert best.code == canonical(gold) == "25064002+386661006"
    assert best.name == "cefalea<SEP>fiebre"
    assert hit(gold, [best.code], 1)
    single = engine.with_settings(composite=False)
    assert single.tries.trie is engine.tries.trie and not single.tries.composite
    assert SEP_TOKEN not in single.link([prompt], ["SINTOMA"])[0][0].name
