"""`bgeicl serve` over real HTTP: the OpenAI and TEI routes, errors, limits,
auth, gzip, concurrency, draining, timeouts, environment and logging.

Every test talks to a real server process on a loopback port (see
serverproc.py). Vectors are compared with the in-process CLI
(`bgeicl embed ... --format jsonl -`) with a max abs difference of 1e-5.

Under AddressSanitizer (BGEICL_BIN=.../san/bgeicl) the corpus sizes and
client counts are scaled down.
"""
import base64
import gzip
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sysconfig
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import BGE, MINILM, model_dir
from serverproc import Server, free_port, http

SAN = os.environ.get("BGEICL_BIN", "").endswith("san/bgeicl")
T = 600 if SAN else 120          # per-request timeout, seconds
TOL = 1e-5
KEY = "k"
AUTH = {"Authorization": f"Bearer {KEY}"}
JSON_CT = {"Content-Type": "application/json"}
DIM = 384
MAX_TOKENS = 512
QUERY_INSTRUCTION = "Represent this sentence for searching relevant passages: "
CURL = shutil.which("curl") or "/usr/bin/curl"
ALIASES = ["bge-small-en-v1.5", "bge-in-icl", "BAAI/bge-in-icl", "BAAI/bge-en-icl",
           "BAAI/bge-small-en-v1.5"]


# ---------------------------------------------------------------- helpers

def cli_embed(bin_path, texts, query=False, model=BGE, icl=False):
    """Reference vectors from the in-process CLI, one row per text; a query
    gets the plain query instruction unless icl (the bank's prompt)."""
    args = [bin_path, "embed", "--model", str(model_dir(model)), "--format", "jsonl"]
    if query:
        args += ["--query", "--icl" if icl else "--no-icl"]
    args.append("-")
    stdin = "".join(json.dumps(t) + "\n" for t in texts).encode()
    r = subprocess.run(args, input=stdin, capture_output=True, timeout=T * 2)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    rows = [json.loads(l) for l in r.stdout.decode().splitlines()]
    assert [x["index"] for x in rows] == list(range(len(texts)))
    return np.array([x["embedding"] for x in rows], dtype=np.float64)


def cli_tokenize(bin_path, texts):
    args = [bin_path, "tokenize", "--model", str(model_dir(BGE)), "-"]
    stdin = "".join(json.dumps(t) + "\n" for t in texts).encode()
    r = subprocess.run(args, input=stdin, capture_output=True, timeout=T)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return [json.loads(l) for l in r.stdout.decode().splitlines()]


def post(url, body, headers=None, timeout=T):
    """POST a dict (as JSON) or raw bytes; returns (status, headers, raw body)."""
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    return http("POST", url, data, headers={**JSON_CT, **(headers or {})}, timeout=timeout)


def ok_json(st, hdrs, raw):
    assert st == 200, f"status {st}: {raw[:500]!r}"
    assert hdrs.get("content-type", "").startswith("application/json"), hdrs
    return json.loads(raw)


def embeddings(url, body, headers=None):
    """POST /v1/embeddings; asserts 200 and the response shape; returns (json, vectors, headers)."""
    st, hdrs, raw = post(url + "/v1/embeddings", body, headers)
    j = ok_json(st, hdrs, raw)
    vecs = check_embedding_response(j, body)
    return j, vecs, hdrs


def check_embedding_response(j, body):
    inp = body["input"]
    n = 1 if isinstance(inp, str) else len(inp)
    assert j["object"] == "list"
    assert j["model"] == BGE
    assert [d["index"] for d in j["data"]] == list(range(n))
    assert all(d["object"] == "embedding" for d in j["data"])
    u = j["usage"]
    assert isinstance(u["prompt_tokens"], int) and u["prompt_tokens"] >= n
    assert u["total_tokens"] == u["prompt_tokens"]
    if body.get("encoding_format") == "base64":
        return np.array([b64_vec(d["embedding"]) for d in j["data"]])
    return np.array([d["embedding"] for d in j["data"]], dtype=np.float64)


def b64_vec(s):
    assert isinstance(s, str), type(s)
    return np.frombuffer(base64.b64decode(s), dtype="<f4").astype(np.float64)


def assert_close(a, b, tol=TOL, what=""):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    assert diff <= tol, f"{what}: max abs diff {diff} > {tol}"


def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def check_error(st, hdrs, raw, status, codes, etype):
    """Asserts the OpenAI error shape; `codes` is one code or a tuple of acceptable ones."""
    assert st == status, f"status {st} != {status}: {raw[:500]!r}"
    assert hdrs.get("content-type", "").startswith("application/json"), hdrs
    body = json.loads(raw)
    assert set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err.get("message"), str) and err["message"], err
    assert err.get("type") == etype, err
    assert "param" in err and (err["param"] is None or isinstance(err["param"], str)), err
    codes = codes if isinstance(codes, tuple) else (codes,)
    assert err.get("code") in codes, err
    return err


def is_num(s):
    try:
        float(s)
        return True
    except (TypeError, ValueError):
        return False


