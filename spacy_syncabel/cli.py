"""Command line: ``python -m spacy_syncabel <command>`` or ``spacy-syncabel <command>``, both
through :func:`main`; project.yml calls these."""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer

from .linking.settings import setting_default
from .output_paths import check_outputs

app = typer.Typer(help="spacy-syncabel: generative biomedical entity linking for spaCy.",
                  no_args_is_help=True, add_completion=False)


def _report(metrics: dict, output: Optional[Path]) -> None:
    """Print the metrics' scalar values and per-label tables; write them all to ``output``
    (metrics.json)."""
    import srsly

    from .evaluation.summary import label_tables

    typer.echo(srsly.json_dumps({k: v for k, v in metrics.items() if not isinstance(v, dict)},
                                indent=2))
    tables = label_tables(metrics)
    if tables:
        typer.echo("\n" + tables)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(output, metrics)


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
    from .corpus import read_corpus
    from .evaluation.evaluate import evaluate_linker
    from .evaluation.places import mention_places
    from .training.pipeline_io import load_pipeline

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
        from .visualize import calibration_html

        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(calibration_html(metrics["calibration"]), encoding="utf-8")


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

    from .kb import read_file
    from .synthesis import BACKENDS, PromptBuilder, synthesize
    from .synthesis.backends import HFGenerator, OpenAIGenerator, TemplateGenerator
    from .synthesis.guided import GuidedHFGenerator
    from .errors import Errors
    from .synthesis.output import done_path

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
        from .models import hf_causal_lm, smollm2

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


