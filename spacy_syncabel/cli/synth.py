"""The synth command: synthetic annotated sentences for a KB's concepts."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..output_paths import check_outputs
from ._app import app


@app.command()
def synth(
    kb_file: Path = typer.Argument(..., help="The KB (any format `spacy_syncabel.kb.read_file` reads)."),
    output: Path = typer.Argument(..., help="Output JSONL (corpus format); OUTPUT.done records finished concepts."),
    kb_language: Optional[list[str]] = typer.Option(None, "--kb-language", help="KB languages (repeatable): UMLS LAT codes (ENG, SPA, FRE...) or ISO codes (en, es, fr); all: every language. Default: English UMLS atoms, every SNOMED CT description file."),
    backend: str = typer.Option("template", help="hf (local model), openai (HTTP server) or template (no LLM)."),
    config: Optional[Path] = typer.Option(None, help="A config whose [generator] block (@misc = ...) replaces --backend."),
    limit: int = typer.Option(0, help="Only the first N concepts of the shard (0: all)."),
    shard: str = typer.Option("0/1", help="i/n: this worker's deterministic share of the KB."),
    lang: str = typer.Option("es", help="Language of the prompts and sentences (es, fr, en)."),
    style: Optional[str] = typer.Option(None, help="clinical or abstract (default: the prompt file's)."),
    corpus: Optional[Path] = typer.Option(None, help="Training corpus: real sentences of each group as style examples."),
    n_mentions: Optional[int] = typer.Option(None, help="Sentences per concept (default 5 for clinical Spanish, else 3)."),
    prompt_file: Optional[Path] = typer.Option(None, help="A prompt file of your own (format of synthesis/prompts/es.txt)."),
    base_url: str = typer.Option("http://localhost:8000/v1", help="openai: the server's base URL."),
    model: Optional[str] = typer.Option(None, help="openai: model name; hf: local model folder (default SmolLM2-135M-Instruct)."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="openai: environment variable holding the API key."),
    concurrency: int = typer.Option(4, help="openai: requests in flight."),
    timeout: float = typer.Option(120.0, help="openai: seconds per request."),
    max_retries: int = typer.Option(4, help="openai: retries with exponential back-off."),
    batch_size: int = typer.Option(8, help="hf: prompts per generate call."),
    guided: bool = typer.Option(True, help="hf: few-shot with the mention forced (small models; "
                                "mentions are KB names). --no-guided: the chat prompt, for models "
                                "that follow instructions and invent variants."),
    max_new_tokens: Optional[int] = typer.Option(None, help="hf/openai: tokens per answer (default ~48 per sentence)."),
    temperature: Optional[float] = typer.Option(None, help="Sampling temperature (default: 0.4 hf guided, else 0.8)."),
    device: str = typer.Option("auto", help="hf: cpu, cuda, mps or auto."),
    seed: int = typer.Option(0, help="Seed of sampling, templates and example choice."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    raw_log: Optional[Path] = typer.Option(None, help="Append every raw model output to this JSONL (debugging)."),
    delay: float = typer.Option(0.0, hidden=True, help="template: sleep per concept (tests)."),
) -> None:
    """Write synthetic, annotated sentences for the KB's concepts (resumable; re-run to resume)."""
    import srsly

    from ..kb import read_file
    from ..synthesis import BACKENDS, PromptBuilder, synthesize
    from ..synthesis.backends import HFGenerator, OpenAIGenerator, TemplateGenerator
    from ..synthesis.guided import GuidedHFGenerator
    from ..errors import Errors
    from ..synthesis.output import done_path

    check_outputs({"OUTPUT": output, "OUTPUT.done": done_path(output), "--raw-log": raw_log},
                  {"the KB": kb_file, "--corpus": corpus, "--prompt-file": prompt_file,
                   "--config": config})
    kb = read_file(kb_file, languages=kb_language or None)
    sampling = {} if temperature is None else {"temperature": temperature}  # else each default
    if config is not None:
        from spacy import registry
        from spacy.util import load_config

        cfg = load_config(config, interpolate=True)
        generator = registry.resolve({"generator": cfg["generator"]})["generator"]
    elif backend == "template":
        generator = TemplateGenerator(seed=seed, delay=delay)
    elif backend == "hf":
        from ..models import hf_causal_lm, smollm2

        loader = (hf_causal_lm(model, device=device) if model
                  else smollm2(device=device))
        if guided:
            generator = GuidedHFGenerator(model=loader, batch_size=batch_size, seed=seed,
                                          **sampling)
        else:
            generator = HFGenerator(model=loader, batch_size=batch_size,
                                    max_new_tokens=max_new_tokens, seed=seed, **sampling)
    elif backend == "openai":
        if not model:
            raise typer.BadParameter("--model is required with --backend openai")
        generator = OpenAIGenerator(base_url=base_url, model=model, api_key_env=api_key_env or None,
                                    concurrency=concurrency, timeout=timeout,
                                    max_retries=max_retries, max_tokens=max_new_tokens,
                                    seed=seed, **sampling)
    else:
        raise typer.BadParameter(Errors.E073.format(backend=backend, backends=list(BACKENDS)))
    builder = PromptBuilder(kb, lang=lang, style=style, n_mentions=n_mentions, corpus=corpus,
                            seed=seed, prompt_file=prompt_file)
    try:
        stats = synthesize(kb, output, generator, builder, limit=limit or None, shard=shard,
                           progress=progress, raw_log=raw_log)
    finally:
        generator.close()
    typer.echo(srsly.json_dumps(stats.to_dict(), indent=2))
