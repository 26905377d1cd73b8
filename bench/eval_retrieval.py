"""Retrieval quality of ICL prompts: docstring -> function search over the
Python standard library, every configuration through a real `bgeicl serve`.

    .venv/bin/python bench/eval_retrieval.py [--pairs 2000] [--seed 1]
                                             [--model models/bge-small-en-v1.5]
    .venv/bin/python bench/eval_retrieval.py --render bench/out/retrieval.json

Pairs: every function or method with a docstring in this machine's Python
standard library (the directory above the `json` package of /usr/bin/python3;
test directories, idlelib, lib2to3, site-packages and dist-packages skipped,
files that do not parse skipped). The query is the docstring's first
sentence (first line, cut at the first period that ends a sentence, at least
4 words; a query that occurs more than once is kept once, for its first
function in sorted file order); the document is the function's source with
the docstring statement removed (3 to 60 non-blank lines; identical documents kept
once). `--pairs` of them are sampled with `--seed`; every sampled document is
in the candidate pool and each query's one relevant document is its own
function.

Configurations (one server per --icl-k value, `--cache-size 0`):
  none            queries embedded as documents (no prompt)
  bge-instruction input_type "query", enable_icl false (the BGE instruction)
  selected k=K    input_type "query", enable_icl true, language "python";
                  the server picks K bank examples (lexical ranking, context cache as deployed)
  fixed k=K       icl_context with the first K examples of icl/examples/python.json
                  (k=0: the ICL format with the instruction and no examples)
  embsim k=3      icl_context with the 3 bank examples whose queries are most
                  cosine-similar to the query (both embedded with the BGE instruction)
  symmetric k=K   documents AND queries embedded with the fixed k=K icl_context
                  (K = the best fixed K), as ChunkHound's symmetric mode does
Documents are embedded once without a prompt for every row but the last.

Metrics: MRR@10, nDCG@10, Recall@1, Recall@10; a 95% bootstrap interval of
MRR@10 (1000 resamples over queries) and a paired bootstrap of the MRR@10
difference against the bge-instruction row; mean prompt tokens per query
(usage.prompt_tokens) and the wall time of embedding all queries. Prints a
table, writes bench/out/retrieval.json and docs/RETRIEVAL.md.
"""
import argparse
import ast
import base64
import json
import os
import random
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "py"))
from serverproc import Server, http  # noqa: E402

SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages",
             "__pycache__"}
SENTENCE_END = re.compile(r"\.(?=\s|$)")
REPRO = ".venv/bin/python bench/eval_retrieval.py --pairs 2000 --seed 1"


# ---- pairs -----------------------------------------------------------------------------

def stdlib_dir() -> Path:
    code = "import json, os; print(os.path.dirname(os.path.dirname(json.__file__)))"
    out = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True,
                         check=True)
    return Path(out.stdout.strip())


def stdlib_files(root: Path):
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames
                             if d not in SKIP_DIRS and not d.startswith(".")
                             and not d.startswith("test"))
        for f in sorted(filenames):
            if f.endswith(".py"):
                files.append(Path(dirpath) / f)
    return sorted(files)


def first_sentence(doc: str):
    line = doc.strip().split("\n", 1)[0].strip()
    line = SENTENCE_END.split(line, 1)[0].strip()
    return line if len(line.split()) >= 4 else None


def document_of(src: str, node) -> str | None:
    seg = ast.get_source_segment(src, node, padded=True)
    if seg is None:
        return None
    ds = node.body[0]
    # Lines of the docstring statement, relative to the segment's first line.
    a, b = ds.lineno - node.lineno, ds.end_lineno - node.lineno
    if a <= 0:
        return None  # docstring on the def line: cannot cut it out by lines
    lines = seg.split("\n")
    lines = lines[:a] + lines[b + 1:]
    text = textwrap.dedent("\n".join(lines)).strip("\n")
    n = sum(1 for line in text.split("\n") if line.strip())
    return text if 3 <= n <= 60 else None