def curl(tmp_path, *args):
    """Runs curl; returns (status, headers of the final response, body bytes)."""
    n = len(list(tmp_path.glob("curl-h-*")))
    hdr, out = tmp_path / f"curl-h-{n}", tmp_path / f"curl-o-{n}"
    r = subprocess.run([CURL, "-sS", "-D", str(hdr), "-o", str(out), "-w", "%{http_code}", *args],
                       capture_output=True, timeout=T)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    blocks = [b for b in hdr.read_text(errors="replace").replace("\r\n", "\n").split("\n\n")
              if b.strip()]
    headers = {}
    for line in blocks[-1].splitlines()[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return int(r.stdout), headers, out.read_bytes()


def custom_server(bin_path, args, env, port):
    """A Server whose command line is exactly `serve ARGS` (no --model/--port added)."""
    s = Server(bin_path, env=env, port=port, ready_timeout=T)
    s.args = [bin_path, "serve", *args]
    return s


def clean_env(**extra):
    """The environment minus the server's own variables, plus `extra`."""
    drop = {"BGE_ICL_MODEL", "MODEL_NAME", "PORT", "WORKERS", "BGE_ICL_THREADS",
            "MAX_BATCH_SIZE", "ENABLE_ICL", "LOG_LEVEL", "BGE_ICL_API_KEY",
            "BGE_ICL_CONTEXT_CACHE_SIZE", "BGE_ICL_SIMILARITY_THRESHOLD"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra)
    return env


def run_serve(bin_path, args, env, timeout=None):
    """Runs `serve ARGS` that is expected to exit on its own; fails clearly if it serves."""
    try:
        return subprocess.run([bin_path, "serve", *args], capture_output=True, env=env,
                              timeout=timeout or (90 if SAN else 30))
    except subprocess.TimeoutExpired:
        pytest.fail(f"`serve {' '.join(args)}` did not exit (it should have refused to start)")


def corpus():
    """Deterministic, varied texts: lines and chunks of the Python standard library,
    non-ASCII strings and over-long texts (truncated to 512 tokens)."""
    n_lines, n_chunks, n_uni, n_long = (40, 3, 4, 0) if SAN else (200, 20, 10, 2)
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(root.glob("*.py"))[::3]
    lines, chunks, longs, seen = [], [], [], set()
    for f in files:
        try:
            src = f.read_text(encoding="utf-8").splitlines()
        except (UnicodeDecodeError, OSError):
            continue
        good = [s.strip() for s in src if len(s.strip()) >= 4]
        for s in good[::7]:
            if s not in seen and len(lines) < n_lines:
                seen.add(s)
                lines.append(s)
        if len(chunks) < n_chunks and len(src) > 40:
            c = "\n".join(src[20:35])
            if c.strip() and c not in seen:
                seen.add(c)
                chunks.append(c)
        if len(longs) < n_long and len(src) > 200:
            c = "\n".join(src[:160])
            if c not in seen:
                seen.add(c)
                longs.append(c)
        if len(lines) >= n_lines and len(chunks) >= n_chunks and len(longs) >= n_long:
            break
    uni = [f"naïve café #{i} — 東京 {i * i} ünïcödé ✓ 🚀 {'ß' * (i % 4 + 1)}" for i in range(n_uni)]
    out = lines + chunks + uni + longs
    assert len(out) >= 40
    return out


# ---------------------------------------------------------------- servers

@pytest.fixture(scope="module")
def srv(bin_path):
    """Default limits, no key, JSON logs."""
    with Server(bin_path, "--log-format", "json", ready_timeout=T) as s:
        yield s


@pytest.fixture(scope="module")
def ksrv(bin_path):
    """API key, strict model names and small limits (for the error matrix)."""
    with Server(bin_path, "--api-key", KEY, "--strict-model", "--max-client-batch-size", "4",
                "--payload-limit", "65536", ready_timeout=T) as s:
        yield s


TEXTS = ["The quick brown fox jumps over the lazy dog.",
         "def add(a, b):\n    return a + b",
         "héllo wörld 你好 🚀",
         "SELECT id, name FROM users WHERE age > 30 ORDER BY name;"]


@pytest.fixture(scope="module")
def refs(bin_path):
    return cli_embed(bin_path, TEXTS)


@pytest.fixture(scope="module")
def qrefs(bin_path):
    return cli_embed(bin_path, TEXTS, query=True)


@pytest.fixture(scope="module")
def iclrefs(bin_path):
    return cli_embed(bin_path, TEXTS, query=True, icl=True)


# ---------------------------------------------------------------- 1. curl

def test_curl_embeddings_shape_usage_and_timing_headers(srv, refs, tmp_path):
    body = json.dumps({"input": TEXTS[:2], "model": BGE})
    st, h, raw = curl(tmp_path, "-X", "POST", srv.url + "/v1/embeddings",
                      "-H", "Content-Type: application/json", "-d", body)
    assert st == 200, raw[:500]
    assert h.get("content-type", "").startswith("application/json")
    assert "content-encoding" not in h
    j = json.loads(raw)
    vecs = check_embedding_response(j, json.loads(body))
    assert vecs.shape == (2, DIM)
    assert_close(vecs, refs[:2], what="curl vs CLI")
    for k in ("x-queue-time", "x-tokenization-time", "x-inference-time", "x-total-time"):
        assert k in h, f"missing {k}: {h}"
        assert is_num(h[k]) and float(h[k]) >= 0, (k, h[k])
    assert float(h["x-total-time"]) >= float(h["x-inference-time"])


def test_curl_compressed_response_is_gzip(srv, refs, tmp_path):
    body = json.dumps({"input": TEXTS})
    st, h, raw = curl(tmp_path, "--compressed", "-X", "POST", srv.url + "/v1/embeddings",
                      "-H", "Content-Type: application/json", "-d", body)
    assert st == 200, raw[:500]
    assert h.get("content-encoding") == "gzip", h
    assert "accept-encoding" in h.get("vary", "").lower(), h
    vecs = check_embedding_response(json.loads(raw), json.loads(body))  # curl inflated it
    assert_close(vecs, refs, what="gzip response")
    # Without --compressed the same request is plain.
    st, h2, raw2 = curl(tmp_path, "-X", "POST", srv.url + "/v1/embeddings",
                        "-H", "Content-Type: application/json", "-d", body)
    assert st == 200 and "content-encoding" not in h2
    assert_close(check_embedding_response(json.loads(raw2), json.loads(body)), refs)


def test_curl_gzip_request_body(srv, refs, tmp_path):
    f = tmp_path / "req.json.gz"
    f.write_bytes(gzip.compress(json.dumps({"input": TEXTS}).encode()))
    st, h, raw = curl(tmp_path, "-X", "POST", srv.url + "/v1/embeddings",
                      "-H", "Content-Type: application/json", "-H", "Content-Encoding: gzip",
                      "--data-binary", f"@{f}")
    assert st == 200, raw[:500]
    assert_close(check_embedding_response(json.loads(raw), {"input": TEXTS}), refs,
                 what="gzip request")


def test_urllib_gzip_response_bytes(srv, refs):
    st, h, raw = post(srv.url + "/embeddings", {"input": TEXTS},
                      {"Accept-Encoding": "gzip"})
    assert st == 200 and h.get("content-encoding") == "gzip", h
    j = json.loads(gzip.decompress(raw))
    assert_close(check_embedding_response(j, {"input": TEXTS}), refs)


# ---------------------------------------------------------------- 2. openai client

@pytest.fixture(scope="module")
def oai(ksrv):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=ksrv.url + "/v1", api_key=KEY, max_retries=0, timeout=T)


def test_openai_float(oai, refs):
    r = oai.embeddings.create(model=BGE, input=TEXTS, encoding_format="float")
    assert r.model == BGE and [d.index for d in r.data] == [0, 1, 2, 3]
    assert r.usage.prompt_tokens > 0 and r.usage.total_tokens == r.usage.prompt_tokens
    assert_close([d.embedding for d in r.data], refs, what="openai float")


