"""An installable Python package of a pipeline folder, and its wheel, built offline.

spaCy's :func:`spacy.cli.package.package` writes the package folder
(``<lang>_<name>-<version>/``: ``setup.py``, ``meta.json`` and the pipeline copied under
``<lang>_<name>/<lang>_<name>-<version>/``); the wheel is then built with
``pip wheel --no-build-isolation`` into its ``dist/``, so no network is needed (spaCy's own
``--build wheel`` needs the ``build`` package, whose isolated build downloads setuptools).

The pipeline's components come from the installed ``spacy-syncabel`` (entry points), so the
package requires it: ``spacy-syncabel`` within this minor version is added to the package's
requirements (spaCy finds it too when ``spacy-syncabel`` is installed as a distribution; it
is added here so it does not depend on that).
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from ..errors import Errors, Warnings
from ..guarded import iter_tree
from ..output_paths import check_outputs, check_replaceable, is_inside, same_path, \
    swap_into_place
from ..saved_folder import check_pipeline_config
from ..textio import read_json

PathLike = Union[str, Path]
DISTRIBUTION = "spacy-syncabel"


def package_name(lang: str, name: str) -> str:
    """The importable name spaCy gives the package: ``name`` with the ``<lang>_`` prefix."""
    return name if name.startswith(lang + "_") else f"{lang}_{name}"


def requirement() -> str:
    """``spacy-syncabel`` within the running version's minor range (``>=0.1.0,<0.2.0``)."""
    from spacy.util import get_minor_version_range

    from .. import __version__

    return DISTRIBUTION + get_minor_version_range(__version__)


def _requirement_name(req: str) -> str:
    from spacy.util import split_requirement

    return split_requirement(req)[0].strip().lower().replace("_", "-")


def _meta_with_requirement(meta: Dict[str, Any]) -> Dict[str, Any]:
    meta = dict(meta)
    reqs: List[str] = list(meta.get("requirements") or [])
    if not any(_requirement_name(r) == DISTRIBUTION for r in reqs):
        reqs.append(requirement())
    meta["requirements"] = reqs
    return meta


def finds_entities(pipeline: PathLike) -> bool:
    """Whether a component of the pipeline folder's ``config.cfg`` sets ``doc.ents`` before
    its (first) ``syncabel_linker``, by the factories' declared ``assigns`` (nothing loaded);
    True when there is no linker."""
    import spacy
    from spacy.language import Language
    from spacy.util import load_config

    config = load_config(Path(pipeline) / "config.cfg", interpolate=False)
    lang = config["nlp"]["lang"]
    # spaCy (3.8) registers its built-in factories and their `assigns`, and the ones of
    # installed packages, when a Language is first made: one blank object does it
    spacy.blank(lang)
    components = config.get("components") or {}
    for name in config["nlp"]["pipeline"]:
        factory = (components.get(name) or {}).get("factory")
        if factory == "syncabel_linker":
            return False
        for key in (f"{lang}.{factory}", factory):
            if factory and Language.has_factory(key):
                if "doc.ents" in Language.get_factory_meta(key).assigns:
                    return True
                break
    return True


def _run_spacy_package(pipeline: Path, work: Path, meta_path: Path, name: str,
                       version: str) -> None:
    from spacy.cli.package import package

    said = io.StringIO()  # spaCy's messages: printed only when it fails
    try:
        with contextlib.redirect_stdout(said):
            package(pipeline, work, meta_path=meta_path, name=name, version=version,
                    create_meta=False, create_sdist=False, create_wheel=False,
                    require_parent=True, force=False, silent=False)
    except SystemExit as err:  # spaCy's msg.fail(exits=1)
        detail = said.getvalue().strip()[-2000:] or f"exit status {err.code}"
        raise ValueError(Errors.E521.format(path=pipeline, step="spacy package",
                                            detail=detail)) from None


