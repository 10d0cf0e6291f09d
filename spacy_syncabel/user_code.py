"""``--code FILE``: a Python file of the user's own registered components and functions,
imported before a pipeline is loaded (spaCy's convention for ``spacy train --code``).

A pipeline that holds a component no package registers through an entry point (negspacy's
``negex``, a team's own ``@Language.component``) loads only after the code that registers it has
run; ``link`` imports the file in its own process and in every Ray actor. The file is the
user's own, named on their command line: it is run as it is, once per process."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Union

from .errors import Errors

_IMPORTED: Dict[Path, object] = {}


def import_user_code(path: Optional[Union[str, Path]]) -> None:
    """Import the file once in this process (E454 when it is missing or fails to import)."""
    if path is None or str(path) == "":
        return
    from spacy.util import import_file

    path = Path(path)
    if not path.is_file():
        raise ValueError(Errors.E454.format(path=path, problem="no such file"))
    key = path.resolve()
    if key in _IMPORTED:  # a second import would register its factories again
        return
    try:
        _IMPORTED[key] = import_file(f"syncabel_user_code_{len(_IMPORTED)}", key)
    except Exception as err:  # the user's code: any error it raises is reported as is
        raise ValueError(Errors.E454.format(
            path=path, problem=f"importing it raised {type(err).__name__}: {err}")) from err
