"""Commands that score linkers: evaluate, score, compare, judge."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..output_paths import check_outputs
from ._app import app, report as _report


@app.command()
def evaluate(
    pipeline: Path = typer.Argument(..., help="A pipeline folder holding syncabel_linker."),
    corpus: Path = typer.Argument(..., help="JSONL, brat folder, PubTator, marked TSV or .spacy."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="metrics.json to write."),
    train: Optional[Path] = typer.Option(None, help="Training corpus: report seen/unseen codes."),
    batch_size: int = typer.Option(64, help="Docs per batch given to the linker."),
    limit: int = typer.Option(0, help="Evaluate on the first N documents only (0: all)."),
    k: int = typer.Option(5, help="Report Recall@k for this k besides Recall@1."),
    num_beams: Optional[int] = typer.Option(None, help="Override the linker's beam count."),
    mode: Optional[str] = typer.Option(None, help="Override the mode: beam, beam_in_candidates or rerank."),
    candidates: Optional[int] = typer.Option(None, help="Override the number of retrieved candidates."),
    prior_weight: Optional[float] = typer.Option(None, help="Override: weight of the retrieval prior."),
    length_penalty: Optional[float] = typer.Option(None, help="Override: beam ranking by log-prob / length ** penalty."),
    threads: int = typer.Option(0, help="torch threads (0: torch's default)."),
    end_to_end: bool = typer.Option(True, "--end-to-end/--no-end-to-end", help="With an NER before the linker: also run the whole pipeline on the raw texts and score its own spans (strict NER and linking P/R/F1)."),
    bootstrap: int = typer.Option(0, "--bootstrap", help="Document resamples for 95% bootstrap intervals of Recall@1, overall and per label (0: none; the reference uses 1000)."),
    seed: int = typer.Option(42, "--seed", help="Seed of the bootstrap resamples (42: the reference's)."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write the calibration report (precision/coverage curve, ECE per path) as an HTML page."),
) -> None:
    """Link the corpus's gold mentions and report Recall@1/@k beside the TF-IDF baseline; with an
    NER in the pipeline, also score its own spans end to end (ner_f, linking_f)."""
    from ..corpus import read_corpus
    from ..evaluation.evaluate import evaluate_linker
    from ..evaluation.places import mention_places
    from ..training.pipeline_io import load_pipeline

    check_outputs({"--output": output, "--html": html},
                  {"the pipeline": pipeline, "the corpus": corpus, "--train": train})
    if threads:
        import torch

        torch.set_num_threads(threads)
    n_best = min(num_beams, k) if num_beams is not None else None
    nlp = load_pipeline(pipeline, num_beams=num_beams, n_best=n_best, mode=mode,
                        candidates=candidates, prior_weight=prior_weight,
                        length_penalty=length_penalty)
    docs = read_corpus(corpus)
    places = mention_places(docs, corpus)
    if limit:
        docs, places = docs[:limit], places[:limit]
    train_docs = read_corpus(train) if train is not None else None
    metrics = evaluate_linker(nlp, docs, train=train_docs, batch_size=batch_size, k=k,
                              source=str(corpus), end_to_end=end_to_end, places=places,
                              bootstrap=bootstrap, seed=seed)
    _report(metrics, output)
    if html is not None:
        from ..visualize import calibration_html

        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(calibration_html(metrics["calibration"]), encoding="utf-8")


@app.command()
def score(
    gold: Path = typer.Argument(..., help="Gold corpus (any format `read_corpus` reads)."),
    predictions: Path = typer.Argument(..., help="JSONL ({doc_id, start, end, codes}) or a SynCABEL inference TSV (Predicted_code)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="metrics.json to write."),
    kb: Optional[Path] = typer.Option(None, "--kb", help="KB file or folder: alternative codes map to main codes; gold codes outside it count as misses (recall@1_in_kb leaves them out)."),
    kb_language: Optional[list[str]] = typer.Option(None, "--kb-language", help="KB languages (repeatable): UMLS LAT codes (ENG, SPA, FRE...) or ISO codes (en, es, fr); all: every language. Default: English UMLS atoms, every SNOMED CT description file."),
    train: Optional[Path] = typer.Option(None, "--train", help="Training corpus: report seen/unseen codes."),
    k: int = typer.Option(5, "--k", help="Report Recall@k for this k besides Recall@1."),
    format: str = typer.Option("auto", "--format", help="Predictions format: auto, jsonl or tsv."),
    bootstrap: int = typer.Option(0, "--bootstrap", help="Document resamples for 95% bootstrap intervals of Recall@1, overall and per label (0: none; the reference uses 1000)."),
    seed: int = typer.Option(42, "--seed", help="Seed of the bootstrap resamples (42: the reference's)."),
) -> None:
    """Score a predictions file with the paper's metric (one gold mention per place and label, NO_CODE dropped, exact code sets)."""
    from ..evaluation.scoring_file import score_files

    check_outputs({"--output": output}, {"the gold corpus": gold, "the predictions": predictions,
                                         "--kb": kb, "--train": train})
    metrics = score_files(gold, predictions, kb=kb, train=train, k=k, format=format,
                          bootstrap=bootstrap, seed=seed,
                          kb_languages=kb_language or None)
    _report(metrics, output)