def test_openai_base64_explicit_and_default(oai, ksrv, refs):
    r = oai.embeddings.create(model=BGE, input=TEXTS, encoding_format="base64")
    got = [b64_vec(d.embedding) if isinstance(d.embedding, str) else d.embedding
           for d in r.data]
    assert_close(got, refs, what="openai base64")
    # Without encoding_format the client asks for base64 and decodes it itself.
    r = oai.embeddings.create(model=BGE, input=TEXTS)
    assert_close([list(d.embedding) for d in r.data], refs, what="openai default")
    # And by hand: little-endian float32.
    body = {"input": TEXTS, "model": BGE, "encoding_format": "base64"}
    j, vecs, _ = embeddings(ksrv.url, body, AUTH)
    assert all(len(base64.b64decode(d["embedding"])) == DIM * 4 for d in j["data"])
    assert_close(vecs, refs, what="raw base64")
    _, fvecs, _ = embeddings(ksrv.url, {"input": TEXTS, "encoding_format": "float"}, AUTH)
    assert_close(vecs, fvecs, tol=1e-6, what="base64 vs float")


def test_openai_query_input_type(oai, qrefs, refs):
    r = oai.embeddings.create(model=BGE, input=TEXTS, encoding_format="float",
                              extra_body={"input_type": "query", "enable_icl": False})
    got = np.array([d.embedding for d in r.data])
    assert_close(got, qrefs, what="query vs embed --query --no-icl")
    assert np.max(np.abs(got - refs)) > 1e-3, "query vectors equal document vectors"


def test_openai_icl_query_equals_cli_icl(oai, iclrefs, qrefs):
    r = oai.embeddings.create(model=BGE, input=TEXTS, encoding_format="float",
                              extra_body={"input_type": "query", "enable_icl": True})
    got = np.array([d.embedding for d in r.data])
    assert_close(got, iclrefs, what="ICL query vs embed --query --icl")
    assert np.max(np.abs(got - qrefs)) > 1e-3, "ICL made no difference"


def test_openai_dimensions(oai, refs):
    r = oai.embeddings.create(model=BGE, input=TEXTS, encoding_format="float", dimensions=64)
    got = np.array([d.embedding for d in r.data])
    assert got.shape == (len(TEXTS), 64)
    assert_close(got, unit(refs[:, :64]), what="dimensions=64")
    r = oai.embeddings.create(model=BGE, input=TEXTS[:1], encoding_format="float", dimensions=DIM)
    assert_close([r.data[0].embedding], refs[:1])


def test_openai_wrong_key_raises_authentication_error(ksrv):
    openai = pytest.importorskip("openai")
    bad = openai.OpenAI(base_url=ksrv.url + "/v1", api_key="wrong", max_retries=0, timeout=T)
    with pytest.raises(openai.AuthenticationError):
        bad.embeddings.create(model=BGE, input=["x"], encoding_format="float")


# ---------------------------------------------------------------- 3. concurrency

def test_64_concurrent_clients_mixed_batches(srv, bin_path):
    texts = corpus()
    ref = dict(zip(texts, cli_embed(bin_path, texts)))
    # Batch sizes 1..40, skewed towards small ones to keep the run short.
    sizes = [1, 1, 2, 3, 5] if SAN else [1, 1, 2, 3, 5, 8, 13, 21, 40]
    n_clients, n_req = (64, 1) if SAN else (64, 2)
    rng = random.Random(20240611)
    plans = [[rng.choices(texts, k=rng.choice(sizes)) for _ in range(n_req)]
             for _ in range(n_clients)]
    barrier = threading.Barrier(n_clients)
    failures = []

    def client(i):
        barrier.wait(timeout=T)
        for batch in plans[i]:
            inp = batch[0] if (len(batch) == 1 and i % 2) else batch  # some plain strings
            body = {"input": inp, "model": BGE}
            try:
                st, h, raw = post(srv.url + "/v1/embeddings", body)
                if st != 200:
                    failures.append(f"client {i}: status {st} {raw[:200]!r}")
                    continue
                vecs = check_embedding_response(json.loads(raw), body)
                want = np.array([ref[t] for t in batch])
                assert_close(vecs, want, what=f"client {i}")
            except (AssertionError, OSError, ValueError, KeyError) as e:
                failures.append(f"client {i}: {e!r}"[:400])

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=n_clients) as ex:
        list(ex.map(client, range(n_clients)))
    elapsed = time.monotonic() - t0
    assert not failures, f"{len(failures)} failures, e.g.:\n" + "\n".join(failures[:5])
    assert elapsed < T


# ---------------------------------------------------------------- 4. error matrix

def nested(n):
    return b'{"input":' + b"[" * n + b"]" * n + b"}"


def gz(b):
    return gzip.compress(b)


WORDS_2000 = " ".join(f"word{i % 97}" for i in range(2000))
GZ_HDR = {"Content-Encoding": "gzip"}

