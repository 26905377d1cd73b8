"""Embedding parity: bgeicl against sentence-transformers on the same texts.

For each model, every text must reach cosine >= 0.9999 with the reference
vector; the minimum is printed so it can be reported. BGEICL_PARITY_LIMIT
caps the corpus (the ASan run uses a smaller one: it is ~20x slower).
"""
import json
import os
import subprocess

import numpy as np
import pytest

from conftest import BGE, MODELS, model_dir
from embed_corpus import parity_texts

MIN_COSINE = 0.9999


def run_embed(bin_path, model, texts, query=False):
    args = [bin_path, "embed", "--model", str(model)] + (["--query"] if query else []) + ["-"]
    stdin = "".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(texts))
    out = subprocess.run(args, input=stdin.encode(), capture_output=True, check=True).stdout
    rows = [json.loads(l) for l in out.decode().splitlines()]
    assert [r["index"] for r in rows] == list(range(len(texts)))
    assert [r["id"] for r in rows] == list(range(len(texts)))
    return np.array([r["embedding"] for r in rows], dtype=np.float64)


@pytest.fixture(scope="module")
def texts():
    t = parity_texts()
    limit = int(os.environ.get("BGEICL_PARITY_LIMIT", "0"))
    if limit:
        t = t[:limit]
    else:
        assert len(t) >= 1000, f"only {len(t)} texts"
    return t


def reference(name, texts, prefix=""):
    import torch
    from sentence_transformers import SentenceTransformer
    torch.set_num_threads(os.cpu_count())
    st = SentenceTransformer(str(model_dir(name)), device="cpu")
    v = st.encode([prefix + t for t in texts], batch_size=32, normalize_embeddings=True,
                  convert_to_numpy=True)
    n_long = sum(len(st.tokenizer(prefix + t)["input_ids"]) > st.max_seq_length for t in texts)
    return v.astype(np.float64), n_long


def cosines(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


@pytest.mark.parametrize("name", MODELS)
def test_documents_match_sentence_transformers(bin_path, texts, name):
    ref, n_long = reference(name, texts)
    ours = run_embed(bin_path, model_dir(name), texts)
    assert ours.shape == ref.shape
    cos = cosines(ours, ref)
    worst = int(np.argmin(cos))
    print(f"\n{name}: {len(texts)} texts ({n_long} truncated), min cosine {cos.min():.9f} "
          f"(1 - min = {1 - cos.min():.2e}), mean {cos.mean():.9f}")
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert cos.min() >= MIN_COSINE, f"text {worst} ({texts[worst][:80]!r}): cosine {cos[worst]}"
    if not os.environ.get("BGEICL_PARITY_LIMIT"):
        assert n_long >= 20, "the corpus must exercise truncation"


def test_query_instruction_matches(bin_path, texts):
    instr = "Represent this sentence for searching relevant passages: "
    sample = texts[::10]
    ref, _ = reference(BGE, sample, prefix=instr)
    ours = run_embed(bin_path, model_dir(BGE), sample, query=True)
    cos = cosines(ours, ref)
    print(f"\n{BGE} queries: {len(sample)} texts, min cosine {cos.min():.9f} "
          f"(1 - min = {1 - cos.min():.2e})")
    assert cos.min() >= MIN_COSINE
