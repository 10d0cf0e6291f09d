"""Mention-guided sampling: small local models write the context, the KB writes the mention.

A 135M-parameter model does not follow a chat instruction to write five Spanish sentences with a
bracketed mention (SmolLM2-135M-Instruct: 0 of 80 sentences accepted). It can continue a
few-shot list of real sentences. :class:`GuidedHFGenerator` samples one line per requested
sentence from such a list (``[guided.*]`` sections of the prompt file) and constrains the decoding
(as GENRE constrains it to names): the model writes freely until it opens a bracket, which it must
do within ``max_left`` tokens; the mention (a KB name of the concept) and its closing bracket are
then forced, and the model finishes the line with no other bracket. So every line parses; the
filters (length, fluency) judge the context. The mentions are KB names verbatim: invented variants
need a model that follows instructions (``HFGenerator`` or an OpenAI-compatible server).
"""
from __future__ import annotations

import random
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import spacy

from ..errors import Errors
from .backends import HFGenerator, _concept_seed
from .prompts import ConceptPrompt, mention_cycle


def token_classes(tokenizer, torch) -> Tuple:
    """Per-token flags of a tokenizer (bracket openers, other bracket tokens, line breaks,
    word ends) and the id of the opener the guide forces (``" ["`` when the vocabulary has it,
    else ``"["``)."""
    texts = [tokenizer.decode([i]) for i in range(len(tokenizer))]
    opener = torch.tensor([t.strip() == "[" for t in texts])
    bracket = torch.tensor([("[" in t or "]" in t) for t in texts]) & ~opener
    newline = torch.tensor(["\n" in t for t in texts])
    word_end = torch.tensor([not t[-1:].isalnum() for t in texts])
    spaced = [i for i, t in enumerate(texts) if t == " ["]
    plain = [i for i, t in enumerate(texts) if t == "["]
    if not (spaced or plain):
        raise ValueError(Errors.E078.format(problem="the tokenizer has no token for '['"))
    return opener, bracket, newline, word_end, (spaced or plain)[0]


def _start_tokens(tokenizer, mention: str) -> set:
    """First tokens of the mention as the model would write it (with or without a leading
    space, lower-case or capitalised), when they carry at least 3 of its letters."""
    out = set()
    for form in {mention, mention[:1].upper() + mention[1:]}:
        for text in (form, " " + form):
            ids = tokenizer.encode(text, add_special_tokens=False)
            if ids and len(tokenizer.decode(ids[:1]).strip()) >= 3:
                out.add(ids[0])
    return out


