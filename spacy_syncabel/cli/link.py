"""Commands that run a pipeline on texts or rewrite one: link, render, migrate."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..output_paths import check_outputs
from ._app import app


@app.command()
def link(
    pipeline: Path = typer.Argument(..., metavar="PIPELINE_DIR", help="A pipeline folder that finds entities (NER or entity_ruler) and links them (syncabel_linker)."),
    source: Path = typer.Argument(..., metavar="INPUT", help="A folder of .txt notes, a JSONL file ({\"id\", \"text\"}) or a CSV/TSV file."),
    output: Path = typer.Option(..., "--output", "-o", help="OUT.jsonl (one record per note); OUT.spacy (DocBin); a folder with --format brat or --ray."),
    output_format: str = typer.Option("auto", "--format", help="jsonl, brat (.txt + .ann per note, codes as normalization lines) or spacy (one DocBin, not resumable); auto: spacy for a .spacy OUTPUT, else jsonl."),
    input_format: str = typer.Option("auto", "--input-format", help="auto, txt, jsonl or csv."),
    id_column: str = typer.Option("id", "--id-column", help="JSONL/CSV: the field holding the note id."),
    text_column: str = typer.Option("text", "--text-column", help="JSONL/CSV: the field holding the note text."),
    delimiter: Optional[str] = typer.Option(None, "--delimiter", help="CSV delimiter (default: tab for .tsv, else comma)."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Encoding of the input files."),
    errors: Optional[Path] = typer.Option(None, "--errors", help="Errors JSONL (default: OUT.errors.jsonl, or errors.jsonl in the output folder)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Notes per nlp.pipe batch."),
    n_process: int = typer.Option(1, "--n-process", help="Processes of nlp.pipe."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write a self-contained HTML report (summary + rendered notes)."),
    html_notes: int = typer.Option(50, "--html-notes", help="Notes rendered in the report (the summary counts all)."),
    kb_url: Optional[list[str]] = typer.Option(None, "--kb-url", help="Link codes in the report: a preset (snomed, mesh, omim, umls, hpo), a URL with {}, or PREFIX=URL (repeatable)."),
    brat_db: str = typer.Option("KB", "--brat-db", help="brat: the DB name in normalization lines (DB:CODE)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Link on Ray Data: 'local' starts a local Ray, 'auto' joins the running cluster, or a cluster ADDRESS."),
    concurrency: int = typer.Option(2, "--concurrency", help="Ray: linking actors (each loads the pipeline once)."),
    num_gpus: float = typer.Option(0.0, "--num-gpus", help="Ray: GPUs per actor."),
    threads: int = typer.Option(0, "--threads", help="torch threads (0: torch's default)."),
    span_attrs: str = typer.Option("", "--span-attrs", help="Span extension attributes set by other components (e.g. negex,is_negated), copied into each entity's \"attrs\" (comma-separated)."),
    doc_attrs: str = typer.Option("", "--doc-attrs", help="Doc extension attributes copied into each note record's \"attrs\" (comma-separated)."),
    code: Optional[Path] = typer.Option(None, "--code", "-c", help="A Python file registering the pipeline's own components (e.g. negspacy's negex), imported before loading (also in every Ray actor)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar (notes/s)."),
    delay: float = typer.Option(0.0, "--delay", hidden=True, help="Sleep per note (tests)."),
) -> None:
    """Find and link the entities of raw notes; resumable (re-run the command to resume)."""
    import srsly

    from ..notes.command import run_link

    result = run_link(pipeline, source, output, output_format=output_format,
                      input_format=input_format, encoding=encoding, id_column=id_column,
                      text_column=text_column, delimiter=delimiter, errors_path=errors,
                      batch_size=batch_size, n_process=n_process, html=html,
                      html_notes=html_notes, kb_url=kb_url or (), brat_db=brat_db,
                      progress=progress, delay=delay, ray=ray, concurrency=concurrency,
                      num_gpus=num_gpus, threads=threads, span_attrs=span_attrs,
                      doc_attrs=doc_attrs, code=code)
    typer.echo(srsly.json_dumps(result, indent=2))


@app.command()
def render(
    pipeline: Path = typer.Argument(..., help="A pipeline folder holding syncabel_linker (and its sentence segmenter)."),
    corpus: Path = typer.Argument(..., help="JSONL, brat folder, PubTator, marked TSV or .spacy."),
    output: Path = typer.Option(..., "--output", "-o", help="prompts.jsonl to write."),
    limit: int = typer.Option(0, help="Render the first N documents only (0: all)."),
) -> None:
    """Write the exact prompt and target text of every gold mention, one JSON line each."""
    import srsly

    from ..render import render as render_corpus

    check_outputs({"--output": output}, {"the pipeline": pipeline, "the corpus": corpus})

    typer.echo(srsly.json_dumps(render_corpus(pipeline, corpus, output, limit=limit), indent=2))


@app.command()
def migrate(
    source: Path = typer.Argument(..., help="A pipeline folder saved by spacy-syncabel 0.1 (with syncabel_linker/cfg.json)."),
    output: Path = typer.Argument(..., help="The folder to write, in the current layout."),
    force: bool = typer.Option(False, "--force", help="Replace OUTPUT when it exists (once the new folder is complete)."),
) -> None:
    """Copy a 0.1 pipeline folder into the current layout (settings in config.cfg), linking as before."""
    from ..training.pipeline_io import migrate_pipeline

    typer.echo(f"migrated -> {migrate_pipeline(source, output, force=force)}")
