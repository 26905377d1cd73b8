"""Shared pytest fixtures: paths of the binary and the model folders."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bgeicl_bin() -> str:
    return os.environ.get("BGEICL_BIN", str(ROOT / "build" / "bgeicl"))


def model_dir(name: str) -> Path:
    return ROOT / "models" / name


@pytest.fixture(scope="session")
def bin_path():
    p = bgeicl_bin()
    if not os.access(p, os.X_OK):
        pytest.fail(f"{p} is not built; run make first")
    return p


BGE = "bge-small-en-v1.5"
MINILM = "all-MiniLM-L6-v2"
MODELS = [BGE, MINILM]
