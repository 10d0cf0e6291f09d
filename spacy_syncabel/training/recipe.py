"""Training recipes: a ``config.cfg``-style file (read with confection, as ``spacy train``
reads its config) resolved into the engine's settings objects.

``train`` recipes have the sections ``[paths]``, ``[model]``, ``[training]``,
``[calibration]`` and ``[linker]`` and resolve into a :class:`TrainConfig`, the linker's
settings dict and the few arguments of :func:`train_linker` around them; ``dpo`` recipes have
``[paths]``, ``[mining]`` and ``[training]`` and resolve into a :class:`DPORunConfig`. A key the
file leaves out takes the engine's default. Dotted command-line overrides
(``--training.lr 3e-5``) are applied before interpolation (``${paths.train}``), as spaCy does.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from ..errors import Errors
from ..linking.settings import LinkSettings
from .pipeline_io import META_KEY  # the key of nlp.meta holding the resolved recipe

PathLike = Union[str, Path]

# recipe key -> TrainConfig field, where the names differ
_TRAINING_FIELDS = {"kb_names": "kb_name_examples", "mix": "mix_mode"}
_TRAINING_KEYS = ("epochs", "max_steps", "lr", "scheduler", "warmup", "weight_decay",
                  "max_grad_norm", "batch_size", "grad_accum", "bf16", "eval_steps",
                  "save_steps", "save_total_limit", "logging_steps", "dev_size", "patience",
                  "max_minutes", "seed", "max_train", "top_k_targets", "kb_names", "mix",
                  "mix_weights", "rank_candidates", "rank_weight", "train_aliases")
_MODEL_LORA = ("lora", "lora_r", "lora_alpha", "lora_dropout")
_CALIBRATION_FIELDS = {"enabled": "calibrate", "size": "calibration_size",
                       "target_precision": "target_precision"}
#: runtime switches of the command line, not part of a recipe
_RUNTIME = ("num_threads", "progress", "resume")

_DPO_MINING = ("rounds", "chunk_size", "top_k", "num_beams", "match", "gold_fallback",
               "max_pairs")


def _train_defaults() -> Dict[str, Dict[str, Any]]:
    from .sft import TrainConfig

    base = dataclasses.asdict(TrainConfig())
    training = {key: base[_TRAINING_FIELDS.get(key, key)] for key in _TRAINING_KEYS}
    training["mix_weights"] = list(training["mix_weights"])
    return {
        "paths": {"kb": None, "train": None, "dev": None, "synthetic": None},
        "model": {"base_model": "tiny", "dataset": None, "lang": "es", "kb_languages": None,
                  **{key: base[key] for key in _MODEL_LORA}},
        "training": training,
        "calibration": {key: base[field] for key, field in _CALIBRATION_FIELDS.items()},
        # only the keys a recipe sets are passed on: the rest are LinkSettings' defaults
        "linker": {},
    }


def _dpo_defaults() -> Dict[str, Dict[str, Any]]:
    from .dpo import DPORunConfig

    base = {k: v for k, v in dataclasses.asdict(DPORunConfig()).items() if k not in _RUNTIME}
    return {
        "paths": {"pipeline": None, "train": None, "dev": None},
        "mining": {key: base[key] for key in _DPO_MINING},
        "training": {key: v for key, v in base.items() if key not in _DPO_MINING},
    }


def _linker_keys() -> List[str]:
    return sorted([f.name for f in dataclasses.fields(LinkSettings)] + ["dtype"])


# ----------------------------------------------------------------------------- parsing


def parse_overrides(args: Sequence[str]) -> Dict[str, Any]:
    """``--section.key value`` / ``--section.key=value`` arguments as ``{"section.key":
    value}``, as spaCy's ``parse_config_overrides`` reads them (a value is JSON when it parses
    as JSON, else a string; a flag without a value is ``true``), with the standard JSON parser
    so that ``3e-5`` is exactly 3e-05. E465 for an argument that is not such an override."""
    result: Dict[str, Any] = {}
    args = list(args)
    while args:
        opt = args.pop(0)
        if not opt.startswith("--") or "." not in opt[2:].split("=", 1)[0]:
            raise ValueError(Errors.E465.format(arg=opt))
        name = opt[2:]
        if "=" in name:
            name, value = name.split("=", 1)
        elif not args or args[0].startswith("--"):
            value = "true"
        else:
            value = args.pop(0)
        result[name.replace("-", "_")] = _json_or_str(value)
    return result


def _json_or_str(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _check_keys(where: str, sections: Mapping[str, Any],
                schema: Mapping[str, Iterable[str]]) -> None:
    for section, block in sections.items():
        if section not in schema:
            raise ValueError(Errors.E460.format(section=section, where=where,
                                                valid=", ".join(f"[{s}]" for s in schema)))
        if not isinstance(block, dict):
            raise ValueError(Errors.E460.format(section=section, where=where,
                                                valid=", ".join(f"[{s}]" for s in schema)))
        valid = sorted(schema[section])
        for key in block:
            if key not in valid:
                raise ValueError(Errors.E461.format(key=f"{section}.{key}", where=where,
                                                    section=section, valid=", ".join(valid)))


def _check_overrides(overrides: Mapping[str, Any],
                     schema: Mapping[str, Iterable[str]]) -> None:
    nested: Dict[str, Dict[str, Any]] = {}
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        if "." in key:
            raise ValueError(Errors.E461.format(key=dotted, where="the overrides",
                                                section=section,
                                                valid=", ".join(sorted(schema.get(section, ())))))
        nested.setdefault(section, {})[key] = value
    _check_keys("the overrides", nested, schema)


def load_recipe(path: PathLike, overrides: Optional[Mapping[str, Any]],
                schema: Mapping[str, Iterable[str]]) -> Dict[str, Dict[str, Any]]:
    """The recipe file with ``overrides`` applied, interpolated, its sections and keys checked
    against ``schema`` (E460, E461); E464 when it cannot be read."""
    from confection import Config, ConfigValidationError

    overrides = dict(overrides or {})
    _check_overrides(overrides, schema)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf8")
    except OSError as err:
        raise ValueError(Errors.E464.format(path=path, err=err)) from None
    # the file's own keys are checked before the overrides are merged in
    try:
        raw = Config().from_str(text, interpolate=False)
        _check_keys(str(path), raw, schema)
        # a section the file leaves out can still be overridden (its keys are defaults)
        missing = sorted({key.split(".", 1)[0] for key in overrides} - set(raw))
        text += "".join(f"\n[{section}]\n" for section in missing)
        config = Config().from_str(text, overrides=overrides, interpolate=True)
    except ConfigValidationError as err:
        raise ValueError(Errors.E464.format(path=path, err=err)) from None
    return {section: dict(block) for section, block in config.items()}


def _filled(defaults: Dict[str, Dict[str, Any]], recipe: Mapping[str, Mapping[str, Any]]
            ) -> Dict[str, Dict[str, Any]]:
    return {section: {**block, **dict(recipe.get(section, {}))}
            for section, block in defaults.items()}


def _check_types(where: str, values: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    """E462 for a value whose type does not fit its default's (ints pass for floats; a None
    default, or a None value where the engine takes None, is left to the engine's check)."""
    for key, value in values.items():
        default = defaults.get(key)
        if value is None or default is None or key not in defaults:
            continue
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, (int, float)):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if isinstance(default, int) and not isinstance(default, bool) \
                    and isinstance(value, float) and not value.is_integer():
                ok = False
        elif isinstance(default, str):
            ok = isinstance(value, str) or (key == "bf16" and isinstance(value, bool))
        elif isinstance(default, (list, tuple)):
            ok = isinstance(value, (list, tuple))
        else:
            ok = True
        if not ok:
            raise ValueError(Errors.E462.format(key=f"{where}.{key}", value=value,
                                                expected=type(default).__name__))