@app.command()
def train(
    kb: Path = typer.Option(..., "--kb", help="The KB file (any format `kb.read_file` reads)."),
    kb_language: Optional[list[str]] = typer.Option(None, "--kb-language", help="KB languages (repeatable): UMLS LAT codes (ENG, SPA, FRE...) or ISO codes (en, es, fr); all: every language. Default: English UMLS atoms, every SNOMED CT description file."),
    train_corpus: Path = typer.Option(..., "--train", help="Training corpus (any format `read_corpus` reads)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder: model-best, model-last, checkpoints, training_log.jsonl."),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Dev corpus: Recall@1 by constrained decoding picks model-best."),
    synthetic: Optional[Path] = typer.Option(None, "--synthetic", help="Synthetic corpus, mixed 1:1 with the real one (real upsampled)."),
    base_model: str = typer.Option("tiny", "--base-model", help="Local folder or Hub id, smollm2, smollm2:N (first N layers), tiny or tiny:HIDDEN,LAYERS."),
    lang: str = typer.Option("es", "--lang", help="Language of the blank spaCy pipeline (and the prompt verb)."),
    epochs: float = typer.Option(3.0, "--epochs", help="Training epochs over the (mixed) examples."),
    max_steps: int = typer.Option(-1, "--max-steps", help="Stop after N optimizer steps (overrides --epochs)."),
    lr: float = typer.Option(5e-4, "--lr", help="Peak learning rate."),
    batch_size: int = typer.Option(16, "--batch-size", help="Examples per device batch."),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Gradient accumulation steps."),
    warmup: float = typer.Option(0.05, "--warmup", help="Warm-up: ratio of the steps (< 1) or steps."),
    scheduler: str = typer.Option("cosine", "--scheduler", help="LR decay: cosine, linear, constant_with_warmup..."),
    lora: bool = typer.Option(False, "--lora/--no-lora", help="Train LoRA adapters (merged into the weights when saving)."),
    lora_r: int = typer.Option(16, "--lora-r", help="LoRA rank."),
    bf16: str = typer.Option("auto", "--bf16", help="auto (CUDA bf16, or CPU bf16 when a quick benchmark finds it faster), true or false."),
    dev_size: int = typer.Option(200, "--dev-size", help="Dev mentions decoded per evaluation (0: all)."),
    eval_steps: int = typer.Option(200, "--eval-steps", help="Evaluate every N steps."),
    save_steps: int = typer.Option(200, "--save-steps", help="Checkpoint every N steps."),
    save_total_limit: int = typer.Option(2, "--save-total-limit", help="Checkpoints kept."),
    logging_steps: int = typer.Option(10, "--logging-steps", help="Log loss and speed every N steps."),
    patience: int = typer.Option(0, "--patience", help="Stop after N evaluations without improvement (0: never)."),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="Wall-clock budget: stop cleanly (evaluate, save) after N minutes."),
    max_train: Optional[int] = typer.Option(None, "--max-train", help="Use the first N examples of the real training corpus (0: all)."),
    top_k_targets: int = typer.Option(1, "--top-k-targets", help="Examples per mention: its k closest KB names (ANGEL-style)."),
    kb_name_examples: bool = typer.Option(False, "--kb-names/--no-kb-names", help="Also train on every KB name as a mention of itself."),
    mix: str = typer.Option("upsample", "--mix", help="upsample (real:synthetic 1:1) or weights."),
    mix_weights: str = typer.Option("1,1", "--mix-weights", help="With --mix weights: REAL,SYNTHETIC."),
    composite: Optional[bool] = typer.Option(None, "--composite/--no-composite", help="Let the linker generate composite (a<SEP>b) answers (default: on when >= 1% of the training corpus's coded gold mentions are composite)."),
    context_chars: int = typer.Option(setting_default("context_chars"), "--context-chars", help="Context characters each side of a mention."),
    max_context_tokens: int = typer.Option(setting_default("max_context_tokens"), "--max-context-tokens", help="Prompt token budget."),
    num_beams: int = typer.Option(setting_default("num_beams"), "--num-beams", help="Beams of the saved linker (dev decoding too)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the example order and the model initialisation."),
    num_threads: Optional[int] = typer.Option(None, "--threads", help="torch threads (default: available cores / local processes)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the Trainer's progress bar."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Resume from the newest checkpoint in OUTPUT/checkpoints."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="A known dataset (spaccc, ncbi, cantemist, quaero): sets --lang and the label map."),
    mode: str = typer.Option(setting_default("mode"), "--mode", help="Linker setting saved in the pipeline: beam (whole group's trie), beam_in_candidates or rerank."),
    candidates: int = typer.Option(setting_default("candidates"), "--candidates", help="Linker setting saved in the pipeline: retrieved candidates per mention (candidate modes)."),
    prior_weight: float = typer.Option(setting_default("prior_weight"), "--prior-weight", help="Linker setting saved in the pipeline: weight of the retrieval prior in the ranking."),
    length_penalty: float = typer.Option(setting_default("length_penalty"), "--length-penalty", help="Linker setting saved in the pipeline: rank by log-prob / length ** penalty (HF generate's)."),
    rank_candidates: int = typer.Option(0, "--rank-candidates", help="Candidate-ranking fine-tuning: train against each mention's top-K TF-IDF names, scored as --rerank scores them (0: plain SFT)."),
    rank_weight: float = typer.Option(1.0, "--rank-weight", help="Weight of the candidate-ranking loss beside the target's NLL."),
    train_aliases: bool = typer.Option(False, "--train-aliases/--no-train-aliases", help="Index the training mentions as aliases of their target names for candidate retrieval (saved with the pipeline)."),
    calibrate: bool = typer.Option(False, "--calibrate/--no-calibrate", help="After training, choose the TF-IDF prior's weight and the cascade's cut-off on the dev set and save the pipelines in rerank mode with the cascade on (needs --candidates)."),
    calibration_size: int = typer.Option(0, "--calibration-size", help="Dev mentions used to calibrate (0: all)."),
    target_precision: float = typer.Option(0.0, "--target-precision", help="With --calibrate: save the NIL threshold whose dev precision over linked mentions reaches P (0: none)."),
) -> None:
    """Fine-tune a causal LM for syncabel_linker; writes spaCy pipelines OUTPUT/model-best and OUTPUT/model-last."""
    import srsly

    from .training import TrainConfig, train_linker

    inputs = {"--kb": kb, "--train": train_corpus, "--dev": dev, "--synthetic": synthetic,
              "--base-model": base_model if Path(base_model).exists() else None}
    check_outputs({"--output": output}, inputs, whole=False)  # resumed: written inside
    check_outputs({f"OUTPUT/{name}": output / name for name in
                   ("model-best", "model-last", "checkpoints", "training_log.jsonl")}, inputs)
    try:
        weights = tuple(float(x) for x in mix_weights.split(","))
        assert len(weights) == 2
    except (ValueError, AssertionError):
        raise typer.BadParameter("--mix-weights takes two numbers: REAL,SYNTHETIC") from None
    cfg = TrainConfig(epochs=epochs, max_steps=max_steps, lr=lr, batch_size=batch_size,
                      grad_accum=grad_accum, warmup=warmup, scheduler=scheduler, lora=lora,
                      lora_r=lora_r, lora_alpha=2 * lora_r, bf16=bf16, eval_steps=eval_steps,
                      save_steps=save_steps, save_total_limit=save_total_limit,
                      logging_steps=logging_steps, dev_size=dev_size, patience=patience,
                      max_minutes=max_minutes, seed=seed, top_k_targets=top_k_targets,
                      kb_name_examples=kb_name_examples, mix_mode=mix, mix_weights=weights,
                      max_train=max_train or None, num_threads=num_threads, progress=progress,
                      resume=resume, rank_candidates=rank_candidates, rank_weight=rank_weight,
                      train_aliases=train_aliases, calibrate=calibrate,
                      calibration_size=calibration_size,
                      target_precision=target_precision or None)
    label_map = None
    if dataset is not None:
        from .datasets import get_dataset

        spec = get_dataset(dataset)
        lang, label_map = spec.lang, dict(spec.label_map)
    summary = train_linker(kb, train_corpus, output, dev=dev, synthetic=synthetic,
                           kb_languages=kb_language or None,
                           base_model=base_model, lang=lang, config=cfg, label_map=label_map,
                           linker_config={"composite": composite, "context_chars": context_chars,
                                          "mode": mode, "candidates": candidates,
                                          "prior_weight": prior_weight,
                                          "length_penalty": length_penalty,
                                          "max_context_tokens": max_context_tokens,
                                          "num_beams": num_beams,
                                          "n_best": min(5, num_beams)})
    short = {k: v for k, v in summary.items() if not isinstance(v, dict)}
    typer.echo(srsly.json_dumps(short, indent=2))  # each process reports its own view


