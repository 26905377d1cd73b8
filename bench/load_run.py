"""Sustained HTTP load on `bgeicl serve` with wrk: throughput, latency, RSS.

    .venv/bin/python bench/load_run.py [--seconds 30] [--connections 64]
                                       [--wrk-threads 2] [--threads 2]
                                       [--model models/bge-small-en-v1.5]
                                       [--url http://host:port --pid PID]
                                       [-- extra serve flags]

Starts a server (build/bgeicl serve, its default limits, --threads 2) on a
free loopback port unless --url names a running one, then runs wrk with a
Lua script that cycles a few POST /v1/embeddings bodies of 1 to 8 short
texts. Each text gets a per-request counter appended (--no-vary turns that
off) so the embedding cache cannot answer everything. The Lua `response`
hook counts responses per HTTP status. The server's RSS is sampled every
0.5 s. Texts/s and tokens/s come from the server's own counters
(bge_icl_embeddings_generated_total, bge_icl_input_tokens_total) read before
and after the run. Prints a markdown table and the JSON summary, and writes
bench/out/load.json.

The helpers here (write_lua, run_wrk, RssSampler, parse_prom) are also used
by tests/py/test_server_ops.py.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "py"))
import serverproc  # noqa: E402

# ---- request bodies ---------------------------------------------------------

SHORT_TEXTS = [
    "def parse_config(path):",
    "how to read a file line by line",
    "binary search in a sorted list",
    "open a TCP socket and send bytes",
    "class LRUCache with get and put",
    "convert a timestamp to ISO 8601",
    "retry an HTTP request with backoff",
    "for i in range(len(items)):",
    "merge two dictionaries in python",
    "SELECT id, name FROM users WHERE active = 1",
    "func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request)",
    "compute the cosine similarity of two vectors",
    "static int parse_header(const char *buf, size_t len)",
    "async def fetch(session, url):",
    "sort a list of tuples by the second element",
    "raise ValueError('bad input')",
]
BODY_SIZES = [1, 8, 2, 5, 3, 1, 4, 8, 6, 2, 7, 1]
PLACEHOLDER = "@N@"


def load_bodies(vary=True):
    """A few request bodies of 1-8 short texts. With vary, each text carries
    the placeholder that the Lua script replaces by a per-request counter."""
    out, pos = [], 0
    for n in BODY_SIZES:
        texts = []
        for _ in range(n):
            t = SHORT_TEXTS[pos % len(SHORT_TEXTS)]
            texts.append(f"{t} {PLACEHOLDER}" if vary else t)
            pos += 1
        out.append({"input": texts, "model": "bge-small-en-v1.5"})
    return out


def mean_texts_per_body(bodies):
    return sum(len(b["input"]) for b in bodies) / len(bodies)


# ---- wrk -------------------------------------------------------------------

LUA_TEMPLATE = r"""
-- generated: cycles request bodies; counts responses per HTTP status
local bodies = {
%(bodies)s
}
local headers = { ["Content-Type"] = "application/json"%(auth)s }
local vary = %(vary)s
local path = "%(path)s"
local threads = {}
local idx = 0
local counter = 0
local prebuilt = {}
statuses = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  statuses = {}
  counter = (tid or 0) * 100000000
  if not vary then
    for k, b in ipairs(bodies) do
      prebuilt[k] = wrk.format("POST", path, headers, b)
    end
  end
end

function request()
  idx = idx %% #bodies + 1
  if not vary then
    return prebuilt[idx]
  end
  counter = counter + 1
  local b = string.gsub(bodies[idx], "@N@", tostring(counter))
  return wrk.format("POST", path, headers, b)
end

function response(status, hdrs, body)
  local k = tostring(status)
  statuses[k] = (statuses[k] or 0) + 1
end

