"""Linking raw notes: inputs, resumable outputs (JSONL, brat, shards), DocBin, the runner, Ray."""
from .inputs import Note, NoteError, count_notes, read_notes
from .link import LinkStats, guarded_pipe, link_notes
from .records import doc_to_record, record_to_brat, render_doc
from .writers import (BratOutput, DocBinOutput, JsonlOutput, ShardedOutput, iter_records,
                      open_output)

__all__ = ["Note", "NoteError", "read_notes", "count_notes", "LinkStats", "guarded_pipe",
           "link_notes", "doc_to_record", "record_to_brat", "render_doc", "BratOutput", "JsonlOutput",
           "ShardedOutput", "DocBinOutput", "iter_records", "open_output"]
