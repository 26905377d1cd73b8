#!/usr/bin/env python3
"""Peer benchmark: bgeicl against other CPU engines for bge-small-en-v1.5.

    bench/peers/setup.sh                      # once: peers venv, GGUF/ONNX/fte weights
    .venv-peers/bin/python bench/peers/run.py [--quick] [--engines a,b,...]
        [--seconds S] [--batches 1,8,32,128] [--queries N] [--threads 2]
        [--build build] [--doc]

One command, one run, the same deterministic corpus for every engine:

  short   ~10-token texts (8 to 12 tokens with [CLS] and [SEP]): lines of
          this machine's Python standard library
  code    code chunks of 100 to 300 tokens: 20-line chunks of the standard
          library (tests/py/embed_corpus.py's rule), filtered by length
Both are sampled with a fixed seed; token counts use the model's
tokenizer.json (Hugging Face tokenizers), the same for every engine.

Engines (ENGINES below): bgeicl fp32 / bf16 / int8 in-process (libbgeicl
through ctypes) and through `bgeicl serve` (HTTP, keep-alive, embedding
cache off); sentence-transformers on CPU torch (the fp32 reference);
ONNX Runtime on the fp32 ONNX graph; fasttextembed; llama.cpp through
llama-cpp-python with f16 and q8_0 GGUF files. Every in-process engine runs
in a child process of its own, one after the other, so that cold start
(process start to the first embedding returned) and peak RSS (VmHWM) are
per engine; the Python host's own share is measured by the "python" row
(interpreter, numpy and tokenizers, no engine). bgeicl bf16 and int8 are
tried like the others and recorded as not available, with the reason,
until the library and `serve --dtype` accept them.

For each engine: texts/s at each batch size for both kinds of text (one
warm-up batch, then consecutive slices of the corpus for at least S
seconds and at least one batch); single-query latency p50/p99 over
--queries distinct short texts, one text per call after 10 warm-up
calls; accuracy: cosine of the engine's vector against
sentence-transformers fp32 for every text of the accuracy set (short and
code texts), min and mean. Threads: --threads for every engine (torch
set_num_threads, ORT intra-op threads, llama.cpp n_threads and
n_threads_batch, fasttextembed's threads argument, bgeicl's options),
OMP_NUM_THREADS likewise.

Writes bench/out/peers.json and bench/out/peers.md (tables), and a plot
(docs/peers.svg); --doc also replaces the generated part of the "Peers"
section of docs/PERFORMANCE.md (between its peers:begin/end markers).
Ratios are to the best peer (the best engine that is not bgeicl) in the
same column; "% of peak" is GEMM FLOP/s (2 x 21.2 M non-embedding weights
x tokens) over build/bench/peak's all-thread peak of the engine's
arithmetic (fp32 FMA; bf16 and int8: the best of AVX-512 and AMX).
"""
import argparse
import ctypes
import datetime
import json
import os
import platform
import random
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "bge-small-en-v1.5"
CACHE = ROOT / ".cache" / "peers"
OUT = ROOT / "bench" / "out"
DOC = ROOT / "docs" / "PERFORMANCE.md"
PLOT = ROOT / "docs" / "peers.svg"
SEED = 20240611
# bge-small: 12 layers x (4 x 384 x 384 + 2 x 384 x 1536) weights in the GEMMs.
GEMM_WEIGHTS = 12 * (4 * 384 * 384 + 2 * 384 * 1536)
FLOP_PER_TOKEN = 2 * GEMM_WEIGHTS

# name: (label, kind, arithmetic class for "% of peak", is bgeicl)
ENGINES = {
    "bgeicl-fp32": ("bgeicl fp32", "worker", "fp32", True),
    "bgeicl-bf16": ("bgeicl bf16", "worker", "bf16", True),
    "bgeicl-int8": ("bgeicl int8", "worker", "int8", True),
    "server-fp32": ("bgeicl serve fp32", "server", "fp32", True),
    "server-bf16": ("bgeicl serve bf16", "server", "bf16", True),
    "server-int8": ("bgeicl serve int8", "server", "int8", True),
    "st": ("sentence-transformers (torch)", "worker", "fp32", False),
    "ort": ("ONNX Runtime", "worker", "fp32", False),
    "fte": ("fasttextembed", "worker", "fp32", False),
    "llama-f16": ("llama.cpp f16", "worker", "fp32", False),
    "llama-q8_0": ("llama.cpp q8_0", "worker", "int8", False),
    "python": ("Python host alone (no engine)", "worker", None, False),
}
REFERENCE = "st"


class Unavailable(Exception):
    pass


# ---- corpus -------------------------------------------------------------------

