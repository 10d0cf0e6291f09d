"""SynCABEL checkpoints: resolving a local folder or a Hub id, their language, remote code."""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Optional, Union

import spacy

from ..errors import Errors
from ..textio import read_json
from .devices import resolve_device, resolve_dtype
from .loading import ModelLoader, load_causal_lm

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel


def _lang_value(value: object) -> Optional[str]:
    return value if isinstance(value, str) and value.strip() else None


def checkpoint_language(path: Union[str, Path]) -> Optional[str]:
    """The ``lang`` a SynCABEL checkpoint's config.json declares (its prompt verb), if any."""
    config = Path(path) / "config.json"
    try:
        return _lang_value(read_json(config).get("lang"))
    except (OSError, ValueError, AttributeError):
        return None


def model_language(model: "PreTrainedModel") -> Optional[str]:
    """The ``lang`` of a loaded model's config (what :func:`checkpoint_language` reads from a
    checkpoint folder), if any."""
    return _lang_value(getattr(getattr(model, "config", None), "lang", None))


# what a checkpoint needs, fetched from the Hub: weights as safetensors only, never pickles
# (pytorch_model.bin, candidate_trie.pkl) and never Python files unless remote code is trusted
CHECKPOINT_FILES = ("config.json", "generation_config.json", "*.safetensors",
                    "*.safetensors.index.json", "tokenizer.json", "tokenizer_config.json",
                    "tokenizer.model", "special_tokens_map.json", "added_tokens.json",
                    "vocab.json", "merges.txt", "chat_template.jinja", "text_to_code.json")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_hub_id(name: str) -> bool:
    """Whether ``name`` reads as a Hub id ``owner/name`` (and not as a path)."""
    return bool(_HUB_ID.match(name)) and ".." not in name


def resolve_checkpoint(path: Union[str, Path], revision: Optional[str] = None,
                       code: bool = False) -> Path:
    """A local checkpoint folder as it is; a Hub id (``owner/name``) that is not a local
    folder is fetched with ``huggingface_hub.snapshot_download`` (the Hub cache, which works
    offline when the snapshot is there) with only :data:`CHECKPOINT_FILES` (and the model's own
    ``*.py`` when ``code``). E385 when it cannot be had."""
    name = str(path)
    folder = Path(name).expanduser()
    if folder.exists() or not is_hub_id(name):
        return folder
    from huggingface_hub import snapshot_download

    patterns = list(CHECKPOINT_FILES) + (["*.py"] if code else [])
    try:
        return Path(snapshot_download(repo_id=name, revision=revision,
                                      allow_patterns=patterns))
    except Exception as err:  # noqa: BLE001 - offline without a snapshot, unknown id, network
        raise ValueError(Errors.E385.format(name=name, err=f"{type(err).__name__}: {err}"[:400])
                         ) from err


def remote_code_of(folder: Union[str, Path]) -> Optional[str]:
    """What in a checkpoint's config.json asks for code of its own (``auto_map`` entries), or
    None."""
    try:
        auto_map = read_json(Path(folder) / "config.json").get("auto_map")
    except (OSError, ValueError, AttributeError):
        return None
    if not auto_map:
        return None
    if isinstance(auto_map, dict):
        return ", ".join(f"{k} -> {v}" for k, v in auto_map.items())
    return str(auto_map)


@spacy.registry.misc("spacy_syncabel.SynCABELCheckpoint.v1")
def syncabel_checkpoint(
    path: str,
    dtype: str = "auto",
    device: str = "auto",
    trust_remote_code: bool = False,
    revision: Optional[str] = None,
) -> ModelLoader:
    """Loader for a SynCABEL checkpoint: a local folder (Hugging Face layout, safetensors
    weights, ``text_to_code.json``) or a Hub id (``owner/name``, fetched once into the Hub
    cache at ``revision``; pair it with ``spacy_syncabel.KBFromSynCABEL.v1`` on the same path or
    id). Only safetensors weights are read; the checkpoint's ``candidate_trie.pkl`` is ignored
    (the linker rebuilds its tries from the KB). A checkpoint whose config names its own
    architecture code (``auto_map``) is refused (E384) unless ``trust_remote_code`` is true in
    this block of your config: the setting is never read from the checkpoint."""
    resolve_device(device)
    resolve_dtype(dtype, "cpu")

    def load(kb: Optional[Any] = None, texts: Optional[Iterable[str]] = None):
        folder = resolve_checkpoint(path, revision=revision, code=trust_remote_code)
        if not (folder / "config.json").is_file():
            raise ValueError(Errors.E133.format(
                path=folder, problem="no config.json: give the folder holding the checkpoint's "
                                     "config.json, safetensors weights and tokenizer, or its "
                                     "Hub id (owner/name)."))
        custom = remote_code_of(folder)
        if custom is not None and not trust_remote_code:
            raise ValueError(Errors.E384.format(name=path, what=custom))
        if not any(folder.glob("*.safetensors")):
            raise ValueError(Errors.E133.format(
                path=folder, problem="no *.safetensors weights. Pickle-based weights "
                                     "(pytorch_model.bin) are not loaded: convert them with "
                                     "`model.save_pretrained(folder, safe_serialization=True)` "
                                     "where you trust the file."))
        return load_causal_lm(str(folder), dtype=dtype, device=device,
                              trust_remote_code=trust_remote_code, use_safetensors=True)

    return load
