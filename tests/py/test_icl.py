"""In-context learning and the caches, through a real server, against
references nobody here wrote: sentence-transformers embeds the prompt string
built in Python from BAAI's bge-en-icl format, and the Hugging Face
tokenizer counts its tokens.

    example:  <instruct>{instruction}\\n<query>{query}\\n<response>{response}
    prefix:   examples joined by "\\n\\n", plus "\\n\\n"
    query:    <instruct>{instruction}\\n<query>{query}     (encoder: no "\\n<response>")
"""
import json
import os
import signal
import threading
import time

import numpy as np
import pytest

from conftest import BGE, model_dir
from serverproc import Server, http

SAN = os.environ.get("BGEICL_BIN", "").endswith("san/bgeicl")


def example(instr, q, r):
    return f"<instruct>{instr}\n<query>{q}\n<response>{r}"


def icl_prompt(instr, examples, query):
    prefix = "".join(example(instr, q, r) + "\n\n" for q, r in examples)
    return prefix + f"<instruct>{instr}\n<query>{query}"


@pytest.fixture(scope="module")
def st_model():
    from sentence_transformers import SentenceTransformer
    return SentenceTransformer(str(model_dir(BGE)), device="cpu")


def post(url, body, path="/v1/embeddings"):
    st, h, raw = http("POST", url + path, body)
    assert st == 200, raw
    return json.loads(raw), h


def vec(d, i=0):
    return np.array(d["data"][i]["embedding"])


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """A one-example-per-language bank, so the selection is known."""
    d = tmp_path_factory.mktemp("bank")
    for lang in ["generic", "python", "go"]:
        (d / f"{lang}.json").write_text(json.dumps({
            "language": lang,
            "instruction": f"Given a {lang} code search query, retrieve the snippet.",
            "examples": [{"query": f"read a file in {lang}",
                          "response": f"data = read_file(path)  # {lang}"}]}))
    return d


@pytest.fixture(scope="module")
def srv(bin_path, bank):
    with Server(bin_path, "--icl-examples", str(bank), "--icl-k", "1", "--icl", "on") as s:
        yield s


def test_explicit_icl_context_matches_reference(srv, st_model):
    instr = "Represent this Python code for retrieval."
    exs = [("sum a list", "total = sum(xs)"), ("reverse a string", "s[::-1]")]
    text = "def mean(xs): return sum(xs) / len(xs)"
    body = {"input": [text], "icl_context": {
        "instruction": instr, "language": "python", "enable_context_learning": True,
        "examples": [{"query": q, "response": r} for q, r in exs]}}
    d, _ = post(srv.url, body)
    prompt = icl_prompt(instr, exs, text)
    ref = st_model.encode([prompt], normalize_embeddings=True)[0]
    assert float(vec(d) @ ref) > 0.9999
    assert d["usage"]["prompt_tokens"] == len(st_model.tokenizer(prompt)["input_ids"])
    info = d["icl_info"]
    assert info == {"language": "python", "examples": 2, "instruction": instr,
                    "context_cache_hit": False}


def test_icl_context_string_examples_and_disabled(srv, st_model):
    instr = "Embed code."
    text = "class Stack: pass"
    d, _ = post(srv.url, {"input": text, "icl_context": {
        "instruction": instr, "examples": ["class Queue: pass"]}})
    ref = st_model.encode([icl_prompt(instr, [("", "class Queue: pass")], text)],
                          normalize_embeddings=True)[0]
    assert float(vec(d) @ ref) > 0.9999
    # enable_context_learning false: a plain document, and no icl_info.
    d2, _ = post(srv.url, {"input": text, "icl_context": {
        "instruction": instr, "examples": ["x"], "enable_context_learning": False}})
    plain = st_model.encode([text], normalize_embeddings=True)[0]
    assert float(vec(d2) @ plain) > 0.9999 and "icl_info" not in d2


def test_server_side_icl_uses_bank_and_language(srv, st_model):
    q = "how do I parse a config file"
    d, _ = post(srv.url, {"input": q, "input_type": "query", "language": "go"})
    instr = "Given a go code search query, retrieve the snippet."
    prompt = icl_prompt(instr, [("read a file in go", "data = read_file(path)  # go")], q)
    ref = st_model.encode([prompt], normalize_embeddings=True)[0]
    assert float(vec(d) @ ref) > 0.9999
    assert d["icl_info"]["language"] == "go" and d["icl_info"]["examples"] == 1
    # ICL off: the model's own query instruction.
    d2, _ = post(srv.url, {"input": q, "input_type": "query", "enable_icl": False})
    plain = st_model.encode(["Represent this sentence for searching relevant passages: " + q],
                            normalize_embeddings=True)[0]
    assert float(vec(d2) @ plain) > 0.9999 and "icl_info" not in d2
    # A document gets no prompt even with ICL on.
    d3, _ = post(srv.url, {"input": q, "enable_icl": True})
    assert "icl_info" not in d3


