"""``--code FILE``: the user's own components, imported before a pipeline is loaded."""
import textwrap
import uuid

import pytest
import spacy

from spacy_syncabel.user_code import import_user_code


def code_file(tmp_path, name):
    """A file registering component ``name``: it marks entities after 'sin' as negated."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(f"""
        from spacy.language import Language
        from spacy.tokens import Span

        if not Span.has_extension("negated_{name}"):
            Span.set_extension("negated_{name}", default=False)

        @Language.component("{name}")
        def mark(doc):
            for ent in doc.ents:
                ent._.negated_{name} = ent.start > 0 and doc[ent.start - 1].lower_ == "sin"
            return doc
        """), encoding="utf-8")
    return path


def test_a_missing_or_failing_file_is_a_coded_error(tmp_path):
    with pytest.raises(ValueError, match="E454.*no such file"):
        import_user_code(tmp_path / "nope.py")
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('broken on purpose')\n", encoding="utf-8")
    with pytest.raises(ValueError, match="E454.*RuntimeError: broken on purpose"):
        import_user_code(bad)


def test_a_file_is_imported_once_per_process(tmp_path):
    name = f"comp_{uuid.uuid4().hex[:8]}"
    path = code_file(tmp_path, name)
    import_user_code(path)
    import_user_code(path)  # a second import would register the factory again
    assert name in spacy.registry.factories