@app.command()
def dpo(
    pipeline: Path = typer.Option(..., "--pipeline", help="The SFT pipeline folder (e.g. training/DATASET/model-best)."),
    train_corpus: Path = typer.Option(..., "--train", help="Training corpus: hard negatives are mined on its mentions."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder: model-best, round-N/pairs.jsonl, rounds.json."),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Dev corpus: Recall@1 after each round picks model-best and drives early stopping."),
    rounds: int = typer.Option(3, "--rounds", help="Rounds of (mine negatives on a chunk, DPO on its pairs)."),
    chunk_size: Optional[int] = typer.Option(None, "--chunk-size", help="Training mentions mined per round (default: all mentions / rounds)."),
    top_k: int = typer.Option(5, "--top-k", help="Beams labelled per mention while mining: the top K of --num-beams (ANGEL: 5)."),
    num_beams: int = typer.Option(10, "--num-beams", help="Beams decoded per mention while mining (ANGEL: 10)."),
    match: str = typer.Option("intersect", "--match", help="A mined beam is correct when its codes intersect the gold's (intersect, ANGEL's) or are the gold's code set (exact)."),
    beta: float = typer.Option(0.1, "--beta", help="DPO beta (strength of the tie to the reference model)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (default 5e-6, or 5e-5 with --lora)."),
    epochs: float = typer.Option(1.0, "--epochs", help="Passes over each round's pairs."),
    batch_size: int = typer.Option(8, "--batch-size", help="Pairs per device batch."),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Gradient accumulation steps."),
    lora: bool = typer.Option(False, "--lora/--no-lora", help="Train LoRA adapters (merged after each round)."),
    lora_r: int = typer.Option(16, "--lora-r", help="LoRA rank."),
    gold_fallback: bool = typer.Option(False, "--gold-fallback/--no-gold-fallback", help="Mentions without a correct beam: the gold name against the top wrong beam."),
    max_pairs: Optional[int] = typer.Option(None, "--max-pairs", help="Keep at most N pairs per round (a seeded sample)."),
    dev_size: int = typer.Option(200, "--dev-size", help="Dev mentions decoded per evaluation (0: all)."),
    patience: int = typer.Option(2, "--patience", help="Stop after N rounds without a better dev Recall@1 (0: never)."),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="Wall-clock budget: no new round after N minutes (a running one stops and is evaluated)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the chunk order and training."),
    num_threads: Optional[int] = typer.Option(None, "--threads", help="torch threads (default: available cores / local processes)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the trainer's progress bar."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Skip the rounds OUTPUT/rounds.json records as finished."),
) -> None:
    """Preference optimization after SFT: DPO on hard negatives mined from the linker's own beams; writes OUTPUT/model-best."""
    import srsly

    from .training.dpo import DPORunConfig, train_dpo

    inputs = {"--pipeline": pipeline, "--train": train_corpus, "--dev": dev}
    check_outputs({"--output": output}, inputs, whole=False)  # resumed: written inside
    check_outputs({"OUTPUT/model-best": output / "model-best",
                   "OUTPUT/rounds.json": output / "rounds.json"}, inputs)

    cfg = DPORunConfig(rounds=rounds, chunk_size=chunk_size, top_k=top_k, num_beams=num_beams,
                       match=match, beta=beta, lr=lr, epochs=epochs, batch_size=batch_size,
                       grad_accum=grad_accum, lora=lora, lora_r=lora_r, lora_alpha=2 * lora_r,
                       gold_fallback=gold_fallback, max_pairs=max_pairs, dev_size=dev_size,
                       patience=patience, max_minutes=max_minutes, seed=seed,
                       num_threads=num_threads, progress=progress, resume=resume)
    state = train_dpo(pipeline, train_corpus, output, dev=dev, config=cfg)
    short = {k: v for k, v in state.items() if k not in ("config", "rounds")}
    short["rounds"] = [{k: v for k, v in r.items() if k != "last_log"} for r in state["rounds"]]
    typer.echo(srsly.json_dumps(short, indent=2))