# ----------------------------------------------------------------------------- train


@dataclass
class TrainRecipe:
    """A resolved ``train`` recipe: what :func:`train_linker` is called with."""

    sections: Dict[str, Dict[str, Any]]  # every section with defaults filled in (JSON-able)
    config: Any  # TrainConfig
    linker_config: Dict[str, Any]
    base_model: str
    lang: str
    label_map: Optional[Dict[str, Optional[str]]]
    kb_languages: Optional[List[str]]

    @property
    def paths(self) -> Dict[str, Optional[str]]:
        return self.sections["paths"]

    def to_dict(self) -> Dict[str, Any]:
        """The resolved recipe as JSON: the sections, then the engine's objects built from
        them (what ``--dry-run`` prints and a trained pipeline records)."""
        cfg = dataclasses.asdict(self.config)
        cfg["mix_weights"] = list(cfg["mix_weights"])
        for key in _RUNTIME:
            cfg.pop(key)
        return {**self.sections, "resolved": {
            "train_config": cfg, "linker_config": dict(self.linker_config),
            "base_model": self.base_model, "lang": self.lang, "label_map": self.label_map,
            "kb_languages": self.kb_languages}}


def train_schema() -> Dict[str, List[str]]:
    """The sections of a ``train`` recipe and the keys each takes."""
    schema = {section: sorted(block) for section, block in _train_defaults().items()}
    schema["linker"] = _linker_keys()
    return schema


