"""Server overhead: bgeicl in-process against the same engine behind HTTP.

    .venv/bin/python bench/bench_server.py [--seconds 10] [--batch 32]
                                           [--clients 1,4] [--rounds 1]
                                           [--queries 200] [--warmup 20]
                                           [--threads 2] [--model models/bge-small-en-v1.5]

Needs `make bench-bin` (build/bench/engine_bench) and build/bgeicl.

(i) Throughput at batch 32: the code-chunk corpus of bench_engine.py
(tests/py/embed_corpus.py, cut from this machine's Python standard library)
is embedded in-process by build/bench/engine_bench, then through
`bgeicl serve` by one client sending sequential POST /v1/embeddings batches
of 32 (OpenAI-style JSON, keep-alive), then by N concurrent clients. Both
sides use the same number of threads, one after the other in this run (the
machine is small: they never overlap; the server idles while engine_bench
runs). Each server run sends the same texts in the same order as
engine_bench (a warm-up batch of texts 0-31, then consecutive slices; with
several clients, the slices come from one shared cursor); embedding-cache
hits during the server runs are read from /metrics and reported, since a
cache would flatter the server. overhead = 1 - server texts/s /
in-process texts/s. On a machine shared with other work, --rounds N repeats
(i) and keeps the best run of each side.

(ii) Latency of single short queries (~10 tokens, all distinct) under light
load: one client, sequential, a persistent http.client connection,
`--warmup` requests then `--queries` measured ones, as documents and as
queries (input_type "query"). The in-process reference is engine_bench at
batch 1 on the same texts (mean time per text).

Prints markdown tables and writes bench/out/server.json.
"""
import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "py"))
from embed_corpus import python_code_chunks  # noqa: E402
from serverproc import DEFAULT_MODEL, Server  # noqa: E402
from serverproc import http as http_request  # noqa: E402

TIMING_HEADERS = ("x-queue-time", "x-tokenization-time", "x-inference-time", "x-total-time")


# ---- in-process --------------------------------------------------------------

def engine_bench(model, texts, batches, seconds, threads):
    exe = ROOT / "build" / "bench" / "engine_bench"
    if not os.access(exe, os.X_OK):
        sys.exit(f"{exe} is not built; run make bench-bin")
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for t in texts:
            f.write(json.dumps(t) + "\n")
        path = f.name
    try:
        out = subprocess.run([str(exe), str(model), path, ",".join(map(str, batches)),
                              str(seconds), str(threads)], capture_output=True, text=True,
                             check=True)
    finally:
        os.unlink(path)
    return {r["batch"]: r for r in map(json.loads, out.stdout.splitlines())}


# ---- HTTP client -------------------------------------------------------------------

class Client:
    """One keep-alive connection; post() returns (status, doc, headers, seconds)."""

    def __init__(self, host, port, timeout=300):
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self.reconnects = 0

    def post(self, path, body):
        data = json.dumps(body).encode()
        t0 = time.perf_counter()
        self.conn.request("POST", path, data, {"Content-Type": "application/json"})
        r = self.conn.getresponse()
        raw = r.read()
        dt = time.perf_counter() - t0
        if r.will_close:
            self.reconnects += 1
        hdr = {k.lower(): v for k, v in r.getheaders()}
        doc = json.loads(raw) if raw else None
        if r.status != 200:
            raise RuntimeError(f"POST {path}: {r.status} {raw[:300]!r}")
        return r.status, doc, hdr, dt

    def close(self):
        self.conn.close()


