"""The client library's overhead: `bgeicl embed --server` against raw HTTP
requests that carry the very same batches.

    .venv/bin/python bench/bench_client.py [--texts 512] [--batch 32] [--rounds 3]
                                           [--lines 4,1] [--threads 2]
                                           [--model models/bge-small-en-v1.5]
                                           [--write-doc]

One `bgeicl serve` (embedding cache off, so that a repeat is not a cache
hit) serves both sides, one after the other, alternating for --rounds
rounds; each side keeps its best round.

  raw     Python's http.client on one keep-alive connection sends the
          texts as sequential POST /v1/embeddings bodies of --batch inputs
          ({"model", "encoding_format":"base64", "input"}, the body the
          client sends) and decodes each reply's base64 vectors with numpy.
  client  `bgeicl embed --server URL --no-adaptive --batch-size B
          --concurrency 1 --stats F -` on the same texts as JSON Lines: the
          same batches, one at a time. Its time is the client's own
          total_time from --stats (seconds inside bgeicl_client_embed:
          request bodies, HTTP, reply parsing and checks), and, apart, the
          process's wall time, which adds reading JSON Lines and printing
          every vector as JSON text.

Both sides wait on the same server doing the same forward passes, so the
ratio client / raw shows what the client adds. On a machine shared with
other work the server's own time varies from round to round, so the table
also gives, per batch, each side's time beyond the server's own (the sum of
the ms= of its requests in the server's log): request building, HTTP on
loopback and reply decoding, free of the server's variance. Corpus: code chunks of each --lines count from this machine's Python
standard library (tests/py/embed_corpus.py); one-line chunks make the
server's share small, so the client's own cost shows most there. Prints a table and writes bench/out/client.json;
--write-doc also rewrites the results block of docs/CLIENT.md.
"""
import argparse
import base64
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "py"))
from embed_corpus import python_code_chunks  # noqa: E402
from serverproc import DEFAULT_MODEL, Server  # noqa: E402

BIN = os.environ.get("BGEICL_BIN", str(ROOT / "build" / "bgeicl"))
DOC = ROOT / "docs" / "CLIENT.md"
BEGIN, END = "<!-- bench-client:begin -->", "<!-- bench-client:end -->"


def raw_run(url, texts, batch):
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
    t0 = time.perf_counter()
    n = 0
    for i in range(0, len(texts), batch):
        body = json.dumps({"model": "bge-in-icl", "encoding_format": "base64",
                           "input": texts[i:i + batch]})
        conn.request("POST", "/v1/embeddings", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        assert r.status == 200, data[:300]
        for d in json.loads(data)["data"]:
            np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4")
            n += 1
    dt = time.perf_counter() - t0
    conn.close()
    assert n == len(texts)
    return dt


def client_run(url, texts, batch):
    with tempfile.TemporaryDirectory() as d:
        inp, stats = Path(d) / "in.jsonl", Path(d) / "stats.json"
        inp.write_text("".join(json.dumps(t) + "\n" for t in texts))
        t0 = time.perf_counter()
        with open(inp, "rb") as f:
            r = subprocess.run([BIN, "embed", "--server", url, "--no-adaptive", "--batch-size",
                                str(batch), "--concurrency", "1", "--stats", str(stats), "-"],
                               stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.perf_counter() - t0
        assert r.returncode == 0, r.stderr.decode()
        st = json.loads(stats.read_text())
        assert st["total_texts"] == len(texts) and st["retries"] == 0, st
        return st["total_time"], wall


def server_ms(srv, since, expect):
    """Sum of the server's own times (its log's ms=) of the `expect` requests
    logged after line `since` (a line is written just after its answer, so
    wait for all of them); returns (ms, next line)."""
    deadline = time.monotonic() + 10
    while True:
        lines = srv.log().splitlines()
        reqs = [l for l in lines[since:] if "msg=request" in l and "path=/v1/embeddings" in l]
        if len(reqs) >= expect or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(reqs) == expect, (len(reqs), expect)
    return sum(float(l.split(" ms=")[1].split()[0]) for l in reqs), len(lines)


def measure(a, lines):
    texts = python_code_chunks(limit=a.texts, lines_per_chunk=lines, per_file=2, stride=2)
    raw, cl, wall, raw_over, cl_over, srv_ms = [], [], [], [], [], []
    with Server(BIN, "--cache-size", "0", model=a.model, threads=a.threads) as s:
        batches = -(-len(texts) // a.batch)
        raw_run(s.url, texts[:a.batch], a.batch)  # warm-up
        _, at = server_ms(s, 0, 1)
        for _ in range(a.rounds):
            raw.append(raw_run(s.url, texts, a.batch))
            ms, at = server_ms(s, at, batches)
            raw_over.append(raw[-1] * 1000 - ms)
            srv_ms.append(ms)
            c, w = client_run(s.url, texts, a.batch)
            ms, at = server_ms(s, at, batches)
            cl.append(c)
            wall.append(w)
            cl_over.append(c * 1000 - ms)
            srv_ms.append(ms)
    server = float(np.median(srv_ms)) / batches
    rb, cb = min(raw_over) / batches, min(cl_over) / batches
    return {"lines": lines, "texts": len(texts), "batches": batches, "raw_s": raw,
            "client_s": cl, "client_wall_s": wall, "ratio": min(cl) / min(raw),
            "wall_ratio": min(wall) / min(raw),
            "server_ms_per_batch": server, "raw_beyond_server_ms_per_batch": rb,
            "client_beyond_server_ms_per_batch": cb,
            "ratio_at_equal_server_time": (server + cb) / (server + rb)}


def row(r):
    n = r["texts"]
    raw, cl, wall = min(r["raw_s"]), min(r["client_s"]), min(r["client_wall_s"])
    return (f"| {r['lines']} | {n} | {r['server_ms_per_batch']:.1f} | "
            f"{r['raw_beyond_server_ms_per_batch']:.2f} | "
            f"{r['client_beyond_server_ms_per_batch']:.2f} | "
            f"**{r['ratio_at_equal_server_time']:.3f}** | {raw:.3f} | {cl:.3f} | {r['ratio']:.3f} | "
            f"{wall:.3f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--texts", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lines", default="4,1", help="lines per chunk, comma-separated")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--write-doc", action="store_true")
    a = ap.parse_args()
    runs = [measure(a, int(x)) for x in a.lines.split(",")]
    model = Path(a.model).name
    cmd = (f".venv/bin/python bench/bench_client.py --texts {a.texts} --batch {a.batch} "
           f"--rounds {a.rounds} --lines {a.lines} --threads {a.threads}")
    table = "\n".join([
        f"Batches of {a.batch}, {model} on {a.threads} threads, {a.rounds} rounds of each "
        "side (best kept; the server's time is the median):",
        "",
        "| lines per chunk | texts | server, ms per batch | raw: ms per batch beyond the server | "
        "client: ms per batch beyond the server | client / raw at equal server time | "
        "raw, s | client total_time, s | client / raw, wall clock | `embed --server` process, s |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *[row(r) for r in runs],
        "",
        f"Reproduce: `{cmd}`",
    ])
    print(table)
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    res = {"batch": a.batch, "rounds": a.rounds, "threads": a.threads, "model": model,
           "runs": runs}
    (out / "client.json").write_text(json.dumps(res, indent=1) + "\n")
    if a.write_doc:
        doc = DOC.read_text()
        i, j = doc.index(BEGIN) + len(BEGIN), doc.index(END)
        DOC.write_text(doc[:i] + "\n" + table + "\n" + doc[j:])


if __name__ == "__main__":
    main()
