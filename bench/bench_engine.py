"""Engine throughput: bgeicl in-process against sentence-transformers.

    .venv/bin/python bench/bench_engine.py [--seconds 5] [--batches 1,8,32,128]
                                           [--model models/bge-small-en-v1.5]

The corpus is cut from this machine's Python standard library by a fixed
rule (tests/py/embed_corpus.py: every 2nd module in sorted order, chunks of
20 lines) and is never committed. Both engines embed the same texts at the
same batch sizes with the same number of threads, in this one run. Prints a
table, and writes bench/out/engine.json.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "py"))
from embed_corpus import python_code_chunks  # noqa: E402


def bench_bgeicl(model, corpus_path, batches, seconds, threads):
    exe = ROOT / "build" / "bench" / "engine_bench"
    out = subprocess.run([str(exe), str(model), corpus_path, ",".join(map(str, batches)),
                          str(seconds), str(threads)], capture_output=True, text=True, check=True)
    return {r["batch"]: r for r in map(json.loads, out.stdout.splitlines())}


def bench_st(model, texts, batches, seconds, threads):
    import torch
    from sentence_transformers import SentenceTransformer
    torch.set_num_threads(threads)
    st = SentenceTransformer(str(model), device="cpu")
    tok = st.tokenizer
    res = {}
    for b in batches:
        pos, n, ntok = 0, 0, 0
        st.encode(texts[:b], batch_size=b)  # warm-up
        t0 = time.perf_counter()
        while True:
            sl = [texts[(pos + i) % len(texts)] for i in range(b)]
            pos = (pos + b) % len(texts)
            st.encode(sl, batch_size=b, normalize_embeddings=True)
            n += b
            ntok += sum(min(len(x), st.max_seq_length) for x in tok(sl)["input_ids"])
            el = time.perf_counter() - t0
            if el >= seconds and n >= 2 * b:
                break
        res[b] = {"batch": b, "texts": n, "tokens": ntok, "seconds": el,
                  "texts_per_s": n / el, "tokens_per_s": ntok / el}
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "models" / "bge-small-en-v1.5"))
    ap.add_argument("--batches", default="1,8,32,128")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--texts", type=int, default=2000)
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    texts = python_code_chunks(limit=args.texts)
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for t in texts:
            f.write(json.dumps(t) + "\n")
        corpus_path = f.name
    try:
        ours = bench_bgeicl(args.model, corpus_path, batches, args.seconds, args.threads)
    finally:
        os.unlink(corpus_path)
    peer = bench_st(args.model, texts, batches, args.seconds, args.threads)

    print(f"corpus: {len(texts)} Python stdlib chunks (20 lines), threads={args.threads}, "
          f"model={Path(args.model).name}")
    print(f"{'batch':>5} | {'bgeicl texts/s':>14} {'tokens/s':>10} | "
          f"{'sentence-transformers texts/s':>29} {'tokens/s':>10} | {'ratio':>6}")
    rows = []
    for b in batches:
        o, p = ours[b], peer[b]
        ratio = o["texts_per_s"] / p["texts_per_s"]
        print(f"{b:>5} | {o['texts_per_s']:>14.1f} {o['tokens_per_s']:>10.0f} | "
              f"{p['texts_per_s']:>29.1f} {p['tokens_per_s']:>10.0f} | {ratio:>5.2f}x")
        rows.append({"batch": b, "bgeicl": o, "sentence_transformers": p, "ratio": ratio})
    outdir = ROOT / "bench" / "out"
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "engine.json").write_text(json.dumps(
        {"model": Path(args.model).name, "threads": args.threads, "texts": len(texts),
         "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