function done(summary, latency, requests)
  local agg = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then
      for k, v in pairs(s) do agg[k] = (agg[k] or 0) + v end
    end
  end
  local parts = {}
  for k, v in pairs(agg) do parts[#parts + 1] = string.format('"%%s":%%d', k, v) end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"statuses":{%%s},"requests":%%d,"duration_us":%%d,"bytes":%%d,' ..
    '"errors":{"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d},' ..
    '"latency_us":{"p50":%%d,"p90":%%d,"p99":%%d,"max":%%d,"mean":%%.1f}}\n',
    table.concat(parts, ","), summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def write_lua(path, bodies, api_key=None, vary=True, url_path="/v1/embeddings"):
    lit = []
    for b in bodies:
        s = json.dumps(b)
        assert "]==]" not in s
        lit.append(f"  [==[{s}]==],")
    auth = f', ["Authorization"] = "Bearer {api_key}"' if api_key else ""
    Path(path).write_text(LUA_TEMPLATE % {
        "bodies": "\n".join(lit), "auth": auth, "vary": "true" if vary else "false",
        "path": url_path})
    return str(path)


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _dur(s):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", s.strip())
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def parse_wrk(text):
    """wrk --latency output plus the WRKJSON line of the Lua done hook."""
    res = {"raw": text}
    m = re.search(r"^WRKJSON (.*)$", text, re.M)
    res["lua"] = json.loads(m.group(1)) if m else None
    res["latency_s"] = {}
    if "Latency Distribution" in text:
        tail = text.split("Latency Distribution", 1)[1]
        for pct, val in re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", tail, re.M):
            res["latency_s"][f"p{pct}"] = _dur(val)
    m = re.search(r"^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)", text, re.M)
    if m:
        res["latency_s"]["avg"] = _dur(m.group(1))
        res["latency_s"]["max"] = _dur(m.group(3))
    m = re.search(r"(\d+) requests in ([0-9.]+\w+),", text)
    res["requests"] = int(m.group(1)) if m else None
    res["duration_s"] = _dur(m.group(2)) if m else None
    m = re.search(r"Requests/sec:\s+([0-9.]+)", text)
    res["requests_per_s"] = float(m.group(1)) if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    res["socket_errors"] = (dict(zip(("connect", "read", "write", "timeout"),
                                     map(int, m.groups()))) if m else None)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    res["non_2xx_3xx"] = int(m.group(1)) if m else 0
    return res


def run_wrk(url, lua_path, connections=64, threads=2, seconds=30, timeout_s=10):
    exe = shutil.which("wrk")
    if exe is None:
        raise RuntimeError("wrk is not installed (Debian package wrk)")
    cmd = [exe, "-t", str(threads), "-c", str(connections), "-d", f"{int(seconds)}s",
           "--timeout", f"{int(timeout_s)}s", "--latency", "-s", str(lua_path), url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout_s + 120)
    if r.returncode != 0:
        raise RuntimeError(f"wrk exited {r.returncode}\n{r.stdout}\n{r.stderr}")
    res = parse_wrk(r.stdout)
    res["stderr"] = r.stderr
    res["cmd"] = " ".join(cmd)
    return res


# ---- RSS sampling ------------------------------------------------------------

def rss_of_pid(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class RssSampler:
    """Samples a process's RSS every `interval` seconds in a thread:
    samples is a list of (seconds since start, bytes)."""

    def __init__(self, read_rss, interval=0.5):
        self.read_rss = read_rss
        self.interval = interval
        self.samples = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        t0 = time.monotonic()
        while True:
            try:
                self.samples.append((time.monotonic() - t0, self.read_rss()))
            except OSError:
                pass
            if self._stop.wait(self.interval):
                break

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        return False

    def summary(self, duration=None):
        """after_warmup: the sample at the end of the first quarter of the
        run; max_last_half: the largest sample of the second half;
        growth = max_last_half - after_warmup."""
        s = self.samples
        if not s:
            return {}
        dur = duration or s[-1][0]
        q1 = min(s, key=lambda x: abs(x[0] - dur / 4))[1]
        last_half = [v for t, v in s if t >= dur / 2] or [s[-1][1]]
        mb = 1 << 20
        return {"start_mb": s[0][1] / mb, "after_warmup_mb": q1 / mb, "end_mb": s[-1][1] / mb,
                "max_mb": max(v for _, v in s) / mb, "max_last_half_mb": max(last_half) / mb,
                "growth_mb": (max(last_half) - q1) / mb, "samples": len(s)}


# ---- Prometheus text ------------------------------------------------------------

_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?\s*$')
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _unescape(v):
    return re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), v)