@app.command()
def calibrate(
    pipeline: Path = typer.Argument(..., help="A pipeline folder holding syncabel_linker (candidate mode)."),
    dev: Path = typer.Argument(..., help="Dev corpus (any format `read_corpus` reads)."),
    dev_size: int = typer.Option(0, help="Dev mentions used (0: all)."),
    candidates: Optional[int] = typer.Option(None, help="Override the number of TF-IDF candidates first (saved too)."),
    cascade: bool = typer.Option(True, "--cascade/--no-cascade", help="Also choose the cascade's cut-off (mentions the dictionary or the retriever settle skip the LM) and save it on."),
    cascade_tolerance: float = typer.Option(0.2, "--cascade-tolerance", help="Dev Recall@1 points the cascade may lose against the full model (0: none)."),
    threads: int = typer.Option(0, help="torch threads (0: torch's default)."),
    prior: bool = typer.Option(True, "--prior/--no-prior", help="Choose the prior's weight and the cascade's cut-off (--no-prior: keep them, fit the probability only)."),
    probability: bool = typer.Option(True, "--probability/--no-probability", help="Then fit one calibrated probability per linked mention (ent._.syncabel[i]['probability'], ent._.kb_ents) on the dev set."),
    method: str = typer.Option("platt", "--method", help="Probability calibration: platt or isotonic (one map per path: lm, dictionary, retriever)."),
    target_precision: float = typer.Option(0.0, "--target-precision", help="Choose the NIL threshold: the lowest probability whose dev precision over linked mentions reaches P (0: no NIL threshold)."),
) -> None:
    """Choose the TF-IDF prior's weight for candidate reranking, then the cascade's cut-off, then the calibrated probability and NIL threshold, on the dev set; saves them in PIPELINE."""
    from .corpus import read_corpus
    from .training.probability import calibrate_pipeline_probability, probability_summary

    check_outputs({"PIPELINE (saved again in place)": pipeline}, {"the dev corpus": dev})
    if threads:
        import torch

        torch.set_num_threads(threads)
    dev_docs = read_corpus(dev)
    if prior:
        _calibrate_prior(pipeline, dev_docs, dev_size, candidates, cascade, cascade_tolerance)
    if probability:
        cal = calibrate_pipeline_probability(pipeline, dev_docs, method=method,
                                             target_precision=target_precision or None)
        typer.echo(probability_summary(cal))


