"""Speed and memory measurements."""
from __future__ import annotations

import resource
import sys
import time
from contextlib import contextmanager
from typing import Dict, Iterator


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@contextmanager
def timer() -> Iterator[Dict[str, float]]:
    """``with timer() as t: ...`` then ``t["seconds"]``."""
    out: Dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - start
