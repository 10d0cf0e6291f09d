"""A saved pipeline folder is untrusted input: links, special files, oversized or deeply nested
files, flipped bytes, missing parts and non-finite weights all fail (or warn) with a code."""
import json
import os
import re
import shutil
import threading
import warnings

import pytest
import spacy

from spacy_syncabel.types import NIL

from .conftest import KB_ROWS, TEXTS, add_linker

LINKER = "syncabel_linker"


@pytest.fixture(scope="module")
def saved(kb_tsv, tmp_path_factory):
    """A saved NER (entity ruler) + linker pipeline with one alias, and what it links."""
    nlp = spacy.blank("es")
    ruler = nlp.add_pipe("entity_ruler")
    add_linker(nlp, kb_tsv, num_beams=2, n_best=2, max_new_tokens=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.initialize()
    ruler.add_patterns([{"label": g, "pattern": n} for _, n, g in KB_ROWS])
    nlp.get_pipe(LINKER).set_aliases([("cefalalgia", "cefalea", "SINTOMA")])
    path = tmp_path_factory.mktemp("saved") / "pipe"
    nlp.to_disk(path)
    return path, _links(nlp)


def _links(nlp):
    return [[(e.text, e.kb_id_, [c["code"] for c in e._.syncabel or []]) for e in doc.ents]
            for doc in nlp.pipe(TEXTS)]


@pytest.fixture()
def pipe(saved, tmp_path):
    """A fresh copy of the saved pipeline to damage."""
    shutil.copytree(saved[0], tmp_path / "pipe")
    return tmp_path / "pipe"


def _load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spacy.load(path)


def _state(pipe):
    return json.loads((pipe / LINKER / "state.json").read_text(encoding="utf-8"))


def _write_state(pipe, state):
    (pipe / LINKER / "state.json").write_text(json.dumps(state), encoding="utf-8")


def test_saved_pipeline_loads_and_links_the_same(saved, pipe):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nlp = spacy.load(pipe)
    assert not [w for w in caught if "W321" in str(w.message)]  # it has its checksums
    assert _links(nlp) == saved[1]
    assert nlp.get_pipe(LINKER).aliases == [("cefalalgia", "cefalea", "SINTOMA")]


# -- files outside the folder ------------------------------------------------------------------
def test_tokenizer_config_naming_a_file_outside_the_folder_is_refused(pipe, tmp_path):
    """transformers reads `fast_tokenizer_files` entries as paths joined to the folder."""
    model = pipe / LINKER / "model"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.move(model / "tokenizer.json", outside / "tokenizer.1.0.json")
    cfg = json.loads((model / "tokenizer_config.json").read_text(encoding="utf-8"))
    cfg["fast_tokenizer_files"] = ["../../../elsewhere/tokenizer.1.0.json"]
    (model / "tokenizer_config.json").write_text(json.dumps(cfg), encoding="utf-8")
    with pytest.raises(ValueError, match=r"E323.*fast_tokenizer_files"):
        _load(pipe)


def test_weight_index_naming_a_file_outside_the_folder_is_refused(pipe):
    model = pipe / LINKER / "model"
    (model / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {"lm_head.weight": "../../../x.safetensors"}}))
    with pytest.raises(ValueError, match=r"E323.*weight_map"):
        _load(pipe)


@pytest.mark.parametrize("rel", ["model/model.safetensors", "model/tokenizer.json",
                                 "kb/kb.jsonl", "state.json", "aliases.jsonl",
                                 "tries/names.marisa"])
def test_a_symlinked_file_is_refused(pipe, tmp_path, rel):
    """The link points at an identical copy: only the link itself is wrong."""
    target = pipe / LINKER / rel
    copy = tmp_path / ("outside_" + target.name)
    shutil.copy(target, copy)
    target.unlink()
    target.symlink_to(copy)
    with pytest.raises(ValueError, match=rf"E320.*{target.name}.*symbolic link"):
        _load(pipe)


@pytest.mark.parametrize("rel", ["model", "tries", LINKER])
def test_a_symlinked_folder_is_refused(pipe, tmp_path, rel):
    folder = pipe / rel if rel == LINKER else pipe / LINKER / rel
    shutil.move(folder, tmp_path / rel)
    folder.symlink_to(tmp_path / rel)
    with pytest.raises(ValueError, match=rf"E320.*{rel} is a symbolic link"):
        _load(pipe)


def test_a_symlinked_pipeline_folder_loads(saved, tmp_path):
    """The user's own link to a pipeline folder is not the folder's content."""
    (tmp_path / "link").symlink_to(saved[0])
    assert _links(_load(tmp_path / "link")) == saved[1]


def _loads_within(pipe, seconds=20.0):
    """Load in a daemon thread: (finished in time, exception raised)."""
    result = {}

    def run():
        try:
            _load(pipe)
        except Exception as err:  # noqa: BLE001 - inspected by the test
            result["err"] = err
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive(), result.get("err")