def test_language_detection_and_unknown_language(srv):
    code = "func main() {\n\tfmt.Println(\"hi\")\n}\n"
    d, _ = post(srv.url, {"input": code, "input_type": "query", "language": "auto"})
    assert d["icl_info"]["language"] == "go"
    st, _, raw = http("POST", srv.url + "/v1/embeddings",
                      {"input": "x", "input_type": "query", "language": "klingon"})
    err = json.loads(raw)["error"]
    assert st == 400 and err["param"] == "language" and err["code"] == "invalid_value"


def test_context_cache_hits_and_metrics(srv):
    q = "read the json config file from disk"
    first, _ = post(srv.url, {"input": q, "input_type": "query", "language": "python"})
    again, _ = post(srv.url, {"input": q + " now", "input_type": "query", "language": "python"})
    assert first["icl_info"]["context_cache_hit"] is False
    assert again["icl_info"]["context_cache_hit"] is True  # 6 of 7 tokens shared
    st, _, raw = http("GET", srv.url + "/metrics?format=json")
    m = json.loads(raw)
    hits = m["bge_icl_context_cache_hits_total"]["series"][0]["value"]
    assert hits >= 1 and 0 < m["cache_hit_rate"] < 1


def test_long_query_keeps_query_and_drops_examples(srv, st_model):
    long_q = " ".join(f"word{i}" for i in range(600))
    d, _ = post(srv.url, {"input": long_q, "input_type": "query", "language": "python"})
    assert d["icl_info"]["examples"] == 0
    assert d["usage"]["prompt_tokens"] == 512


def test_embedding_cache_second_pass_hits_and_equal(bin_path):
    texts = [f"def f{i}(x): return x * {i}" for i in range(40 if not SAN else 8)]
    with Server(bin_path) as s:
        first, h1 = post(s.url, {"input": texts})
        second, h2 = post(s.url, {"input": texts})
        assert h1["x-cache-hits"] == "0" and h2["x-cache-hits"] == str(len(texts))
        a = np.array([x["embedding"] for x in first["data"]])
        b = np.array([x["embedding"] for x in second["data"]])
        assert np.array_equal(a, b)
        # A query of the same text is another input: no hit.
        _, h3 = post(s.url, {"input": texts[:1], "input_type": "query", "enable_icl": False})
        assert h3["x-cache-hits"] == "0"
    with Server(bin_path, "--cache-size", "0") as s:
        _, h = post(s.url, {"input": texts[:2]})
        assert "x-cache-hits" not in h


def test_persistent_cache_survives_sigkill(bin_path, tmp_path):
    """Kill the server with SIGKILL while it writes cache records, restart it
    on the same --cache-dir: every entry it reads back is the right vector."""
    cache = tmp_path / "cache"
    n = 120 if not SAN else 24
    texts = [f"int fn_{i}(int x) {{ return x + {i}; }}" for i in range(n)]
    srv = Server(bin_path, "--cache-dir", str(cache)).start()
    stop = threading.Event()

    def writer():
        for i in range(0, n, 4):
            if stop.is_set():
                return
            try:
                http("POST", srv.url + "/v1/embeddings", {"input": texts[i:i + 4]}, timeout=30)
            except OSError:
                return

    t = threading.Thread(target=writer)
    t.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(cache.glob("*.log")):
        time.sleep(0.05)
    while time.monotonic() < deadline and (cache / "emb-cache.log").stat().st_size < 20000:
        time.sleep(0.02)
    srv.stop(signal.SIGKILL)
    stop.set()
    t.join()
    with Server(bin_path, "--cache-dir", str(cache)) as again, \
            Server(bin_path, "--cache-size", "0") as fresh:
        log = again.log()
        assert "loaded=" in log
        loaded = int(log.split("loaded=")[1].split()[0])
        assert loaded > 0
        got, h = post(again.url, {"input": texts})
        ref, _ = post(fresh.url, {"input": texts})
        hits = int(h["x-cache-hits"])
        assert hits == loaded, (hits, loaded)
        a = np.array([x["embedding"] for x in got["data"]])
        b = np.array([x["embedding"] for x in ref["data"]])
        assert np.max(np.abs(a - b)) <= 1e-5
