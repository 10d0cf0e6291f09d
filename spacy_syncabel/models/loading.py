"""Loading and saving causal LMs for inference (safetensors only when asked), the HF loader,
and the fine-tuned flag a trained LM's config carries."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Tuple, Union

import spacy

from ..errors import Errors
from .devices import resolve_device, resolve_dtype

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


#: ``loader(kb, texts) -> (model, tokenizer)``; ``kb`` is the linker's ConceptKB (or None), of
#: which a loader reads only its names (models sit below kb in the layers)
ModelLoader = Callable[
    [Optional[Any], Optional[Iterable[str]]],
    Tuple["PreTrainedModel", "PreTrainedTokenizerBase"],
]


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

    def load(kb: Optional[Any] = None, texts: Optional[Iterable[str]] = None):
        return load_causal_lm(name_or_path, dtype=dtype, device=device, trust_remote_code=trust_remote_code)

    return load


def is_fine_tuned(lm) -> bool:
    """Whether the LM was saved by a training command (the flag its config carries)."""
    return bool(getattr(getattr(lm, "config", None), "syncabel_fine_tuned", False))


def mark_fine_tuned(lm) -> None:
    """Flag the LM's config as fine-tuned for linking (saved in its config.json)."""
    lm.config.syncabel_fine_tuned = True