# (id, method, path, body, headers, with_auth, status, codes, type)
IR, AU, NF = "invalid_request_error", "authentication_error", "not_found_error"
EMB = "/v1/embeddings"
MATRIX = [
    # --- 400: JSON syntax and structure
    ("syntax", "POST", EMB, b'{"input": "a",,}', {}, True, 400, "invalid_json", IR),
    ("truncated_body", "POST", EMB, b'{"input": ["a", "b"', {}, True, 400, "invalid_json", IR),
    ("empty_body", "POST", EMB, b"", {}, True, 400, "invalid_json", IR),
    ("trailing_data", "POST", EMB, b'{"input": "a"} x', {}, True, 400, "invalid_json", IR),
    ("top_level_array", "POST", EMB, b'["a"]', {}, True, 400, "invalid_type", IR),
    ("top_level_string", "POST", EMB, b'"a"', {}, True, 400, "invalid_type", IR),
    ("top_level_null", "POST", EMB, b"null", {}, True, 400, "invalid_type", IR),
    ("top_level_number", "POST", EMB, b"42", {}, True, 400, "invalid_type", IR),
    ("nesting_10000_closed", "POST", EMB, nested(10000), {}, True, 400, "nesting_too_deep", IR),
    ("nesting_10000_open", "POST", EMB, b"[" * 10000, {}, True, 400, "nesting_too_deep", IR),
    ("nesting_objects", "POST", EMB, b'{"a":' * 10000 + b"1" + b"}" * 10000, {}, True, 400,
     "nesting_too_deep", IR),
    # --- 400: UTF-8 and NUL
    ("raw_invalid_utf8", "POST", EMB, b'{"input": "ab\xff\xfecd"}', {}, True, 400,
     "invalid_utf8", IR),
    ("raw_invalid_utf8_in_array", "POST", EMB, b'{"input": ["ok", "x\xc3"]}', {}, True, 400,
     "invalid_utf8", IR),
    ("overlong_utf8", "POST", EMB, b'{"input": "\xc0\xaf"}', {}, True, 400, "invalid_utf8", IR),
    ("escaped_nul", "POST", EMB, b'{"input": "a\\u0000b"}', {}, True, 400, "invalid_value", IR),
    ("raw_nul", "POST", EMB, b'{"input": "a\x00b"}', {}, True, 400,
     ("invalid_json", "invalid_value"), IR),
    # --- 400: input
    ("input_missing", "POST", EMB, {"model": BGE}, {}, True, 400, "missing_field", IR),
    ("input_null", "POST", EMB, {"input": None}, {}, True, 400,
     ("invalid_type", "missing_field"), IR),
    ("input_empty_array", "POST", EMB, {"input": []}, {}, True, 400, "invalid_value", IR),
    ("input_empty_string", "POST", EMB, {"input": ""}, {}, True, 400, "invalid_value", IR),
    ("input_empty_string_in_array", "POST", EMB, {"input": ["a", ""]}, {}, True, 400,
     "invalid_value", IR),
    ("input_number", "POST", EMB, {"input": 5}, {}, True, 400, "invalid_type", IR),
    ("input_bool", "POST", EMB, {"input": True}, {}, True, 400, "invalid_type", IR),
    ("input_object", "POST", EMB, {"input": {"a": 1}}, {}, True, 400, "invalid_type", IR),
    ("input_non_string_element", "POST", EMB, {"input": ["a", 5]}, {}, True, 400,
     "invalid_type", IR),
    ("input_null_element", "POST", EMB, {"input": ["a", None]}, {}, True, 400,
     "invalid_type", IR),
    ("input_empty_token_array", "POST", EMB, {"input": [[]]}, {}, True, 400,
     "invalid_value", IR),
    # --- 400: other fields
    ("model_number", "POST", EMB, {"input": "a", "model": 5}, {}, True, 400, "invalid_type", IR),
    ("encoding_format_xyz", "POST", EMB, {"input": "a", "encoding_format": "xyz"}, {}, True, 400,
     "invalid_value", IR),
    ("encoding_format_number", "POST", EMB, {"input": "a", "encoding_format": 1}, {}, True, 400,
     "invalid_type", IR),
    ("input_type_x", "POST", EMB, {"input": "a", "input_type": "x"}, {}, True, 400,
     "invalid_value", IR),
    ("truncate_yes", "POST", EMB, {"input": "a", "truncate": "yes"}, {}, True, 400,
     "invalid_type", IR),
    ("dimensions_0", "POST", EMB, {"input": "a", "dimensions": 0}, {}, True, 400,
     "invalid_value", IR),
    ("dimensions_385", "POST", EMB, {"input": "a", "dimensions": 385}, {}, True, 400,
     "invalid_value", IR),
    ("dimensions_negative", "POST", EMB, {"input": "a", "dimensions": -1}, {}, True, 400,
     "invalid_value", IR),
    ("dimensions_1.5", "POST", EMB, {"input": "a", "dimensions": 1.5}, {}, True, 400,
     ("invalid_value", "invalid_type"), IR),
    ("dimensions_string", "POST", EMB, {"input": "a", "dimensions": "3"}, {}, True, 400,
     "invalid_type", IR),
    ("dimensions_1e308", "POST", EMB, b'{"input": "a", "dimensions": 1e308}', {}, True, 400,
     "invalid_value", IR),
    ("dimensions_2pow64", "POST", EMB, b'{"input": "a", "dimensions": 18446744073709551616}', {},
     True, 400, "invalid_value", IR),
    ("dimensions_1e400", "POST", EMB, b'{"input": "a", "dimensions": 1e400}', {}, True, 400,
     "invalid_value", IR),
    # --- 400: TEI routes
    ("embed_inputs_missing", "POST", "/embed", {"input": "a"}, {}, True, 400, "missing_field", IR),
    ("embed_inputs_empty", "POST", "/embed", {"inputs": []}, {}, True, 400, "invalid_value", IR),
    ("embed_inputs_number", "POST", "/embed", {"inputs": 5}, {}, True, 400, "invalid_type", IR),
    ("embed_prompt_name_x", "POST", "/embed", {"inputs": "a", "prompt_name": "x"}, {}, True, 400,
     "invalid_value", IR),
    ("embed_normalize_string", "POST", "/embed", {"inputs": "a", "normalize": "no"}, {}, True,
     400, "invalid_type", IR),
    ("tokenize_empty_string", "POST", "/tokenize", {"inputs": ""}, {}, True, 400,
     "invalid_value", IR),
    ("tokenize_invalid_utf8", "POST", "/tokenize", b'{"inputs": "\xff"}', {}, True, 400,
     "invalid_utf8", IR),
    # --- 400: gzip
    ("gzip_garbage", "POST", EMB, b"this is not gzip", GZ_HDR, True, 400, "invalid_gzip", IR),
    ("gzip_truncated", "POST", EMB, gz(b'{"input": "' + b"a " * 5000 + b'"}')[:40], GZ_HDR, True,
     400, "invalid_gzip", IR),
    # --- 401
    ("auth_missing", "POST", EMB, {"input": "a"}, {}, False, 401, "invalid_api_key", AU),
    ("auth_wrong_key", "POST", EMB, {"input": "a"}, {"Authorization": "Bearer nope"}, False, 401,
     "invalid_api_key", AU),
    ("auth_basic_scheme", "POST", EMB, {"input": "a"}, {"Authorization": "Basic aw=="}, False,
     401, "invalid_api_key", AU),
    ("auth_empty_bearer", "POST", EMB, {"input": "a"}, {"Authorization": "Bearer "}, False, 401,
     "invalid_api_key", AU),
    ("auth_key_prefix", "POST", EMB, {"input": "a"}, {"Authorization": "Bearer kk"}, False, 401,
     "invalid_api_key", AU),
    ("auth_models", "GET", "/v1/models", None, {}, False, 401, "invalid_api_key", AU),
    ("auth_info", "GET", "/info", None, {}, False, 401, "invalid_api_key", AU),
    ("auth_embed", "POST", "/embed", {"inputs": "a"}, {}, False, 401, "invalid_api_key", AU),
    ("auth_metrics", "GET", "/metrics", None, {}, False, 401, "invalid_api_key", AU),
    # --- 404
    ("unknown_route_get", "GET", "/nope", None, {}, True, 404, "not_found", NF),
    ("unknown_route_post", "POST", "/v1/embeddingsx", {"input": "a"}, {}, True, 404,
     "not_found", NF),
    ("strict_model", "POST", EMB, {"input": "a", "model": "gpt-4"}, {}, True, 404,
     "model_not_found", NF),
    # --- 405
    ("get_embeddings", "GET", EMB, None, {}, True, 405, "method_not_allowed", IR),
    ("post_health", "POST", "/health", b"{}", {}, True, 405, "method_not_allowed", IR),
    ("put_embed", "PUT", "/embed", b"{}", {}, True, 405, "method_not_allowed", IR),
    ("delete_models", "DELETE", "/v1/models", None, {}, True, 405, "method_not_allowed", IR),
    # --- 413
    ("too_many_inputs", "POST", EMB, {"input": ["a", "b", "c", "d", "e"]}, {}, True, 413,
     "too_many_inputs", IR),
    ("too_many_inputs_embed", "POST", "/embed", {"inputs": ["a", "b", "c", "d", "e"]}, {}, True,
     413, "too_many_inputs", IR),
    ("payload_plain", "POST", EMB, {"input": "x " * 35000}, {}, True, 413,
     "payload_too_large", IR),
    ("payload_gzip_bomb", "POST", EMB,
     gz(b'{"input": "a", "pad": "' + b" " * 8_000_000 + b'"}'), GZ_HDR, True, 413,
     "payload_too_large", IR),
    ("input_too_long_truncate_false", "POST", EMB, {"input": WORDS_2000, "truncate": False}, {},
     True, 413, "input_too_long", IR),
    # --- 415
    ("encoding_br", "POST", EMB, {"input": "a"}, {"Content-Encoding": "br"}, True, 415,
     "unsupported_encoding", IR),
    ("encoding_deflate", "POST", EMB, {"input": "a"}, {"Content-Encoding": "deflate"}, True, 415,
     "unsupported_encoding", IR),
]
ALLOW = {"get_embeddings": "POST", "post_health": "GET", "put_embed": "POST",
         "delete_models": "GET"}


