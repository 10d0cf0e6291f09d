"""Text generators for synthetic sentences, registered in spaCy's ``misc`` registry.

* ``spacy_syncabel.HFGenerator.v1``: a local Hugging Face causal LM (default: the offline
  SmolLM2-135M-Instruct of ``spacy_syncabel.models.smollm2()``), batched sampling.
* ``spacy_syncabel.OpenAIGenerator.v1``: any OpenAI-compatible chat-completions server
  (vLLM, TGI, SGLang, llama.cpp), concurrent requests, retries with exponential back-off.
* ``spacy_syncabel.TemplateGenerator.v1``: KB-guided templates (``templates/{lang}.txt``), no LLM.
* ``spacy_syncabel.GuidedHFGenerator.v1`` (in ``guided.py``): a local model, few-shot, with the
  mention forced into each line (for small models).

A generator maps a list of :class:`ConceptPrompt` to one raw text per prompt, holding
``{prefix} sentence with [mention]`` lines that :func:`parse_output` reads. The runner consumes
:meth:`Generator.stream`, which yields ``(prompt, raw)`` pairs as they are ready: chunks of
``chunk_size`` prompts for local models, and for the HTTP backend a window of requests that is
refilled as each one finishes (so ``concurrency`` requests stay in flight across concepts).
"""
from __future__ import annotations

import email.utils
import itertools
import logging
import os
import random
import threading
import time
import warnings
import zlib
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple,
                    Union)

import spacy

from ..errors import Errors, Warnings
from ._textfile import SectionedText, load_sectioned
from .prompts import ConceptPrompt, mention_cycle

logger = logging.getLogger(__name__)


def _concept_seed(seed: int, code: str) -> int:
    return (zlib.crc32(f"{seed}|{code}".encode("utf8")) & 0x7FFFFFFF)


class Generator:
    """Base class: ``generate(prompts) -> list of raw texts``; ``chunk_size`` prompts a call."""

    name = "base"
    chunk_size = 1

    def generate(self, prompts: Sequence[ConceptPrompt]) -> List[str]:  # pragma: no cover
        raise NotImplementedError

    def stream(self, prompts: Iterable[ConceptPrompt]) -> Iterator[Tuple[ConceptPrompt, str]]:
        """``(prompt, raw)`` pairs in input order, ``chunk_size`` prompts per ``generate``
        call; ``prompts`` is consumed lazily."""
        step = max(1, int(self.chunk_size))
        it = iter(prompts)
        while True:
            chunk = list(itertools.islice(it, step))
            if not chunk:
                return
            raws = self.generate(chunk)
            if len(raws) != len(chunk):
                raise RuntimeError(Errors.E079.format(got=len(raws), expected=len(chunk)))
            yield from zip(chunk, raws)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----------------------------------------------------------------------------- templates


class TemplateGenerator(Generator):
    """KB-guided sentences from the templates of ``templates/{lang}.txt`` (no LLM).

    Each concept gets ``n_mentions`` sentences whose mentions cycle through its KB names;
    a definition template is used when the KB has a definition, a synonym template when the
    concept has another name, else a template of the style (and group when there is one).
    delay: seconds to sleep per concept (to test interruptions).
    """

    name = "template"

    def __init__(self, templates_file: Union[None, str, Path] = None, seed: int = 0,
                 delay: float = 0.0, chunk_size: int = 64) -> None:
        self.templates_file = templates_file
        self.seed = seed
        self.delay = float(delay)
        self.chunk_size = 1 if self.delay else chunk_size  # slow mode: write as it goes
        self._cache: Dict[str, SectionedText] = {}

    def templates(self, lang: str) -> SectionedText:
        if lang not in self._cache:
            self._cache[lang] = load_sectioned("templates", lang, self.templates_file)
        return self._cache[lang]

    def version(self, lang: str) -> str:
        return self.templates(lang).version

    def generate(self, prompts: Sequence[ConceptPrompt]) -> List[str]:
        out = []
        for p in prompts:
            out.append(self.render(p))
            if self.delay:
                time.sleep(self.delay)
        return out

    def render(self, p: ConceptPrompt) -> str:
        tpl = self.templates(p.lang)
        rng = random.Random(f"{self.seed}|{p.code}")
        generic = tpl.lines(p.style)
        contextual = tpl.lines(f"{p.style}.{p.group}") or generic  # the group's own first
        if not contextual:
            raise ValueError(Errors.E071.format(path=tpl.path, style=p.style))
        names = p.names or [p.name]
        lines = []
        used = set()
        for mention in mention_cycle(p, rng):
            others = [n for n in names if n != mention]
            roll = rng.random()
            if p.definition and tpl.lines("definition") and roll < 0.25:
                pool = tpl.lines("definition")
            elif others and tpl.lines("synonym") and roll < 0.45:
                pool = tpl.lines("synonym")
            else:
                pool = contextual
            fresh = ([t for t in pool if (t, mention) not in used]
                     or [t for t in generic if (t, mention) not in used] or pool)
            template = rng.choice(fresh)
            used.add((template, mention))
            patient = rng.choice(("Varón", "Mujer", "Paciente")) if p.lang == "es" else "Patient"
            values = {
                "mention": mention, "other": rng.choice(others) if others else mention,
                "definition": (p.definition or "").rstrip(". "), "age": rng.randint(18, 89),
                "days": rng.randint(2, 21), "patient": patient, "patient_lc": patient.lower(),
            }
            lines.append(f"{p.prefix} {template.format_map(values)}")
        return "\n".join(lines)