def build_pairs(root: Path):
    files = stdlib_files(root)
    seen_q, seen_d, pairs = set(), set(), []
    n_parse_fail = 0
    for path in files:
        try:
            src = path.read_text(encoding="utf-8")
            tree = ast.parse(src)
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            n_parse_fail += 1
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            doc = ast.get_docstring(node)
            if not doc:
                continue
            q = first_sentence(doc)
            if q is None or q in seen_q:
                seen_q.add(q)
                continue
            seen_q.add(q)
            d = document_of(src, node)
            if d is None or d in seen_d:
                continue
            seen_d.add(d)
            pairs.append({"query": q, "doc": d, "where": f"{path.relative_to(root)}:{node.lineno}"})
    return pairs, len(files), n_parse_fail


# ---- client ----------------------------------------------------------------------------

class Client:
    def __init__(self, srv, batch):
        self.srv, self.batch = srv, batch

    def embed(self, texts, **fields):
        """Embeds texts in batches; returns (vectors, prompt_tokens, seconds, icl_infos)."""
        out, tokens, infos = [], 0, []
        t0 = time.perf_counter()
        for i in range(0, len(texts), self.batch):
            chunk = texts[i:i + self.batch]
            body = {"model": "bge-small-en-v1.5", "input": chunk, "encoding_format": "base64",
                    **fields}
            st, _, raw = http("POST", self.srv.url + "/v1/embeddings", body,
                              {"Content-Type": "application/json"}, timeout=600)
            if st != 200:
                raise RuntimeError(f"HTTP {st}: {raw[:500]!r}")
            r = json.loads(raw)
            rows = sorted(r["data"], key=lambda d: d["index"])
            assert len(rows) == len(chunk)
            out.extend(np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in rows)
            tokens += r["usage"]["prompt_tokens"]
            if "icl_info" in r:
                infos.append(r["icl_info"])
        return np.stack(out).astype(np.float32), tokens, time.perf_counter() - t0, infos

    def metric(self, name):
        _, _, raw = http("GET", self.srv.url + "/metrics")
        total = 0.0
        for line in raw.decode().splitlines():
            if line.startswith(name) and not line.startswith(name + "_"):
                total += float(line.rsplit(" ", 1)[1])
        return total


# ---- metrics ---------------------------------------------------------------------------

def ranks(q, d):
    """1-based rank of document i for query i (ties count against the query)."""
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    s = q @ d.T
    own = np.diag(s)
    return 1 + (s > own[:, None]).sum(axis=1) + ((s == own[:, None]).sum(axis=1) - 1)


def per_query(r):
    top = r <= 10
    return {"mrr10": np.where(top, 1.0 / r, 0.0),
            "ndcg10": np.where(top, 1.0 / np.log2(r + 1), 0.0),
            "r1": (r == 1).astype(float),
            "r10": top.astype(float)}


def bootstrap_idx(n, resamples, seed):
    # Python's generator: fixed and independent of numpy's build.
    rng = random.Random(seed)
    return np.array([[rng.randrange(n) for _ in range(n)] for _ in range(resamples)])


# ---- run -------------------------------------------------------------------------------