def build_wheel(folder: PathLike) -> Path:
    """Build the wheel of the package folder ``folder`` into ``folder/dist`` with
    ``pip wheel`` (no build isolation when setuptools is installed: offline) and remove the
    build's intermediate ``build/`` folder. E521 when pip fails."""
    folder = Path(folder)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-input", "--quiet",
           "--wheel-dir", str(folder / "dist"), str(folder)]
    if importlib.util.find_spec("setuptools") is not None:
        cmd.insert(4, "--no-build-isolation")
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise ValueError(Errors.E521.format(path=folder, step=" ".join(cmd[1:4]),
                                            detail=(res.stderr or res.stdout)[-2000:]))
    shutil.rmtree(folder / "build", ignore_errors=True)
    wheels = sorted((folder / "dist").glob("*.whl"))
    if len(wheels) != 1:
        raise ValueError(Errors.E521.format(path=folder, step="pip wheel",
                                            detail=f"{len(wheels)} wheel(s) in dist/"))
    return wheels[0]


def package_pipeline(pipeline: PathLike, output_dir: PathLike, *, name: Optional[str] = None,
                     version: Optional[str] = None, wheel: bool = True,
                     force: bool = False) -> Dict[str, Any]:
    """Write the package folder of ``pipeline`` in ``output_dir`` (``<lang>_<name>-<version>``,
    as ``spacy package`` names it; ``name`` and ``version`` default to ``meta.json``'s) and,
    with ``wheel``, its wheel in the folder's ``dist/``. Checked first: ``output_dir`` is
    not in the pipeline (E300); the pipeline folder (E520 for no pipeline; E320/E321 for a
    link or a non-regular file, which the copy would follow; E522 for a hidden file, which the
    wheel would leave out; E329 for a component sourced from elsewhere; W520 when no
    component sets the entities the linker links). An existing package
    folder is replaced only with ``force`` (E302), once the new one is complete. Returns what
    was written: the package name, folder, wheel and its size, the requirements."""
    pipeline, output_dir = Path(pipeline), Path(output_dir)
    relation = ("the same path as" if same_path(output_dir, pipeline) else
                "inside" if is_inside(output_dir, pipeline) else None)
    if relation is not None:  # spaCy's copy of the pipeline would copy itself
        raise ValueError(Errors.E300.format(output_what="The package folder's parent",
                                            output=output_dir, relation=relation,
                                            input_what="the pipeline", input=pipeline))
    if not (pipeline / "config.cfg").is_file() or not (pipeline / "meta.json").is_file():
        raise ValueError(Errors.E520.format(path=pipeline))
    for rel in iter_tree(pipeline):  # E320 / E321 before anything is copied
        if rel.name.startswith("."):  # spaCy's setup.py lists no such file
            raise ValueError(Errors.E522.format(path=pipeline / rel))
    check_pipeline_config(pipeline)
    if not finds_entities(pipeline):
        warnings.warn(Warnings.W520.format(path=pipeline))
    meta = _meta_with_requirement(read_json(pipeline / "meta.json", root=pipeline))
    name = name or meta.get("name") or "pipeline"
    version = version or meta.get("version") or "0.0.0"
    pkg = package_name(meta.get("lang", "xx"), name)
    dest = output_dir / f"{pkg}-{version}"
    check_outputs({"The package folder": dest}, {"the pipeline": pipeline})
    check_replaceable(dest, force)
    output_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=output_dir))
    try:
        meta_path = work / "meta.json"
        meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf8")
        _run_spacy_package(pipeline, work, meta_path, name, version)
        built = work / dest.name
        written = read_json(built / "meta.json", root=built)
        wheel_path = build_wheel(built) if wheel else None
        swap_into_place(built, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info: Dict[str, Any] = {"package": pkg, "version": version, "folder": str(dest),
                            "requirements": written.get("requirements", [])}
    if wheel_path is not None:
        final = dest / "dist" / wheel_path.name
        info.update(wheel=str(final), wheel_bytes=final.stat().st_size)
    return info


__all__ = ["package_pipeline", "build_wheel", "finds_entities", "package_name", "requirement"]
