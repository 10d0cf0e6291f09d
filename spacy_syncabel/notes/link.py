"""Link a stream of raw notes with a loaded pipeline and write one record per note.

Notes go through ``nlp.pipe`` in batches (``n_process`` processes). When a batch fails (a
component raises, in this process or a worker), the notes of that batch are linked one by one
in this process: the note that fails again is recorded in the errors file with its error,
the others are written, and ``nlp.pipe`` starts again on the rest. One bad note never loses
the run, and every batch that fails still advances by at least ``batch_size`` notes. A note
whose output cannot be written (its brat files are taken by another note, a file name the
system refuses, ...) is recorded in the errors file too, and the run goes on.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import (Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Sequence,
                    Tuple)

from spacy.language import Language
from spacy.tokens import Doc

from .inputs import Note, NoteError, NoteOrError
from .records import doc_to_record
from .writers import LinkOutput, NoteOutputError


@dataclass
class LinkStats:
    """What a run did; ``notes_per_second`` counts the notes linked by this run."""

    linked: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    notes_per_second: float = 0.0
    entities: int = 0

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _linker(nlp: Language) -> Any:
    """The pipeline's ``syncabel_linker`` (a component with a KB and ``group_for``), or None."""
    for _, proc in nlp.pipeline:
        if getattr(proc, "kb", None) is not None and hasattr(proc, "group_for"):
            return proc
    return None


def find_kb(nlp: Language) -> Any:
    """The KB of the pipeline's ``syncabel_linker`` (None without one)."""
    linker = _linker(nlp)
    return None if linker is None else linker.kb


def linked_spans_key(nlp: Language) -> Optional[str]:
    """The span group the pipeline's ``syncabel_linker`` links (None: ``doc.ents``)."""
    return getattr(_linker(nlp), "spans_key", None)


def _error_text(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}"
    return text if len(text) <= 2000 else text[:2000] + "..."


def guarded_pipe(nlp: Language, notes: Iterable[Note], *, batch_size: int = 16,
                 n_process: int = 1) -> Iterator[Tuple[Note, Optional[Doc], Optional[str]]]:
    """``(note, doc, None)`` for each linked note and ``(note, None, error)`` for a note that
    fails alone, in input order."""
    source = iter(notes)
    backlog: Deque[Note] = deque()  # fed to the running nlp.pipe, not out yet
    retry: Deque[Note] = deque()  # fed again after a failed batch
    source_error: List[BaseException] = []

    def feed() -> Iterator[Tuple[str, str]]:
        while True:
            if retry:
                note = retry.popleft()
            else:
                try:
                    note = next(source)
                except StopIteration:
                    return
                except Exception as err:  # the reader's own failure is not a note's
                    source_error.append(err)
                    return
            backlog.append(note)
            yield note.text, note.id

    while True:
        try:
            for doc, note_id in nlp.pipe(feed(), as_tuples=True, batch_size=batch_size,
                                         n_process=n_process):
                note = backlog.popleft()
                assert note.id == note_id, (note.id, note_id)
                yield note, doc, None
            break
        except Exception:
            suspects = [backlog.popleft() for _ in range(min(batch_size, len(backlog)))]
            retry.extendleft(reversed(backlog))  # fed but never linked: first in line again
            backlog.clear()
            for note in suspects:
                try:
                    yield note, nlp(note.text), None
                except Exception as err:
                    yield note, None, _error_text(err)
    if source_error:
        raise source_error[0]


def link_notes(nlp: Language, notes: Iterable[NoteOrError], output: LinkOutput, *,
               batch_size: int = 16, n_process: int = 1, progress: bool = True,
               total: Optional[int] = None, delay: float = 0.0,
               on_record: Optional[Callable[[Note, Dict[str, Any]], None]] = None,
               span_attrs: Sequence[str] = (), doc_attrs: Sequence[str] = ()) -> LinkStats:
    """Link every note not yet in ``output`` and write its record (or its error);
    ``span_attrs``/``doc_attrs``: extension attributes copied into the records."""
    from tqdm import tqdm

    kb, spans_key = find_kb(nlp), linked_spans_key(nlp)
    stats = LinkStats()
    bar = tqdm(total=total, initial=len(output.done) if total else 0, unit="note",
               disable=not progress, dynamic_ncols=True, smoothing=0.1)

    def pending() -> Iterator[Note]:
        for item in notes:
            if output.is_recorded(item):
                stats.skipped += 1
                continue
            if isinstance(item, NoteError):
                output.write_error(item)
                stats.failed += 1
                bar.update(1)
                continue
            yield item

    start = time.perf_counter()
    try:
        for note, doc, error in guarded_pipe(nlp, pending(), batch_size=batch_size,
                                             n_process=n_process):
            record, where = None, "linking"
            if doc is not None:
                try:
                    record = doc_to_record(doc, note.id, kb, span_attrs=span_attrs,
                                           doc_attrs=doc_attrs, spans_key=spans_key)
                except Exception as err:  # e.g. a component's odd extension value
                    error = _error_text(err)
            if record is not None:
                try:
                    output.write(note, record, doc=doc)
                except NoteOutputError as err:  # this note's output only: to the errors file
                    record, error, where = None, str(err), "writing"
            if record is None:
                output.write_error(NoteError(note.id, error or "", where))
                stats.failed += 1
            else:
                stats.linked += 1
                stats.entities += len(record["entities"])
                if on_record is not None:
                    on_record(note, record)
            bar.update(1)
            if delay:
                time.sleep(delay)
    finally:
        bar.close()
    stats.seconds = round(time.perf_counter() - start, 3)
    stats.notes_per_second = round(stats.linked / stats.seconds, 3) if stats.seconds else 0.0
    return stats
