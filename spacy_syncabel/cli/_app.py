"""The typer application every command module registers on, and what they share."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="spacy-syncabel: generative biomedical entity linking for spaCy.",
                  no_args_is_help=True, add_completion=False)


def report(metrics: dict, output: Optional[Path]) -> None:
    """Print the metrics' scalar values and per-label tables; write them all to ``output``
    (metrics.json)."""
    import srsly

    from ..evaluation.summary import label_tables

    typer.echo(srsly.json_dumps({k: v for k, v in metrics.items() if not isinstance(v, dict)},
                                indent=2))
    tables = label_tables(metrics)
    if tables:
        typer.echo("\n" + tables)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(output, metrics)