def build_corpus(n_short, n_code):
    """(short texts, code texts, {text: tokens}), deterministic for a given stdlib."""
    sys.path.insert(0, str(ROOT / "tests" / "py"))
    from embed_corpus import _files, _read, python_code_chunks, python_stdlib
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    tok.enable_truncation(512)

    def ntok(texts):
        return [len(e.ids) for e in tok.encode_batch(texts)]

    chunks = python_code_chunks(limit=6000, lines_per_chunk=20, per_file=3, stride=2)
    code = [c for c, n in zip(chunks, ntok(chunks)) if 100 <= n <= 300]
    lines, seen = [], set()
    for path in _files(python_stdlib(), ".py")[::3]:
        text = _read(path)
        for line in (text or "").splitlines():
            s = line.strip().lstrip("#").strip()
            if 12 <= len(s) <= 80 and s not in seen:
                seen.add(s)
                lines.append(s)
    short = [s for s, n in zip(lines, ntok(lines)) if 8 <= n <= 12]
    rng = random.Random(SEED)
    rng.shuffle(code)
    rng.shuffle(short)
    short, code = short[:n_short], code[:n_code]
    if len(short) < n_short or len(code) < n_code:
        print(f"note: corpus has {len(short)} short and {len(code)} code texts", file=sys.stderr)
    counts = dict(zip(short + code, ntok(short + code)))
    return short, code, counts


# ---- engines (run inside the worker process) -------------------------------------

def bgeicl_layout(build, dtype, workdir):
    """Compiles a probe against include/bgeicl.h: option and error layout, and
    the dtype's enum value; Unavailable when the header has no such dtype."""
    src = Path(workdir) / "probe.c"
    exe = Path(workdir) / f"probe_{dtype}"
    src.write_text(
        "#include <stddef.h>\n#include <stdio.h>\n#include \"bgeicl.h\"\n"
        "int main(void) {\n"
        "    printf(\"{\\\"opts_size\\\":%zu,\\\"off_threads\\\":%zu,\\\"off_dtype\\\":%zu,"
        "\\\"err_size\\\":%zu,\\\"off_msg\\\":%zu,\\\"dtype\\\":%d}\\n\",\n"
        "           sizeof(bgeicl_options), offsetof(bgeicl_options, threads),\n"
        "           offsetof(bgeicl_options, dtype), sizeof(bgeicl_error),\n"
        "           offsetof(bgeicl_error, message), (int)(PROBE_DTYPE));\n"
        "    return 0;\n}\n")
    cc = os.environ.get("CC", "cc")
    r = subprocess.run([cc, "-std=c11", f"-I{ROOT / 'include'}",
                        f"-DPROBE_DTYPE=BGEICL_DTYPE_{dtype.upper()}", str(src), "-o", str(exe)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise Unavailable(f"include/bgeicl.h has no BGEICL_DTYPE_{dtype.upper()}")
    return json.loads(subprocess.run([str(exe)], capture_output=True, text=True,
                                     check=True).stdout)


class BgeiclEngine:
    def __init__(self, spec, dtype):
        import numpy as np
        self.np = np
        lib_path = Path(spec["build"]) / "libbgeicl.so"
        if not lib_path.exists():
            raise Unavailable(f"{lib_path} not built (make)")
        lay = spec["bgeicl_layout"][dtype]
        if "unavailable" in lay:
            raise Unavailable(lay["unavailable"])
        lib = ctypes.CDLL(str(lib_path))
        lib.bgeicl_options_init.argtypes = [ctypes.c_void_p]
        lib.bgeicl_model_open.argtypes = [ctypes.c_char_p, ctypes.c_void_p,
                                          ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
        lib.bgeicl_model_dim.argtypes = [ctypes.c_void_p]
        lib.bgeicl_model_dim.restype = ctypes.c_size_t
        lib.bgeicl_embed.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p),
                                     ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint,
                                     ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        opts = ctypes.create_string_buffer(lay["opts_size"] + 256)
        lib.bgeicl_options_init(opts)
        struct.pack_into("i", opts, lay["off_threads"], spec["threads"])
        struct.pack_into("i", opts, lay["off_dtype"], lay["dtype"])
        self.err = ctypes.create_string_buffer(lay["err_size"])
        self.off_msg = lay["off_msg"]
        self.model = ctypes.c_void_p()
        rc = lib.bgeicl_model_open(str(spec["model"]).encode(), opts, ctypes.byref(self.model),
                                   self.err)
        if rc != 0:
            raise Unavailable(f"bgeicl_model_open: {self.message()}")
        self.lib = lib
        self.dim = lib.bgeicl_model_dim(self.model)

    def message(self):
        return self.err.raw[self.off_msg:].split(b"\0", 1)[0].decode(errors="replace")

    def embed(self, texts):
        n = len(texts)
        arr = (ctypes.c_char_p * n)(*[t.encode() for t in texts])
        out = self.np.empty((n, self.dim), self.np.float32)
        rc = self.lib.bgeicl_embed(self.model, arr, None, n, 0, out.ctypes.data, None, self.err)
        if rc != 0:
            raise RuntimeError(f"bgeicl_embed: {self.message()}")
        return out


class StEngine:
    def __init__(self, spec):
        import torch
        from sentence_transformers import SentenceTransformer
        torch.set_num_threads(spec["threads"])
        self.m = SentenceTransformer(str(spec["model"]), device="cpu")
        self.versions = {"torch": torch.__version__,
                         "sentence-transformers": __import__("sentence_transformers").__version__}

    def embed(self, texts):
        return self.m.encode(texts, batch_size=len(texts), normalize_embeddings=True,
                             convert_to_numpy=True)


class OrtEngine:
    def __init__(self, spec):
        import numpy as np
        import onnxruntime as ort
        from tokenizers import Tokenizer
        self.np = np
        path = CACHE / "bge-small-en-v1.5.onnx"
        if not path.exists():
            raise Unavailable(f"{path.relative_to(ROOT)} missing (bench/peers/setup.sh)")
        so = ort.SessionOptions()
        so.intra_op_num_threads = spec["threads"]
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.s.get_inputs()}
        self.tok = Tokenizer.from_file(str(spec["model"] / "tokenizer.json"))
        self.tok.enable_truncation(512)
        self.tok.enable_padding()
        self.versions = {"onnxruntime": ort.__version__}

    def embed(self, texts):
        np = self.np
        enc = self.tok.encode_batch(texts)
        ids = np.array([e.ids for e in enc], np.int64)
        feed = {"input_ids": ids,
                "attention_mask": np.array([e.attention_mask for e in enc], np.int64),
                "token_type_ids": np.zeros_like(ids)}
        h = self.s.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0][:, 0]
        return h / np.linalg.norm(h, axis=1, keepdims=True)


