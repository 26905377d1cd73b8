"""Engine throughput: bgeicl in-process against sentence-transformers.

    .venv/bin/python bench/bench_engine.py [--seconds 5] [--batches 1,8,32,128]
                                           [--model models/bge-small-en-v1.5]
                                           [--dtype fp32[,bf16]] [--rounds 1] [--no-peer]

The corpus is cut from this machine's Python standard library by a fixed
rule (tests/py/embed_corpus.py: every 2nd module in sorted order, chunks of
20 lines) and is never committed. Both engines embed the same texts at the
same batch sizes with the same number of threads, in this one run. Prints a
table, and writes bench/out/engine.json.

--dtype lists bgeicl's weight precisions to measure; with more than one,
they run alternately --rounds times (a loaded machine slows them alike) and
each keeps its best round. The ratio column compares each with the first.
--no-peer skips sentence-transformers. --build names the build folder
(default build) holding bench/engine_bench.
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


def bench_bgeicl(model, corpus_path, batches, seconds, threads, dtype="fp32", build="build"):
    exe = ROOT / build / "bench" / "engine_bench"
    out = subprocess.run([str(exe), str(model), corpus_path, ",".join(map(str, batches)),
                          str(seconds), str(threads), dtype],
                         capture_output=True, text=True, check=True)
    return {r["batch"]: r for r in map(json.loads, out.stdout.splitlines())}


def bench_dtypes(args, corpus_path, batches):
    """{dtype: {batch: row}}, the best of --rounds alternating runs."""
    best = {}
    for _ in range(args.rounds):
        for dt in args.dtype.split(","):
            res = bench_bgeicl(args.model, corpus_path, batches, args.seconds, args.threads, dt,
                               args.build)
            for b, r in res.items():
                if b not in best.setdefault(dt, {}) or \
                        r["texts_per_s"] > best[dt][b]["texts_per_s"]:
                    best[dt][b] = r
    return best


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
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--build", default="build")
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    texts = python_code_chunks(limit=args.texts)
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for t in texts:
            f.write(json.dumps(t) + "\n")
        corpus_path = f.name
    try:
        ours = bench_dtypes(args, corpus_path, batches)
    finally:
        os.unlink(corpus_path)
    dtypes = args.dtype.split(",")
    peer = None if args.no_peer else bench_st(args.model, texts, batches, args.seconds,
                                             args.threads)

    print(f"corpus: {len(texts)} Python stdlib chunks (20 lines), threads={args.threads}, "
          f"model={Path(args.model).name}, rounds={args.rounds}")
    if peer:
        print(f"{'batch':>5} {'dtype':>5} | {'bgeicl texts/s':>14} {'tokens/s':>10} | "
              f"{'sentence-transformers texts/s':>29} {'tokens/s':>10} | {'ratio':>6}")
    else:
        print(f"{'batch':>5} {'dtype':>5} | {'bgeicl texts/s':>14} {'tokens/s':>10} | "
              f"{'vs ' + dtypes[0]:>9}")
    rows = []
    for b in batches:
        for dt in dtypes:
            o = ours[dt][b]
            row = {"batch": b, "dtype": dt, "bgeicl": o,
                   "vs_first_dtype": o["texts_per_s"] / ours[dtypes[0]][b]["texts_per_s"]}
            if peer:
                p = peer[b]
                row["sentence_transformers"] = p
                row["ratio"] = o["texts_per_s"] / p["texts_per_s"]
                print(f"{b:>5} {dt:>5} | {o['texts_per_s']:>14.1f} {o['tokens_per_s']:>10.0f} | "
                      f"{p['texts_per_s']:>29.1f} {p['tokens_per_s']:>10.0f} | "
                      f"{row['ratio']:>5.2f}x")
            else:
                print(f"{b:>5} {dt:>5} | {o['texts_per_s']:>14.1f} {o['tokens_per_s']:>10.0f} | "
                      f"{row['vs_first_dtype']:>8.2f}x")
            rows.append(row)
    outdir = ROOT / "bench" / "out"
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "engine.json").write_text(json.dumps(
        {"model": Path(args.model).name, "threads": args.threads, "texts": len(texts),
         "dtypes": dtypes, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