@pytest.mark.parametrize("how", ["fifo", "link_to_fifo"])
def test_state_json_as_a_fifo_fails_at_once(pipe, tmp_path, how):
    """A FIFO with no writer blocks a plain open() forever; the loader never opens it."""
    state = pipe / LINKER / "state.json"
    state.unlink()
    if how == "fifo":
        os.mkfifo(state)
    else:
        os.mkfifo(tmp_path / "fifo")
        state.symlink_to(tmp_path / "fifo")
    done, err = _loads_within(pipe)
    assert done, "loading blocked on the FIFO"
    assert err is not None and ("E321" if how == "fifo" else "E320") in str(err)
    assert "state.json" in str(err)


def test_devices_are_not_read():
    from spacy_syncabel.guarded import open_in

    with pytest.raises(ValueError, match=r"E321.*/dev/null is a character device"):
        open_in("/dev", "null", "json")


# -- sizes and nesting -------------------------------------------------------------------------
def test_a_sparse_kb_over_its_cap_is_refused_before_reading(pipe, monkeypatch):
    kb_file = pipe / LINKER / "kb" / "kb.jsonl"
    os.truncate(kb_file, 64 << 20)  # 64 MB of holes: no newline, never read
    monkeypatch.setenv("SPACY_SYNCABEL_MAX_KB_MB", "16")
    with pytest.raises(ValueError, match=r"E322.*kb.jsonl is 67108864 bytes.*"
                                         r"SPACY_SYNCABEL_MAX_KB_MB"):
        _load(pipe)


def test_a_multi_gigabyte_sparse_kb_is_refused_at_the_default_cap(pipe):
    kb_file = pipe / LINKER / "kb" / "kb.jsonl"
    os.truncate(kb_file, 5 << 30)  # sparse: takes no disk space
    with pytest.raises(ValueError, match=r"E322.*kb.jsonl is 5368709120 bytes"):
        _load(pipe)


def test_deeply_nested_state_json_is_a_coded_error(pipe):
    (pipe / LINKER / "state.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match=r"E324.*state.json.*nested deeper than 64"):
        _load(pipe)


def test_deeply_nested_kb_line_names_the_line(pipe):
    kb_file = pipe / LINKER / "kb" / "kb.jsonl"
    lines = kb_file.read_text(encoding="utf-8").splitlines()
    lines[2] = '{"code": ' + "[" * 50_000 + "]" * 50_000 + "}"
    kb_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"E324.*kb.jsonl, line 3"):
        _load(pipe)


def test_deeply_nested_corpus_line_is_a_coded_error(tmp_path):
    from spacy_syncabel.corpus import read_corpus

    path = tmp_path / "corpus.jsonl"
    path.write_text('{"id": "a", "text": "x", "entities": []}\n'
                    '{"id": "b", "text": ' + "[" * 50_000 + "]" * 50_000 + "}\n")
    with pytest.raises(ValueError, match=r"corpus.jsonl.*line 2.*nested deeper"):
        read_corpus(path)


def test_brackets_inside_strings_do_not_count_as_nesting():
    from spacy_syncabel.textio import json_loads

    text = json.dumps({"name": "[" * 500 + "{" * 500, "list": [[1, [2]]]})
    assert json_loads(text)["list"] == [[1, [2]]]


# -- checksums and missing parts ---------------------------------------------------------------
def test_a_flipped_byte_in_the_weights_is_detected(pipe):
    weights = pipe / LINKER / "model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x40  # inside the last tensor's data: safetensors loads it silently
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"E325.*model.safetensors does not match its sha256"):
        _load(pipe)


def _drop_a_tensor(pipe):
    from safetensors.torch import load_file, save_file

    weights = pipe / LINKER / "model" / "model.safetensors"
    tensors = load_file(weights)
    dropped = sorted(k for k in tensors if "layers.0.mlp.up_proj" in k)[0]
    del tensors[dropped]
    save_file(tensors, weights, metadata={"format": "pt"})
    return dropped


def test_missing_tensors_are_detected(pipe):
    _drop_a_tensor(pipe)
    with pytest.raises(ValueError, match=r"E325.*model.safetensors"):
        _load(pipe)


def test_missing_tensors_in_a_folder_without_checksums(pipe):
    dropped = _drop_a_tensor(pipe)
    state = _state(pipe)
    state.pop("sha256", None)  # as saved before checksums were recorded
    _write_state(pipe, state)
    with pytest.raises(ValueError, match=rf"E327.*lack 1 tensor.*{dropped}"):
        _load(pipe)


def test_a_folder_saved_without_checksums_loads_with_a_warning(saved, pipe):
    state = _state(pipe)
    state.pop("sha256", None)  # as saved before checksums were recorded
    _write_state(pipe, state)
    with pytest.warns(UserWarning, match="W321"):
        nlp = spacy.load(pipe)
    assert _links(nlp) == saved[1]