class FteEngine:
    def __init__(self, spec):
        import numpy as np
        d = CACHE / "fte"
        if not (d / "model.fte").exists():
            raise Unavailable(f"{d.relative_to(ROOT)}/model.fte missing (bench/peers/setup.sh)")
        import fasttextembed
        self.np, self.threads = np, spec["threads"]
        self.m = fasttextembed.TextEmbedding(str(d / "model.fte"), str(d / "vocab.tsv"))
        self.versions = {"fasttextembed": fasttextembed.__version__}

    def embed(self, texts):
        return self.np.asarray(self.m.embed(texts, threads=self.threads), self.np.float32)


class LlamaEngine:
    def __init__(self, spec, quant):
        import numpy as np
        path = CACHE / f"bge-small-en-v1.5-{quant}.gguf"
        if not path.exists():
            raise Unavailable(f"{path.relative_to(ROOT)} missing (bench/peers/setup.sh)")
        import llama_cpp
        self.np = np
        # n_batch bounds the tokens of one forward pass (several sequences);
        # llama.cpp attends over the whole pass with a mask, so it is kept at
        # 2048 rather than bgeicl's 16384.
        self.m = llama_cpp.Llama(str(path), embedding=True, n_ctx=2048, n_batch=2048,
                                 n_ubatch=2048, n_threads=spec["threads"],
                                 n_threads_batch=spec["threads"], verbose=False)
        self.versions = {"llama-cpp-python": llama_cpp.__version__}

    def embed(self, texts):
        return self.np.asarray(self.m.embed(texts, normalize=True, truncate=True),
                               self.np.float32)


class NoEngine:
    """The Python host alone: what every Python-hosted row carries."""

    def __init__(self, spec):
        import numpy as np
        import tokenizers  # noqa: F401 - imported by ONNX Runtime's row too
        self.np = np

    def embed(self, texts):
        return self.np.zeros((len(texts), 384), self.np.float32)


def make_engine(name, spec):
    if name.startswith("bgeicl-"):
        return BgeiclEngine(spec, name.split("-", 1)[1])
    try:
        if name == "st":
            return StEngine(spec)
        if name == "ort":
            return OrtEngine(spec)
        if name == "fte":
            return FteEngine(spec)
        if name.startswith("llama-"):
            return LlamaEngine(spec, name.split("-", 1)[1])
        if name == "python":
            return NoEngine(spec)
    except ImportError as e:
        raise Unavailable(f"not installed ({e}); run bench/peers/setup.sh") from e
    raise ValueError(name)


# ---- measurement (shared by the worker and the server client) --------------------

