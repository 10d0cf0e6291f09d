"""Shared fixtures: paths to the real data, a small realistic KB, a tiny Llama."""
import os
import warnings

# as the CLI does (spacy_syncabel.cli.prepare_process): spinning OpenMP threads are many times
# slower on a shared machine; set before any test imports torch
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="../shared/data is not beside the repo")

# A small Spanish clinical KB: (code, name, group) rows as they appear in SNOMED CT.
KB_ROWS = [
    ("38341003", "hipertensión arterial", "ENFERMEDAD"),
    ("38341003", "HTA", "ENFERMEDAD"),
    ("44054006", "diabetes mellitus tipo 2", "ENFERMEDAD"),
    ("44054006", "DM2", "ENFERMEDAD"),
    ("73211009", "diabetes mellitus", "ENFERMEDAD"),
    ("233604007", "neumonía", "ENFERMEDAD"),
    ("385093006", "neumonía adquirida en la comunidad", "ENFERMEDAD"),
    ("400130008", "arteritis temporal", "ENFERMEDAD"),
    ("386661006", "fiebre", "SINTOMA"),
    ("386661006", "pirexia", "SINTOMA"),
    ("25064002", "cefalea", "SINTOMA"),
    ("25064002", "dolor de cabeza", "SINTOMA"),
    ("21522001", "dolor abdominal", "SINTOMA"),
    ("267036007", "disnea", "SINTOMA"),
    ("418394000", "ecografía de abdomen y pelvis", "PROCEDIMIENTO"),
    ("45036003", "ecografía abdominal", "PROCEDIMIENTO"),
    ("77477000", "tomografía computarizada", "PROCEDIMIENTO"),
    ("77477000", "TAC", "PROCEDIMIENTO"),
    ("80146002", "apendicectomía", "PROCEDIMIENTO"),
]

TEXTS = [
    "Varón de 54 años con hipertensión arterial y diabetes mellitus tipo 2 que acude por fiebre.",
    "Refiere dolor abdominal y cefalea de tres días de evolución; se realiza ecografía abdominal.",
    "Mujer de 69 años ingresada por disnea y neumonía adquirida en la comunidad.",
    "Se practicó una apendicectomía sin complicaciones. TAC de control normal.",
]


@pytest.fixture(scope="session")
def kb_tsv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("kb") / "kb.tsv"
    path.write_text("code\tname\tgroup\n" + "".join(f"{c}\t{n}\t{g}\n" for c, n, g in KB_ROWS),
                    encoding="utf8")
    return path


@pytest.fixture(scope="session")
def empty_recipe(tmp_path_factory) -> Path:
    """A `train` / `dpo` recipe that sets nothing: every value is the engine's default, the
    tests' own values come as --section.key overrides."""
    path = tmp_path_factory.mktemp("recipe") / "defaults.cfg"
    path.write_text("# the engine's defaults\n", encoding="utf8")
    return path


@pytest.fixture(scope="session")
def small_kb(kb_tsv):
    from spacy_syncabel.kb import read_file

    return read_file(kb_tsv)


@pytest.fixture(scope="session")
def tiny_lm(small_kb):
    """A 2-layer random Llama with a BPE tokenizer trained on the KB names and texts."""
    from spacy_syncabel.models import ensure_sep_token, tiny_llama

    model, tok = tiny_llama(hidden_size=48, num_layers=2, num_heads=4, intermediate_size=96,
                            vocab_size=400, seed=1)(small_kb, TEXTS)
    ensure_sep_token(model, tok)
    return model, tok


@pytest.fixture(scope="session")
def composite_lm(tiny_lm):
    """A copy of ``tiny_lm`` fitted to answer the composite " fiebre<SEP>cefalea" for the
    mention "fiebre" of TEXTS[0] (a Spanish pipeline's prompt): ``(model, tok, prompt ids,
    target ids)``."""
    import copy

    import torch

    from spacy_syncabel.prompting import (SEP_TOKEN, PromptTemplate, encode_completion,
                                          encode_prompt, render_prompt)

    model, tok = tiny_lm
    model = copy.deepcopy(model)
    text = TEXTS[0]
    start = text.index("fiebre")
    prompt = encode_prompt(tok, render_prompt(text, start, start + len("fiebre"), "SINTOMA",
                                              template=PromptTemplate(verb="es"),
                                              window_chars=0))
    target = encode_completion(tok, ["fiebre", "cefalea"], tok.convert_tokens_to_ids(SEP_TOKEN))
    ids = torch.tensor([prompt + target])
    labels = torch.tensor([[-100] * len(prompt) + target])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    torch.manual_seed(0)
    model.train()
    for _ in range(60):
        opt.zero_grad()
        model(input_ids=ids, labels=labels).loss.backward()
        opt.step()
    model.eval()
    model.config.syncabel_fine_tuned = True  # no W103: it was fitted
    return model, tok, prompt, target


@pytest.fixture(scope="session")
def spaccc_kb():
    from spacy_syncabel.kb import read_file

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_file(DATA / "spaccc" / "kb_snomed_es_lite.tsv")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests measure behaviour, not speed: one thread keeps tiny models fast on a busy machine
    (two OpenMP threads on tiny matrices stall when the cores are shared)."""
    import torch

    torch.set_num_threads(1)


TINY = {"@misc": "spacy_syncabel.TinyLlama.v1", "hidden_size": 32, "num_layers": 1,
        "num_heads": 2, "intermediate_size": 64, "vocab_size": 600, "seed": 3}


def kb_loader_config(path) -> dict:
    return {"@misc": "spacy_syncabel.KBFromFile.v1", "path": str(path)}


def add_linker(nlp, kb_path, model=None, **config):
    """Add ``syncabel_linker`` with settings ``config`` and put its loaders under
    ``[initialize]`` (where spaCy keeps loaders): ``nlp.initialize()`` then loads them."""
    linker = nlp.add_pipe("syncabel_linker", config=config)
    nlp.config["initialize"]["components"]["syncabel_linker"] = {
        "kb_loader": kb_loader_config(kb_path), "model": model or TINY}
    return linker