@pytest.mark.parametrize("case", MATRIX, ids=[c[0] for c in MATRIX])
def test_bad_input_matrix(ksrv, case):
    name, method, path, body, headers, with_auth, status, codes, etype = case
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    hdrs = {**(JSON_CT if data is not None else {}), **(AUTH if with_auth else {}), **headers}
    st, h, raw = http(method, ksrv.url + path, data, headers=hdrs, timeout=T)
    err = check_error(st, h, raw, status, codes, etype)
    if status == 401:
        assert h.get("www-authenticate", "").startswith("Bearer"), h
    if status == 405:
        allow = [m.strip().upper() for m in h.get("allow", "").split(",")]
        assert ALLOW[name] in allow, h
    if name == "strict_model":
        assert err["param"] == "model", err
    assert ksrv.proc.poll() is None, "server died"


def test_after_matrix_server_still_serves_and_logged_no_error(ksrv, refs):
    _, vecs, _ = embeddings(ksrv.url, {"input": TEXTS, "model": BGE}, AUTH)
    assert_close(vecs, refs, what="after the matrix")
    assert ksrv.proc.poll() is None
    log = ksrv.log()
    assert "level=error" not in log, log[-3000:]
    assert "AddressSanitizer" not in log and "runtime error" not in log, log[-3000:]


def test_strict_model_accepts_aliases_and_unknown_fields_are_ignored(ksrv, refs):
    for m in ALIASES:
        j, vecs, _ = embeddings(ksrv.url, {"input": TEXTS[0], "model": m}, AUTH)
        assert j["model"] == BGE
        assert_close(vecs, refs[:1], what=m)
    j, vecs, _ = embeddings(ksrv.url, {"input": TEXTS[:1], "frobnicate": {"x": [1, 2]},
                                       "user": "someone"}, AUTH)
    assert_close(vecs, refs[:1])


def test_non_strict_server_accepts_any_model_name(srv, refs):
    j, vecs, _ = embeddings(srv.url, {"input": TEXTS[0], "model": "text-embedding-3-small"})
    assert j["model"] == BGE
    assert_close(vecs, refs[:1])


def test_truncate_default_cuts_long_input(ksrv, bin_path):
    j, vecs, _ = embeddings(ksrv.url, {"input": WORDS_2000}, AUTH)
    assert j["usage"]["prompt_tokens"] <= MAX_TOKENS
    assert_close(vecs, cli_embed(bin_path, [WORDS_2000]), what="truncated input")
    j, _, _ = embeddings(ksrv.url, {"input": WORDS_2000, "truncate": True}, AUTH)


# ---------------------------------------------------------------- 5. 429

def test_queue_full_gives_429_with_retry_after(bin_path):
    n = 5
    with Server(bin_path, "--max-concurrent-requests", "1", "--debug-batch-delay-ms", "1500",
                ready_timeout=T) as s:
        barrier = threading.Barrier(n)

        def one(i):
            barrier.wait(timeout=T)
            return post(s.url + "/v1/embeddings", {"input": [f"request {i}"]})

        with ThreadPoolExecutor(max_workers=n) as ex:
            results = list(ex.map(one, range(n)))
        statuses = [r[0] for r in results]
        assert set(statuses) <= {200, 429}, statuses
        assert 429 in statuses and 200 in statuses, statuses
        for st, h, raw in results:
            if st == 429:
                check_error(st, h, raw, 429, "queue_full", "rate_limit_error")
                assert re.fullmatch(r"\d+", h.get("retry-after", "")), h
            else:
                check_embedding_response(json.loads(raw), {"input": ["x"]})
        # Once the queue is empty again, requests are admitted.
        st, _, raw = post(s.url + "/v1/embeddings", {"input": "after"})
        assert st == 200, raw[:300]


# ---------------------------------------------------------------- 6. drain