def resolve_train_recipe(path: PathLike, overrides: Optional[Mapping[str, Any]] = None,
                         *, num_threads: Optional[int] = None, progress: bool = True,
                         resume: bool = True) -> TrainRecipe:
    """Read a ``train`` recipe (with dotted ``overrides``) into a :class:`TrainRecipe`; the
    runtime switches are the command line's, not the recipe's."""
    from .sft import TrainConfig

    defaults = _train_defaults()
    sections = _filled(defaults, load_recipe(path, overrides, train_schema()))
    for name in ("paths", "model", "training", "calibration"):
        _check_types(name, sections[name], defaults[name])
    link_defaults = dataclasses.asdict(LinkSettings())
    _check_types("linker", sections["linker"], link_defaults)
    training, model = sections["training"], sections["model"]
    values = {_TRAINING_FIELDS.get(k, k): v for k, v in training.items()}
    values.update({field: sections["calibration"][key]
                   for key, field in _CALIBRATION_FIELDS.items()})
    values.update({key: model[key] for key in _MODEL_LORA})
    weights = values["mix_weights"]
    if len(weights) != 2:
        raise ValueError(Errors.E462.format(key="training.mix_weights", value=weights,
                                            expected="two numbers [REAL, SYNTHETIC]"))
    values["mix_weights"] = tuple(float(w) for w in weights)
    values["max_train"] = values["max_train"] or None  # 0: all
    if values["max_minutes"] is not None:
        values["max_minutes"] = float(values["max_minutes"])
    for key in ("epochs", "lr", "warmup", "weight_decay", "max_grad_norm", "rank_weight",
                "lora_dropout"):
        values[key] = float(values[key])
    config = TrainConfig(**values, num_threads=num_threads, progress=progress, resume=resume)
    config.check()
    linker = dict(sections["linker"])
    if "num_beams" in linker and "n_best" not in linker:  # the top 5 answers, at most
        linker["n_best"] = min(5, int(linker["num_beams"]))
        sections["linker"]["n_best"] = linker["n_best"]
    if linker:
        LinkSettings.from_dict({k: v for k, v in linker.items()
                                if k not in ("dtype", "composite")})  # E100/E101 now
    lang, label_map = model["lang"], None
    if model["dataset"] is not None:
        from ..datasets import get_dataset

        spec = get_dataset(model["dataset"])
        lang, label_map = spec.lang, dict(spec.label_map)
    kb_languages = model["kb_languages"]
    if isinstance(kb_languages, str):
        kb_languages = [kb_languages]
    return TrainRecipe(sections=sections, config=config, linker_config=linker,
                       base_model=str(model["base_model"]), lang=lang, label_map=label_map,
                       kb_languages=list(kb_languages) if kb_languages else None)


# ----------------------------------------------------------------------------- dpo


@dataclass
class DPORecipe:
    """A resolved ``dpo`` recipe: what :func:`train_dpo` is called with."""

    sections: Dict[str, Dict[str, Any]]
    config: Any  # DPORunConfig

    @property
    def paths(self) -> Dict[str, Optional[str]]:
        return self.sections["paths"]

    def to_dict(self) -> Dict[str, Any]:
        cfg = {k: v for k, v in dataclasses.asdict(self.config).items() if k not in _RUNTIME}
        return {**self.sections, "resolved": {"dpo_config": cfg}}


def dpo_schema() -> Dict[str, List[str]]:
    """The sections of a ``dpo`` recipe and the keys each takes."""
    return {section: sorted(block) for section, block in _dpo_defaults().items()}


def resolve_dpo_recipe(path: PathLike, overrides: Optional[Mapping[str, Any]] = None,
                       *, num_threads: Optional[int] = None, progress: bool = True,
                       resume: bool = True) -> DPORecipe:
    """Read a ``dpo`` recipe (with dotted ``overrides``) into a :class:`DPORecipe`."""
    from .dpo import DPORunConfig

    defaults = _dpo_defaults()
    sections = _filled(defaults, load_recipe(path, overrides, dpo_schema()))
    for name in ("paths", "mining", "training"):
        _check_types(name, sections[name], defaults[name])
    values = {**sections["mining"], **sections["training"]}
    for key in ("beta", "epochs", "warmup", "max_grad_norm", "lora_dropout"):
        values[key] = float(values[key])
    if values["lr"] is not None:
        values["lr"] = float(values["lr"])
    if values["max_minutes"] is not None:
        values["max_minutes"] = float(values["max_minutes"])
    config = DPORunConfig(**values, num_threads=num_threads, progress=progress, resume=resume)
    config.check()
    return DPORecipe(sections=sections, config=config)


def require_paths(paths: Mapping[str, Optional[str]], keys: Tuple[str, ...]) -> None:
    """E463 when a path the run needs is not set (in the recipe or as ``--paths.KEY``)."""
    for key in keys:
        if not paths.get(key):
            raise ValueError(Errors.E463.format(key=key))


def optional_path(value: Optional[str]) -> Optional[Path]:
    return Path(value) if value else None


__all__ = ["TrainRecipe", "DPORecipe", "resolve_train_recipe", "resolve_dpo_recipe",
           "parse_overrides", "load_recipe", "train_schema", "dpo_schema", "require_paths",
           "META_KEY"]