@spacy.registry.misc("spacy_syncabel.TemplateGenerator.v1")
def template_generator(templates_file: Optional[str] = None, seed: int = 0,
                       delay: float = 0.0) -> TemplateGenerator:
    """KB-guided template generator (no LLM, offline, fast)."""
    return TemplateGenerator(templates_file=templates_file, seed=seed, delay=delay)


# ----------------------------------------------------------------------------- Hugging Face


class HFGenerator(Generator):
    """Batched sampling with a local Hugging Face causal LM.

    model: a model loader (``spacy_syncabel.models`` ``ModelLoader``); default SmolLM2-135M-Instruct.
    batch_size: prompts per ``generate`` call.
    max_new_tokens: default ``tokens_per_sentence * n_mentions + 16``.
    prime_prefix: start the answer with the prefix (``SENTENCE:``) so even small models follow
        the format.
    The chat template is applied when the tokenizer has one.
    """

    name = "hf"

    def __init__(self, model: Optional[Callable] = None, batch_size: int = 8,
                 max_new_tokens: Optional[int] = None, tokens_per_sentence: int = 48,
                 temperature: float = 0.8, top_p: float = 0.95, repetition_penalty: float = 1.1,
                 seed: int = 0, prime_prefix: bool = True, num_threads: Optional[int] = None,
                 max_prompt_tokens: int = 1024) -> None:
        if batch_size < 1:
            raise ValueError(Errors.E078.format(problem=f"batch_size must be >= 1, got {batch_size}"))
        self.loader = model
        self.batch_size = self.chunk_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.tokens_per_sentence = tokens_per_sentence
        self.temperature = temperature
        self.top_p = top_p
        self.repetition_penalty = repetition_penalty
        self.seed = seed
        self.prime_prefix = prime_prefix
        self.num_threads = num_threads
        self.max_prompt_tokens = max_prompt_tokens
        self.model = None
        self.tokenizer = None
        self.model_name = "hf"

    def load(self) -> None:
        if self.model is not None:
            return
        from ..models import load_for_inference

        self.model, self.tokenizer = load_for_inference(self.loader, self.num_threads)
        self.tokenizer.padding_side = "left"
        self.tokenizer.truncation_side = "left"  # an over-long prompt loses its start, not its end
        self.model_name = str(getattr(self.model.config, "_name_or_path", "") or "hf")

    def render(self, p: ConceptPrompt) -> str:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(p.messages, tokenize=False, add_generation_prompt=True)
        else:
            text = p.plain_text()
        if self.prime_prefix:
            text += p.prefix + " "
        return text

    def generate(self, prompts: Sequence[ConceptPrompt]) -> List[str]:
        import torch

        self.load()
        out: List[str] = []
        for i in range(0, len(prompts), self.batch_size):
            out.extend(self._generate_batch(list(prompts[i:i + self.batch_size]), torch))
        return out

    def _generate_batch(self, prompts: List[ConceptPrompt], torch) -> List[str]:
        from transformers import StoppingCriteria, StoppingCriteriaList

        tok, model = self.tokenizer, self.model
        texts = [self.render(p) for p in prompts]
        enc = tok(texts, return_tensors="pt", padding=True, truncation=True,
                  max_length=self.max_prompt_tokens, add_special_tokens=False)
        enc = {k: v.to(model.device) for k, v in enc.items()}
        n_max = max(p.n_mentions for p in prompts)
        max_new = self.max_new_tokens or self.tokens_per_sentence * n_max + 16
        width = enc["input_ids"].shape[1]
        wanted = [p.n_mentions for p in prompts]
        primed = self.prime_prefix

        class EnoughLines(StoppingCriteria):
            """Stop a sequence once it has written its n lines."""

            def __call__(self, input_ids, scores, **kwargs):
                new = tok.batch_decode(input_ids[:, width:], skip_special_tokens=True)
                done = []
                for text, n in zip(new, wanted):
                    lines = [ln for ln in text.split("\n")[:-1] if ln.strip()]
                    done.append(len(lines) >= n)
                return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            torch.manual_seed(_concept_seed(self.seed, prompts[0].code))
            gen = model.generate(
                **enc, do_sample=True, temperature=self.temperature, top_p=self.top_p,
                repetition_penalty=self.repetition_penalty, max_new_tokens=max_new,
                pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                stopping_criteria=StoppingCriteriaList([EnoughLines()]),
            )
        outs = tok.batch_decode(gen[:, width:], skip_special_tokens=True)
        if primed:
            outs = [f"{p.prefix} {o}" for p, o in zip(prompts, outs)]
        return outs


