"""The one writer of pipeline folders (training, calibration and DPO all save through it).

A folder is written beside its destination and renamed into place, so a killed process never
leaves a half-written pipeline. Its ``config.cfg`` holds the linker's settings (the one source
of settings) and no absolute path: the KB and weights live inside the folder, and the
``[initialize]`` loaders (used only to re-initialize from scratch) point at ``${paths.kb}`` and
``${paths.base_model}``, which a user sets on the command line like spaCy's ``${paths.train}``.
A moved folder loads and links the same.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

from ..pipes import find_linker
from ..linking import LinkSettings
from ..errors import Errors
from ..guarded import exists_in, iter_tree, open_in
from ..output_paths import check_outputs, is_inside, replace_folder, swap_into_place
from ..saved_folder import CHECKSUM_KEY, check_pipeline_config, record_checksums
from ..textio import read_json

# where a saved pipeline records the resolved training recipe (meta.json)
META_KEY = "syncabel_training_config"
# where a pipeline trained further by `dpo` records the resolved DPO recipe (meta.json)
DPO_META_KEY = "syncabel_dpo_config"

PathLike = Union[str, Path]
LINKER = "syncabel_linker"


def _portable_config(config, settings: Optional[LinkSettings], dtype: Optional[str],
                     device: Optional[str], kb_languages: Optional[Sequence[str]] = None,
                     component_settings: Optional[Dict[str, Any]] = None) -> None:
    """Settings written into the linker's block; loaders under [initialize] by variables.
    The KB loader reads ``kb_languages`` (a UMLS or SNOMED CT release's languages), or the
    ones the config already names, so re-initializing reads the KB the linker was trained on."""
    comp = config["components"][LINKER]
    if settings is not None:
        comp.update(settings.to_dict())
    comp.update(component_settings or {})
    if dtype is not None:
        comp["dtype"] = dtype
    if device is not None:
        comp["device"] = device
    paths = config.setdefault("paths", {})
    paths.setdefault("kb", None)
    paths.setdefault("base_model", None)
    init = config.setdefault("initialize", {}).setdefault("components", {})
    previous = (init.get(LINKER) or {}).get("kb_loader") or {}
    languages = list(kb_languages) if kb_languages else previous.get("languages")
    kb_loader: Dict[str, Any] = {"@misc": "spacy_syncabel.KBFromFile.v1", "path": "${paths.kb}"}
    if languages:
        kb_loader["languages"] = list(languages)
    init[LINKER] = {
        "kb_loader": kb_loader,
        "model": {"@misc": "spacy_syncabel.HFCausalLM.v1", "name_or_path": "${paths.base_model}"},
    }


def save_pipeline(nlp, path: PathLike, *, lm=None, settings: Optional[LinkSettings] = None,
                  dtype: Optional[str] = None, device: Optional[str] = None,
                  meta: Optional[Dict[str, Any]] = None,
                  extra_files: Optional[Dict[str, Any]] = None,
                  fine_tuned: bool = True,
                  kb_languages: Optional[Sequence[str]] = None,
                  component_settings: Optional[Dict[str, Any]] = None) -> Path:
    """Write ``nlp`` as a pipeline folder ``path``, atomically.

    ``lm``: weights to save instead of the linker's current ones (the live training model);
    ``settings``: the linker settings the folder links with (default: the linker's own);
    ``meta``: written as ``training.json``; ``extra_files``: name -> JSON-able object;
    ``fine_tuned``: flag the saved LM as fine-tuned for linking (False: leave its flag as it is,
    e.g. when assembling a pipeline from a linker that was never trained); ``kb_languages``:
    the KB's languages for the ``[initialize]`` loader (default: those already in the
    config); ``component_settings``: more keys of the linker's block (``spans_key``). The
    folder is
    written in a fresh temporary folder beside ``path`` and renamed over it once complete.
    """
    from spacy.util import load_config

    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    linker = find_linker(nlp)
    from ..models import mark_fine_tuned

    previous = linker.lm
    if fine_tuned:
        mark_fine_tuned(lm if lm is not None else previous)
    if lm is not None:
        linker.set_weights(lm)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        try:
            nlp.to_disk(tmp)
        finally:
            linker.set_weights(previous)
        config = load_config(tmp / "config.cfg", interpolate=False)
        _portable_config(config, settings, dtype, device, kb_languages, component_settings)
        config.to_disk(tmp / "config.cfg")
        files = dict(extra_files or {})
        if meta is not None:
            files["training.json"] = meta
        for name, obj in files.items():
            (tmp / name).write_text(json.dumps(obj, indent=2, ensure_ascii=False),
                                    encoding="utf8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_into_place(tmp, path)
    return path


def _check_copy(src: Path, dst: Path, dst_what: str, src_what: str) -> None:
    """E300 when the copy ``dst`` is, holds or lies inside the copied folder ``src``."""
    check_outputs({dst_what: dst}, {src_what: src})
    if is_inside(dst, src):
        raise ValueError(Errors.E300.format(output_what=dst_what, output=dst, relation="inside",
                                            input_what=src_what, input=src))


def _copy_regular_files(src: Path, dst: Path) -> None:
    """Copy the regular files of ``src`` into the folder ``dst``; a symbolic link (E320) or a
    device, FIFO or socket (E321) anywhere in ``src`` stops the copy, so what a link points to
    (e.g. a system file) never ends up in the copy."""
    dst.mkdir(parents=True, exist_ok=True)
    for rel in iter_tree(src):
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with open_in(src, rel, "weights") as fin, open(target, "xb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        shutil.copymode(src / rel, target)


def copy_pipeline(src: PathLike, dst: PathLike, *, force: bool = False) -> Path:
    """Copy a pipeline folder (portable: nothing in it names its own location); an existing
    ``dst`` is replaced only with ``force`` (E302)."""
    dst = Path(dst)
    _check_copy(src, dst, "The copy", "the pipeline")
    with replace_folder(dst, force=force) as tmp:
        _copy_regular_files(Path(src), tmp)
    return dst


def load_pipeline(path: PathLike, **settings: Any):
    """``spacy.load(path)`` with linker settings overridden through the config (the one
    source of settings), e.g. ``load_pipeline(p, mode="beam", num_beams=10)``. A config.cfg
    that sources a component from another pipeline or package is refused (E329)."""
    import spacy
    from spacy.util import load_config

    from ..recognition import proposer, span_union  # noqa: F401 - register their factories

    path = Path(path)
    check_pipeline_config(path)
    config = load_config(path / "config.cfg", interpolate=False)
    names = [n for n, c in config["components"].items() if c.get("factory") == LINKER]
    overrides = {f"components.{name}.{key}": value for name in names
                 for key, value in settings.items() if value is not None}
    return spacy.load(path, config=overrides)



def migrate_pipeline(src: PathLike, dst: PathLike, *, force: bool = False) -> Path:
    """Copy a pipeline folder saved by spacy-syncabel 0.1 (settings in ``cfg.json``, loaders
    in the factory block, ``rerank``) into the current layout, linking as it did: its saved
    settings become the config, ``rerank`` and ``candidates`` become ``mode``, beams keep
    their summed-log-prob ranking (``length_penalty`` 0, reranking 1). No code is run. An
    existing ``dst`` is replaced (once the new folder is complete) only with ``force`` (E302);
    ``dst`` may not be ``src`` nor hold it (E300)."""
    import srsly
    from spacy.util import load_config

    src, dst = Path(src), Path(dst)
    _check_copy(src, dst, "The migrated folder", "the 0.1 pipeline")
    with replace_folder(dst, force=force) as tmp:
        _copy_regular_files(src, tmp)
        config = load_config(tmp / "config.cfg", interpolate=False)
        comp = config["components"][LINKER]
        old_cfg = tmp / LINKER / "cfg.json"
        saved = read_json(old_cfg, root=tmp, kind="json") if exists_in(tmp, old_cfg) else {}
        if not isinstance(saved, dict):
            raise ValueError(Errors.E191.format(path=src / LINKER / "cfg.json", line=1,
                                                err="expected a JSON object"))
        comp.update({k: v for k, v in saved.items() if k not in ("device", "dtype")})
        for key in ("model", "kb_loader", "trust_remote_code"):
            comp.pop(key, None)
        rerank = bool(comp.pop("rerank", False))
        candidates = int(comp.get("candidates", 0) or 0)
        comp["mode"] = ("rerank" if rerank and candidates > 0 else
                        "beam_in_candidates" if candidates > 0 else "beam")
        comp["candidates"] = candidates or LinkSettings().candidates
        comp["length_penalty"] = 1.0 if comp["mode"] == "rerank" else 0.0
        _portable_config(config, None, None, None)
        config.to_disk(tmp / "config.cfg")
        fingerprint = tmp / LINKER / "fingerprint.json"
        if exists_in(tmp, fingerprint):
            # the checksums of the files as they are now: the old folder recorded none
            srsly.write_json(tmp / LINKER / "state.json",
                             {"version": 2,
                              "fingerprint": read_json(fingerprint, root=tmp, kind="json"),
                              CHECKSUM_KEY: record_checksums(tmp / LINKER)})
            fingerprint.unlink()
        if old_cfg.is_file():
            old_cfg.unlink()
    return dst


__all__ = ["LINKER", "save_pipeline", "copy_pipeline", "load_pipeline", "migrate_pipeline"]
