"""Checks of a saved linker folder before a library reads it: the Hugging Face model folder's
files, and the sha256 of the weight, trie and alias files recorded at save time.

``transformers`` opens the model folder's files itself, so before it does, every file there
is checked (:func:`check_model_folder`): regular files only, size caps, and every setting that
names a file (``tokenizer_config.json``'s ``tokenizer_file``, ``vocab_file``,
``fast_tokenizer_files``..., the weight index's ``weight_map``) must be a plain file name of
the folder, so nothing outside it is read.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Union

from .errors import Errors, Warnings
from .guarded import check_tree, exists_in, iter_tree, open_in
from .textio import read_json

PathLike = Union[str, Path]
#: files of the model folder whose bytes change what the model computes
_MODEL_CONFIGS = ("config.json", "generation_config.json", "model.safetensors.index.json")
_JSON_FILES = _MODEL_CONFIGS + ("tokenizer_config.json", "special_tokens_map.json",
                                "added_tokens.json", "chat_template.json")
TRIES_META = "tries/tries.json"
CHECKSUM_KEY = "sha256"


def _kind(rel: Path) -> str:
    if rel.suffix == ".safetensors":
        return "weights"
    if rel.name in _JSON_FILES:
        return "json"
    return "tokenizer"


def _plain_name(value: Any) -> bool:
    return (isinstance(value, str) and value not in ("", ".", "..") and "/" not in value
            and "\\" not in value and "\x00" not in value and ":" not in value)


def _names_files(key: str) -> bool:
    return key.endswith("_file") or key.endswith("_files")


def check_model_folder(root: PathLike, sub: str = "model") -> None:
    """E320/E321/E322 for a link, a non-regular or an oversized file under ``root/sub``;
    E323 for a setting that names a file outside it."""
    root = Path(root)
    check_tree(root, sub, _kind)
    folder = PurePosixPath(sub)
    tok_cfg = Path(sub) / "tokenizer_config.json"
    if exists_in(root, tok_cfg):
        cfg = read_json(root / tok_cfg, root=root, kind="json")
        if isinstance(cfg, dict):
            for key, value in cfg.items():
                if not _names_files(key):
                    continue
                values = value if isinstance(value, list) else [value]
                for v in values:
                    if isinstance(v, str) and not _plain_name(v):
                        raise ValueError(Errors.E323.format(
                            path=root / folder, source="tokenizer_config.json", name=v, key=key))
    index = Path(sub) / "model.safetensors.index.json"
    if exists_in(root, index):
        data = read_json(root / index, root=root, kind="json")
        weight_map = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(weight_map, dict):
            raise ValueError(Errors.E323.format(path=root / folder, name=str(weight_map),
                                                source=index.name, key="weight_map"))
        for v in weight_map.values():
            if not _plain_name(v):
                raise ValueError(Errors.E323.format(path=root / folder, name=v,
                                                    source=index.name, key="weight_map"))


def check_pipeline_config(path: PathLike) -> None:
    """E329 when the pipeline folder's ``config.cfg`` sources a component from elsewhere
    (``source = ...``: spaCy would load that other pipeline or package first); its
    ``config.cfg`` is read through the guarded opener (E320-E322)."""
    from thinc.api import Config

    from .textio import read_text

    root = Path(path)
    config = Config().from_str(read_text(root / "config.cfg", root=root, kind="json"),
                               interpolate=False)
    for name, block in (config.get("components") or {}).items():
        if isinstance(block, dict) and "source" in block:
            raise ValueError(Errors.E329.format(path=root / "config.cfg", name=name,
                                                source=str(block["source"])))


def file_sha256(root: PathLike, rel: PathLike, kind: str) -> str:
    """sha256 of ``root/rel``, read through the guarded opener."""
    h = hashlib.sha256()
    with open_in(root, rel, kind) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _checksummed(root: Path, model: Optional[str], extra: Iterable[str]) -> Iterable[str]:
    if model is not None and exists_in(root, model):
        for rel in iter_tree(root, model):  # weights, configs and tokenizer files
            yield rel.as_posix()
    # tries.json holds the sha256 of every other tries file (after_sep/tries.json included)
    if exists_in(root, TRIES_META):
        yield TRIES_META
    for name in extra:
        if exists_in(root, name):
            yield name


def record_checksums(root: PathLike, model: Optional[str] = "model",
                     extra: Iterable[str] = ("aliases.jsonl",)) -> Dict[str, str]:
    """``{relative path: sha256}`` of every file under ``model`` (weights, configs, tokenizer),
    of ``tries/tries.json`` and of the ``extra`` files, for :func:`verify_checksums`."""
    root = Path(root)
    return {rel: file_sha256(root, rel, _kind_of_saved(rel))
            for rel in sorted(set(_checksummed(root, model, extra)))}


def _kind_of_saved(rel: str) -> str:
    if rel.startswith("tries/"):
        return "tries"
    if rel.endswith(".jsonl"):
        return "aliases"
    return _kind(Path(rel))


def checksums_of_state(root: PathLike, state: Mapping[str, Any]) -> Optional[Dict[str, str]]:
    """The checksums ``state.json`` records (None for a folder saved before they were, with
    W321); E328 when they are not an object of relative paths to hex strings."""
    root = Path(root)
    recorded = state.get(CHECKSUM_KEY)
    if recorded is None:
        warnings.warn(Warnings.W321.format(path=root))
        return None
    where = root / "state.json"
    if not isinstance(recorded, dict):
        raise ValueError(Errors.E328.format(path=where, problem=f"'{CHECKSUM_KEY}' is not an "
                                                                f"object"))
    for rel, digest in recorded.items():
        parts = PurePosixPath(rel).parts
        if not isinstance(digest, str) or len(digest) != 64 or not rel or rel.startswith("/") \
                or any(p in ("..", ".", "") for p in parts) or "\\" in rel:
            raise ValueError(Errors.E328.format(path=where, problem=f"bad entry {rel!r}"))
    return dict(recorded)


def is_model_state(rel: str) -> bool:
    """Whether a model folder file holds what the network computes (weights, model configs),
    as opposed to the tokenizer's files."""
    return rel.endswith(".safetensors") or PurePosixPath(rel).name in _MODEL_CONFIGS


def verify_checksums(root: PathLike, recorded: Optional[Mapping[str, str]], prefix: str,
                     what: str, select: Optional[Callable[[str], bool]] = None) -> None:
    """E326 for a recorded file under ``prefix`` (and ``select``-ed) that is missing, E325 for
    one whose sha256 differs; nothing to do without ``recorded`` (an older folder, warned
    about already)."""
    if recorded is None:
        return
    root = Path(root)
    for rel, expected in sorted(recorded.items()):
        if rel != prefix and not rel.startswith(prefix.rstrip("/") + "/"):
            continue
        if select is not None and not select(rel):
            continue
        if not exists_in(root, rel):
            raise ValueError(Errors.E326.format(path=root, missing=rel, record="state.json",
                                                what=what))
        found = file_sha256(root, rel, _kind_of_saved(rel))
        if found != expected:
            raise ValueError(Errors.E325.format(path=root / rel, record=root / "state.json",
                                                found=found[:12], expected=expected[:12]))


__all__ = ["check_model_folder", "check_pipeline_config", "is_model_state", "record_checksums", "checksums_of_state",
           "verify_checksums", "file_sha256", "CHECKSUM_KEY"]