def _calibrate_prior(pipeline: Path, dev_docs, dev_size: int, candidates: Optional[int],
                     cascade: bool, cascade_tolerance: float) -> None:
    from .training.calibration import calibrate_pipeline

    result = calibrate_pipeline(pipeline, dev_docs, dev_size=dev_size,
                                candidates=candidates, cascade=cascade,
                                cascade_tolerance=cascade_tolerance / 100)
    for row in result["table"]:
        typer.echo(f"prior_weight {row['prior_weight']:>8g}  dev R@1 {100 * row['recall@1']:.1f}")
    typer.echo(f"chosen: prior_weight {result['prior_weight']:g} (dev R@1 "
               f"{100 * result['recall@1']:.1f} on {result['dev_mentions']} mentions) -> {pipeline}")
    if cascade:
        cas = result["cascade"]
        for row in cas["table"]:
            typer.echo(f"cascade_margin {_margin_text(row['margin']):>10}  dev R@1 "
                       f"{100 * row['recall@1']:.1f}  skipped {100 * row['skipped']:.1f}%")
        typer.echo(f"chosen: cascade {'on' if cas['on'] else 'off'}, cascade_margin "
                   f"{_margin_text(cas['margin'])} (dev R@1 {100 * cas['recall@1']:.1f}, "
                   f"{100 * cas['skipped']:.1f}% of mentions skip the LM)")


def _margin_text(margin: Optional[float]) -> str:
    return "exact-only" if margin is None else f"{margin:g}"


@app.command("prepare-kb")
def prepare_kb(
    dataset: str = typer.Argument(..., help="spaccc, ncbi, cantemist or quaero."),
    assets: Path = typer.Argument(..., help="The assets folder (laid out as ../shared/data)."),
    output: Path = typer.Argument(..., help="KB folder to write (kb.jsonl + meta.json)."),
) -> None:
    """Load the dataset's KB from its source format, report what was dropped, save it."""
    import srsly

    from .datasets import get_dataset
    from .kb import read_file

    spec = get_dataset(dataset)
    check_outputs({f"OUTPUT/{name}": output / name
                   for name in ("kb.jsonl", "meta.json", "report.json")},
                  {"the dataset's KB": assets / spec.kb})
    kb = read_file(assets / spec.kb, format=spec.kb_format)
    kb.to_disk(output)
    srsly.write_json(output / "report.json", kb.report)
    typer.echo(f"KB {spec.kb}: {len(kb)} codes, {len(kb.names())} unambiguous names, "
               f"groups {kb.groups} -> {output}")


@app.command("prepare-corpus")
def prepare_corpus(
    dataset: str = typer.Argument(..., help="spaccc, ncbi, cantemist or quaero."),
    assets: Path = typer.Argument(..., help="The assets folder (laid out as ../shared/data)."),
    output: Path = typer.Argument(..., help="Folder for train.jsonl, dev.jsonl and test.jsonl."),
    seed: int = typer.Option(0, help="Seed of the dev hold-out (datasets without a dev split)."),
) -> None:
    """Convert the dataset's splits to the project's JSONL corpus format."""
    from .corpus import read_corpus, write_jsonl
    from .datasets import get_dataset, split_dev

    spec = get_dataset(dataset)
    check_outputs({f"OUTPUT/{name}.jsonl": output / f"{name}.jsonl"
                   for name in ("train", "dev", "test")},
                  {f"the {name} split": assets / split if split else None
                   for name, split in (("train", spec.train), ("dev", spec.dev),
                                       ("test", spec.test))})
    train = read_corpus(assets / spec.train)
    if spec.dev is None:
        train, dev = split_dev(train, spec.dev_fraction, seed)
    else:
        dev = read_corpus(assets / spec.dev)
    test = read_corpus(assets / spec.test)
    output.mkdir(parents=True, exist_ok=True)
    for name, docs in (("train", train), ("dev", dev), ("test", test)):
        write_jsonl(docs, output / f"{name}.jsonl")
        typer.echo(f"{name}: {len(docs)} docs, {sum(len(d.mentions) for d in docs)} mentions")