@spacy.registry.misc("spacy_syncabel.HFGenerator.v1")
def hf_generator(model: Optional[Callable] = None, batch_size: int = 8,
                 max_new_tokens: Optional[int] = None, temperature: float = 0.8,
                 top_p: float = 0.95, repetition_penalty: float = 1.1, seed: int = 0,
                 prime_prefix: bool = True, num_threads: Optional[int] = None) -> HFGenerator:
    """Local Hugging Face causal LM (default: offline SmolLM2-135M-Instruct)."""
    return HFGenerator(model=model, batch_size=batch_size, max_new_tokens=max_new_tokens,
                       temperature=temperature, top_p=top_p,
                       repetition_penalty=repetition_penalty, seed=seed,
                       prime_prefix=prime_prefix, num_threads=num_threads)


# ----------------------------------------------------------------------------- OpenAI-compatible

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def retry_after_seconds(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date), or None
    when it is absent or unreadable."""
    if value is None or not str(value).strip():
        return None
    value = str(value).strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


class OpenAIGenerator(Generator):
    """Chat completions from an OpenAI-compatible server (vLLM, TGI, SGLang, llama.cpp, ...).

    base_url: e.g. ``http://localhost:8000/v1`` (``/chat/completions`` is appended).
    model: the model name the server expects.
    api_key_env: environment variable holding the API key (read once; never logged).
    concurrency: requests in flight at once (thread pool). :meth:`stream` keeps them in
        flight across concepts: a finished request is replaced by the next concept's at once,
        and results come back in the order they finish.
    max_retries / backoff / max_backoff: retries on connection errors, time-outs and HTTP
        408/409/425/429/5xx, sleeping ``backoff * 2**attempt`` (capped, with jitter).
    max_retry_after: a ``Retry-After`` header (429/503) pauses every worker for that long,
        at most this many seconds, before the next request.
    timeout: seconds per request.
    """

    name = "openai"

    def __init__(self, base_url: str, model: str, api_key_env: Optional[str] = "OPENAI_API_KEY",
                 concurrency: int = 4, max_retries: int = 4, backoff: float = 1.0,
                 max_backoff: float = 30.0, timeout: float = 120.0,
                 max_tokens: Optional[int] = None, tokens_per_sentence: int = 64,
                 temperature: float = 0.8, top_p: float = 0.95, seed: Optional[int] = 0,
                 extra_body: Optional[Dict[str, Any]] = None,
                 max_retry_after: float = 300.0) -> None:
        import httpx

        if concurrency < 1:
            raise ValueError(Errors.E078.format(problem=f"concurrency must be >= 1, got {concurrency}"))
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.model_name = model
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.chunk_size = concurrency * 4
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = float(max_retry_after)
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.tokens_per_sentence = tokens_per_sentence
        self.temperature = temperature
        self.top_p = top_p
        self.seed = seed
        self.extra_body = dict(extra_body or {})
        key = os.environ.get(api_key_env) if api_key_env else None
        if api_key_env and key is None:
            warnings.warn(Warnings.W070.format(env=api_key_env, url=self.base_url), stacklevel=2)
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(
            headers=headers, timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency))
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="synth-http")
        self._lock = threading.Lock()
        self._pause_until = 0.0  # monotonic time before which no request is sent (Retry-After)
        self.n_retries = 0
        self.n_requests = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def __repr__(self) -> str:  # the key is never shown
        return (f"OpenAIGenerator(base_url={self.base_url!r}, model={self.model_name!r}, "
                f"api_key_env={self.api_key_env!r}, concurrency={self.concurrency})")

    def payload(self, p: ConceptPrompt) -> Dict[str, Any]:
        body: Dict[str, Any] = {
            "model": self.model_name, "messages": p.messages,
            "max_tokens": self.max_tokens or self.tokens_per_sentence * p.n_mentions + 16,
            "temperature": self.temperature, "top_p": self.top_p, "n": 1,
        }
        if self.seed is not None:
            body["seed"] = _concept_seed(self.seed, p.code)
        body.update(self.extra_body)
        return body

    def describe(self, p: ConceptPrompt) -> str:
        """What a request is for, in log messages."""
        return f"concept {p.code}"

    def _wait_turn(self) -> None:
        """Sleep while a server's ``Retry-After`` pause is running."""
        while True:
            with self._lock:
                delay = self._pause_until - time.monotonic()
            if delay <= 0:
                return
            time.sleep(delay)

    def _pause_all(self, seconds: float) -> None:
        seconds = min(seconds, self.max_retry_after)
        with self._lock:
            self._pause_until = max(self._pause_until, time.monotonic() + seconds)

    def _post(self, body: Dict[str, Any]):
        with self._lock:
            self.n_requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return self._client.post(self.url, json=body)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _request(self, p: ConceptPrompt) -> str:
        import httpx

        body = self.payload(p)
        last: str = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                time.sleep(delay * (0.5 + random.random() / 2))
                with self._lock:
                    self.n_retries += 1
            self._wait_turn()
            try:
                resp = self._post(body)
            except httpx.HTTPError as err:  # connection errors, time-outs
                last = f"{type(err).__name__}: {err}"
                logger.warning("Request for %s failed (%s), attempt %d/%d", self.describe(p), last,
                               attempt + 1, self.max_retries + 1)
                continue
            if resp.status_code in _RETRY_STATUS:
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
                wait_s = retry_after_seconds(resp.headers.get("Retry-After"))
                if wait_s is not None:
                    self._pause_all(wait_s)
                logger.warning("Request for %s got %s, attempt %d/%d%s", self.describe(p), last,
                               attempt + 1, self.max_retries + 1,
                               f" (Retry-After {wait_s:g} s)" if wait_s is not None else "")
                continue
            if resp.status_code >= 400:
                raise RuntimeError(Errors.E074.format(url=self.url, status=resp.status_code,
                                                      body=resp.text[:300]))
            try:
                data = resp.json()
                return data["choices"][0]["message"]["content"] or ""
            except (ValueError, KeyError, IndexError, TypeError) as err:
                last = f"malformed response ({type(err).__name__}): {resp.text[:200]}"
                continue
        raise RuntimeError(Errors.E075.format(url=self.url, attempts=self.max_retries + 1, err=last))

    def generate(self, prompts: Sequence[ConceptPrompt]) -> List[str]:
        return list(self._pool.map(self._request, prompts))

    def stream(self, prompts: Iterable[ConceptPrompt]) -> Iterator[Tuple[ConceptPrompt, str]]:
        """``(prompt, raw)`` pairs in the order the requests finish. ``2 * concurrency``
        requests are queued at a time (``concurrency`` of them running), and each finished one
        is replaced before its result is handed out. When a request fails for good, no new one
        is started, the running ones are finished and handed out, then the error is raised."""
        it = iter(prompts)
        pending: Dict[Future, ConceptPrompt] = {}
        depth = 2 * self.concurrency
        error: Optional[BaseException] = None

        def refill() -> None:
            while error is None and len(pending) < depth:
                p = next(it, None)
                if p is None:
                    return
                pending[self._pool.submit(self._request, p)] = p

        try:
            refill()
            while pending:
                finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                ready = []
                for fut in finished:
                    p = pending.pop(fut)
                    exc = fut.exception()
                    if exc is None:
                        ready.append((p, fut.result()))
                    elif error is None:
                        error = exc
                if error is not None:  # drop the queued requests, keep the running ones
                    pending = {f: q for f, q in pending.items() if not f.cancel()}
                refill()
                yield from ready
        finally:
            for fut in pending:
                fut.cancel()
        if error is not None:
            raise error

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()


@spacy.registry.misc("spacy_syncabel.OpenAIGenerator.v1")
def openai_generator(base_url: str, model: str, api_key_env: Optional[str] = "OPENAI_API_KEY",
                     concurrency: int = 4, max_retries: int = 4, backoff: float = 1.0,
                     timeout: float = 120.0, max_tokens: Optional[int] = None,
                     temperature: float = 0.8, top_p: float = 0.95,
                     seed: Optional[int] = 0, max_retry_after: float = 300.0) -> OpenAIGenerator:
    """OpenAI-compatible chat-completions server (vLLM, TGI, SGLang, llama.cpp)."""
    return OpenAIGenerator(base_url=base_url, model=model, api_key_env=api_key_env,
                           concurrency=concurrency, max_retries=max_retries, backoff=backoff,
                           timeout=timeout, max_tokens=max_tokens, temperature=temperature,
                           top_p=top_p, seed=seed, max_retry_after=max_retry_after)
