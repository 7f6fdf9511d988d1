from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data" / "firmware"


@pytest.fixture
def capture():
    """Lines of a recorded firmware capture in tests/data/firmware/."""

    def load(name: str) -> list[str]:
        return (DATA / name).read_text().splitlines()

    return load