@app.command()
def fetch(
    dataset: str = typer.Argument(..., help="A dataset of the manifest (spaccc, ncbi, bc5cdr, cantemist, quaero, gscplus)."),
    dest: Path = typer.Argument(..., help="The assets folder; it mirrors ../shared/data (e.g. assets -> assets/spaccc/train.tsv)."),
    shared: Optional[Path] = typer.Option(None, help="Local copies (default: $SPACY_SYNCABEL_SHARED or ../shared/data)."),
    offline: bool = typer.Option(False, "--offline", help="Never download: fail when a file has no local copy."),
    timeout: float = typer.Option(60.0, help="Seconds per download request."),
) -> None:
    """Fetch a dataset's corpora and KBs: skip what DEST holds, copy local copies, else download; MD5-checked."""
    from .assets import AssetError, fetch_dataset

    def report(action: str, asset, path: Path) -> None:
        source = {"skipped": "already there", "copied": "from the local copy",
                  "downloaded": f"from {asset.url}" + (" or a mirror" if asset.mirrors else "")}[action]
        typer.echo(f"{action:>10}  {asset.label}  {path}  ({source})")

    try:
        paths = fetch_dataset(dataset, dest, shared=shared, offline=offline, timeout=timeout,
                              report=report)
    except AssetError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{dataset}: {len(paths)} assets in {dest}")


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
    from .evaluation.scoring_file import score_files

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
    from .evaluation.scoring_file import compare_files

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
    from .errors import Errors
    from .evaluation.judge import judge_files
    from .evaluation.judge_backends import HFJudge, OpenAIJudge

    if backend == "openai":
        if not model:
            raise typer.BadParameter("--model is required with --backend openai")
        judge_backend = OpenAIJudge(base_url, model, response_format=response_format,
                                    api_key_env=api_key_env or None, concurrency=concurrency,
                                    timeout=timeout, max_retries=max_retries)
    elif backend == "hf":
        from .models import hf_causal_lm, smollm2

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


@app.command()
def render(
    pipeline: Path = typer.Argument(..., help="A pipeline folder holding syncabel_linker (and its sentence segmenter)."),
    corpus: Path = typer.Argument(..., help="JSONL, brat folder, PubTator, marked TSV or .spacy."),
    output: Path = typer.Option(..., "--output", "-o", help="prompts.jsonl to write."),
    limit: int = typer.Option(0, help="Render the first N documents only (0: all)."),
) -> None:
    """Write the exact prompt and target text of every gold mention, one JSON line each."""
    import srsly

    from .render import render as render_corpus

    check_outputs({"--output": output}, {"the pipeline": pipeline, "the corpus": corpus})

    typer.echo(srsly.json_dumps(render_corpus(pipeline, corpus, output, limit=limit), indent=2))


@app.command()
def migrate(
    source: Path = typer.Argument(..., help="A pipeline folder saved by spacy-syncabel 0.1 (with syncabel_linker/cfg.json)."),
    output: Path = typer.Argument(..., help="The folder to write, in the current layout."),
    force: bool = typer.Option(False, "--force", help="Replace OUTPUT when it exists (once the new folder is complete)."),
) -> None:
    """Copy a 0.1 pipeline folder into the current layout (settings in config.cfg), linking as before."""
    from .training.pipeline_io import migrate_pipeline

    typer.echo(f"migrated -> {migrate_pipeline(source, output, force=force)}")