def pct(xs, q):
    xs = sorted(xs)
    k = (len(xs) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def measure(eng, spec, out_dir, skip_throughput=False):
    """Accuracy vectors, latency and throughput of one engine; returns a dict."""
    import numpy as np
    res = {}
    acc = spec["short"][:spec["acc_short"]] + spec["code"][:spec["acc_code"]]
    vecs = [np.asarray(eng.embed(acc[i:i + 32]), np.float32) for i in range(0, len(acc), 32)]
    np.save(Path(out_dir) / "vecs.npy", np.concatenate(vecs))

    qs = spec["short"][-(spec["queries"] + 10):]
    lat = []
    for i, t in enumerate(qs):
        t0 = time.perf_counter()
        eng.embed([t])
        if i >= 10:
            lat.append((time.perf_counter() - t0) * 1e3)
    res["latency"] = {"n": len(lat), "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
                      "mean_ms": sum(lat) / len(lat)}

    res["throughput"] = {}
    if skip_throughput:
        return res
    counts = spec["tokens"]
    for kind in ("short", "code"):
        texts = spec[kind]
        n_all = len(texts)
        res["throughput"][kind] = {}
        for b in spec["batches"]:
            eng.embed([texts[i % n_all] for i in range(min(b, 32))])  # warm-up
            pos, n, ntok = 0, 0, 0
            t0 = time.perf_counter()
            while True:
                sl = [texts[(pos + i) % n_all] for i in range(b)]
                pos = (pos + b) % n_all
                eng.embed(sl)
                n += b
                ntok += sum(counts[t] for t in sl)
                el = time.perf_counter() - t0
                if el >= spec["seconds"]:
                    break
            res["throughput"][kind][str(b)] = {"texts": n, "tokens": ntok, "seconds": el,
                                               "texts_per_s": n / el, "tokens_per_s": ntok / el}
    return res


def vm_hwm_bytes(pid="self"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def worker_main(spec_path):
    spec = json.loads(Path(spec_path).read_text())
    spec["model"] = Path(spec["model"])
    out_dir = Path(spec["out_dir"])
    name = spec["engine"]
    result = {"engine": name}
    try:
        t0 = time.perf_counter()
        eng = make_engine(name, spec)
        t_load = time.perf_counter() - t0
        eng.embed([spec["short"][0]])
        print("READY", flush=True)
        os.dup2(2, 1)  # anything an engine prints from here on goes to stderr
        result["load_s"] = t_load
        result["versions"] = getattr(eng, "versions", {})
        result.update(measure(eng, spec, out_dir))
        result["available"] = True
    except Unavailable as e:
        result.update(available=False, why=str(e))
    result["vm_hwm"] = vm_hwm_bytes()
    (out_dir / "result.json").write_text(json.dumps(result))
    return 0


# ---- orchestration ---------------------------------------------------------------

def run_worker(name, spec, timeout):
    """Runs one engine in a child process; cold start, peak RSS and its results."""
    with tempfile.TemporaryDirectory(prefix="peers-") as d:
        spec = dict(spec, engine=name, out_dir=d, model=str(spec["model"]))
        sp = Path(d) / "spec.json"
        sp.write_text(json.dumps(spec))
        env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]),
                   FTE_THREADS=str(spec["threads"]), TOKENIZERS_PARALLELISM="false",
                   PYTHONWARNINGS="ignore")
        log = open(Path(d) / "stderr.txt", "w+")
        t0 = time.perf_counter()
        p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", str(sp)],
                             stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        cold = []

        def reader():
            for line in p.stdout:
                if line.strip() == "READY" and not cold:
                    cold.append(time.perf_counter() - t0)

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        deadline = time.monotonic() + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                p.kill()
            time.sleep(0.02)
        p.returncode = os.waitstatus_to_exitcode(status)
        th.join(5)
        cold = cold[0] if cold else None
        log.seek(0)
        err = log.read()
        log.close()
        rp = Path(d) / "result.json"
        if not rp.exists():
            return {"engine": name, "available": False,
                    "why": f"worker failed (exit {p.returncode}): {err.strip()[-600:]}"}
        res = json.loads(rp.read_text())
        res["cold_start_s"] = cold
        res["peak_rss_bytes"] = res.pop("vm_hwm", None) or ru.ru_maxrss * 1024
        if res.get("available"):
            import numpy as np
            res["_vecs"] = np.load(Path(d) / "vecs.npy")
        return res


class ServerEngine:
    def __init__(self, port):
        import http.client
        import numpy as np
        self.np = np
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def embed(self, texts):
        self.conn.request("POST", "/v1/embeddings",
                          json.dumps({"input": texts, "model": "bge-small-en-v1.5"}),
                          {"Content-Type": "application/json"})
        r = self.conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError(f"server: {r.status} {body[:200]!r}")
        data = sorted(json.loads(body)["data"], key=lambda d: d["index"])
        return self.np.array([d["embedding"] for d in data], self.np.float32)