class Cursor:
    """Consecutive slices of the corpus, shared by all clients."""

    def __init__(self, texts):
        self.texts, self.pos, self.lock = texts, 0, threading.Lock()

    def take(self, n):
        with self.lock:
            p = self.pos
            self.pos += n
        return [self.texts[(p + i) % len(self.texts)] for i in range(n)]

    @property
    def wrapped(self):
        return self.pos > len(self.texts)


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def server_throughput(srv, cursor, batch, seconds, clients, model_id):
    """`clients` threads, each sending sequential batches until `seconds` pass."""
    results = [None] * clients
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    errors = []

    def worker(k):
        try:
            run(k)
        except BaseException as e:  # noqa: BLE001 - reported after join
            errors.append(e)
            start.abort()

    def run(k):
        c = Client("127.0.0.1", srv.port)
        c.post("/v1/embeddings", {"input": cursor.take(batch), "model": model_id})  # warm-up
        start.wait()
        n = tok = req = 0
        lat, hdr_sum = [], {h: 0.0 for h in TIMING_HEADERS}
        while time.monotonic() < stop_at[0]:
            _, doc, hdr, dt = c.post("/v1/embeddings", {"input": cursor.take(batch),
                                                        "model": model_id})
            assert len(doc["data"]) == batch
            n += batch
            tok += doc["usage"]["prompt_tokens"]
            req += 1
            lat.append(dt)
            for h in TIMING_HEADERS:
                hdr_sum[h] += float(hdr.get(h, "nan"))
        results[k] = {"texts": n, "tokens": tok, "requests": req, "latencies": lat,
                      "hdr_sum": hdr_sum, "reconnects": c.reconnects, "end": time.monotonic()}
        c.close()

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    stop_at[0] = time.monotonic() + 1e9
    for t in ts:
        t.start()
    try:
        start.wait()
    except threading.BrokenBarrierError:
        pass
    t0 = time.monotonic()
    stop_at[0] = t0 + seconds
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    el = max(r["end"] for r in results) - t0
    texts = sum(r["texts"] for r in results)
    tokens = sum(r["tokens"] for r in results)
    reqs = sum(r["requests"] for r in results)
    lat = [x for r in results for x in r["latencies"]]
    hdr = {h: sum(r["hdr_sum"][h] for r in results) / max(reqs, 1) for h in TIMING_HEADERS}
    return {"clients": clients, "batch": batch, "texts": texts, "tokens": tokens,
            "requests": reqs, "seconds": el, "texts_per_s": texts / el,
            "tokens_per_s": tokens / el,
            "request_latency_s": {"p50": pct(lat, 50), "p99": pct(lat, 99)},
            "server_timing_ms_mean": hdr,
            "reconnects": sum(r["reconnects"] for r in results)}


def cache_hits(url):
    """bge_icl_embedding_cache_hits_total, or 0 if /metrics cannot be read."""
    try:
        st, _, body = http_request("GET", url + "/metrics", timeout=30)
    except OSError:
        return 0
    if st != 200:
        return 0
    for line in body.decode().splitlines():
        if line.startswith("bge_icl_embedding_cache_hits_total"):
            return float(line.split()[-1])
    return 0


# ---- short queries ------------------------------------------------------------------

def short_queries(n, seed=7):
    """n distinct questions of about 10 tokens each."""
    verbs = ["parse", "sort", "merge", "validate", "serialize", "compress", "cache", "retry",
             "stream", "hash", "split", "encrypt", "decode", "index", "paginate", "profile"]
    nouns = ["json file", "list of tuples", "http request", "csv table", "config dict",
             "unicode string", "binary tree", "socket stream", "date range", "log file",
             "nested map", "sql query"]
    langs = ["python", "go", "rust", "c", "java", "javascript", "bash", "ruby"]
    combos = [f"how do I {v} a {o} in {l}" for v in verbs for o in nouns for l in langs]
    random.Random(seed).shuffle(combos)
    assert n <= len(combos)
    return combos[:n]


def query_latency(srv, texts, warmup, model_id, input_type=None):
    c = Client("127.0.0.1", srv.port)
    lat, server_ms, toks = [], [], []
    extra = {"input_type": input_type} if input_type else {}
    for i, t in enumerate(texts):
        _, doc, hdr, dt = c.post("/v1/embeddings", {"input": t, "model": model_id, **extra})
        if i < warmup:
            continue
        lat.append(dt)
        server_ms.append(float(hdr.get("x-total-time", "nan")))
        toks.append(doc["usage"]["prompt_tokens"])
    c.close()
    ms = lambda v: v * 1e3 if v is not None else None  # noqa: E731
    return {"mode": input_type or "document", "requests": len(lat),
            "p50_ms": ms(pct(lat, 50)), "p90_ms": ms(pct(lat, 90)), "p99_ms": ms(pct(lat, 99)),
            "mean_ms": ms(sum(lat) / len(lat)), "max_ms": ms(max(lat)),
            "server_total_p50_ms": pct(server_ms, 50),
            "prompt_tokens_mean": sum(toks) / len(toks), "reconnects": c.reconnects}


