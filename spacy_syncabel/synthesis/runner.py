"""Run a generator over KB concepts and write the accepted sentences (resumable, shardable)."""
from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union

from ..errors import Errors
from .backends import Generator
from .output import SynthWriter
from .parsing import FilterConfig, parse_output
from .prompts import ConceptPrompt, PromptBuilder

if TYPE_CHECKING:  # pragma: no cover
    from ..kb import ConceptKB


def parse_shard(value: Union[str, Tuple[int, int], None]) -> Tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n`` (E051 otherwise)."""
    if value is None:
        return 0, 1
    if isinstance(value, tuple):
        i, n = value
    else:
        try:
            i_s, n_s = str(value).split("/")
            i, n = int(i_s), int(n_s)
        except ValueError:
            raise ValueError(Errors.E051.format(value=value)) from None
    if not 0 <= i < n:
        raise ValueError(Errors.E051.format(value=value))
    return i, n


def _code_hash(code: str) -> int:
    return int.from_bytes(hashlib.sha1(code.encode("utf8")).digest()[:8], "big")


def select_concepts(kb: "ConceptKB", shard: Union[str, Tuple[int, int], None] = None,
                    limit: Optional[int] = None) -> List[str]:
    """The codes of one shard in a fixed pseudo-random order (by hash), the first ``limit``.

    Depends only on the codes: every worker given the same KB and ``i/n`` gets the same list,
    and the n shards partition the KB.
    """
    i, n = parse_shard(shard)
    codes = sorted(kb.codes, key=lambda c: (_code_hash(c), c))
    codes = [c for c in codes if _code_hash(c) % n == i]
    if limit is not None and limit > 0:
        codes = codes[:limit]
    return codes


@dataclass
class SynthStats:
    concepts_selected: int = 0
    concepts_skipped: int = 0  # done by an earlier run
    concepts_done: int = 0  # done by this run
    requested: int = 0
    accepted: int = 0
    kb_name_mentions: int = 0
    outputs_with_examples: int = 0
    rejected: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.requested if self.requested else 0.0

    @property
    def concepts_per_minute(self) -> float:
        return 60.0 * self.concepts_done / self.seconds if self.seconds else 0.0

    def to_dict(self) -> Dict[str, Any]:
        return {
            "concepts_selected": self.concepts_selected,
            "concepts_skipped": self.concepts_skipped,
            "concepts_done": self.concepts_done,
            "requested": self.requested,
            "accepted": self.accepted,
            "acceptance_rate": round(self.acceptance_rate, 4),
            "kb_name_mentions": self.kb_name_mentions,
            "concepts_with_examples": self.outputs_with_examples,
            "rejected": dict(self.rejected.most_common()),
            "seconds": round(self.seconds, 2),
            "concepts_per_minute": round(self.concepts_per_minute, 2),
        }


def build_records(p: ConceptPrompt, sentences, backend: str) -> List[Dict[str, Any]]:
    return [
        {
            "id": f"synth-{p.code}-{k}",
            "text": s.text,
            "entities": [{"start": s.start, "end": s.end, "label": p.group, "code": p.code}],
            "meta": {"concept": p.code, "backend": backend, "prompt_version": p.prompt_version},
        }
        for k, s in enumerate(sentences)
    ]


def synthesize(
    kb: "ConceptKB",
    output: Union[str, Path],
    generator: Generator,
    builder: Optional[PromptBuilder] = None,
    *,
    limit: Optional[int] = None,
    shard: Union[str, Tuple[int, int], None] = None,
    filters: Optional[FilterConfig] = None,
    progress: bool = True,
    raw_log: Union[str, Path, None] = None,
) -> SynthStats:
    """Generate, filter and append synthetic sentences for the selected concepts.

    Concepts already recorded in ``OUTPUT.done`` are skipped, so the same call resumes an
    interrupted run. Concepts are written in the order the generator finishes them (input
    order for local models, completion order for the concurrent HTTP backend); each is
    written once, with its ``.done`` line. ``raw_log``: append every raw output (``{"concept", "raw"}`` lines) there,
    to inspect what the filters rejected. Returns the statistics of this run.
    """
    from tqdm import tqdm

    builder = builder or PromptBuilder(kb)
    i, n = parse_shard(shard)
    codes = select_concepts(kb, (i, n), limit)
    stats = SynthStats(concepts_selected=len(codes))
    backend = generator.name
    version_of = getattr(generator, "version", None)  # templates have their own version
    raw_file = open(raw_log, "a", encoding="utf8") if raw_log is not None else None
    with SynthWriter(output, shard_hint=f"{i}/{n}") as writer:
        todo = [c for c in codes if c not in writer.done]
        stats.concepts_skipped = len(codes) - len(todo)
        start = time.perf_counter()
        bar = tqdm(total=len(todo), unit="concept", disable=not progress, dynamic_ncols=True,
                   desc=f"synth[{backend}]")

        def prompt_of(code: str) -> ConceptPrompt:
            p = builder.build(code)
            if version_of is not None:
                p.prompt_version = version_of(p.lang)
            return p

        try:
            # built lazily: the generator takes the next concept when it has room for it
            for p, raw in generator.stream(prompt_of(code) for code in todo):
                if raw_file is not None:
                    raw_file.write(json.dumps({"concept": p.code, "raw": raw},
                                              ensure_ascii=False) + "\n")
                    raw_file.flush()
                sents, rejected = parse_output(
                    raw, prefix=p.prefix, n_mentions=p.n_mentions, names=p.names,
                    lang=p.lang, examples=p.examples, filters=filters,
                    vocabulary=builder.vocabulary)
                writer.write_concept(p.code, build_records(p, sents, backend), {
                    "requested": p.n_mentions, "accepted": len(sents),
                    "rejected": dict(rejected)})
                stats.concepts_done += 1
                stats.requested += p.n_mentions
                stats.accepted += len(sents)
                stats.kb_name_mentions += sum(s.is_kb_name for s in sents)
                stats.outputs_with_examples += bool(sents)
                stats.rejected.update(rejected)
                bar.update(1)
                bar.set_postfix(acc=f"{stats.acceptance_rate:.0%}", refresh=False)
        finally:
            bar.close()
            if raw_file is not None:
                raw_file.close()
            stats.seconds = time.perf_counter() - start
    return stats
