"""Command line: ``python -m spacy_syncabel <command>`` or ``spacy-syncabel <command>``, both
through :func:`main`; project.yml calls these.

One module per concern registers its commands on :data:`app`: ``data`` (fetch, prepare-kb,
prepare-corpus, ner-corpus), ``synth``, ``train`` (train, dpo, calibrate, train-ner,
assemble), ``evaluate`` (evaluate, score, compare, judge) and ``link`` (link, render,
migrate). Importing this package must not import torch: commands import their heavy modules
inside their functions.
"""
from __future__ import annotations

import os
from typing import List, Optional

from ._app import app
from . import evaluate as _evaluate  # noqa: F401  (each module registers its commands)
from . import synth as _synth  # noqa: F401
from . import train as _train  # noqa: F401
from . import data as _data  # noqa: F401
from . import link as _link  # noqa: F401


def prepare_process() -> None:
    """Process-wide settings every command relies on; a user's own environment wins. Called
    before torch is imported (importing this package must not import it).

    OpenMP threads wait passively: spinning ones make torch many times slower when the machine
    is shared (measured: a tiny-model training step 1.9 s passive against 15-17 s spinning,
    2 threads, load 5 on 2 cores)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(args: Optional[List[str]] = None) -> None:
    """The one entry point of the command line: ``python -m spacy_syncabel`` and the
    ``spacy-syncabel`` script both run this. ``args``: the arguments (default: ``sys.argv``)."""
    prepare_process()
    app(args=args)


__all__ = ["app", "main", "prepare_process"]