class MentionGuide:
    """Logits processor with one state per row: 0 free (no line break, no EOS, a bracket opener
    forced after ``max_left`` tokens), 1 forcing the mention's tokens, 2 free without brackets."""

    def __init__(self, tokenizer, width: int, mentions: Sequence[str], max_left: int,
                 torch, classes: Optional[Tuple] = None) -> None:
        classes = classes or token_classes(tokenizer, torch)
        self.opener, self.bracket, self.newline, self.word_end, self.open_id = classes
        self.eos = tokenizer.eos_token_id
        self.width = width
        self.forced = [tokenizer.encode(m + "]", add_special_tokens=False) for m in mentions]
        # The tokens that would start writing the mention without its bracket: their probability
        # goes to the bracket opener, so the model marks the mention where it wanted to write it.
        self.starts = [sorted(_start_tokens(tokenizer, m)) for m in mentions]
        self.max_left = max_left
        self.phase = [0] * len(self.forced)
        self.k = [0] * len(self.forced)

    def _advance(self, row: int, last: int) -> None:
        if self.phase[row] == 0 and bool(self.opener[last]):
            self.phase[row] = 1
        elif self.phase[row] == 1:
            self.k[row] += 1
            if self.k[row] >= len(self.forced[row]):
                self.phase[row] = 2

    def __call__(self, input_ids, scores):
        step = input_ids.shape[1] - self.width
        neg = float("-inf")
        for row in range(input_ids.shape[0]):
            if step > 0:
                self._advance(row, int(input_ids[row, -1]))
            phase = self.phase[row]
            if phase == 1:
                keep = self.forced[row][self.k[row]]
                value = scores[row, keep].clone()
                scores[row, :] = neg
                scores[row, keep] = value
                continue
            scores[row, self.bracket] = neg
            if phase == 0:
                scores[row, self.newline] = neg
                if self.eos is not None:
                    scores[row, self.eos] = neg
                starts = self.starts[row]
                if starts:
                    merged = scores[row, starts + [self.open_id]].logsumexp(dim=0)
                    scores[row, starts] = neg
                    scores[row, self.open_id] = merged
                if step >= self.max_left and self._at_word_end(input_ids[row, -1], step):
                    value = scores[row, self.open_id].clone()
                    scores[row, :] = neg
                    scores[row, self.open_id] = value if value > neg else 0.0
            else:
                scores[row, self.opener] = neg
        return scores

    def _at_word_end(self, last, step: int) -> bool:
        """Whether the last token ends a word (the bracket never splits one), or the line has
        gone on ``max_left + 8`` tokens."""
        return step == 0 or step >= self.max_left + 8 or bool(self.word_end[int(last)])

    def finished(self, input_ids, torch):
        """Rows that wrote their mention and then a line break."""
        done = [self.phase[r] == 2 and bool(self.newline[int(input_ids[r, -1])])
                for r in range(input_ids.shape[0])]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class GuidedHFGenerator(HFGenerator):
    """A local Hugging Face causal LM, few-shot and mention-guided (see the module docstring).

    model: a model loader (default: the offline SmolLM2-135M-Instruct).
    batch_size: concepts per ``generate`` call (``batch_size * n_mentions`` rows).
    max_left: tokens the model may write before the mention.
    max_examples: style examples of the prompt used as few-shot lines (each costs prompt tokens).
    tokens_per_sentence: new tokens per line at most.
    """

    name = "hf-guided"

    def __init__(self, model: Optional[Callable] = None, batch_size: int = 8,
                 tokens_per_sentence: int = 48, max_left: int = 20, temperature: float = 0.4,
                 top_p: float = 0.9, repetition_penalty: float = 1.05, seed: int = 0,
                 num_threads: Optional[int] = None, max_prompt_tokens: int = 768,
                 max_examples: int = 2) -> None:
        super().__init__(model=model, batch_size=batch_size, tokens_per_sentence=tokens_per_sentence,
                         temperature=temperature, top_p=top_p,
                         repetition_penalty=repetition_penalty, seed=seed, prime_prefix=False,
                         num_threads=num_threads, max_prompt_tokens=max_prompt_tokens)
        if max_left < 0:
            raise ValueError(Errors.E078.format(problem=f"max_left must be >= 0, got {max_left}"))
        self.max_left = max_left
        self.max_examples = max_examples
        self._classes: Optional[Tuple] = None  # token_classes of the loaded tokenizer

    def rows(self, p: ConceptPrompt) -> List[Tuple[str, str]]:
        """(prompt text, mention) for each sentence requested for ``p``."""
        if not p.guided_example:
            raise ValueError(Errors.E072.format(
                path=f"prompts/{p.lang}.txt", problem="no [guided.example] section (needed by the "
                "hf-guided backend)"))
        head = [p.guided_header] if p.guided_header else []
        for ex in p.examples[:self.max_examples]:
            start, end = ex.find("["), ex.find("]")
            if 0 <= start < end:
                head.append(p.guided_example.format_map(
                    {"mention": ex[start + 1:end], "sentence": ex, "prefix": p.prefix}))
        rng = random.Random(f"{self.seed}|{p.code}")
        out = []
        for mention in mention_cycle(p, rng):
            query = p.guided_example.format_map({"mention": mention, "sentence": "",
                                                 "prefix": p.prefix}).rstrip()
            out.append(("\n\n".join(head + [query]), mention))
        return out

    def _generate_batch(self, prompts: List[ConceptPrompt], torch) -> List[str]:
        from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

        tok, model = self.tokenizer, self.model
        rows = [(p, text, mention) for p in prompts for text, mention in self.rows(p)]
        enc = tok([text for _, text, _ in rows], return_tensors="pt", padding=True,
                  truncation=True, max_length=self.max_prompt_tokens, add_special_tokens=False)
        enc = {k: v.to(model.device) for k, v in enc.items()}
        width = enc["input_ids"].shape[1]
        if self._classes is None:
            self._classes = token_classes(tok, torch)
        guide = MentionGuide(tok, width, [mention for _, _, mention in rows], self.max_left, torch,
                             classes=self._classes)
        longest = max(len(f) for f in guide.forced)

        class LineDone(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return guide.finished(input_ids, torch)

        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            torch.manual_seed(_concept_seed(self.seed, prompts[0].code))
            gen = model.generate(
                **enc, do_sample=True, temperature=self.temperature, top_p=self.top_p,
                repetition_penalty=self.repetition_penalty,
                max_new_tokens=self.tokens_per_sentence + longest,
                pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                logits_processor=LogitsProcessorList([guide]),
                stopping_criteria=StoppingCriteriaList([LineDone()]),
            )
        lines = tok.batch_decode(gen[:, width:], skip_special_tokens=True)
        out: Dict[str, List[str]] = {}
        for (p, _, _), line in zip(rows, lines):
            body = " ".join(line.split("\n")[0].split())
            out.setdefault(p.code, []).append(f"{p.prefix} {body}")
        return ["\n".join(out[p.code]) for p in prompts]


@spacy.registry.misc("spacy_syncabel.GuidedHFGenerator.v1")
def guided_hf_generator(model: Optional[Callable] = None, batch_size: int = 8,
                        tokens_per_sentence: int = 48, max_left: int = 20,
                        temperature: float = 0.4, top_p: float = 0.9,
                        repetition_penalty: float = 1.05, seed: int = 0,
                        num_threads: Optional[int] = None,
                        max_examples: int = 2) -> GuidedHFGenerator:
    """Local Hugging Face causal LM, few-shot with the mention forced (small models)."""
    return GuidedHFGenerator(model=model, batch_size=batch_size,
                             tokens_per_sentence=tokens_per_sentence, max_left=max_left,
                             temperature=temperature, top_p=top_p,
                             repetition_penalty=repetition_penalty, seed=seed,
                             num_threads=num_threads, max_examples=max_examples)