def run_server(name, spec, timeout):
    """bgeicl serve --dtype X: cold start (spawn to the first embedding
    answered), peak RSS of the server process, and the same measurements."""
    import http.client
    dtype = name.split("-", 1)[1]
    exe = Path(spec["build"]) / "bgeicl"
    if not os.access(exe, os.X_OK):
        return {"engine": name, "available": False, "why": f"{exe} not built (make)"}
    sys.path.insert(0, str(ROOT / "tests" / "py"))
    from serverproc import free_port
    port = free_port()
    args = [str(exe), "serve", "--model", str(spec["model"]), "--host", "127.0.0.1",
            "--port", str(port), "--threads", str(spec["threads"]), "--dtype", dtype,
            "--cache-size", "0", "--log-level", "warn"]
    log = tempfile.TemporaryFile("w+")
    t0 = time.perf_counter()
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                         env=dict(os.environ, OMP_NUM_THREADS=str(spec["threads"])))
    cold = None
    try:
        deadline = time.monotonic() + 120
        while cold is None:
            if p.poll() is not None:
                log.seek(0)
                msg = log.read().strip().splitlines()
                return {"engine": name, "available": False,
                        "why": f"bgeicl serve --dtype {dtype} exited {p.returncode}: "
                               + (msg[0] if msg else "")}
            if time.monotonic() > deadline:
                raise RuntimeError("server did not answer in 120 s")
            try:
                eng = ServerEngine(port)
                eng.embed([spec["short"][0]])
                cold = time.perf_counter() - t0
            except (OSError, http.client.HTTPException, RuntimeError):
                time.sleep(0.01)
        with tempfile.TemporaryDirectory(prefix="peers-") as d:
            res = measure(eng, spec, d)
            import numpy as np
            res["_vecs"] = np.load(Path(d) / "vecs.npy")
        res.update(engine=name, available=True, cold_start_s=cold,
                   peak_rss_bytes=vm_hwm_bytes(p.pid))
        return res
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log.close()