def run(args):
    t_start = time.perf_counter()
    root = stdlib_dir()
    all_pairs, n_files, n_fail = build_pairs(root)
    rng = random.Random(args.seed)
    pairs = rng.sample(all_pairs, min(args.pairs, len(all_pairs)))
    queries = [p["query"] for p in pairs]
    docs = [p["doc"] for p in pairs]
    print(f"stdlib {root}: {n_files} files ({n_fail} unparsable), {len(all_pairs)} pairs, "
          f"sampled {len(pairs)} (seed {args.seed})", flush=True)

    bank = json.loads((ROOT / "icl" / "examples" / "python.json").read_text())
    instruction, examples = bank["instruction"], bank["examples"]

    def ctx(exs):
        return {"icl_context": {"instruction": instruction,
                                "examples": [{"query": e["query"], "response": e["response"]}
                                             for e in exs],
                                "language": "python", "enable_context_learning": True}}

    rows, qvecs, extra = {}, {}, {}
    flags = ["--cache-size", "0"]
    B = args.batch

    def record(name, vecs, tokens, secs, note=""):
        qvecs[name] = vecs
        rows[name] = {"name": name, "prompt_tokens_per_query": tokens / len(queries),
                      "query_seconds": secs, "query_ms_per_query": 1000 * secs / len(queries),
                      "note": note}
        print(f"  {name}: {tokens / len(queries):.0f} tokens/query, {secs:.1f} s", flush=True)

    with Server(str(ROOT / "build" / "bgeicl"), *flags, "--icl-k", "3", model=args.model,
                threads=args.threads) as srv:
        c = Client(srv, B)
        dvec, dtok, dsec, _ = c.embed(docs, input_type="document")
        extra["documents"] = {"prompt_tokens_per_doc": dtok / len(docs), "seconds": dsec}
        print(f"  documents: {dtok / len(docs):.0f} tokens/doc, {dsec:.1f} s", flush=True)

        v, t, s, _ = c.embed(queries, input_type="document")
        record("none", v, t, s, "query embedded as a document")
        v, t, s, _ = c.embed(queries, input_type="query", enable_icl=False)
        record("bge-instruction", v, t, s, "BGE query instruction")

        for k in (0, 1, 2, 3):
            v, t, s, infos = c.embed(queries, **ctx(examples[:k]))
            assert all(i["examples"] == k for i in infos), infos[:3]  # icl_info: input 0 only
            record(f"fixed k={k}", v, t, s, f"first {k} bank examples, icl_context"
                   if k else "ICL format with the instruction and no examples, icl_context")

        # Embedding-similarity selection: bank queries and queries, both with the BGE instruction.
        bq, _, bsec, _ = c.embed([e["query"] for e in examples], input_type="query",
                                 enable_icl=False)
        qn = qvecs["bge-instruction"] / np.linalg.norm(qvecs["bge-instruction"], axis=1,
                                                       keepdims=True)
        bn = bq / np.linalg.norm(bq, axis=1, keepdims=True)
        sims = qn @ bn.T
        choice = [tuple(int(j) for j in np.argsort(-row, kind="stable")[:3]) for row in sims]
        groups = {}
        for i, ch in enumerate(choice):
            groups.setdefault(ch, []).append(i)
        v = np.zeros_like(qvecs["none"])
        tok, sec = 0, bsec
        for ch, idx in groups.items():
            gv, gt, gs, _ = c.embed([queries[i] for i in idx], **ctx([examples[j] for j in ch]))
            v[idx] = gv
            tok += gt
            sec += gs
        record("embsim k=3", v, tok, sec,
               f"3 most cosine-similar bank examples, {len(groups)} distinct example sets")
        use = np.bincount(np.array(choice).ravel(), minlength=len(examples))
        extra["embsim"] = {"distinct_sets": len(groups),
                           "example_use": {examples[j]["query"]: int(use[j])
                                           for j in range(len(examples))},
                           "note": "time includes embedding the bank's queries once; the "
                                   "query's own plain embedding is the bge-instruction row's"}

        # Symmetric: documents with the best fixed context too.
        fixed_mrr = {k: per_query(ranks(qvecs[f"fixed k={k}"], dvec))["mrr10"].mean()
                     for k in (1, 2, 3)}
        sym_k = max(fixed_mrr, key=lambda k: (fixed_mrr[k], k == 3))
        sdvec, sdtok, sdsec, _ = c.embed(docs, **ctx(examples[:sym_k]))
        extra["symmetric"] = {"k": sym_k, "doc_prompt_tokens_per_doc": sdtok / len(docs),
                              "doc_seconds": sdsec,
                              "note": "queries are the fixed row's vectors (same prompt); "
                                      "documents that leave no room keep fewer examples"}
        qvecs[f"symmetric k={sym_k}"] = qvecs[f"fixed k={sym_k}"]
        rows[f"symmetric k={sym_k}"] = dict(rows[f"fixed k={sym_k}"],
                                            name=f"symmetric k={sym_k}",
                                            note=f"documents and queries with the fixed "
                                                 f"k={sym_k} context")
        print(f"  symmetric documents: {sdtok / len(docs):.0f} tokens/doc, {sdsec:.1f} s",
              flush=True)

        # Server-side (lexical) selection, k=3 on this server.
        h0, m0 = c.metric("bge_icl_context_cache_hits_total"), c.metric(
            "bge_icl_context_cache_misses_total")
        v, t, s, infos = c.embed(queries, input_type="query", enable_icl=True, language="python")
        assert all(i["language"] == "python" for i in infos)
        hits = c.metric("bge_icl_context_cache_hits_total") - h0
        miss = c.metric("bge_icl_context_cache_misses_total") - m0
        record("selected k=3", v, t, s, f"server bank selection; context cache hits {hits:.0f}, "
                                        f"misses {miss:.0f}")
        extra["context_cache"] = {"k=3": {"hits": hits, "misses": miss}}

    for k in (1, 2):
        with Server(str(ROOT / "build" / "bgeicl"), *flags, "--icl-k", str(k),
                    model=args.model, threads=args.threads) as srv:
            c = Client(srv, B)
            v, t, s, infos = c.embed(queries, input_type="query", enable_icl=True,
                                     language="python")
            hits, miss = c.metric("bge_icl_context_cache_hits_total"), c.metric(
                "bge_icl_context_cache_misses_total")
            record(f"selected k={k}", v, t, s, f"server bank selection; context cache hits "
                                               f"{hits:.0f}, misses {miss:.0f}")
            extra["context_cache"][f"k={k}"] = {"hits": hits, "misses": miss}

    # ---- scores ----
    order = ["none", "bge-instruction", "selected k=1", "selected k=2", "selected k=3",
             "fixed k=0", "fixed k=1", "fixed k=2", "fixed k=3", "embsim k=3",
             f"symmetric k={sym_k}"]
    idx = bootstrap_idx(len(queries), args.resamples, args.seed)
    pq = {}
    for name in order:
        d = sdvec if name.startswith("symmetric") else dvec
        r = ranks(qvecs[name], d)
        pq[name] = per_query(r)
        rows[name]["ranks_median"] = float(np.median(r))
        qn = qvecs[name] / np.linalg.norm(qvecs[name], axis=1, keepdims=True)
        dn = d / np.linalg.norm(d, axis=1, keepdims=True)
        n = len(qn)
        qq = qn @ qn.T
        rows[name]["query_query_cos"] = float((qq.sum() - np.trace(qq)) / (n * (n - 1)))
        rows[name]["query_own_doc_cos"] = float((qn * dn).sum(axis=1).mean())
        rows[name]["query_other_doc_cos"] = float(((qn @ dn.T).sum() - (qn * dn).sum())
                                                  / (n * (n - 1)))
    base = pq["bge-instruction"]["mrr10"]
    for name in order:
        m = pq[name]
        boot = m["mrr10"][idx].mean(axis=1)
        diff = (m["mrr10"] - base)[idx].mean(axis=1)
        rows[name].update({
            "mrr10": m["mrr10"].mean(), "ndcg10": m["ndcg10"].mean(),
            "r1": m["r1"].mean(), "r10": m["r10"].mean(),
            "mrr10_ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
            "mrr10_diff_vs_bge_instruction": float((m["mrr10"] - base).mean()),
            "mrr10_diff_ci95": [float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5))],
            "p_diff_le_0": float((diff <= 0).mean()),
        })
        rows[name] = {k: (float(v) if isinstance(v, (np.floating, np.integer)) else v)
                      for k, v in rows[name].items()}
    # Which selection is better: embedding similarity against the server's lexical ranking.
    d_sel = pq["embsim k=3"]["mrr10"] - pq["selected k=3"]["mrr10"]
    boot = d_sel[idx].mean(axis=1)
    extra["embsim_vs_selected_k3"] = {
        "mrr10_diff": float(d_sel.mean()),
        "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]}
    result = {
        "model": Path(args.model).name, "pairs": len(queries), "seed": args.seed,
        "pairs_available": len(all_pairs), "stdlib": str(root), "stdlib_files": n_files,
        "stdlib_unparsable": n_fail, "batch": B, "threads": args.threads,
        "resamples": args.resamples, "bank_examples": len(examples),
        "server_flags": flags + ["--icl-k", "K"],
        "documents": extra["documents"], "extra": extra,
        "rows": [rows[n] for n in order],
        "runtime_seconds": time.perf_counter() - t_start,
        "loadavg_at_end": list(os.getloadavg()), "cpus": os.cpu_count(),
        "command": REPRO if (args.pairs, args.seed) == (2000, 1)
        else f".venv/bin/python bench/eval_retrieval.py --pairs {args.pairs} --seed {args.seed}",
    }
    return result


# ---- report ----------------------------------------------------------------------------

def table(res):
    lines = ["| configuration | MRR@10 | 95% CI | Δ MRR@10 vs BGE instr. (95% CI) | nDCG@10 | "
             "R@1 | R@10 | prompt tokens/query | query time (ms/query) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lo, hi = r["mrr10_ci95"]
        dlo, dhi = r["mrr10_diff_ci95"]
        delta = "—" if r["name"] == "bge-instruction" else \
            f"{r['mrr10_diff_vs_bge_instruction']:+.3f} ({dlo:+.3f}, {dhi:+.3f})"
        lines.append(f"| {r['name']} | {r['mrr10']:.3f} | {lo:.3f}–{hi:.3f} | {delta} | "
                     f"{r['ndcg10']:.3f} | {r['r1']:.3f} | {r['r10']:.3f} | "
                     f"{r['prompt_tokens_per_query']:.0f} | {r['query_ms_per_query']:.1f} |")
    return "\n".join(lines)


def verdict(res):
    rows = {r["name"]: r for r in res["rows"]}
    best = max(res["rows"], key=lambda r: r["mrr10"])
    base, none = rows["bge-instruction"], rows["none"]
    icl = [r for r in res["rows"] if r["name"].split()[0] in ("selected", "fixed", "embsim",
                                                                "symmetric")]
    best_icl = max(icl, key=lambda r: r["mrr10"])
    sig_better = [r["name"] for r in icl if r["mrr10_diff_ci95"][0] > 0]
    sig_worse = [r["name"] for r in icl if r["mrr10_diff_ci95"][1] < 0]
    sel = {k: rows[f"selected k={k}"] for k in (1, 2, 3)}
    best_sel_k = max(sel, key=lambda k: sel[k]["mrr10"])
    sym = next(r for r in res["rows"] if r["name"].startswith("symmetric"))
    sym_q = rows[sym["name"].replace("symmetric", "fixed")]
    emb, lex = rows["embsim k=3"], rows["selected k=3"]
    k0, f3 = rows["fixed k=0"], rows["fixed k=3"]
    es = res["extra"]["embsim_vs_selected_k3"]
    ci = lambda r: f"{r['mrr10_diff_ci95'][0]:+.3f} to {r['mrr10_diff_ci95'][1]:+.3f}"  # noqa: E731

    # 1. The headline.
    a = [f"The best configuration is **{best['name']}** (MRR@10 {best['mrr10']:.3f}, "
         f"R@1 {best['r1']:.3f}, R@10 {best['r10']:.3f})."]
    a.append(f"Queries embedded as documents, with no prompt at all, score {none['mrr10']:.3f} "
             f"({none['mrr10_diff_vs_bge_instruction']:+.3f} against the instruction, paired "
             f"95% CI {ci(none)}).")
    if len(sig_worse) == len(icl):
        a.append("Every ICL configuration is significantly worse than the plain instruction "
                 "(its paired interval lies entirely below zero).")
    elif sig_worse:
        a.append("ICL is significantly worse than the plain instruction (the paired interval "
                 "lies below zero) for " + ", ".join(sig_worse) + ".")
    if sig_better:
        a.append("ICL is significantly better for " + ", ".join(sig_better) + ".")
    a.append(f"The best ICL row, {best_icl['name']}, scores {best_icl['mrr10']:.3f} "
             f"({best_icl['mrr10_diff_vs_bge_instruction']:+.3f}, {ci(best_icl)}); the server's "
             f"own ICL at its default k=3 (selected k=3) scores {lex['mrr10']:.3f} "
             f"({lex['mrr10_diff_vs_bge_instruction']:+.3f}), and costs "
             f"{lex['prompt_tokens_per_query']:.0f} prompt tokens per query against "
             f"{base['prompt_tokens_per_query']:.0f} "
             f"(about {lex['query_ms_per_query'] / max(base['query_ms_per_query'], 1e-9):.0f}x "
             f"the query time).")

    # 2. Why.
    b = [f"Why: even the ICL format with the instruction and no examples (fixed k=0) scores "
         f"{k0['mrr10']:.3f} ({k0['mrr10_diff_vs_bge_instruction']:+.3f}, {ci(k0)}), so the "
         f"`<instruct>`/`<query>` wrapping is itself not what this model was trained on; one "
         f"fixed example takes it to {rows['fixed k=1']['mrr10']:.3f}"
         + (", and every further example lowers it again" if rows["fixed k=1"]["mrr10"]
            > rows["fixed k=2"]["mrr10"] > f3["mrr10"] else "")
         + f". The model pools one CLS vector over the whole prompt, and "
         f"at k=3 the query is a small part of a prompt that is mostly worked examples, the "
         f"same for every query (fixed) or one of few sets (selected). The mean cosine between "
         f"two different queries' vectors is {base['query_query_cos']:.3f} with the "
         f"instruction, {lex['query_query_cos']:.3f} with selected k=3 and "
         f"{f3['query_query_cos']:.3f} with fixed k=3, and a query's cosine to its own document "
         f"drops from {base['query_own_doc_cos']:.3f} to {f3['query_own_doc_cos']:.3f}: the "
         f"prompt, not the query, decides where the vector lands."]

    # 3. Example choice and symmetric ICL.
    which = ("better than" if es["ci95"][0] > 0 else "worse than" if es["ci95"][1] < 0
             else "not distinguishable from")
    c = [f"Which examples: embedding-similarity selection (embsim k=3) scores "
         f"{emb['mrr10']:.3f} against the server's lexical selection {lex['mrr10']:.3f}, a "
         f"paired difference of {es['mrr10_diff']:+.3f} (95% CI {es['ci95'][0]:+.3f} to "
         f"{es['ci95'][1]:+.3f}), so it is {which} the lexical choice; the fixed first three "
         f"score {f3['mrr10']:.3f}."]
    if min(emb["mrr10"], lex["mrr10"]) > f3["mrr10"]:
        c.append(f"Examples chosen for the query do better than fixed ones ({f3['mrr10']:.3f} "
                 f"fixed, {lex['mrr10']:.3f} lexical, {emb['mrr10']:.3f} embedding similarity), "
                 "because the prompt then varies with the query"
                 + ("" if sig_better else ", but no choice of examples brings ICL anywhere "
                    "near the plain instruction") + ".")
    c.append(f"Symmetric ICL ({sym['name']}: documents embedded with the same context, "
             f"{res['extra']['symmetric']['doc_prompt_tokens_per_doc']:.0f} tokens per document "
             f"against {res['documents']['prompt_tokens_per_doc']:.0f}) scores "
             f"{sym['mrr10']:.3f}, against {sym_q['mrr10']:.3f} for the same query vectors "
             f"against plain documents: putting the context on both sides "
             + ("recovers part of the loss" if sym["mrr10"] > sym_q["mrr10"] else "does not help")
             + (", but not the plain instruction's score." if sym["mrr10"] < base["mrr10"]
                else "."))

    model = res["model"]
    if sig_better:
        rec = (f"**Recommendation:** ICL helps {model} here, so `--icl` may stay on; the "
               f"default `--icl-k` should be {best_sel_k}, the best server-selected k.")
    else:
        rec = (f"**Recommendation:** {model} is an encoder that was not trained with ICL "
               "prompts (unlike BAAI/bge-en-icl, a decoder trained on exactly this format), and "
               "here the prompts cost retrieval quality as well as many times the tokens and "
               "time. For this model `--icl` should default to **off**, so that a query gets "
               "the model's own instruction unless the client asks for ICL (`enable_icl`, "
               "`icl_context` keep working per request); ICL on by default belongs to "
               "ICL-trained models such as bge-en-icl. For `--icl-k`, the least harmful "
               f"server-selected k for this model is {best_sel_k}, so it should default to "
               f"{best_sel_k} when the served model is an encoder like this one; k=3, "
               "FlagEmbedding's setting for bge-en-icl, stays the default for ICL-trained models.")
    return "\n\n".join([" ".join(a), " ".join(b), " ".join(c), rec])


def render(res):
    d = res["documents"]
    sym = res["extra"]["symmetric"]
    ctxc = res["extra"]["context_cache"]
    md = f"""# Retrieval with and without in-context learning

What was measured: whether the ICL prompts of `bgeicl serve` (BAAI's
bge-en-icl prompt format, `<instruct>…\\n<query>…\\n<response>…` worked
examples before the query) improve code search with the default encoder
model **{res['model']}**, against the model's plain query instruction and
against no prompt at all. Every vector comes from a real `bgeicl serve` over
HTTP (`/v1/embeddings`, batches of {res['batch']} inputs, `--threads
{res['threads']}`, `--cache-size 0`, one server per `--icl-k`).

Corpus: this machine's Python standard library (`{res['stdlib']}`,
{res['stdlib_files']} `.py` files; test directories, `idlelib`, `lib2to3`,
`site-packages` and `dist-packages` skipped, {res['stdlib_unparsable']} files
that do not parse skipped). The source is read at run time and never
committed.

Pairs: every function or method with a docstring (the `ast` module). The
query is the docstring's first sentence: its first line, cut at the first
period that ends a sentence, kept if it has at least 4 words; a query text
that occurs more than once is kept once. The document is the function's
source (`ast.get_source_segment`, dedented) with the docstring statement
removed, kept if it has 3 to 60 non-blank lines; identical documents are kept once.
That gives {res['pairs_available']} pairs, of which {res['pairs']} are
sampled with seed {res['seed']}. All {res['pairs']} documents are the
candidate pool; each query has one relevant document, its own function.

Configurations:

- **none**: the query embedded as a document (no prompt).
- **bge-instruction**: `input_type: "query"`, `enable_icl: false`, so the
  BGE instruction "Represent this sentence for searching relevant passages: ".
- **selected k=K**: `input_type: "query"`, `enable_icl: true`,
  `language: "python"`, server started with `--icl-k K`; the server ranks its
  Python bank (`icl/examples/python.json`, {res['bank_examples']} examples)
  lexically against the query, with its context cache as deployed
  (hits/misses: {', '.join(f"{k}: {v['hits']:.0f}/{v['misses']:.0f}" for k, v in ctxc.items())}).
- **fixed k=K**: the same first K bank examples for every query, sent as
  `icl_context` with the bank's Python instruction. k=0 sends no examples:
  the query in the ICL format, `<instruct>{{instruction}}\\n<query>{{query}}`,
  which separates the cost of the format from the cost of the examples.
- **embsim k=3**: the bank's example queries and each query are embedded
  with the BGE instruction; the 3 most cosine-similar examples (best first)
  are sent as `icl_context` ({res['extra']['embsim']['distinct_sets']} distinct
  example sets). Its time includes embedding the bank once, not the query's
  own plain embedding.
- **symmetric k={sym['k']}**: documents embedded with the same `icl_context`
  as the queries (the best fixed k from 1 to 3, ties going to 3), as ChunkHound's
  symmetric mode does; the queries are the fixed k={sym['k']} vectors. A
  document whose prompt would pass 512 tokens keeps fewer examples (the
  server keeps the text whole and drops examples that do not fit).

Documents are embedded once without a prompt for every row but the
symmetric one ({d['prompt_tokens_per_doc']:.0f} tokens per document,
{d['seconds']:.0f} s for all; the symmetric documents took
{sym['doc_prompt_tokens_per_doc']:.0f} tokens per document and
{sym['doc_seconds']:.0f} s).

Metrics: MRR@10, nDCG@10 (binary relevance, one relevant document), Recall@1
and Recall@10; the 95% interval of MRR@10 from {res['resamples']} bootstrap
resamples over queries, and the paired bootstrap interval of the MRR@10
difference against the bge-instruction row (same resamples); prompt tokens
per query from `usage.prompt_tokens` (special tokens included); query time is
the client's wall time for all queries divided by their number, with
{res['threads']} server threads on a machine of {res.get('cpus', res['threads'])} cores shared with
other work (load average {res.get('loadavg_at_end', [0])[0]:.1f} at the end of the run), so it is a
rough figure. The embedding cache
is off (`--cache-size 0`); it would change timing, never vectors.

Reproduce (the run took {res['runtime_seconds'] / 60:.0f} minutes here; writes
`bench/out/retrieval.json` and this file):

```sh
{res['command']}
```

## Results

{table(res)}

## What the numbers say

{verdict(res)}
"""
    return md


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--model", default=str(ROOT / "models" / "bge-small-en-v1.5"))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--render", metavar="JSON",
                    help="rewrite docs/RETRIEVAL.md from a results file, without embedding")
    args = ap.parse_args()
    outdir = ROOT / "bench" / "out"
    if args.render:
        res = json.loads(Path(args.render).read_text())
    else:
        res = run(args)
        outdir.mkdir(parents=True, exist_ok=True)
        (outdir / "retrieval.json").write_text(json.dumps(res, indent=2) + "\n")
    print(table(res))
    print()
    print(verdict(res))
    (ROOT / "docs" / "RETRIEVAL.md").write_text(render(res))


if __name__ == "__main__":
    main()
