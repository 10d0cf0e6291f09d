"""Where and in which precision a model runs: ``auto`` devices and dtypes resolved."""
from __future__ import annotations

from typing import Union

import torch

from ..errors import Errors


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