# ---- main ----------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--bin", default=os.environ.get("BGEICL_BIN", str(ROOT / "build" / "bgeicl")))
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--clients", default="1,4", help="concurrency levels for (i); 1 is always run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat (i) and keep the best of each side (for a busy machine)")
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="extra flag for bgeicl serve (repeatable), e.g. --serve-arg=--cache-size --serve-arg=0")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "server.json"))
    args = ap.parse_args()
    levels = sorted({1, *(int(c) for c in args.clients.split(",") if c)})
    model_id = Path(args.model).name

    load_before = list(os.getloadavg())
    corpus = python_code_chunks(limit=args.texts)
    queries = short_queries(args.warmup + args.queries)

    # One round = the in-process run, then the server runs. They never overlap:
    # the server idles (blocked, no CPU) while engine_bench runs.
    rounds_in, rounds_srv = [], {c: [] for c in levels}
    # The embedding cache is off unless asked for: the corpus wraps around,
    # and repeated texts would be answered from the cache, not the engine.
    serve_args = args.serve_arg or ["--cache-size", "0"]
    with Server(args.bin, *serve_args, model=args.model, threads=args.threads) as srv:
        wrapped = False
        for _ in range(args.rounds):
            rounds_in.append(engine_bench(args.model, corpus, [args.batch], args.seconds,
                                          args.threads)[args.batch])
            for c in levels:
                before = cache_hits(srv.url)
                cursor = Cursor(corpus)  # the same texts in the same order as engine_bench
                r = server_throughput(srv, cursor, args.batch, args.seconds, c, model_id)
                wrapped = wrapped or cursor.wrapped
                r["embedding_cache_hits"] = cache_hits(srv.url) - before
                r["overhead_same_round"] = 1 - r["texts_per_s"] / rounds_in[-1]["texts_per_s"]
                rounds_srv[c].append(r)
        inproc_q = engine_bench(args.model, queries, [1], min(args.seconds, 5.0), args.threads)[1]
        lat = [query_latency(srv, queries, args.warmup, model_id),
               query_latency(srv, queries, args.warmup, model_id, "query")]

    # Best of the rounds on each side (external load only ever slows a run down).
    inproc = max(rounds_in, key=lambda r: r["texts_per_s"])
    tp = [max(rounds_srv[c], key=lambda r: r["texts_per_s"]) for c in levels]
    hits = sum(r["embedding_cache_hits"] for c in levels for r in rounds_srv[c])
    print(f"corpus: {len(corpus)} Python stdlib chunks (20 lines), batch={args.batch}, "
          f"threads={args.threads}, model={model_id}, {args.seconds:g} s per run, "
          f"best of {args.rounds} round(s), load average before {load_before[0]:.2f}"
          + ("  [corpus wrapped]" if wrapped else "")
          + (f"  [{hits:g} embedding-cache hits: the server is flattered]" if hits else ""))
    print()
    print("| path | clients | texts/s | tokens/s | overhead | req p50 ms | req p99 ms | "
          "server inference ms (mean) |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| in-process (engine_bench) | - | {inproc['texts_per_s']:.1f} | "
          f"{inproc['tokens_per_s']:.0f} | - | - | - | - |")
    for r in tp:
        r["overhead"] = 1 - r["texts_per_s"] / inproc["texts_per_s"]
        r["overhead_tokens"] = 1 - r["tokens_per_s"] / inproc["tokens_per_s"]
        lr = r["request_latency_s"]
        print(f"| server HTTP | {r['clients']} | {r['texts_per_s']:.1f} | {r['tokens_per_s']:.0f} | "
              f"{r['overhead'] * 100:+.1f}% | {lr['p50'] * 1e3:.0f} | {lr['p99'] * 1e3:.0f} | "
              f"{r['server_timing_ms_mean']['x-inference-time']:.0f} |")
    if args.rounds > 1:
        per = {c: [f"{r['overhead_same_round'] * 100:+.1f}%" for r in rounds_srv[c]]
               for c in levels}
        print(f"\noverhead per round (against that round's in-process run): {per}")
    print()
    inproc_ms = 1e3 / inproc_q["texts_per_s"]
    print(f"single short queries ({args.queries} after {args.warmup} warm-up, one keep-alive "
          f"client); in-process batch 1 on the same texts: {inproc_ms:.1f} ms per text")
    print()
    print("| input_type | prompt tokens (mean) | p50 ms | p90 ms | p99 ms | mean ms | max ms | "
          "server x-total-time p50 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for r in lat:
        print(f"| {r['mode']} | {r['prompt_tokens_mean']:.1f} | {r['p50_ms']:.1f} | "
              f"{r['p90_ms']:.1f} | {r['p99_ms']:.1f} | {r['mean_ms']:.1f} | {r['max_ms']:.1f} | "
              f"{r['server_total_p50_ms']:.1f} |")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    strip = lambda r: {k: v for k, v in r.items() if k != "latencies"}  # noqa: E731
    out.write_text(json.dumps({
        "model": model_id, "threads": args.threads, "batch": args.batch,
        "seconds": args.seconds, "rounds": args.rounds, "corpus_texts": len(corpus),
        "corpus_wrapped": wrapped, "embedding_cache_hits": hits,
        "loadavg_before": load_before, "loadavg_after": list(os.getloadavg()),
        "throughput": {"in_process": inproc, "server": tp,
                       "rounds": {"in_process": rounds_in,
                                  "server": {str(c): [strip(r) for r in rounds_srv[c]]
                                             for c in levels}}},
        "latency": {"in_process_batch1_ms_per_text": inproc_ms, "in_process": inproc_q,
                    "server": lat}}, indent=2))

if __name__ == "__main__":
    main()
