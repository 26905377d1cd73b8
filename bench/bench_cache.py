"""Embedding cache: re-embedding an unchanged corpus, in memory and after a
restart with --cache-dir.

    .venv/bin/python bench/bench_cache.py [--chunks 600] [--batch 32] [--threads 2]

The corpus is the code-chunk corpus of bench_engine.py (this machine's
Python standard library, tests/py/embed_corpus.py). One server with the
cache on disk embeds it three times in batches, as an indexer re-indexing
an unchanged repository would:

  pass 1   cold: every chunk is a miss and runs through the model
  pass 2   warm: every chunk is a hit
  pass 3   after SIGTERM and a restart on the same --cache-dir

Reports wall time per pass, the speed-ups against pass 1, hit counts from
the x-cache-hits header, and writes bench/out/cache.json.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "py"))
from embed_corpus import python_code_chunks  # noqa: E402
from serverproc import Server, http  # noqa: E402


def one_pass(url, texts, batch):
    hits = 0
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        st, h, raw = http("POST", url + "/v1/embeddings", {"input": texts[i:i + batch]},
                          timeout=600)
        if st != 200:
            sys.exit(f"HTTP {st}: {raw[:200]!r}")
        hits += int(h.get("x-cache-hits", "0"))
    return time.perf_counter() - t0, hits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    texts = python_code_chunks()[:a.chunks]
    binp = str(ROOT / "build" / "bgeicl")
    res = {"chunks": len(texts), "batch": a.batch, "threads": a.threads}
    with tempfile.TemporaryDirectory() as d:
        flags = ["--cache-dir", d]
        with Server(binp, *flags, threads=a.threads) as s:
            res["cold_s"], res["cold_hits"] = one_pass(s.url, texts, a.batch)
            res["warm_s"], res["warm_hits"] = one_pass(s.url, texts, a.batch)
        with Server(binp, *flags, threads=a.threads) as s:
            res["restart_s"], res["restart_hits"] = one_pass(s.url, texts, a.batch)
    res["speedup_warm"] = res["cold_s"] / res["warm_s"]
    res["speedup_restart"] = res["cold_s"] / res["restart_s"]
    print("| pass | seconds | cache hits | speed-up |\n|---|---|---|---|")
    print(f"| cold | {res['cold_s']:.2f} | {res['cold_hits']} | 1 |")
    print(f"| warm | {res['warm_s']:.3f} | {res['warm_hits']} | {res['speedup_warm']:.0f}x |")
    print(f"| after restart | {res['restart_s']:.3f} | {res['restart_hits']} "
          f"| {res['speedup_restart']:.0f}x |")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "cache.json").write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
