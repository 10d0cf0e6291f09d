"""``link --ray``: the notes as a Ray Dataset, linked by ``map_batches`` on an actor pool.

Each actor (:class:`NoteLinker`) loads the pipeline once and links its batches with the same
guarded ``nlp.pipe`` as the single-process run, so a note that fails becomes an error row, not
a failed task. Ray Data restarts a killed actor and retries its batches (``max_restarts``,
``max_task_retries``); the driver consumes the output stream and is the only writer of the
JSONL shards (:class:`~spacy_syncabel.notes.writers.ShardedOutput`), so a retried batch is never
written twice and a restarted job skips the ids already written.

A folder of ``.txt`` notes is read by Ray itself (``read_binary_files``; decoded in the actors,
with the input's encoding). JSONL and CSV inputs are parsed by the driver (line-level errors with
file and line) and handed to Ray with ``from_items``: for very large inputs, split them into
``.txt`` files or several runs.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..errors import Errors
from ..textio import json_loads
from ..user_code import import_user_code
from .inputs import Note, NoteError, decode_note, decode_problem, read_notes, txt_files
from .inputs import input_format as detect_format
from .link import find_kb, guarded_pipe, linked_spans_key
from .records import doc_to_record
from .writers import LinkOutput


class NoteLinker:
    """Ray Data callable class: loads the pipeline once per actor; links one batch of notes
    into rows ``{"id", "record", "error", "where"}`` (JSON record, or an error text)."""

    def __init__(self, pipeline: str, encoding: str = "utf-8", batch_size: int = 16,
                 delay: float = 0.0, threads: int = 1, root: Optional[str] = None,
                 span_attrs: Sequence[str] = (), doc_attrs: Sequence[str] = (),
                 code: Optional[str] = None) -> None:
        import spacy
        import torch

        if threads:
            torch.set_num_threads(threads)
        import_user_code(code)
        self.nlp = spacy.load(pipeline)
        self.span_attrs = tuple(span_attrs)
        self.doc_attrs = tuple(doc_attrs)
        self.kb = find_kb(self.nlp)
        self.spans_key = linked_spans_key(self.nlp)
        self.encoding = encoding
        self.batch_size = batch_size
        self.delay = delay
        self.root = Path(root) if root else None

    def _notes(self, batch: Dict[str, Any], rows: List[Dict[str, str]]) -> List[Note]:
        notes = []
        if "bytes" in batch:  # read_binary_files: decode here, per note
            for path, data in zip(batch["path"], batch["bytes"]):
                note_id = _txt_id(Path(str(path)), self.root)
                try:
                    notes.append(Note(str(note_id), decode_note(bytes(data), self.encoding)))
                except UnicodeDecodeError as err:
                    rows.append({"id": str(note_id), "record": "",
                                 "error": decode_problem(err, self.encoding), "where": str(path)})
        else:
            notes = [Note(str(i), str(t)) for i, t in zip(batch["id"], batch["text"])]
        return notes

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, List[str]]:
        rows: List[Dict[str, str]] = []
        notes = self._notes(batch, rows)
        for note, doc, error in guarded_pipe(self.nlp, notes, batch_size=self.batch_size):
            if doc is None:
                rows.append({"id": note.id, "record": "", "error": error or "", "where": "linking"})
            else:
                record = doc_to_record(doc, note.id, self.kb, span_attrs=self.span_attrs,
                                       doc_attrs=self.doc_attrs, spans_key=self.spans_key)
                rows.append({"id": note.id, "record": json.dumps(record, ensure_ascii=False, allow_nan=False),
                             "error": "", "where": ""})
            if self.delay:
                time.sleep(self.delay)
        return {key: [r[key] for r in rows] for key in ("id", "record", "error", "where")}


def _init_ray(address: str) -> Any:
    try:
        import ray
    except ImportError:
        raise ImportError(Errors.E164) from None
    if not ray.is_initialized():
        if address in ("", "local"):
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    return ray


def _txt_id(path: Path, root: Optional[Path]) -> str:
    """The note id of a .txt file: its path relative to the input folder, without suffix (as
    :func:`~spacy_syncabel.notes.inputs.read_notes` names it)."""
    return (path.relative_to(root) if root else Path(path.name)).with_suffix("").as_posix()


def _txt_ids(source: Path) -> Dict[str, Path]:
    files = [source] if source.is_file() else txt_files(source)
    root = source.parent if source.is_file() else source
    return {_txt_id(p, root): p for p in files}


def link_with_ray(pipeline: Path, source: Path, output: LinkOutput, *, address: str = "local",
                  input_format: str = "auto", batch_size: int = 16, concurrency: int = 2,
                  num_gpus: float = 0.0, progress: bool = True, delay: float = 0.0,
                  encoding: str = "utf-8", id_column: str = "id", text_column: str = "text",
                  delimiter: Optional[str] = None, threads: int = 1,
                  span_attrs: Sequence[str] = (), doc_attrs: Sequence[str] = (),
                  code: Optional[Path] = None) -> Dict[str, Any]:
    """Link the notes not yet in ``output`` on Ray; returns the run's stats. ``span_attrs``,
    ``doc_attrs`` and ``code`` as in the single-process run (each actor imports ``code``)."""
    from tqdm import tqdm

    ray = _init_ray(address)
    import ray.data

    source = Path(source)
    fmt = detect_format(source, input_format)
    skipped = failed = 0
    root = None
    if fmt == "txt":
        files = _txt_ids(source)
        pending = {i: p for i, p in files.items() if not output.is_done(i)}
        skipped = len(files) - len(pending)
        if not pending:
            return _stats(0, 0, skipped, 0.0, 0)
        root = (source.parent if source.is_file() else source).resolve()
        # reading is light: no CPU reserved, so that N actors on N CPUs never starve it
        ds = ray.data.read_binary_files([str(p.resolve()) for p in pending.values()],
                                        include_paths=True, ray_remote_args={"num_cpus": 0})
        n_pending = len(pending)
    else:
        items = []
        for item in read_notes(source, fmt, encoding=encoding, id_column=id_column,
                               text_column=text_column, delimiter=delimiter):
            if output.is_recorded(item):
                skipped += 1
            elif isinstance(item, NoteError):
                output.write_error(item)
                failed += 1
            else:
                items.append({"id": item.id, "text": item.text})
        if not items:
            return _stats(0, failed, skipped, 0.0, 0)
        ds = ray.data.from_items(items)
        n_pending = len(items)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # the same line order as the input
    linked = ds.map_batches(
        NoteLinker, fn_constructor_kwargs={"pipeline": str(Path(pipeline).resolve()),
                                           "encoding": encoding, "batch_size": batch_size,
                                           "delay": delay, "threads": threads,
                                           "root": str(root) if fmt == "txt" else None,
                                           "span_attrs": list(span_attrs),
                                           "doc_attrs": list(doc_attrs),
                                           "code": str(Path(code).resolve()) if code else None},
        batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=1, num_gpus=num_gpus,
        max_restarts=-1, max_task_retries=-1)
    bar = tqdm(total=n_pending, unit="note", disable=not progress, dynamic_ncols=True)
    n_linked = n_entities = 0
    start = time.perf_counter()
    try:
        for batch in linked.iter_batches(batch_size=None, batch_format="numpy"):
            for note_id, record, error, where in zip(batch["id"], batch["record"],
                                                     batch["error"], batch["where"]):
                note_id = str(note_id)
                if output.is_done(note_id):  # never twice, whatever Ray replays
                    continue
                if error:
                    output.write_error(NoteError(note_id, str(error), str(where)))
                    failed += 1
                else:
                    rec = json_loads(str(record))
                    output.write(Note(note_id, ""), rec)
                    n_linked += 1
                    n_entities += len(rec["entities"])
                bar.update(1)
    finally:
        bar.close()
    return _stats(n_linked, failed, skipped, time.perf_counter() - start, n_entities)


def _stats(linked: int, failed: int, skipped: int, seconds: float, entities: int
           ) -> Dict[str, Any]:
    return {"linked": linked, "failed": failed, "skipped": skipped, "seconds": round(seconds, 3),
            "notes_per_second": round(linked / seconds, 3) if seconds else 0.0,
            "entities": entities}