def test_sigterm_drains(bin_path, refs):
    with Server(bin_path, "--debug-batch-delay-ms", "2000", expect_rc=None,
                ready_timeout=T) as s:
        result = {}

        def inflight():
            try:
                result["r"] = post(s.url + "/v1/embeddings", {"input": TEXTS})
            except OSError as e:
                result["r"] = e

        t = threading.Thread(target=inflight)
        t.start()
        time.sleep(1.0 if SAN else 0.5)   # the request now waits in the batch delay
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.1)

        observed, notes = [], []
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:   # the handler runs asynchronously
            try:
                st, h, raw = http("GET", s.url + "/health", timeout=10)
            except OSError as e:
                notes.append(f"/health: {e!r}")
                break
            if st == 200:
                time.sleep(0.05)
                continue
            assert st == 503, (st, raw)
            assert json.loads(raw)["status"] == "draining", raw
            observed.append("health")
            break
        try:
            st, h, raw = post(s.url + "/v1/embeddings", {"input": "new"}, timeout=10)
            err = check_error(st, h, raw, 503, "draining", "server_error")
            assert "retry-after" in h, h
            observed.append("post")
        except OSError as e:
            notes.append(f"POST: {e!r}")

        t.join(T)
        assert not t.is_alive(), "in-flight request never completed"
        r = result["r"]
        assert not isinstance(r, Exception), f"in-flight request failed: {r!r}"
        st, h, raw = r
        assert st == 200, raw[:300]
        assert_close(check_embedding_response(json.loads(raw), {"input": TEXTS}), refs,
                     what="in-flight during drain")
        rc = s.proc.wait(T)
        assert rc == 0, s.log()[-3000:]
        assert observed, ("the server was still up (a request was in flight) but neither "
                          f"/health nor a new POST saw 'draining': {notes}")


# ---------------------------------------------------------------- 7. GET routes, metrics

def test_health(srv, ksrv):
    for s in (srv, ksrv):   # public even with --api-key
        st, h, raw = http("GET", s.url + "/health", timeout=T)
        j = ok_json(st, h, raw)
        assert j["status"] == "healthy" and j["model"] == BGE, j


def test_models(srv):
    out = []
    for path in ("/v1/models", "/models"):
        j = ok_json(*http("GET", srv.url + path, timeout=T))
        assert j["object"] == "list" and len(j["data"]) == 1, j
        m = j["data"][0]
        assert m["id"] == BGE and m["object"] == "model" and m["owned_by"] == "bgeicl", m
        assert isinstance(m["created"], int) and m["created"] > 1_600_000_000
        assert m["dimensions"] == DIM and m["max_input_tokens"] == MAX_TOKENS, m
        out.append(j)
    assert out[0] == out[1]


def test_models_with_key(ksrv):
    j = ok_json(*http("GET", ksrv.url + "/v1/models", headers=AUTH, timeout=T))
    assert j["data"][0]["id"] == BGE


def test_info(srv):
    j = ok_json(*http("GET", srv.url + "/info", timeout=T))
    for k in ("model", "hf_id", "architecture", "dimensions", "max_input_tokens", "pooling",
              "dtype", "isa", "threads", "version", "query_instruction", "batching", "cache",
              "icl"):
        assert k in j, f"/info lacks {k}: {j}"
    assert j["model"] == BGE and j["hf_id"] == "BAAI/bge-small-en-v1.5"
    assert j["dimensions"] == DIM and j["max_input_tokens"] == MAX_TOKENS
    assert j["pooling"] == "cls" and j["dtype"] == "fp32"
    assert j["isa"] in ("avx512", "avx2", "scalar")
    assert j["gemm"] in ("avx512", "avx2", "openblas")  # fp32: the packed GEMM of the ISA
    assert j["threads"] == 2
    assert isinstance(j["version"], str) and j["version"]
    assert j["query_instruction"] == QUERY_INSTRUCTION
    assert j["batching"] == {"max_batch_tokens": 16384, "max_batch_requests": 256,
                             "max_concurrent_requests": 512, "max_client_batch_size": 2048,
                             "payload_limit": 16777216}, j["batching"]
    assert isinstance(j["cache"], dict) and isinstance(j["icl"], dict)


def test_info_reflects_flags(ksrv):
    j = ok_json(*http("GET", ksrv.url + "/info", headers=AUTH, timeout=T))
    assert j["batching"]["max_client_batch_size"] == 4
    assert j["batching"]["payload_limit"] == 65536


METRICS_JSON_KEYS = ("queue_depth", "cache_hit_rate", "current_batch_size", "active_connections",
                     "requests_total", "errors_total", "latency_seconds")


def check_metrics_json(j, fresh=False):
    """`fresh`: the server has answered no embedding request yet, so the
    latency quantiles may be null."""
    for k in METRICS_JSON_KEYS:
        assert k in j, f"metrics JSON lacks {k}: {sorted(j)}"
    for q in ("p50", "p95", "p99"):
        v = j["latency_seconds"][q]
        assert isinstance(v, (int, float)) or (fresh and v is None), j["latency_seconds"]
    for k in METRICS_JSON_KEYS[:-1]:
        assert isinstance(j[k], (int, float)) and not isinstance(j[k], bool), (k, j[k])


def test_metrics_needs_key_unless_public(ksrv, bin_path):
    st, h, raw = http("GET", ksrv.url + "/metrics", timeout=T)
    check_error(st, h, raw, 401, "invalid_api_key", "authentication_error")
    st, h, raw = http("GET", ksrv.url + "/metrics", headers=AUTH, timeout=T)
    assert st == 200
    ct = h.get("content-type", "")
    assert ct.startswith("text/plain") and "version=0.0.4" in ct, ct
    assert "# TYPE bge_icl_requests_total counter" in raw.decode()
    check_metrics_json(ok_json(*http("GET", ksrv.url + "/metrics?format=json", headers=AUTH,
                                     timeout=T)))
    with Server(bin_path, "--api-key", KEY, "--metrics-public", ready_timeout=T) as s:
        st, h, raw = http("GET", s.url + "/metrics", timeout=T)
        assert st == 200 and h.get("content-type", "").startswith("text/plain"), (st, raw[:200])
        check_metrics_json(ok_json(*http("GET", s.url + "/metrics?format=json", timeout=T)),
                           fresh=True)
        st, h, raw = http("GET", s.url + "/v1/models", timeout=T)
        check_error(st, h, raw, 401, "invalid_api_key", "authentication_error")
        assert ok_json(*http("GET", s.url + "/health", timeout=T))["status"] == "healthy"


def test_metrics_json_and_accept_header(srv):
    embeddings(srv.url, {"input": ["metrics warm-up"]})
    j = ok_json(*http("GET", srv.url + "/metrics?format=json", timeout=T))
    check_metrics_json(j)
    assert j["requests_total"] >= 1
    j2 = ok_json(*http("GET", srv.url + "/metrics", headers={"Accept": "application/json"},
                       timeout=T))
    check_metrics_json(j2)


