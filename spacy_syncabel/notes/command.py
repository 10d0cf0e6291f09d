"""The ``link`` command: load a pipeline, link the notes of INPUT, write records (and a report)."""
from __future__ import annotations

import itertools
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from ..errors import Errors, Warnings
from ..output_paths import check_outputs, is_inside, same_path
from ..user_code import import_user_code
from .inputs import Note, count_notes, read_notes
from .link import link_notes
from .extensions import check_registered, check_registered_without_linkers, parse_attrs
from .writers import default_errors_path, open_output, output_format_for


def read_texts(source: Path, input_format: str, n: int, **read_kw: Any) -> Dict[str, str]:
    """The first ``n`` readable notes of the input, id -> text (for the report)."""
    notes = (item for item in read_notes(source, input_format, **read_kw) if isinstance(item, Note))
    return {note.id: note.text for note in itertools.islice(notes, n)}


def check_link_paths(pipeline: Path, source: Path, output: Path, *, input_format: str,
                     output_format: str, errors_path: Path, html: Optional[Path]) -> None:
    """Refuse outputs that are (or hold) the input or the pipeline (E300), that share a path
    (E301), and, in a folder of .txt notes, outputs the next run would read as notes: brat
    folders and .txt files (E303). Other files beside the notes are not inputs (only the .txt
    files are read), so a JSONL output there is written and resumed like anywhere else."""
    outputs = {"--output": output, "The errors file": errors_path, "--html": html}
    notes_folder = Path(source).is_dir() and input_format in ("auto", "txt")
    # a folder of notes is an input by its .txt files: the folder itself and what holds it
    # stay refused (check_outputs with the folder as INPUT, files that do not exist yet)
    check_outputs(outputs, {"PIPELINE_DIR": pipeline}
                  if notes_folder else {"INPUT": source, "PIPELINE_DIR": pipeline})
    if notes_folder:
        for what, out in outputs.items():
            if out is None:
                continue
            out = Path(out)
            if same_path(out, source) or is_inside(source, out):
                raise ValueError(Errors.E300.format(output_what=what, output=out,
                                                    relation="the same path as or a folder "
                                                             "holding", input_what="INPUT",
                                                    input=source))
            if is_inside(out, source) and (out.suffix.lower() == ".txt" or (
                    what == "--output" and output_format == "brat")):
                raise ValueError(Errors.E303.format(output=out, input=source))


def run_link(pipeline: Path, source: Path, output: Path, *, output_format: str = "auto",
             input_format: str = "auto", encoding: str = "utf-8", id_column: str = "id",
             text_column: str = "text", delimiter: Optional[str] = None,
             errors_path: Optional[Path] = None, batch_size: int = 16, n_process: int = 1,
             html: Optional[Path] = None, html_notes: int = 50,
             kb_url: Sequence[str] = (), brat_db: str = "KB", progress: bool = True,
             delay: float = 0.0, ray: Optional[str] = None, concurrency: int = 2,
             num_gpus: float = 0.0, threads: int = 0, span_attrs: Sequence[str] = (),
             doc_attrs: Sequence[str] = (), code: Optional[Path] = None) -> Dict[str, Any]:
    """Run ``link``; returns its stats (linked, failed, skipped, notes/s...).
    ``output_format`` ``auto``: ``spacy`` (DocBin) for a ``.spacy`` output, else ``jsonl``.
    ``span_attrs``/``doc_attrs`` (names, or one comma-separated string): extension
    attributes copied into the records (E451 before any note is linked when the pipeline
    registers none of that name). ``code``: a Python file registering the pipeline's own
    components, imported first (here and in every Ray actor; E454)."""
    from ..visualize import KBLinks, write_report

    if batch_size < 1 or n_process < 1 or concurrency < 1 or num_gpus < 0 or html_notes < 0:
        raise ValueError(Errors.E162.format(
            problem="--batch-size, --n-process and --concurrency must be >= 1, --num-gpus and "
                    "--html-notes >= 0"))
    output_format = output_format_for(output, output_format)
    span_attrs = parse_attrs(span_attrs) if isinstance(span_attrs, str) else tuple(span_attrs)
    doc_attrs = parse_attrs(doc_attrs) if isinstance(doc_attrs, str) else tuple(doc_attrs)
    if ray is not None and output_format != "jsonl":
        raise ValueError(Errors.E162.format(problem="--ray writes JSONL shards: use --format jsonl"))
    links = KBLinks.parse(kb_url)  # fail early on a bad template
    check_link_paths(pipeline, source, output, input_format=input_format,
                     output_format=output_format,
                     errors_path=errors_path or default_errors_path(
                         output, output_format, sharded=ray is not None),
                     html=html)
    read_kw = dict(encoding=encoding, id_column=id_column, text_column=text_column,
                   delimiter=delimiter)
    import_user_code(code)
    nlp = None
    if ray is None:  # loaded first: an attribute it does not register writes no output
        import spacy

        if threads:
            import torch

            torch.set_num_threads(threads)
        nlp = spacy.load(pipeline)
        check_registered(span_attrs, doc_attrs, pipeline)
    elif span_attrs or doc_attrs:  # the actors load it: checked here without its linkers
        check_registered_without_linkers(span_attrs, doc_attrs, pipeline)
    out = open_output(output, output_format, errors_path=errors_path, sharded=ray is not None,
                      db=brat_db)
    try:
        if nlp is None:
            from .ray_link import link_with_ray

            stats = link_with_ray(pipeline, source, out, address=ray, input_format=input_format,
                                  batch_size=batch_size, concurrency=concurrency,
                                  num_gpus=num_gpus, progress=progress, delay=delay,
                                  threads=threads or 1, span_attrs=span_attrs,
                                  doc_attrs=doc_attrs, code=code, **read_kw)
        else:
            total = count_notes(source, input_format)
            stats = link_notes(nlp, read_notes(source, input_format, **read_kw), out,
                               batch_size=batch_size, n_process=n_process, progress=progress,
                               total=total, delay=delay, span_attrs=span_attrs,
                               doc_attrs=doc_attrs).to_dict()
        result = {**stats, "records": out.n_records, "errors": out.n_errors,
                  "output": str(output), "errors_file": str(out.errors_path)}
        if html is not None:
            summary = write_report(html, out.records(),
                                   read_texts(source, input_format, html_notes, **read_kw),
                                   links, title=f"{Path(source).name}: linked notes",
                                   n_errors=out.n_errors)
            result.update(html=str(html), nil_share=round(summary.nil_share, 4))
    finally:
        out.close()
    if result["errors"]:
        warnings.warn(Warnings.W151.format(n=result["errors"], path=out.errors_path))
    return result