@app.command()
def compare(
    gold: Path = typer.Argument(..., help="Gold corpus (any format `read_corpus` reads)."),
    predictions_a: Path = typer.Argument(..., help="Predictions of system A (as `score` reads them)."),
    predictions_b: Path = typer.Argument(..., help="Predictions of system B, on the same gold mentions."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="JSON to write."),
    kb: Optional[Path] = typer.Option(None, "--kb", help="KB file or folder: alternative codes map to main codes."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Document resamples, the same for both systems."),
    seed: int = typer.Option(42, "--seed", help="Seed of the bootstrap resamples."),
    format: str = typer.Option("auto", "--format", help="Predictions format: auto, jsonl or tsv."),
) -> None:
    """Recall@1 of A and B, A - B with its 95% interval, and the two-sided paired bootstrap p-value."""
    from ..evaluation.scoring_file import compare_files

    result = compare_files(gold, predictions_a, predictions_b, kb=kb, bootstrap=bootstrap,
                           seed=seed, format=format)
    _report(result, output)


@app.command()
def judge(
    gold: Path = typer.Argument(..., help="Gold corpus (any format `read_corpus` reads)."),
    predictions: Path = typer.Argument(..., help="JSONL ({doc_id, start, end, codes}) or a SynCABEL inference TSV (Predicted_code)."),
    output: Path = typer.Option(..., "--output", "-o", help="judged.jsonl: one line per mention, appended as answers arrive (re-run to resume)."),
    kb: Path = typer.Option(..., "--kb", help="KB file or folder: the names of the gold and predicted concepts."),
    backend: str = typer.Option("openai", "--backend", help="openai (an OpenAI-compatible server: vLLM, llama.cpp) or hf (a local model)."),
    base_url: str = typer.Option("http://localhost:8000/v1", "--base-url", help="openai: the server's base URL."),
    model: Optional[str] = typer.Option(None, "--model", help="openai: model name; hf: local model folder or Hub id (default SmolLM2-135M-Instruct)."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env", help="openai: environment variable holding the API key ('' for none)."),
    concurrency: int = typer.Option(4, "--concurrency", help="openai: requests in flight."),
    timeout: float = typer.Option(120.0, "--timeout", help="openai: seconds per request."),
    max_retries: int = typer.Option(4, "--max-retries", help="openai: retries with exponential back-off."),
    response_format: str = typer.Option("json_schema", "--response-format", help="openai: constrain the answer to the verdict schema: json_schema (OpenAI, vLLM, llama-server), json_object (llama-cpp-python's server) or none."),
    batch_size: int = typer.Option(4, "--batch-size", help="hf: mentions per forward pass."),
    device: str = typer.Option("auto", "--device", help="hf: cpu, cuda, mps or auto."),
    threads: int = typer.Option(0, "--threads", help="hf: torch threads (0: torch's default)."),
    limit: int = typer.Option(0, "--limit", help="Judge only the first N wrong predictions (0: all)."),
    context_chars: int = typer.Option(300, "--context-chars", help="Context characters each side of the mention (within its sentence when known)."),
    format: str = typer.Option("auto", "--format", help="Predictions format: auto, jsonl or tsv."),
    summary: Optional[Path] = typer.Option(None, "--summary", help="Where to save the table (default OUTPUT.summary.json)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """LLM-as-a-judge: grade each wrong prediction EXACT, BROAD, NARROW or WRONG against the gold concept; prints the table (overall and per label)."""
    from ..errors import Errors
    from ..evaluation.judge import judge_files
    from ..evaluation.judge_backends import HFJudge, OpenAIJudge

    if backend == "openai":
        if not model:
            raise typer.BadParameter("--model is required with --backend openai")
        judge_backend = OpenAIJudge(base_url, model, response_format=response_format,
                                    api_key_env=api_key_env or None, concurrency=concurrency,
                                    timeout=timeout, max_retries=max_retries)
    elif backend == "hf":
        from ..models import hf_causal_lm, smollm2

        loader = hf_causal_lm(model, device=device) if model else smollm2(device=device)
        judge_backend = HFJudge(loader, batch_size=batch_size, num_threads=threads or None)
    else:
        raise typer.BadParameter(Errors.E380.format(backend=backend))
    with judge_backend:
        result = judge_files(gold, predictions, kb, output, judge_backend, limit=limit or None,
                             context_chars=context_chars, format=format, summary=summary,
                             progress=progress)
    typer.echo(result.table.render())
    typer.echo(f"asked {result.asked} (unreadable {result.invalid}), already judged "
               f"{result.skipped}, gold left out {result.excluded}, {result.seconds:.1f} s "
               f"-> {output}")