CONTRACT_METRICS = {
    "bge_icl_requests_total": "counter",
    "bge_icl_embeddings_generated_total": "counter",
    "bge_icl_input_tokens_total": "counter",
    "bge_icl_request_duration_seconds": "histogram",
    "bge_icl_context_preparation_seconds": "histogram",
    "bge_icl_queue_wait_seconds": "histogram",
    "bge_icl_tokenization_seconds": "histogram",
    "bge_icl_inference_seconds": "histogram",
    "bge_icl_batch_size": "histogram",
    "bge_icl_batch_tokens": "histogram",
    "bge_icl_current_batch_size": "gauge",
    "bge_icl_min_batch_size": "gauge",
    "bge_icl_max_batch_size": "gauge",
    "bge_icl_queue_depth": "gauge",
    "bge_icl_active_connections": "gauge",
    "bge_icl_cache_hit_rate": "gauge",
    "bge_icl_context_cache_hits_total": "counter",
    "bge_icl_context_cache_misses_total": "counter",
    "bge_icl_embedding_cache_hits_total": "counter",
    "bge_icl_embedding_cache_misses_total": "counter",
    "bge_icl_embedding_cache_entries": "gauge",
    "bge_icl_embedding_cache_bytes": "gauge",
    "bge_icl_build_info": "gauge",
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_start_time_seconds": "gauge",
}


def test_metrics_text_has_contract_names(srv):
    embeddings(srv.url, {"input": ["metrics names"]})
    st, h, raw = http("GET", srv.url + "/metrics", timeout=T)
    assert st == 200
    text = raw.decode()
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    missing = {n: t for n, t in CONTRACT_METRICS.items() if types.get(n) != t}
    assert not missing, f"missing or mistyped: {missing}"
    ok = [l for l in text.splitlines() if l.startswith("bge_icl_requests_total{")
          and 'provider="bge-in-icl"' in l and 'status="success"' in l]
    assert ok and float(ok[0].rsplit(" ", 1)[1]) >= 1, ok
    bi = [l for l in text.splitlines() if l.startswith("bge_icl_build_info{")]
    assert bi and f'model="{BGE}"' in bi[0] and 'dtype="fp32"' in bi[0], bi
    assert bi[0].rsplit(" ", 1)[1] in ("1", "1.0"), bi


# ---------------------------------------------------------------- 8. TEI routes

def test_tei_embed_equals_openai(srv, refs, qrefs):
    st, h, raw = post(srv.url + "/embed", {"inputs": TEXTS})
    got = ok_json(st, h, raw)
    assert isinstance(got, list) and len(got) == len(TEXTS)
    assert all(isinstance(v, list) and len(v) == DIM for v in got)
    _, vecs, _ = embeddings(srv.url, {"input": TEXTS})
    assert_close(got, vecs, what="/embed vs /v1/embeddings")
    assert_close(got, refs)
    one = ok_json(*post(srv.url + "/embed", {"inputs": TEXTS[0]}))
    assert len(one) == 1 and len(one[0]) == DIM
    assert_close(one, refs[:1])
    q = ok_json(*post(srv.url + "/embed", {"inputs": TEXTS, "prompt_name": "query"}))
    _, qvecs, _ = embeddings(srv.url, {"input": TEXTS, "input_type": "query", "enable_icl": False})
    assert_close(q, qvecs, what="prompt_name query vs input_type query")
    assert_close(q, qrefs)
    d = ok_json(*post(srv.url + "/embed", {"inputs": TEXTS[:1], "prompt_name": None,
                                          "truncate": True, "normalize": True}))
    assert_close(d, refs[:1])


def test_tei_embed_normalize_false(srv, refs):
    raw_v = np.array(ok_json(*post(srv.url + "/embed", {"inputs": TEXTS, "normalize": False})))
    assert raw_v.shape == (len(TEXTS), DIM)
    norms = np.linalg.norm(raw_v, axis=1)
    assert np.all(np.abs(norms - 1.0) > 1e-3), norms
    assert_close(unit(raw_v), refs, what="normalised raw vectors")


def test_tei_tokenize_matches_cli(srv, bin_path):
    texts = ["Hello, world!", "héllo wörld 你好", "def f(x):\n    return x ** 2",
             "unaffable tokenization of URLs like https://example.com/a?b=c"]
    want = cli_tokenize(bin_path, texts)
    got = ok_json(*post(srv.url + "/tokenize", {"inputs": texts}))
    assert len(got) == len(texts)
    for text, g, w in zip(texts, got, want):
        assert [t["id"] for t in g] == w["ids"], text
        assert [[t["start"], t["stop"]] for t in g] == w["offsets"], text
        for t in g:
            assert isinstance(t["text"], str)
            assert t["special"] is (t["id"] in (101, 102)), t
    single = ok_json(*post(srv.url + "/tokenize", {"inputs": texts[0]}))
    assert single == got[:1]
    plain = ok_json(*post(srv.url + "/tokenize", {"inputs": texts,
                                                  "add_special_tokens": False}))
    for p, w in zip(plain, want):
        assert [t["id"] for t in p] == w["ids"][1:-1]
        assert [[t["start"], t["stop"]] for t in p] == w["offsets"][1:-1]


# ---------------------------------------------------------------- 9. token ids

def test_token_id_input(srv, bin_path):
    j, vecs, _ = embeddings(srv.url, {"input": [[101, 2023, 102]]})
    assert vecs.shape == (1, DIM) and j["usage"]["prompt_tokens"] == 3
    assert_close(vecs, cli_embed(bin_path, ["this"]), what="ids of 'this'")
    texts = ["hello world", "int main(void) { return 0; }"]
    ids = [t["ids"] for t in cli_tokenize(bin_path, texts)]
    _, vecs, _ = embeddings(srv.url, {"input": ids})
    assert_close(vecs, cli_embed(bin_path, texts), what="token ids vs text")


@pytest.mark.parametrize("ids", [[[101, 30522, 102]], [[101, -1, 102]], [[101, 10 ** 12]],
                                 [[101, 1.5]], [[101, "x"]], [[101], "text"]],
                         ids=["vocab_size", "negative", "huge", "fraction", "string",
                              "mixed"])
def test_bad_token_ids_are_400(srv, ids):
    st, h, raw = post(srv.url + "/v1/embeddings", {"input": ids})
    check_error(st, h, raw, 400, ("invalid_value", "invalid_type"), "invalid_request_error")


# ---------------------------------------------------------------- 10. environment and flags

def test_env_port_and_model(bin_path):
    port = free_port()
    env = clean_env(PORT=str(port), BGE_ICL_MODEL=str(model_dir(BGE)), MAX_BATCH_SIZE="7")
    with custom_server(bin_path, ["--host", "127.0.0.1", "--threads", "2"], env, port) as s:
        j = ok_json(*http("GET", s.url + "/v1/models", timeout=T))
        assert j["data"][0]["id"] == BGE
        info = ok_json(*http("GET", s.url + "/info", timeout=T))
        assert info["batching"]["max_batch_requests"] == 7
        embeddings(s.url, {"input": "env"})