@app.command("ner-corpus")
def ner_corpus(
    dataset: str = typer.Argument(..., help="spaccc, ncbi, cantemist or quaero: its language and label map."),
    corpus_dir: Path = typer.Argument(..., help="Folder holding the splits as JSONL (train.jsonl, dev.jsonl)."),
    output: Path = typer.Argument(..., help="Folder for {split}.spacy and config.cfg."),
    config: Optional[Path] = typer.Option(None, "--config", help="NER config (e.g. configs/ner.cfg): copied to OUTPUT/config.cfg with the dataset's language."),
    splits: str = typer.Option("train,dev", "--splits", help="Comma-separated split names."),
) -> None:
    """Write the NER's training data: the splits as .spacy with labels mapped to the linker's groups."""
    import srsly

    from .datasets import get_dataset
    from .training.ner_corpus import write_ner_corpus

    spec = get_dataset(dataset)
    names = [s for s in splits.split(",") if s]
    inputs = {f"CORPUS_DIR/{name}.jsonl": corpus_dir / f"{name}.jsonl" for name in names}
    check_outputs({**{f"OUTPUT/{name}.spacy": output / f"{name}.spacy" for name in names},
                   "OUTPUT/config.cfg": output / "config.cfg"}, {**inputs, "--config": config})
    summary = write_ner_corpus(corpus_dir, output, lang=spec.lang, label_map=spec.label_map,
                               config=config, splits=names)
    typer.echo(srsly.json_dumps(summary, indent=2))


@app.command("train-ner", context_settings={"allow_extra_args": True,
                                            "ignore_unknown_options": True})