def run_cli(spec):
    """`bgeicl embed` on one text: the C process's own cold start (spawn to
    its exit, the first embedding printed) and peak RSS, without a Python
    host around the library."""
    exe = Path(spec["build"]) / "bgeicl"
    if not os.access(exe, os.X_OK):
        return None
    best = None
    for _ in range(3):
        t0 = time.perf_counter()
        p = subprocess.Popen([str(exe), "embed", "--model", str(spec["model"]), "--threads",
                              str(spec["threads"]), spec["short"][0]],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        el = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            return None
        if best is None or el < best["cold_start_s"]:
            best = {"cold_start_s": el, "peak_rss_bytes": ru.ru_maxrss * 1024}
    return best


def read_peak(build):
    exe = Path(build) / "bench" / "peak"
    if not os.access(exe, os.X_OK):
        print(f"note: {exe} not built (make bench-bin); no % of peak", file=sys.stderr)
        return None
    r = subprocess.run([str(exe), "--json", "--threads", str(ARGS.threads), "--runs",
                        str(ARGS.peak_runs)], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def peak_for(peak, cls):
    """All-thread peak in ops/s for an arithmetic class, and the case used."""
    if not peak or not cls:
        return None, None
    cands = {"fp32": ["fp32_avx512", "fp32_avx2"],
             "bf16": ["bf16_amx", "bf16_avx512"],
             "int8": ["int8_amx", "int8_avx512", "int8_avxvnni"]}[cls]
    avail = {c["name"]: c["all_threads"] * 1e9 for c in peak["cases"] if c["available"]}
    if cls == "fp32":  # the FMA peak: AVX-512 where the CPU has it
        return next(((avail[n], n) for n in cands if n in avail), (None, None))
    have = [(avail[n], n) for n in cands if n in avail]
    return max(have) if have else (None, None)


def accuracy(results):
    import numpy as np
    ref = results.get(REFERENCE, {}).get("_vecs")
    for name, r in results.items():
        v = r.pop("_vecs", None)
        if v is None or ref is None or name == "python" or v.shape != ref.shape:
            continue
        cos = (v * ref).sum(1) / (np.linalg.norm(v, axis=1) * np.linalg.norm(ref, axis=1))
        r["accuracy"] = {"n": int(len(cos)), "min": float(cos.min()), "mean": float(cos.mean())}


def derive(results, peak, batches):
    """Ratios to the best peer and % of peak, in place."""
    peers = [n for n, r in results.items()
             if r.get("available") and not ENGINES[n][3] and n != "python"]
    for kind in ("short", "code"):
        for b in map(str, batches):
            best = max((results[n]["throughput"].get(kind, {}).get(b, {}).get("texts_per_s", 0)
                        for n in peers), default=0)
            for n, r in results.items():
                cell = r.get("throughput", {}).get(kind, {}).get(b)
                if not cell:
                    continue
                if best:
                    cell["vs_best_peer"] = cell["texts_per_s"] / best
                pk, case = peak_for(peak, ENGINES[n][2])
                if pk:
                    cell["pct_peak"] = 100 * cell["tokens_per_s"] * FLOP_PER_TOKEN / pk
                    cell["peak_case"] = case

    def best_of(getter):
        vals = [getter(results[n]) for n in peers if getter(results[n]) is not None]
        return min(vals) if vals else None

    lat = best_of(lambda r: r.get("latency", {}).get("p50_ms"))
    rss = best_of(lambda r: r.get("peak_rss_bytes"))
    cold = best_of(lambda r: r.get("cold_start_s"))
    for n, r in results.items():
        if not r.get("available") or n == "python":
            continue
        if lat and r.get("latency"):
            r["latency"]["best_peer_p50_over_this"] = lat / r["latency"]["p50_ms"]
        if rss and r.get("peak_rss_bytes"):
            r["rss_over_best_peer"] = r["peak_rss_bytes"] / rss
        if cold and r.get("cold_start_s"):
            r["cold_over_best_peer"] = r["cold_start_s"] / cold


# ---- report ----------------------------------------------------------------------

def fmt_rate(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def markdown(doc):
    res, batches = doc["engines"], doc["batches"]
    c = doc["corpus"]
    la, lb = doc["load_avg_before"][0], doc["load_avg_after"][0]
    lines = [f"Run: `{doc['command']}` ({doc['date']}; {doc['cpu']}, {doc['cpus']} CPUs, "
             f"{doc['threads']} threads; {doc['seconds']:g} s per throughput cell). Corpus: "
             f"{c['short']} short texts ({c['short_mean_tokens']:.1f} tokens on average), "
             f"{c['code']} code chunks ({c['code_mean_tokens']:.0f} tokens); accuracy over "
             f"{c['accuracy_texts']} texts. Load average {la:.2f} before, {lb:.2f} after"
             + (" (the machine was busy with other work: treat the figures as preliminary)."
                if max(la, lb) > 0.5 * doc["cpus"] else "."), ""]
    order = [n for n in ENGINES if n in res]
    avail = [n for n in order if res[n].get("available") and n != "python"]
    for kind, title in (("code", "Code chunks (100-300 tokens)"),
                        ("short", "Short texts (8-12 tokens)")):
        lines += [f"**{title}**: texts/s (ratio to the best peer, % of peak)", "",
                  "| engine | " + " | ".join(f"batch {b}" for b in batches) + " |",
                  "|---|" + "---:|" * len(batches)]
        for n in avail:
            cells = []
            for b in map(str, batches):
                c = res[n].get("throughput", {}).get(kind, {}).get(b)
                if not c:
                    cells.append("-")
                    continue
                extra = []
                if "vs_best_peer" in c:
                    extra.append(f"{c['vs_best_peer']:.2f}x")
                if "pct_peak" in c:
                    extra.append(f"{c['pct_peak']:.0f}%")
                cells.append(fmt_rate(c["texts_per_s"]) + (f" ({', '.join(extra)})" if extra
                                                           else ""))
            lines.append(f"| {ENGINES[n][0]} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["**Single query, cold start, memory, accuracy** (ratios: best peer = 1.00; "
              "latency and cold start: best peer / engine, higher is better; RSS: engine / "
              "best peer, lower is better)", "",
              "| engine | p50 ms | p99 ms | cold start s | peak RSS MiB | cosine min | "
              "cosine mean |", "|---|---:|---:|---:|---:|---:|---:|"]
    for n in order:
        r = res[n]
        if not r.get("available"):
            continue
        lat = r.get("latency", {}) if n != "python" else {}
        lr = lat.get("best_peer_p50_over_this")
        cold = r.get("cold_start_s")
        rss = r.get("peak_rss_bytes")
        acc = r.get("accuracy")
        lines.append("| " + " | ".join([
            ENGINES[n][0],
            f"{lat['p50_ms']:.2f}" + (f" ({lr:.2f}x)" if lr else "") if lat else "-",
            f"{lat['p99_ms']:.2f}" if lat else "-",
            (f"{cold:.2f}" + (f" ({1 / r['cold_over_best_peer']:.2f}x)"
                              if r.get("cold_over_best_peer") else "")) if cold else "-",
            (f"{rss / 2**20:.0f}" + (f" ({r['rss_over_best_peer']:.2f}x)"
                                     if r.get("rss_over_best_peer") else "")) if rss else "-",
            "reference" if n == REFERENCE else f"{acc['min']:.6f}" if acc else "-",
            "reference" if n == REFERENCE else f"{acc['mean']:.6f}" if acc else "-",
        ]) + " |")
    lines.append("")
    cli = res.get("bgeicl-fp32", {}).get("cli")
    if cli:
        lines += [f"The in-process rows host the library in Python (ctypes), as the other "
                  f"in-process engines are hosted; `bgeicl embed` on one text, a C process "
                  f"alone, takes {cli['cold_start_s']:.2f} s from start to exit with "
                  f"{cli['peak_rss_bytes'] / 2**20:.0f} MiB peak RSS (best of 3).", ""]
    missing = [n for n in order if not res[n].get("available")]
    if missing:
        lines += ["Not available in this run:", ""]
        lines += [f"- {ENGINES[n][0]}: {res[n].get('why', '?')}" for n in missing]
        lines.append("")
    bars = {"bgeicl-fp32": 0.9999, "server-fp32": 0.9999, "bgeicl-bf16": 0.999,
            "server-bf16": 0.999, "bgeicl-int8": 0.99, "server-int8": 0.99}
    checks = []
    for n, bar in bars.items():
        acc = res.get(n, {}).get("accuracy")
        if acc:
            checks.append(f"{ENGINES[n][0]} min cosine {acc['min']:.6f} "
                          f"{'>=' if acc['min'] >= bar else '<'} {bar}"
                          f" ({'pass' if acc['min'] >= bar else 'FAIL'})")
    if checks:
        lines += ["Accuracy bars: " + "; ".join(checks) + ".", ""]
    return "\n".join(lines)


def plot(doc, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker  # noqa: F401 - used as matplotlib.ticker
    except ImportError:
        print("note: matplotlib missing; no plot", file=sys.stderr)
        return False
    res, batches = doc["engines"], doc["batches"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (kind, title) in zip(axes, (("code", "code chunks (100-300 tokens)"),
                                        ("short", "short texts (8-12 tokens)"))):
        for n, r in res.items():
            t = r.get("throughput", {}).get(kind)
            if not r.get("available") or not t or n == "python":
                continue
            xs = [b for b in batches if str(b) in t]
            ax.plot(xs, [t[str(b)]["texts_per_s"] for b in xs], marker="o",
                    linestyle="-" if ENGINES[n][3] else "--", label=ENGINES[n][0])
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks(batches)
        ax.set_xticklabels([str(b) for b in batches])
        ax.set_xlabel("batch size")
        ax.set_ylabel("texts/s")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=8, loc="best")
    fig.suptitle(f"bge-small-en-v1.5, {doc['threads']} threads, {doc['cpu']}", fontsize=10)
    fig.tight_layout()
    matplotlib.rcParams["svg.hashsalt"] = "peers"
    matplotlib.rcParams["svg.fonttype"] = "none"
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)
    return True


def peak_markdown(peak):
    lines = [f"Measured by build/bench/peak --json ({peak['cpu']}, {peak['threads']} threads, best of "
             f"{peak.get('runs', 3)} runs of {peak['seconds']:.1f} s):", "",
             "| case | instruction | unit | 1 thread | all threads |",
             "|---|---|---|---:|---:|"]
    for c in peak["cases"]:
        if c["available"]:
            lines.append(f"| {c['name']} | {c['instr']} | {c['unit']} | {c['one_thread']:,.1f} | "
                         f"{c['all_threads']:,.1f} |")
        else:
            lines.append(f"| {c['name']} | {c['instr']} | {c['unit']} | - | - ({c['why']}) |")
    return "\n".join(lines) + "\n"


def replace_section(text, tag, md):
    begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    if begin not in text or end not in text:
        print(f"note: {DOC} has no {begin} ... {end}; not updated", file=sys.stderr)
        return text
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return head + begin + "\n" + md + "\n" + end + tail


def update_doc(md, peak):
    text = replace_section(DOC.read_text(), "peers", md)
    if peak:
        text = replace_section(text, "peak", peak_markdown(peak))
    DOC.write_text(text)


def report_only(args):
    doc = json.loads(Path(args.report).read_text())
    if args.peak_json:
        doc["peak"] = json.loads(Path(args.peak_json).read_text())
        doc["peak_note"] = ("peak measured apart from the engines, by build/bench/peak --json "
                            "while the machine was quieter")
    derive(doc["engines"], doc["peak"], doc["batches"])
    Path(args.report).write_text(json.dumps(doc, indent=1))
    md = markdown(doc)
    Path(args.report).with_suffix(".md").write_text(md)
    print(md)
    plot(doc, PLOT if args.doc else Path(args.report).with_suffix(".svg"))
    if args.doc:
        update_doc(md, doc["peak"])
    return 0


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="a tiny smoke run")
    ap.add_argument("--engines", help="comma-separated subset of: " + ",".join(ENGINES))
    ap.add_argument("--seconds", type=float, help="per throughput cell (3; quick 0.3)")
    ap.add_argument("--batches", help="batch sizes (1,8,32,128; quick 1,8)")
    ap.add_argument("--queries", type=int, help="latency queries (200; quick 20)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--build", default=str(ROOT / "build"),
                    help="the build folder with libbgeicl.so, bgeicl, bench/peak")
    ap.add_argument("--doc", action="store_true",
                    help="rewrite the generated part of docs/PERFORMANCE.md's Peers section")
    ap.add_argument("--out", default=str(OUT / "peers.json"))
    ap.add_argument("--peak-runs", type=int, default=5,
                    help="runs of build/bench/peak per case; the best counts")
    ap.add_argument("--peak-json", help="use this output of peak --json instead of "
                    "measuring (a peak measured while the machine was idle)")
    ap.add_argument("--timeout", type=float, default=3600, help="per engine, seconds")
    ap.add_argument("--report", metavar="PEERS_JSON",
                    help="measure nothing: recompute ratios and %% of peak (with --peak-json "
                    "if given) of an earlier run's JSON and write its tables, plot and doc")
    args = ARGS = ap.parse_args()
    if args.worker:
        return worker_main(args.worker)
    if args.report:
        return report_only(args)

    q = args.quick
    seconds = args.seconds if args.seconds is not None else (0.3 if q else 3.0)
    batches = [int(b) for b in (args.batches or ("1,8" if q else "1,8,32,128")).split(",")]
    queries = args.queries or (20 if q else 200)
    names = args.engines.split(",") if args.engines else list(ENGINES)
    for n in names:
        if n not in ENGINES:
            sys.exit(f"unknown engine {n!r}; known: {', '.join(ENGINES)}")
    if REFERENCE not in names:
        names.append(REFERENCE)  # accuracy needs the reference vectors
    n_short, n_code = (64, 32) if q else (1024, 512)
    short, code, counts = build_corpus(n_short + queries + 10, n_code)
    build = Path(args.build).resolve()
    spec = {"model": str(MODEL), "build": str(build), "threads": args.threads,
            "seconds": seconds, "batches": batches, "queries": queries,
            "short": short, "code": code, "tokens": counts,
            "acc_short": 16 if q else 256, "acc_code": 8 if q else 128}
    with tempfile.TemporaryDirectory(prefix="peers-probe-") as d:
        spec["bgeicl_layout"] = {}
        for dt in ("fp32", "bf16", "int8"):
            try:
                spec["bgeicl_layout"][dt] = bgeicl_layout(build, dt, d)
            except Unavailable as e:
                spec["bgeicl_layout"][dt] = {"unavailable": str(e)}
    peak = json.loads(Path(args.peak_json).read_text()) if args.peak_json else read_peak(build)
    load0 = os.getloadavg()
    results = {}
    for n in names:
        t0 = time.perf_counter()
        print(f"[peers] {n} ...", file=sys.stderr, flush=True)
        if ENGINES[n][1] == "server":
            try:
                r = run_server(n, spec, args.timeout)
            except Exception as e:  # noqa: BLE001 - one engine's failure is a row
                r = {"engine": n, "available": False, "why": f"failed: {e}"}
        else:
            r = run_worker(n, spec, args.timeout)
            if n == "bgeicl-fp32" and r.get("available"):
                r["cli"] = run_cli(spec)
        results[n] = r
        print(f"[peers] {n}: {'ok' if r.get('available') else 'not available: ' + r.get('why', '')}"
              f" ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    accuracy(results)
    derive(results, peak, batches)
    ntoks = lambda ts: sum(counts[t] for t in ts) / max(len(ts), 1)  # noqa: E731
    doc = {
        "command": "bench/peers/run.py " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": (peak or {}).get("cpu", platform.processor()), "cpus": os.cpu_count(),
        "threads": args.threads, "seconds": seconds, "batches": batches,
        "load_avg_before": load0, "load_avg_after": os.getloadavg(),
        "corpus": {"seed": SEED, "short": len(short), "code": len(code),
                   "short_mean_tokens": ntoks(short), "code_mean_tokens": ntoks(code),
                   "accuracy_texts": spec["acc_short"] + spec["acc_code"]},
        "flop_per_token": FLOP_PER_TOKEN, "peak": peak, "engines": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))
    md = markdown(doc)
    md_path = out.with_suffix(".md")
    md_path.write_text(md)
    print(md)
    if plot(doc, PLOT if args.doc else out.with_suffix(".svg")):
        print(f"plot: {PLOT if args.doc else out.with_suffix('.svg')}", file=sys.stderr)
    if args.doc:
        update_doc(md, peak)
    print(f"wrote {out} and {md_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