def test_missing_aliases_are_a_coded_error(pipe):
    (pipe / LINKER / "aliases.jsonl").unlink()
    with pytest.raises(ValueError, match=r"E326.*aliases.jsonl is missing"):
        _load(pipe)


def test_stale_aliases_of_an_earlier_save_are_not_loaded(saved, pipe):
    """Saving a linker without aliases over a folder that has some: they are gone."""
    nlp = _load(saved[0])
    nlp.get_pipe(LINKER).set_aliases([])
    nlp.to_disk(pipe)
    assert _load(pipe).get_pipe(LINKER).aliases == []


def test_bad_checksum_entries_are_a_coded_error(pipe):
    state = _state(pipe)
    state["sha256"]["../../etc/passwd"] = "0" * 64
    _write_state(pipe, state)
    with pytest.raises(ValueError, match=r"E328.*bad entry '../../etc/passwd'"):
        _load(pipe)


# -- migrate -----------------------------------------------------------------------------------
def test_migrate_does_not_copy_what_a_link_points_to(pipe, tmp_path):
    from spacy_syncabel.training.pipeline_io import migrate_pipeline

    secret = tmp_path / "secret.txt"
    secret.write_text("not for the output")
    (pipe / LINKER / "notes.txt").symlink_to(secret)
    with pytest.raises(ValueError, match=r"E320.*notes.txt"):
        migrate_pipeline(pipe, tmp_path / "migrated")
    assert not any("not for the output" in p.read_text(errors="replace")
                   for p in tmp_path.rglob("notes.txt") if p.is_file() and not p.is_symlink())


# -- non-finite scores -------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["beam", "rerank"])
def test_nan_weights_give_nil_with_a_reason_and_valid_json_records(saved, tmp_path, mode):
    """Beam search drops NaN beams (no candidate left); rerank scores NaN candidates: either
    way the mention is NIL with a reason, and `link` writes valid JSON."""
    import torch

    from spacy_syncabel.notes import iter_records
    from spacy_syncabel.notes.command import run_link
    from spacy_syncabel.textio import json_loads
    from spacy_syncabel.training.pipeline_io import load_pipeline, save_pipeline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp = load_pipeline(saved[0], mode=mode, candidates=3)
    with torch.no_grad():
        nlp.get_pipe(LINKER).lm.lm_head.weight[5:50] = float("nan")
    save_pipeline(nlp, tmp_path / "nan_pipe", fine_tuned=False)
    with pytest.warns(UserWarning, match="W320.*NIL.*non-finite model scores"):
        docs = list(nlp.pipe(TEXTS))
    ents = [e for doc in docs for e in doc.ents]
    assert ents and all(e.kb_id_ == NIL for e in ents)
    assert all(e._.syncabel == [] and e._.syncabel_nil_reason == "non-finite model scores"
               for e in ents)
    notes = tmp_path / "notes.jsonl"
    notes.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n"
                             for i, t in enumerate(TEXTS)), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_link(tmp_path / "nan_pipe", notes, out, progress=False)
    for line in out.read_text(encoding="utf-8").splitlines():
        json_loads(line)  # strict: NaN would raise
    linked = [e for r in iter_records(out) for e in r["entities"]]
    assert linked and all(e["code"] == NIL and e["reason"] == "non-finite model scores"
                          and e["score"] is None and e["n_best"] == [] for e in linked)


# -- spaCy's own config ------------------------------------------------------------------------
def test_a_config_sourcing_another_pipeline_is_refused_by_load_pipeline(pipe, saved, tmp_path):
    from spacy_syncabel.training.pipeline_io import load_pipeline

    other = tmp_path / "other"
    shutil.copytree(saved[0], other)
    text = (pipe / "config.cfg").read_text(encoding="utf-8")
    blocks = re.split(r"\n(?=\[)", text)  # the ruler's blocks become one `source` line
    blocks = [b for b in blocks if not b.startswith("[components.entity_ruler")]
    blocks.append(f'[components.entity_ruler]\nsource = "{other}"\n')
    (pipe / "config.cfg").write_text("\n".join(blocks), encoding="utf-8")
    _load(pipe)  # spacy.load itself follows it: spaCy's, not ours to refuse
    with pytest.raises(ValueError, match=r"E329.*'entity_ruler' has `source = '.*other'`"):
        load_pipeline(pipe)


def test_a_tokenizer_edit_that_keeps_the_vocabulary_is_detected(pipe):
    """The fingerprint covers the vocabulary and special tokens; the checksum the rest (here
    the normalizer: lower-casing changes every prompt's ids)."""
    tok_file = pipe / LINKER / "model" / "tokenizer.json"
    data = json.loads(tok_file.read_text(encoding="utf-8"))
    data["normalizer"] = {"type": "Lowercase"}
    tok_file.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=r"E325.*tokenizer.json does not match"):
        _load(pipe)