def test_flags_override_env(bin_path):
    env_port = free_port()
    env = clean_env(PORT=str(env_port), BGE_ICL_MODEL=str(model_dir(MINILM)), WORKERS="1",
                    BGE_ICL_API_KEY="envkey")
    with Server(bin_path, "--api-key", "flagkey", env=env, ready_timeout=T) as s:
        assert s.port != env_port
        h = {"Authorization": "Bearer flagkey"}
        j = ok_json(*http("GET", s.url + "/v1/models", headers=h, timeout=T))
        assert j["data"][0]["id"] == BGE and j["data"][0]["dimensions"] == DIM
        assert ok_json(*http("GET", s.url + "/info", headers=h, timeout=T))["threads"] == 2
        st, hh, raw = http("GET", s.url + "/v1/models",
                           headers={"Authorization": "Bearer envkey"}, timeout=T)
        check_error(st, hh, raw, 401, "invalid_api_key", "authentication_error")
        with pytest.raises(OSError):
            http("GET", f"http://127.0.0.1:{env_port}/health", timeout=5)


def test_env_api_key(bin_path):
    with Server(bin_path, env=clean_env(BGE_ICL_API_KEY="envkey"), ready_timeout=T) as s:
        st, h, raw = http("GET", s.url + "/v1/models", timeout=T)
        check_error(st, h, raw, 401, "invalid_api_key", "authentication_error")
        ok_json(*http("GET", s.url + "/v1/models", headers={"Authorization": "Bearer envkey"},
                      timeout=T))


@pytest.mark.parametrize("var,value", [("WORKERS", "abc"), ("BGE_ICL_THREADS", "0"),
                                       ("PORT", "notaport"), ("PORT", "70000"),
                                       ("MAX_BATCH_SIZE", "-3"), ("LOG_LEVEL", "loud")])
def test_bad_env_value_exits_2(bin_path, var, value):
    args = ["--model", str(model_dir(BGE)), "--host", "127.0.0.1"]
    if var != "PORT":
        args += ["--port", str(free_port())]
    r = run_serve(bin_path, args, clean_env(**{var: value}))
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert var.encode() in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize("args", [["--bogus"], ["--port", "abc"], ["--port", "70000"],
                                  ["--threads", "0"], ["--log-format", "xml"],
                                  ["--log-level", "loud"], ["--payload-limit", "-1"],
                                  ["--max-concurrent-requests", "x"], ["--port"]],
                         ids=lambda a: " ".join(a) or "none")
def test_bad_flags_exit_2(bin_path, args):
    base = ["--model", str(model_dir(BGE)), "--host", "127.0.0.1"]
    if "--port" not in args:
        base += ["--port", str(free_port())]
    r = run_serve(bin_path, base + args, clean_env())
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert r.stderr.strip(), "no message on stderr"


def test_serve_help(bin_path):
    r = subprocess.run([bin_path, "serve", "--help"], capture_output=True, timeout=60)
    assert r.returncode == 0
    assert b"usage" in r.stdout.lower()
    for flag in (b"--port", b"--model", b"--api-key", b"--max-concurrent-requests"):
        assert flag in r.stdout, flag


# ---------------------------------------------------------------- 12. timeouts

def read_until_closed(sock, limit):
    """Reads until EOF/reset or `limit` seconds; returns (bytes, closed, seconds)."""
    t0 = time.monotonic()
    data = b""
    sock.settimeout(0.5)
    while time.monotonic() - t0 < limit:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return data, True, time.monotonic() - t0
        if not chunk:
            return data, True, time.monotonic() - t0
        data += chunk
    return data, False, time.monotonic() - t0


def test_read_timeout_closes_slow_body_and_others_are_served(bin_path, refs):
    with Server(bin_path, "--read-timeout", "2", "--idle-timeout", "3", ready_timeout=T) as s:
        slow = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        t0 = time.monotonic()
        slow.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                     b'{"input": ')
        # Another connection is served while the slow one is open.
        _, vecs, _ = embeddings(s.url, {"input": TEXTS[:2]})
        assert_close(vecs, refs[:2])
        served_after = time.monotonic() - t0
        data, closed, _ = read_until_closed(slow, 15)
        total = time.monotonic() - t0
        slow.close()
        assert closed, "the server kept a connection with an incomplete body open for 15 s"
        assert total <= 10, f"closed only after {total:.1f} s"
        assert total >= 1.5, f"closed after {total:.1f} s, before --read-timeout 2"
        if data:
            assert re.match(rb"HTTP/1\.[01] (408|400) ", data), data[:200]
        assert served_after < total

        # Headers that never finish and a connection that sends nothing are closed too.
        part = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        part.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        idle = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        _, c1, t1 = read_until_closed(part, 15)
        _, c2, _ = read_until_closed(idle, 15)
        part.close()
        idle.close()
        assert c1 and t1 <= 10, (c1, t1)
        assert c2, "an idle connection stayed open past --idle-timeout"
        embeddings(s.url, {"input": "still serving"})


# ---------------------------------------------------------------- 11. JSON log (last: reads srv's whole log)

def test_json_log_lines(srv):
    embeddings(srv.url, {"input": "log me"})
    http("GET", srv.url + "/nope", timeout=T)
    time.sleep(0.2)
    lines = [l for l in srv.log().splitlines() if l.startswith("{")]
    assert lines, srv.log()[-2000:]
    recs = []
    for l in lines:
        try:
            recs.append(json.loads(l))
        except ValueError:
            pytest.fail(f"log line is not JSON: {l[:300]}")
    assert all(isinstance(r, dict) and "ts" in r and "level" in r and "msg" in r
               for r in recs), recs[:3]
    assert any(r["msg"] == "listening" for r in recs)
    reqs = [r for r in recs if r["msg"] == "request"]
    assert reqs
    for r in reqs:
        assert isinstance(r.get("method"), str) and isinstance(r.get("path"), str), r
        assert isinstance(r.get("status"), int), r
    assert any(r["path"] == "/v1/embeddings" and r["status"] == 200 and r["method"] == "POST"
               for r in reqs)
    assert any(r["path"] == "/nope" and r["status"] == 404 for r in reqs)
    assert not any(r["level"] == "error" for r in recs), [r for r in recs if r["level"] == "error"]
