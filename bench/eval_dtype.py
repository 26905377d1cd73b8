"""Retrieval quality per weight precision: the ICL evaluation's docstring ->
function search (bench/eval_retrieval.py: same pairs, same seed, same
metrics) run through `bgeicl serve --dtype fp32|bf16|int8`.

    .venv/bin/python bench/eval_dtype.py [--pairs 2000] [--seed 1] [--dtypes fp32,bf16,int8]

For each dtype one server (`--cache-size 0`, `--icl-k 1`, the server's
defaults otherwise) embeds every document without a prompt and the queries
three ways: as documents (none), with the BGE query instruction
(bge-instruction, the server's default for queries) and with the server's
own ICL selection (selected k=1, `enable_icl`, language python). Reports
MRR@10, nDCG@10, Recall@1 and Recall@10 per dtype and configuration, the
difference to fp32 in points (x 100) with a paired 95% bootstrap interval of
the MRR@10 difference, and the min / mean cosine of each dtype's document
vectors to fp32's. The issue's bar: int8 within 0.5 points of fp32.
Writes bench/out/dtype_retrieval.json and the section between the
dtype-retrieval markers of docs/PERFORMANCE.md.
"""
import argparse
import json
import os
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import eval_retrieval as ev  # noqa: E402

CONFIGS = ["none", "bge-instruction", "selected k=1"]
METRICS = [("mrr10", "MRR@10"), ("ndcg10", "nDCG@10"), ("r1", "R@1"), ("r10", "R@10")]
BAR_POINTS = 0.5


def embed_all(args, dtype, docs, queries):
    with ev.Server(str(ROOT / "build" / "bgeicl"), "--cache-size", "0", "--icl-k", "1",
                   "--dtype", dtype, model=args.model, threads=args.threads) as srv:
        c = ev.Client(srv, args.batch)
        t0 = time.perf_counter()
        d, _, _, _ = c.embed(docs, input_type="document")
        q = {"none": c.embed(queries, input_type="document")[0],
             "bge-instruction": c.embed(queries, input_type="query", enable_icl=False)[0],
             "selected k=1": c.embed(queries, input_type="query", enable_icl=True,
                                     language="python")[0]}
        secs = time.perf_counter() - t0
    print(f"  {dtype}: {secs:.0f} s", flush=True)
    return d, q, secs


def cosine_rows(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def run(args):
    t0 = time.perf_counter()
    all_pairs, _, _ = ev.build_pairs(ev.stdlib_dir())
    pairs = random.Random(args.seed).sample(all_pairs, min(args.pairs, len(all_pairs)))
    queries, docs = [p["query"] for p in pairs], [p["doc"] for p in pairs]
    dtypes = args.dtypes.split(",")
    vecs = {dt: embed_all(args, dt, docs, queries) for dt in dtypes}
    boot = ev.bootstrap_idx(len(pairs), args.resamples, args.seed)
    base = dtypes[0]
    rows = []
    for dt in dtypes:
        d, q, secs = vecs[dt]
        dcos = cosine_rows(d, vecs[base][0])
        for cfg in CONFIGS:
            pq = ev.per_query(ev.ranks(q[cfg], d))
            row = {"dtype": dt, "config": cfg, "seconds": secs,
                   "doc_cos_min": float(dcos.min()), "doc_cos_mean": float(dcos.mean())}
            row.update({k: float(pq[k].mean()) for k, _ in METRICS})
            bq = ev.per_query(ev.ranks(vecs[base][1][cfg], vecs[base][0]))
            diff = pq["mrr10"] - bq["mrr10"]
            lo, hi = np.percentile(diff[boot].mean(axis=1), [2.5, 97.5])
            row["mrr10_diff_ci95"] = [float(lo), float(hi)]
            for k, _ in METRICS:
                row[k + "_points_vs_" + base] = 100 * (row[k] - float(bq[k].mean()))
            rows.append(row)
    worst = max((abs(r[k + "_points_vs_" + base]) for r in rows if r["dtype"] == "int8"
                 for k, _ in METRICS), default=None)
    return {"pairs": len(pairs), "seed": args.seed, "model": Path(args.model).name,
            "dtypes": dtypes, "base": base, "rows": rows, "threads": args.threads,
            "int8_worst_points": worst, "runtime_seconds": time.perf_counter() - t0,
            "command": "bench/eval_dtype.py " + " ".join(sys.argv[1:])}


def table(res):
    base = res["base"]
    lines = [f"| dtype | queries | " + " | ".join(n for _, n in METRICS) +
             f" | MRR@10 vs {base}, points (95% CI) | doc cosine to {base}, min / mean |",
             "|---|---|" + "---:|" * len(METRICS) + "---:|---:|"]
    for r in res["rows"]:
        lo, hi = r["mrr10_diff_ci95"]
        pts = "—" if r["dtype"] == base else \
            f"{r['mrr10_points_vs_' + base]:+.2f} ({100 * lo:+.2f}, {100 * hi:+.2f})"
        cos = "—" if r["dtype"] == base else f"{r['doc_cos_min']:.4f} / {r['doc_cos_mean']:.5f}"
        lines.append(f"| {r['dtype']} | {r['config']} | " +
                     " | ".join(f"{r[k]:.3f}" for k, _ in METRICS) + f" | {pts} | {cos} |")
    return "\n".join(lines)


def summary(res):
    w = res["int8_worst_points"]
    if w is None:
        return ""
    ok = "within" if w <= BAR_POINTS else "outside"
    return (f"int8's largest difference to {res['base']} over every metric and query "
            f"configuration is {w:.2f} points, {ok} the bar of {BAR_POINTS} points. "
            f"{res['pairs']} pairs, seed {res['seed']}, model {res['model']}; "
            f"`{res['command']}` took {res['runtime_seconds'] / 60:.0f} minutes.")


def write_doc(res):
    path = ROOT / "docs" / "PERFORMANCE.md"
    text = path.read_text()
    body = f"<!-- dtype-retrieval:begin -->\n{table(res)}\n\n{summary(res)}\n" \
           f"<!-- dtype-retrieval:end -->"
    pat = re.compile(r"<!-- dtype-retrieval:begin -->.*?<!-- dtype-retrieval:end -->", re.S)
    if not pat.search(text):
        raise SystemExit("docs/PERFORMANCE.md has no dtype-retrieval markers")
    path.write_text(pat.sub(lambda _: body, text))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dtypes", default="fp32,bf16,int8", help="the first is the baseline")
    ap.add_argument("--model", default=str(ROOT / "models" / "bge-small-en-v1.5"))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--doc", action="store_true", help="write docs/PERFORMANCE.md")
    args = ap.parse_args()
    res = run(args)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "dtype_retrieval.json").write_text(json.dumps(res, indent=2) + "\n")
    print(table(res))
    print()
    print(summary(res))
    if args.doc:
        write_doc(res)


if __name__ == "__main__":
    main()