def parse_prom(text):
    """Prometheus text 0.0.4 -> (types {name: type}, helps {name: help},
    samples [(name, {label: value}, float)]). Raises ValueError on a line it
    cannot read."""
    types, helps, samples = {}, {}, []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                types[parts[2]] = parts[3].strip() if len(parts) > 3 else ""
            elif len(parts) >= 3 and parts[1] == "HELP":
                helps[parts[2]] = parts[3] if len(parts) > 3 else ""
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            raise ValueError(f"unreadable metrics line: {line!r}")
        labels = {}
        if m.group(3):
            body, pos = m.group(3), 0
            while pos < len(body):
                lm = _LABEL_RE.match(body, pos)
                if not lm or lm.end() == pos:
                    raise ValueError(f"unreadable labels: {line!r}")
                labels[lm.group(1)] = _unescape(lm.group(2))
                pos = lm.end()
        samples.append((m.group(1), labels, float(m.group(4))))
    return types, helps, samples


def metric_sum(samples, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    return sum(v for n, l, v in samples
               if n == name and all(l.get(k) == want for k, want in labels.items()))


def scrape(url, api_key=None):
    h = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    st, _, body = serverproc.http("GET", url + "/metrics", headers=h, timeout=30)
    if st != 200:
        return None
    return parse_prom(body.decode())[2]


# ---- the run ---------------------------------------------------------------------

def load_run(url, rss_read, connections, wrk_threads, seconds, api_key=None, vary=True,
             timeout_s=10, workdir=None):
    bodies = load_bodies(vary)
    wd = Path(workdir or tempfile.mkdtemp(prefix="bgeicl-load-"))
    lua = write_lua(wd / "load.lua", bodies, api_key=api_key, vary=vary)
    load_before = list(os.getloadavg())
    before = scrape(url, api_key)
    sampler = RssSampler(rss_read) if rss_read else None
    t0 = time.monotonic()
    if sampler:
        with sampler:
            w = run_wrk(url + "/v1/embeddings", lua, connections, wrk_threads, seconds, timeout_s)
    else:
        w = run_wrk(url + "/v1/embeddings", lua, connections, wrk_threads, seconds, timeout_s)
    wall = time.monotonic() - t0
    after = scrape(url, api_key)
    dur = w["duration_s"] or seconds
    lua_res = w["lua"] or {}
    statuses = {int(k): v for k, v in (lua_res.get("statuses") or {}).items()}
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    summary = {
        "loadavg_before": load_before, "loadavg_after": list(os.getloadavg()),
        "connections": connections, "wrk_threads": wrk_threads, "seconds": seconds,
        "vary_texts": vary, "texts_per_request_mean": mean_texts_per_body(bodies),
        "requests": w["requests"], "duration_s": dur, "wall_s": wall,
        "requests_per_s": w["requests_per_s"],
        "latency_s": w["latency_s"],
        "latency_lua_us": lua_res.get("latency_us"),
        "statuses": statuses, "non_2xx_3xx": w["non_2xx_3xx"],
        "socket_errors": w["socket_errors"], "lua_errors": lua_res.get("errors"),
    }
    if before is not None and after is not None:
        texts = (metric_sum(after, "bge_icl_embeddings_generated_total")
                 - metric_sum(before, "bge_icl_embeddings_generated_total"))
        tokens = (metric_sum(after, "bge_icl_input_tokens_total")
                  - metric_sum(before, "bge_icl_input_tokens_total"))
        summary.update(texts=texts, tokens=tokens, texts_source="server metrics")
        d = lambda n: metric_sum(after, n) - metric_sum(before, n)  # noqa: E731
        for fam, key in (("bge_icl_batch_size", "forward_batch_texts_mean"),
                         ("bge_icl_batch_tokens", "forward_batch_tokens_mean"),
                         ("bge_icl_queue_wait_seconds", "queue_wait_s_mean"),
                         ("bge_icl_inference_seconds", "inference_s_mean")):
            cnt = d(fam + "_count")
            summary[key] = d(fam + "_sum") / cnt if cnt else None
        summary["forward_passes"] = d("bge_icl_batch_size_count")
    else:
        summary.update(texts=ok * mean_texts_per_body(bodies), tokens=None,
                       texts_source="estimate: 2xx x mean texts per body")
    summary["texts_per_s"] = summary["texts"] / dur if dur else None
    summary["tokens_per_s"] = summary["tokens"] / dur if summary["tokens"] and dur else None
    summary["rss"] = sampler.summary(wall) if sampler else None
    summary["rss_samples"] = ([[round(t, 2), v] for t, v in sampler.samples]
                              if sampler else None)
    summary["wrk_output"] = w["raw"]
    return summary


def markdown(s):
    lat = s["latency_s"] or {}
    ms = lambda v: f"{v * 1e3:.1f}" if v is not None else "-"  # noqa: E731
    fmt = lambda v: f"{v:.1f}" if v is not None else "-"  # noqa: E731
    rows = [
        ("connections / wrk threads", f"{s['connections']} / {s['wrk_threads']}"),
        ("duration (s)", f"{s['duration_s']:.1f}"),
        ("requests", f"{s['requests']}"),
        ("requests/s", f"{s['requests_per_s']}"),
        ("texts/s", f"{s['texts_per_s']:.1f}" if s["texts_per_s"] else "-"),
        ("tokens/s", f"{s['tokens_per_s']:.0f}" if s["tokens_per_s"] else "-"),
        ("latency p50 / p90 / p99 (ms)",
         f"{ms(lat.get('p50'))} / {ms(lat.get('p90'))} / {ms(lat.get('p99'))}"),
        ("latency max (ms)", ms(lat.get("max"))),
        ("forward passes / mean texts / mean tokens per pass",
         f"{s.get('forward_passes', '-')} / {fmt(s.get('forward_batch_texts_mean'))} / "
         f"{fmt(s.get('forward_batch_tokens_mean'))}"),
        ("statuses", json.dumps(s["statuses"])),
        ("socket errors", json.dumps(s["socket_errors"] or "none")),
        ("load average before / after (1 min)",
         f"{s['loadavg_before'][0]:.2f} / {s['loadavg_after'][0]:.2f}"),
    ]
    r = s.get("rss")
    if r:
        rows += [("RSS start / after warm-up / end / max (MB)",
                  f"{r['start_mb']:.1f} / {r['after_warmup_mb']:.1f} / {r['end_mb']:.1f} / "
                  f"{r['max_mb']:.1f}"),
                 ("RSS growth after warm-up (MB)", f"{r['growth_mb']:+.1f}")]
    out = ["| metric | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="server --threads")
    ap.add_argument("--timeout", type=float, default=10, help="wrk --timeout seconds")
    ap.add_argument("--bin", default=os.environ.get("BGEICL_BIN", str(ROOT / "build" / "bgeicl")))
    ap.add_argument("--model", default=str(serverproc.DEFAULT_MODEL))
    ap.add_argument("--url", help="use this running server instead of starting one")
    ap.add_argument("--pid", type=int, help="with --url: the server's pid, for RSS samples")
    ap.add_argument("--api-key")
    ap.add_argument("--no-vary", action="store_true",
                    help="send the bodies unchanged (the embedding cache may answer)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "load.json"))
    ap.add_argument("serve_args", nargs="*", help="extra flags for bgeicl serve (after --)")
    args = ap.parse_args()

    def go(url, rss_read):
        return load_run(url, rss_read, args.connections, args.wrk_threads, args.seconds,
                        api_key=args.api_key, vary=not args.no_vary, timeout_s=args.timeout)

    if args.url:
        rss = (lambda: rss_of_pid(args.pid)) if args.pid else None
        s = go(args.url.rstrip("/"), rss)
        s["server"] = {"url": args.url}
    else:
        extra = list(args.serve_args) + (["--api-key", args.api_key] if args.api_key else [])
        with serverproc.Server(args.bin, *extra, model=args.model, threads=args.threads) as srv:
            s = go(srv.url, srv.rss_bytes)
            st, _, _ = serverproc.http("GET", srv.url + "/health", timeout=30)
            s["health_after"] = st
            s["server"] = {"threads": args.threads, "model": Path(args.model).name,
                           "flags": extra}
    print(markdown(s))
    printable = {k: v for k, v in s.items() if k not in ("wrk_output", "rss_samples")}
    print(json.dumps(printable, indent=2))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(s, indent=2))


if __name__ == "__main__":
    main()
