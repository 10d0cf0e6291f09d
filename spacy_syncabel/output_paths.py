"""Guards for what a command writes: never over one of its inputs, never over a folder unasked.

Every command that writes files calls :func:`check_outputs` with its outputs and inputs before
reading anything: an output that is an input (the same file or folder, symlinks resolved) or
a folder that holds an input is refused (E300), and two outputs on one path too (E301). A
command that writes a whole folder uses :func:`replace_folder`: an existing folder is only
replaced with ``force`` (E302), and then only once the new one is complete (it is written in
a fresh temporary folder beside it, which is renamed into place).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Optional, Union

from .errors import Errors

PathLike = Union[str, Path]


def _resolved(path: PathLike) -> Path:
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def same_path(a: PathLike, b: PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same file or folder (symlinks and hard links
    followed; paths that do not exist yet are compared resolved)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return _resolved(a) == _resolved(b)


def is_inside(path: PathLike, folder: PathLike) -> bool:
    """Whether ``path`` lies inside ``folder`` (symlinks resolved; the folder itself is not
    inside itself)."""
    inner, outer = _resolved(path), _resolved(folder)
    return inner != outer and outer in inner.parents


def check_outputs(outputs: Mapping[str, Optional[PathLike]],
                  inputs: Mapping[str, Optional[PathLike]], *, whole: bool = True) -> None:
    """Refuse outputs that would overwrite or delete an input, and outputs that share a path.

    ``outputs`` and ``inputs`` map what each path is (``"--output"``, ``"the corpus"``) to
    the path; ``None`` values are ignored. E300: an output is an input, an existing output
    lies inside an input folder (a pipeline's ``config.cfg``), or (with ``whole``: the
    outputs are files or folders written whole) an input lies inside an output folder, which
    replacing it would delete. E301: two outputs are one path.
    """
    outs = [(what, Path(p)) for what, p in outputs.items() if p is not None]
    ins = [(what, Path(p)) for what, p in inputs.items() if p is not None]
    for out_what, out in outs:
        for in_what, inp in ins:
            existing = out.exists() if whole else out.is_file()
            relation = ("the same path as" if same_path(out, inp) else
                        "a folder holding" if whole and is_inside(inp, out) else
                        "already part of" if existing and is_inside(out, inp) else None)
            if relation is not None:
                raise ValueError(Errors.E300.format(output_what=out_what, output=out,
                                                    relation=relation, input_what=in_what,
                                                    input=inp))
    for i, (first, a) in enumerate(outs):
        for second, b in outs[i + 1:]:
            if same_path(a, b):
                raise ValueError(Errors.E301.format(first=first, second=second, path=a))


def check_replaceable(path: PathLike, force: bool) -> None:
    """E302 when ``path`` exists and ``force`` is not set."""
    if not force and (Path(path).exists() or Path(path).is_symlink()):
        raise ValueError(Errors.E302.format(path=path))


@contextmanager
def replace_folder(path: PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a new empty folder beside ``path``; when the block succeeds it becomes ``path``.

    An existing ``path`` needs ``force`` (E302, checked before the block runs) and is
    replaced only after the block succeeded: it is renamed aside, the new folder renamed into
    place, then the old one deleted. When the block fails, the new folder is deleted and
    ``path`` is left as it was. Temporary names are fresh (``tempfile``), so no other file or
    folder beside ``path`` is ever touched.
    """
    path = Path(path)
    check_replaceable(path, force)
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_into_place(tmp, path)


def swap_into_place(new: Path, path: Path) -> None:
    """Rename folder ``new`` to ``path``; an existing ``path`` (file or folder) is moved aside
    first (under a fresh name) and deleted once ``new`` is in place."""
    old: Optional[Path] = None
    if path.exists() or path.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        old.rmdir()  # a fresh name, free for the rename
        os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        if old is not None:
            os.replace(old, path)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()


__all__ = ["same_path", "is_inside", "check_outputs", "check_replaceable", "replace_folder",
           "swap_into_place"]