def train_ner_command(
    ctx: typer.Context,
    corpus_dir: Path = typer.Argument(..., help="What `ner-corpus` wrote: {split}.spacy, config.cfg and, for a corpus with annotation layers, layers/ and layers.json."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for model-best and model-last (e.g. training/DATASET/ner)."),
    config: Optional[Path] = typer.Option(None, "--config", help="NER config (default: CORPUS_DIR/config.cfg)."),
    use_gpu: int = typer.Option(-1, "--gpu-id", help="GPU id, -1 for the CPU."),
) -> None:
    """Train the entity recognizer with `spacy train` (extra `--section.key value` arguments are
    config overrides, as `spacy train` takes them): once, or once per annotation layer, joined."""
    import srsly
    from spacy.cli._util import parse_config_overrides

    from .training.ner_layers import train_ner

    # the layers' runs resume inside OUTPUT: it may exist, but never be or hold an input
    check_outputs({"--output": output}, {"the NER corpus": corpus_dir, "--config": config},
                  whole=False)
    info = train_ner(corpus_dir, output, config=config, use_gpu=use_gpu,
                     overrides=parse_config_overrides(ctx.args))
    typer.echo(srsly.json_dumps(info, indent=2))


@app.command()
def assemble(
    output: Path = typer.Argument(..., help="Pipeline folder to write (e.g. training/DATASET/pipeline)."),
    linker: Path = typer.Option(..., "--linker", help="A linker pipeline (e.g. training/DATASET/model-best)."),
    ner: Path = typer.Option(..., "--ner", help="The NER pipeline `spacy train` wrote (e.g. training/DATASET/ner/model-best)."),
    segmenter: str = typer.Option("sentencizer", "--segmenter", help="Sentence segmenter factory placed first (none: no segmenter)."),
    force: bool = typer.Option(False, "--force", help="Replace OUTPUT when it exists (once the new pipeline is complete)."),
) -> None:
    """Assemble sentence segmenter + NER + syncabel_linker into one pipeline for raw notes."""
    import srsly

    from .training.assemble import assemble_pipeline

    info = assemble_pipeline(linker, ner, output, segmenter=segmenter, force=force)
    typer.echo(srsly.json_dumps(info, indent=2))


@app.command()
def link(
    pipeline: Path = typer.Argument(..., metavar="PIPELINE_DIR", help="A pipeline folder that finds entities (NER or entity_ruler) and links them (syncabel_linker)."),
    source: Path = typer.Argument(..., metavar="INPUT", help="A folder of .txt notes, a JSONL file ({\"id\", \"text\"}) or a CSV/TSV file."),
    output: Path = typer.Option(..., "--output", "-o", help="OUT.jsonl (one record per note); OUT.spacy (DocBin); a folder with --format brat or --ray."),
    output_format: str = typer.Option("auto", "--format", help="jsonl, brat (.txt + .ann per note, codes as normalization lines) or spacy (one DocBin, not resumable); auto: spacy for a .spacy OUTPUT, else jsonl."),
    input_format: str = typer.Option("auto", "--input-format", help="auto, txt, jsonl or csv."),
    id_column: str = typer.Option("id", "--id-column", help="JSONL/CSV: the field holding the note id."),
    text_column: str = typer.Option("text", "--text-column", help="JSONL/CSV: the field holding the note text."),
    delimiter: Optional[str] = typer.Option(None, "--delimiter", help="CSV delimiter (default: tab for .tsv, else comma)."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Encoding of the input files."),
    errors: Optional[Path] = typer.Option(None, "--errors", help="Errors JSONL (default: OUT.errors.jsonl, or errors.jsonl in the output folder)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Notes per nlp.pipe batch."),
    n_process: int = typer.Option(1, "--n-process", help="Processes of nlp.pipe."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write a self-contained HTML report (summary + rendered notes)."),
    html_notes: int = typer.Option(50, "--html-notes", help="Notes rendered in the report (the summary counts all)."),
    kb_url: Optional[list[str]] = typer.Option(None, "--kb-url", help="Link codes in the report: a preset (snomed, mesh, omim, umls, hpo), a URL with {}, or PREFIX=URL (repeatable)."),
    brat_db: str = typer.Option("KB", "--brat-db", help="brat: the DB name in normalization lines (DB:CODE)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Link on Ray Data: 'local' starts a local Ray, 'auto' joins the running cluster, or a cluster ADDRESS."),
    concurrency: int = typer.Option(2, "--concurrency", help="Ray: linking actors (each loads the pipeline once)."),
    num_gpus: float = typer.Option(0.0, "--num-gpus", help="Ray: GPUs per actor."),
    threads: int = typer.Option(0, "--threads", help="torch threads (0: torch's default)."),
    span_attrs: str = typer.Option("", "--span-attrs", help="Span extension attributes set by other components (e.g. negex,is_negated), copied into each entity's \"attrs\" (comma-separated)."),
    doc_attrs: str = typer.Option("", "--doc-attrs", help="Doc extension attributes copied into each note record's \"attrs\" (comma-separated)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar (notes/s)."),
    delay: float = typer.Option(0.0, "--delay", hidden=True, help="Sleep per note (tests)."),
) -> None:
    """Find and link the entities of raw notes; resumable (re-run the command to resume)."""
    import srsly

    from .notes.command import run_link

    result = run_link(pipeline, source, output, output_format=output_format,
                      input_format=input_format, encoding=encoding, id_column=id_column,
                      text_column=text_column, delimiter=delimiter, errors_path=errors,
                      batch_size=batch_size, n_process=n_process, html=html,
                      html_notes=html_notes, kb_url=kb_url or (), brat_db=brat_db,
                      progress=progress, delay=delay, ray=ray, concurrency=concurrency,
                      num_gpus=num_gpus, threads=threads, span_attrs=span_attrs,
                      doc_attrs=doc_attrs)
    typer.echo(srsly.json_dumps(result, indent=2))


def prepare_process() -> None:
    """Process-wide settings every command relies on; a user's own environment wins. Called
    before torch is imported (importing this module must not import it).

    OpenMP threads wait passively: spinning ones make torch many times slower when the machine
    is shared (measured: a tiny-model training step 1.9 s passive against 15-17 s spinning,
    2 threads, load 5 on 2 cores)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(args: Optional[List[str]] = None) -> None:
    """The one entry point of the command line: ``python -m spacy_syncabel`` and the
    ``spacy-syncabel`` script both run this. ``args``: the arguments (default: ``sys.argv``)."""
    prepare_process()
    app(args=args)
