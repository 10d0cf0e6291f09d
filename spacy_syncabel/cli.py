"""Command line: ``python -m spacy_syncabel <command>``; project.yml calls these."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="spacy-syncabel: generative biomedical entity linking for spaCy.",
                  no_args_is_help=True, add_completion=False)


@app.command()
def evaluate(
    pipeline: Path = typer.Argument(..., help="A pipeline folder holding syncabel_linker."),
    corpus: Path = typer.Argument(..., help="JSONL, brat folder, PubTator, marked TSV or .spacy."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="metrics.json to write."),
    train: Optional[Path] = typer.Option(None, help="Training corpus: report seen/unseen codes."),
    batch_size: int = typer.Option(64, help="Docs per batch given to the linker."),
    limit: int = typer.Option(0, help="Evaluate on the first N documents only (0: all)."),
    k: int = typer.Option(5, help="Report Recall@k for this k besides Recall@1."),
    num_beams: Optional[int] = typer.Option(None, help="Override the linker's beam count."),
) -> None:
    """Link the corpus's gold mentions and report Recall@1/@k beside the TF-IDF baseline."""
    import spacy
    import srsly

    from .corpus import read_corpus
    from .evaluation.evaluate import evaluate_linker, find_linker

    nlp = spacy.load(pipeline)
    if num_beams is not None:
        linker = find_linker(nlp)
        linker.set_beams(num_beams, min(num_beams, k))
    docs = read_corpus(corpus)
    if limit:
        docs = docs[:limit]
    train_docs = read_corpus(train) if train is not None else None
    metrics = evaluate_linker(nlp, docs, train=train_docs, batch_size=batch_size, k=k,
                              source=str(corpus))
    summary = {key: metrics[key] for key in metrics if not isinstance(metrics[key], dict)}
    typer.echo(srsly.json_dumps(summary, indent=2))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(output, metrics)


def main() -> None:  # pragma: no cover
    app()
