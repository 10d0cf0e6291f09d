from pathlib import Path

import pytest

DATA = Path(__file__).parents[2].parent / "shared" / "data"


@pytest.fixture
def write(tmp_path):
    """write(name, text) -> path of a utf8 file in tmp_path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf8")
        return path

    return _write


@pytest.fixture(scope="session")
def data_dir():
    if not DATA.exists():
        pytest.skip("shared data not available")
    return DATA
