"""Train the project's entity recognizer: ``spacy train`` once, or once per annotation layer.

:func:`~spacy_syncabel.training.ner_corpus.write_ner_corpus` writes ``layers.json`` when the
training documents are not all annotated for every label. Then each layer gets its own NER,
trained (``spacy train``, the same config and overrides) only on the documents annotated for
it, and :func:`join_layers` puts them into one pipeline, ``OUTPUT/model-best``: one ``ner``
component per layer, each with its own copy of its embedding layer, one after another. Each
leaves the entities before it as they are (spaCy's ``ner`` keeps preset entities), so the
layers' entities never overlap in ``doc.ents``. A layer already trained (its ``model-best`` is
there) is not trained again: a killed run resumes at the layer it was in.
"""
from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

from ..errors import Errors
from ..output_paths import swap_into_place
from ..textio import read_json
from .ner_corpus import LAYERS_FILE

PathLike = Union[str, Path]
BEST, LAST = "model-best", "model-last"


def _component_name(layer: str) -> str:
    return "ner_" + re.sub(r"[^0-9A-Za-z_]+", "_", layer).strip("_").lower()


def _train_once(config: Path, output: Path, corpus: Path, overrides: Mapping[str, Any],
                use_gpu: int) -> None:
    from spacy.cli.train import train as spacy_train

    for split in ("train", "dev"):
        if not (corpus / f"{split}.spacy").is_file():
            raise FileNotFoundError(Errors.E420.format(path=corpus / f"{split}.spacy"))
    paths = {"paths.train": str(corpus / "train.spacy"), "paths.dev": str(corpus / "dev.spacy")}
    spacy_train(config, output, use_gpu=use_gpu, overrides={**paths, **dict(overrides)})


def check_init_tok2vec(config: PathLike, overrides: Optional[Mapping[str, Any]] = None) -> None:
    """Refuse a config whose ``[initialize] init_tok2vec`` would be ignored: spaCy loads the
    pretrained weights only into ``[pretraining] component``, and with no such section it
    trains from scratch silently (:attr:`Errors.E660`)."""
    from spacy.util import load_config

    cfg = load_config(config, overrides=dict(overrides or {}), interpolate=True)
    path = cfg.get("initialize", {}).get("init_tok2vec")
    if path is not None and not (cfg.get("pretraining") or {}).get("component"):
        raise ValueError(Errors.E660.format(config=config, path=path))


def read_layers(corpus_dir: PathLike) -> Optional[List[Dict[str, Any]]]:
    """The layers ``ner-corpus`` wrote in ``corpus_dir`` (``None``: one NER for everything)."""
    path = Path(corpus_dir) / LAYERS_FILE
    if not path.is_file():
        return None
    data = read_json(path)
    layers = data.get("layers") if isinstance(data, dict) else None
    if not isinstance(layers, list) or not all(
            isinstance(x, dict) and isinstance(x.get("name"), str)
            and isinstance(x.get("labels"), list) for x in layers):
        raise ValueError(Errors.E421.format(path=path))
    return layers


def train_ner(corpus_dir: PathLike, output: PathLike, *, config: Optional[PathLike] = None,
              overrides: Optional[Mapping[str, Any]] = None, use_gpu: int = -1
              ) -> Dict[str, Any]:
    """Train the NER of ``corpus_dir`` (what ``ner-corpus`` wrote) into ``output``
    (``model-best`` and ``model-last``, as ``spacy train`` writes them). ``config``: default
    ``corpus_dir/config.cfg``; ``overrides``: dotted config overrides for ``spacy train``.
    Returns the layers trained (``None`` for a single NER) and their dev scores."""
    corpus_dir, output = Path(corpus_dir), Path(output)
    config = Path(config) if config is not None else corpus_dir / "config.cfg"
    if not config.is_file():
        raise FileNotFoundError(Errors.E420.format(path=config))
    overrides = dict(overrides or {})
    check_init_tok2vec(config, overrides)
    layers = read_layers(corpus_dir)
    if layers is None:
        _train_once(config, output, corpus_dir, overrides, use_gpu)
        return {"layers": None}
    trained: Dict[str, Path] = {}
    for layer in layers:
        name = layer["name"]
        folder = output / "layers" / name
        if not (folder / BEST / "meta.json").is_file():
            _train_once(config, folder, corpus_dir / "layers" / name, overrides, use_gpu)
        trained[name] = folder
    scores = join_layers({name: folder / BEST for name, folder in trained.items()},
                         output / BEST)
    join_layers({name: folder / LAST for name, folder in trained.items()}, output / LAST)
    return {"layers": layers, "scores": scores}


def join_layers(layers: Mapping[str, PathLike], output: PathLike) -> Dict[str, Any]:
    """Write ``output``: one pipeline with the entity recognizer of each pipeline in
    ``layers`` (name -> folder), in that order, each as ``ner_NAME`` with its embedding layer
    copied in (no shared listener). Returns each layer's dev scores (its ``meta.json``)."""
    import spacy

    nlp = None
    scores: Dict[str, Any] = {}
    labels: List[str] = []
    for name, folder in layers.items():
        part = spacy.load(folder)
        if nlp is None:
            nlp = spacy.blank(part.lang)
        ner = [n for n in part.pipe_names if "doc.ents" in part.get_pipe_meta(n).assigns]
        if len(ner) != 1:
            raise ValueError(Errors.E422.format(path=folder, found=ner))
        for source in part.pipe_names:
            if ner[0] in getattr(part.get_pipe(source), "listening_components", ()):
                part.replace_listeners(source, ner[0], ["model.tok2vec"])
        nlp.add_pipe(ner[0], name=_component_name(name), source=part)
        labels.extend(getattr(part.get_pipe(ner[0]), "labels", ()))
        scores[name] = part.meta.get("performance", {})
    assert nlp is not None, "join_layers needs at least one layer"
    per_type: Dict[str, Any] = {}
    for perf in scores.values():
        per_type.update(perf.get("ents_per_type") or {})
    nlp.meta["name"] = "ner_layers"
    nlp.meta["description"] = ("One entity recognizer per annotation layer, each trained on "
                               "the documents annotated for it: " + ", ".join(layers))
    nlp.meta["performance"] = {"ents_per_type": per_type, "layers": scores}
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent))
    try:
        nlp.to_disk(new)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    swap_into_place(new, output)  # the joined pipeline replaces the one a run before wrote
    return scores


__all__ = ["join_layers", "read_layers", "train_ner"]
