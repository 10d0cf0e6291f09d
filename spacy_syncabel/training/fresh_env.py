"""A throwaway virtual environment to check that a packaged pipeline installs and runs offline.

The new environment sees the distributions installed in the running one (torch, spaCy...) so
nothing is downloaded, except those it must install itself from wheels (``hide``: e.g.
``spacy-syncabel``, which the pipeline package requires). It reads them through a folder of
links to the running environment's ``site-packages`` entries, the hidden ones left out (an
editable install's ``.pth`` finder and ``dist-info`` too), named by a ``.pth`` file of the new
environment. Its interpreter runs isolated (``python -I``: no ``PYTHONPATH``, no user
site-packages), so a source checkout on the path does not leak in.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

from ..errors import Errors

PathLike = Union[str, Path]
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PIP_NO_INDEX": "1"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def is_hidden(entry: str, hide: Iterable[str]) -> bool:
    """Whether the ``site-packages`` entry ``entry`` belongs to one of the distributions or
    import names ``hide``: the package, its ``dist-info``/``egg-info``/``egg-link``, an
    editable install's ``__editable__`` files."""
    name = _norm(entry).lstrip("_")
    if name.startswith("editable_"):
        name = name[len("editable_"):].lstrip("_")
    return any(name == h or name.startswith(h + "_") for h in map(_norm, hide))


def site_dirs() -> List[Path]:
    """The running environment's ``site-packages`` folders (pure and platform)."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys(Path(paths[k]) for k in ("purelib", "platlib")))


def make_overlay(folder: PathLike, hide: Iterable[str]) -> Path:
    """``folder`` filled with links to every entry of :func:`site_dirs` but the hidden ones
    and ``.pth`` files (which only a site folder runs)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hide = list(hide)
    for site in site_dirs():
        for entry in sorted(os.listdir(site)):
            target = folder / entry
            if entry.endswith(".pth") or is_hidden(entry, hide) or target.exists():
                continue
            target.symlink_to(site / entry)
    return folder


def venv_python(venv: PathLike) -> Path:
    venv = Path(venv)
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(venv: PathLike, args: Sequence[str], env: Optional[Dict[str, str]] = None,
         timeout: float = 600) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    full.update(OFFLINE)
    full.update(env or {})
    return subprocess.run([str(venv_python(venv)), "-I", *args], capture_output=True,
                          text=True, env=full, timeout=timeout)


def fresh_venv(folder: PathLike, hide: Iterable[str] = ("spacy-syncabel",)) -> Path:
    """A new virtual environment in ``folder`` (no pip of its own: the running environment's
    is seen) that sees the running environment's distributions but ``hide``."""
    folder = Path(folder)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True,
                   capture_output=True, timeout=300)
    overlay = make_overlay(folder / "overlay", hide)
    res = _run(folder, ["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    site = Path(res.stdout.strip())
    (site / "_overlay.pth").write_text(str(overlay.resolve()) + "\n", encoding="utf8")
    return folder


def run_python(venv: PathLike, code: str, *args: str, timeout: float = 600,
               env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """``code`` run by the environment's interpreter, isolated and offline."""
    return _run(venv, ["-c", code, *args], env=env, timeout=timeout)


def pip_install(venv: PathLike, find_links: PathLike, *requirements: str,
                timeout: float = 600) -> subprocess.CompletedProcess:
    """``pip install`` of ``requirements`` into the environment from the wheels in
    ``find_links`` only (``--no-index``)."""
    return _run(venv, ["-m", "pip", "install", "--no-index", "--no-input",
                       "--disable-pip-version-check", "--find-links", str(find_links),
                       *requirements], timeout=timeout)


def build_wheel_of_source(source: PathLike, wheel_dir: PathLike, work: PathLike) -> Path:
    """The wheel of the project in ``source`` (its ``pyproject.toml``, ``README.md`` and
    Python packages, copied to ``work`` first so the build writes nothing into ``source``),
    built offline into ``wheel_dir``. E521 when pip fails."""
    source, work = Path(source), Path(work)
    work.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", "README.md", "setup.py", "setup.cfg", "MANIFEST.in"):
        if (source / name).is_file():
            shutil.copy(source / name, work / name)
    for pkg in sorted(p.parent for p in source.glob("*/__init__.py")):
        if pkg.name in ("tests", "benchmarks", "scripts", "dist", "build"):
            continue
        shutil.copytree(pkg, work / pkg.name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    built = work / "dist"
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                          "--no-build-isolation", "--no-input", "--quiet", "--wheel-dir",
                          str(built), str(work)], capture_output=True, text=True, timeout=600)
    wheels = sorted(built.glob("*.whl"))
    if res.returncode != 0 or len(wheels) != 1:
        raise ValueError(Errors.E521.format(path=source, step="pip wheel",
                                            detail=(res.stderr or res.stdout)[-2000:]))
    Path(wheel_dir).mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(wheels[0], Path(wheel_dir) / wheels[0].name))


__all__ = ["fresh_venv", "make_overlay", "is_hidden", "site_dirs", "run_python", "pip_install",
           "build_wheel_of_source", "venv_python", "OFFLINE"]
