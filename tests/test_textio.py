"""textio: strict UTF-8 and JSON reading with coded errors naming the file and line."""
import pytest

from spacy_syncabel.textio import as_str, iter_jsonl, iter_lines, read_json, read_text


def test_lines_and_text_keep_offsets(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffuno\r\ndos\rtres\n".encode("utf-8"))
    assert list(iter_lines(path)) == [(1, "uno"), (2, "dos"), (3, "tres")]
    assert read_text(path) == "uno\r\ndos\rtres\n"  # BOM dropped, nothing translated


@pytest.mark.parametrize("encoding,hint", [("latin-1", "iconv -f latin1"),
                                           ("cp1252", "iconv -f latin1"),
                                           ("utf-16", "iconv -f utf16")])
def test_decode_errors_name_file_line_and_fix(tmp_path, encoding, hint):
    path = tmp_path / "notes.txt"
    if encoding == "utf-16":  # a whole file saved as "Unicode" by a Windows editor
        path.write_bytes("línea uno\ndos\ncañón\n".encode(encoding))
    else:
        path.write_bytes("línea uno\n".encode("utf-8") + "dos\ncañón\n".encode(encoding))
    for read in (lambda p: list(iter_lines(p)), read_text):
        with pytest.raises(ValueError) as exc:
            read(path)
        msg = str(exc.value)
        assert msg.startswith("[E190]") and str(path) in msg and hint in msg, msg
        if encoding != "utf-16":
            assert "line 3 (byte 3)" in msg, msg  # the ñ of cañón


def test_json_errors_name_file_and_line(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text('{\n  "a": 1,\n  "b": NaN\n}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"E191.*cfg.json, line \?: invalid JSON \(NaN"):
        read_json(path)
    path.write_text('{\n  "a": 1,\n  "b": \n}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"E191.*cfg.json, line 4: invalid JSON"):
        read_json(path)
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a": ', encoding="utf-8")
    rows = iter_jsonl(path)
    assert next(rows) == (1, {"a": 1}) and next(rows) == (3, {"a": 2})
    with pytest.raises(ValueError, match=r"E191.*rows.jsonl, line 4"):
        next(rows)


def test_as_str():
    assert as_str("8000/6", "code", "f", 1) == "8000/6"
    assert as_str(38341003, "code", "f", 1) == "38341003"
    assert as_str(None, "code", "f", 1, allow_none=True) is None
    for bad in (1.0, float("nan"), True, ["a"], {"a": 1}, None):
        with pytest.raises(ValueError, match=r"E194.*f, line 7: code must be a JSON string"):
            as_str(bad, "code", "f", 7)
