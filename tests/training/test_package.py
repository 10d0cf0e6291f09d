"""The training package imports its heavy parts (Trainer, PEFT) only when they are used."""
import subprocess
import sys

import spacy_syncabel.training as training


def test_light_commands_do_not_import_the_trainer():
    # what the CLI's ner-corpus, assemble and evaluate import, in a fresh interpreter
    code = ("import sys, spacy_syncabel.training.ner_corpus, spacy_syncabel.training.assemble, "
            "spacy_syncabel.training.pipeline_io; "
            "print(sorted(m for m in ('peft', 'trl', 'transformers.trainer') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_every_exported_name_resolves_to_its_definition():
    from spacy_syncabel.training.mixing import mix_examples
    from spacy_syncabel.training.sft import TrainConfig

    for name in training.__all__:
        assert getattr(training, name).__name__ == name
    assert training.TrainConfig is TrainConfig and training.mix_examples is mix_examples
    assert set(training.__all__) <= set(dir(training))
    # a submodule still imports through the package; an unknown name is an AttributeError
    from spacy_syncabel.training import distributed  # noqa: F401

    try:
        training.not_a_name
    except AttributeError as err:
        assert "not_a_name" in str(err)
    else:  # pragma: no cover
        raise AssertionError("an unknown name resolved")
