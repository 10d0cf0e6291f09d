"""Applying keyword overrides to a settings dataclass (shared by SFT and DPO)."""
from __future__ import annotations

import copy
from typing import Any, Dict, Optional, Type, TypeVar

T = TypeVar("T")


def with_overrides(config: Optional[T], default: Type[T], overrides: Dict[str, Any],
                   caller: str) -> T:
    """A copy of ``config`` (or ``default()``) with ``overrides`` set, then checked."""
    cfg = copy.deepcopy(config) if config is not None else default()
    for key, value in overrides.items():
        if not hasattr(cfg, key):
            raise TypeError(f"{caller}() got an unknown setting '{key}'")
        setattr(cfg, key, value)
    cfg.check()  # type: ignore[attr-defined]
    return cfg
