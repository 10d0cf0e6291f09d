"""A user's prompt/template file that is not UTF-8 is a coded error naming file and line."""
import pytest

from spacy_syncabel.synthesis._textfile import load_sectioned


def test_latin1_prompt_file(tmp_path):
    text = "version = 1\n[definition]\nDefine el término «{name}».\n"
    path = tmp_path / "prompts.txt"
    path.write_text(text, encoding="utf-8")
    assert load_sectioned("prompts", None, path).lines("definition")
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ValueError, match=r"E190.*prompts.txt, line 3 .*iconv"):
        load_sectioned("prompts", None, path)
