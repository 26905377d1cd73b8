"""Operations checks of `bgeicl serve`: its /metrics text against promtool and
the contract, a real Prometheus scraping it (with and without an API key),
and a bounded wrk load run that watches statuses, socket errors and RSS.

Needs promtool, prometheus and wrk (Debian packages prometheus and wrk).
The load run lasts BGEICL_LOAD_SECONDS (default 10 s); under the ASan build
(BGEICL_BIN=.../san/bgeicl) it uses 16 connections for 20 s and does not
check RSS growth (ASan's quarantine grows it). Figures are printed: run with
`pytest -rP` to see them.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from serverproc import Server, free_port, http
from test_deploy import CONTRACT_METRICS, HISTOGRAMS

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from load_run import RssSampler, load_bodies, metric_sum, parse_prom, run_wrk, write_lua  # noqa: E402

PROVIDER = "bge-in-icl"
COUNTERS = {
    "bge_icl_requests_total",
    "bge_icl_embeddings_generated_total",
    "bge_icl_input_tokens_total",
    "bge_icl_context_cache_hits_total",
    "bge_icl_context_cache_misses_total",
    "bge_icl_embedding_cache_hits_total",
    "bge_icl_embedding_cache_misses_total",
}
GAUGES = CONTRACT_METRICS - COUNTERS - HISTOGRAMS
PROCESS = {
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_start_time_seconds": "gauge",
}
# Label names the contract gives (histograms add "le" to their buckets).
LABELS = {
    "bge_icl_requests_total": {"provider", "language", "status"},
    "bge_icl_embeddings_generated_total": {"provider", "language"},
    "bge_icl_request_duration_seconds": {"provider", "batch_size_range"},
    "bge_icl_context_preparation_seconds": {"language"},
    "bge_icl_current_batch_size": {"provider"},
    "bge_icl_min_batch_size": {"provider"},
    "bge_icl_max_batch_size": {"provider"},
    "bge_icl_active_connections": {"provider"},
    "bge_icl_cache_hit_rate": {"provider"},
    "bge_icl_build_info": {"version", "model", "dtype", "isa"},
}
SERIES_OPTIONAL = {"bge_icl_context_preparation_seconds"}
ASAN = os.environ.get("BGEICL_BIN", "").endswith("san/bgeicl")


def need(tool):
    exe = shutil.which(tool)
    if exe is None:
        pytest.fail(f"{tool} is not installed; run scripts/setup-deps.sh --test")
    return exe


# ---- helpers -------------------------------------------------------------------

_seq = [0]


def texts(n, prefix="ops check"):
    """n distinct short texts (distinct across calls, so no cache answers)."""
    out = []
    for _ in range(n):
        _seq[0] += 1
        out.append(f"{prefix} text number {_seq[0]}")
    return out


def embed(url, body, key=None):
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = f"Bearer {key}"
    st, hdr, data = http("POST", url + "/v1/embeddings", body, headers=h)
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    return st, doc, hdr


def embed_ok(url, inputs, key=None, **extra):
    st, doc, _ = embed(url, {"input": inputs, "model": "bge-small-en-v1.5", **extra}, key)
    assert st == 200, (st, doc)
    assert len(doc["data"]) == (len(inputs) if isinstance(inputs, list) else 1)
    return doc


def metrics_text(url, key=None):
    h = {"Authorization": f"Bearer {key}"} if key else {}
    st, hdr, body = http("GET", url + "/metrics", headers=h)
    assert st == 200, (st, body[:500])
    return hdr, body.decode()


def samples(url, key=None):
    return parse_prom(metrics_text(url, key)[1])[2]


def wait_for(url, check, timeout=3.0):
    """Scrapes until check(samples) is true or timeout; returns the last samples.
    (A server may update counters just after it sends the response.)"""
    deadline = time.monotonic() + timeout
    while True:
        s = samples(url)
        if check(s) or time.monotonic() > deadline:
            return s
        time.sleep(0.1)


def hist_count(s, name, **labels):
    return metric_sum(s, name + "_count", **labels)


# ---- a. /metrics text ------------------------------------------------------------

WARMUP = [
    ("one string", {"input": "hello metrics"}),
    ("3 texts", {"input": None, "n": 3}),
    ("12 texts", {"input": None, "n": 12}),
    ("2 queries", {"input": None, "n": 2, "input_type": "query"}),
    ("server-side ICL query", {"input": ["how to sort a list"], "input_type": "query",
                               "enable_icl": True, "language": "python"}),
    ("icl_context query", {"input": ["read a json file"], "input_type": "query", "icl_context": {
        "instruction": "Given a code search query, retrieve relevant code snippets.",
        "examples": [{"query": "sort a list", "response": "sorted(xs)"}],
        "language": "python", "enable_context_learning": True}}),
]


@pytest.fixture(scope="module")
def server(bin_path):
    with Server(bin_path) as srv:
        # A few requests of several kinds, so that histograms have data; their
        # statuses are checked by test_warmup_requests_succeed.
        srv.warmup = []
        for what, body in WARMUP:
            body = dict(body, model="bge-small-en-v1.5")
            if body["input"] is None:
                body["input"] = texts(body.pop("n"))
            st, doc, _ = embed(srv.url, body)
            srv.warmup.append((what, st, doc if st != 200 else None))
        st, doc, _ = embed(srv.url, {"input": []})
        srv.warmup.append(("empty input (400)", st, doc))
        yield srv


def test_warmup_requests_succeed(server):
    bad = [w for w in server.warmup[:-1] if w[1] != 200]
    assert not bad, f"warm-up requests failed: {bad}"
    assert server.warmup[-1][1] == 400, server.warmup[-1]


def test_promtool_accepts_metrics(server, tmp_path):
    exe = need("promtool")
    hdr, text = metrics_text(server.url)
    ctype = hdr.get("content-type", "")
    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype, ctype
    r = subprocess.run([exe, "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, (f"promtool check metrics exited {r.returncode}\n"
                               f"--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}")


def test_contract_metric_names_and_types(server):
    types, helps, s = parse_prom(metrics_text(server.url)[1])
    want = {**{n: "counter" for n in COUNTERS}, **{n: "gauge" for n in GAUGES},
            **{n: "histogram" for n in HISTOGRAMS}, **PROCESS}
    missing = sorted(n for n in want if n not in types)
    assert not missing, f"no # TYPE line for {missing}"
    wrong = {n: (types[n], t) for n, t in want.items() if types[n] != t}
    assert not wrong, f"wrong types (have, want): {wrong}"
    # Every sample belongs to a declared family.
    for name, labels, _ in s:
        fam = name
        for suf in ("_bucket", "_sum", "_count"):
            if name.endswith(suf) and types.get(name[: -len(suf)]) == "histogram":
                fam = name[: -len(suf)]
        assert fam in types, f"sample {name} has no # TYPE"
    # Label names as the contract gives them.
    for fam, want_labels in LABELS.items():
        series = [l for n, l, _ in s if n in (fam, fam + "_count")]
        # context preparation is observed only when ICL was applied.
        assert series or fam in SERIES_OPTIONAL, f"{fam}: no series"
        for l in series:
            assert set(l) == want_labels, f"{fam}: labels {sorted(l)}, want {sorted(want_labels)}"
            if "provider" in want_labels:
                assert l["provider"] == PROVIDER, l
    for l in (l for n, l, _ in s if n == "bge_icl_requests_total"):
        assert l["status"] in ("success", "error"), l
    # Histograms: cumulative buckets ending in +Inf, with _count equal to it.
    for fam in HISTOGRAMS:
        groups = {}
        for n, l, v in s:
            if n == fam + "_bucket":
                key = tuple(sorted((k, x) for k, x in l.items() if k != "le"))
                groups.setdefault(key, []).append((l["le"], v))
        assert groups or fam in SERIES_OPTIONAL, f"{fam}: no buckets"
        for key, bk in groups.items():
            les = [float(le) for le, _ in bk]
            assert les == sorted(les) and bk[-1][0] == "+Inf", (fam, key, bk)
            counts = [v for _, v in bk]
            assert counts == sorted(counts), (fam, key, counts)
            assert hist_count(s, fam, **dict(key)) == counts[-1], (fam, key)


def test_build_info(server):
    s = samples(server.url)
    rows = [(l, v) for n, l, v in s if n == "bge_icl_build_info"]
    assert len(rows) == 1, rows
    labels, value = rows[0]
    assert value == 1
    assert set(labels) == {"version", "model", "dtype", "isa"}, labels
    assert all(labels[k] for k in labels), labels
    assert labels["model"] == "bge-small-en-v1.5", labels
    assert labels["dtype"] == "fp32", labels
    st, _, body = http("GET", server.url + "/info")
    assert st == 200
    info = json.loads(body)
    assert labels["version"] == info["version"], (labels, info["version"])
    assert labels["isa"] == info["isa"], (labels, info["isa"])


def test_counters_move_after_requests(server):
    url = server.url
    s0 = samples(url)
    c = lambda s, n, **l: metric_sum(s, n, **l)  # noqa: E731
    sizes = [1, 3, 5]
    tokens = 0
    for n in sizes:
        doc = embed_ok(url, texts(n))
        assert doc["usage"]["prompt_tokens"] > 0
        tokens += doc["usage"]["prompt_tokens"]
    want = {
        ("bge_icl_requests_total", "success"): len(sizes),
        ("bge_icl_requests_total", "error"): 0,
        ("bge_icl_embeddings_generated_total", None): sum(sizes),
        ("bge_icl_input_tokens_total", None): tokens,
    }

    def delta(s):
        out = {}
        for (n, status) in want:
            lab = {"status": status} if status else {}
            out[(n, status)] = c(s, n, **lab) - c(s0, n, **lab)
        return out

    s1 = wait_for(url, lambda s: delta(s) == want)
    assert delta(s1) == want, f"deltas {delta(s1)}, want {want}"
    for n, l, _ in s1:
        if n in ("bge_icl_requests_total", "bge_icl_embeddings_generated_total"):
            assert l.get("provider") == PROVIDER, (n, l)

    # One failed request: status="error" moves, nothing else does.
    st, doc, _ = embed(url, {"input": [], "model": "bge-small-en-v1.5"})
    assert st == 400, (st, doc)
    want2 = dict(want)
    want2[("bge_icl_requests_total", "error")] = 1
    s2 = wait_for(url, lambda s: delta(s) == want2)
    assert delta(s2) == want2, f"after one 400: deltas {delta(s2)}, want {want2}"


def test_request_duration_batch_size_ranges(server):
    url = server.url
    name = "bge_icl_request_duration_seconds"
    ranges = ("small", "medium", "large")
    plan = {"small": [1, 10], "medium": [11, 20, 50], "large": [51, 60]}
    s0 = samples(url)

    def delta(s):
        return {r: hist_count(s, name, batch_size_range=r, provider=PROVIDER)
                - hist_count(s0, name, batch_size_range=r, provider=PROVIDER) for r in ranges}

    for r in ranges:
        for n in plan[r]:
            embed_ok(url, texts(n))
    want = {r: len(plan[r]) for r in ranges}
    s1 = wait_for(url, lambda s: delta(s) == want)
    assert delta(s1) == want, f"request counts per batch_size_range {delta(s1)}, want {want}"
    got = {l["batch_size_range"] for n, l, _ in s1 if n == name + "_count"}
    assert got == set(ranges), got
    for r in ranges:
        assert metric_sum(s1, name + "_sum", batch_size_range=r) > 0, r


def test_process_metrics_plausible(server):
    s = samples(server.url)
    get = lambda n: [v for m, _, v in s if m == n]  # noqa: E731
    for n in PROCESS:
        assert len(get(n)) == 1, (n, get(n))
    rss = get("process_resident_memory_bytes")[0]
    real = server.rss_bytes()
    print(f"process_resident_memory_bytes={rss / 2**20:.1f} MB, /proc VmRSS={real / 2**20:.1f} MB")
    assert rss > 50e6, rss
    assert 0.5 * real < rss < 2 * real, (rss, real)
    start = get("process_start_time_seconds")[0]
    assert time.time() - 3600 < start <= time.time() + 5, (start, time.time())
    cpu = get("process_cpu_seconds_total")[0]
    assert 0 < cpu < 3600 * os.cpu_count(), cpu
    fds = get("process_open_fds")[0]
    assert 3 <= fds < 10000, fds


def test_metrics_json_format(server):
    want = {"queue_depth", "cache_hit_rate", "current_batch_size", "active_connections",
            "requests_total", "errors_total", "latency_seconds"}
    for path, hdrs in (("/metrics?format=json", {}),
                       ("/metrics", {"Accept": "application/json"})):
        st, hdr, body = http("GET", server.url + path, headers=hdrs)
        assert st == 200, (path, st)
        assert hdr.get("content-type", "").startswith("application/json"), hdr
        doc = json.loads(body)
        assert want <= set(doc), sorted(want - set(doc))
        assert {"p50", "p95", "p99"} <= set(doc["latency_seconds"]), doc["latency_seconds"]


# ---- b. a real Prometheus scraping the server ------------------------------------------

class Prometheus:
    def __init__(self, tmp_path, scrape_configs):
        self.exe = need("prometheus")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = tmp_path
        cfg = ["global:", "  scrape_interval: 1s", "  evaluation_interval: 1s",
               "scrape_configs:"]
        for job, target, key in scrape_configs:
            cfg += [f"  - job_name: {job}", "    metrics_path: /metrics",
                    "    scrape_interval: 1s", "    scrape_timeout: 1s"]
            if key:
                cfg += ["    authorization:", "      type: Bearer", f"      credentials: {key}"]
            cfg += ["    static_configs:", f"      - targets: ['{target}']"]
        self.config = tmp_path / "prometheus.yml"
        self.config.write_text("\n".join(cfg) + "\n")
        self.logf = open(tmp_path / "prometheus.log", "wb")
        self.proc = None

    def log(self):
        self.logf.flush()
        return (self.dir / "prometheus.log").read_text(errors="replace")[-4000:]

    def __enter__(self):
        self.proc = subprocess.Popen(
            [self.exe, f"--config.file={self.config}", f"--storage.tsdb.path={self.dir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.logf, stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"prometheus exited {self.proc.returncode}\n{self.log()}"
            try:
                if http("GET", self.url + "/-/ready", timeout=2)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready after 60 s\n{self.log()}")

    def query(self, q):
        from urllib.parse import quote
        st, _, body = http("GET", f"{self.url}/api/v1/query?query={quote(q)}", timeout=10)
        assert st == 200, (st, body[:300])
        doc = json.loads(body)
        assert doc["status"] == "success", doc
        return doc["data"]["result"]

    def poll(self, q, check, timeout=60):
        deadline = time.monotonic() + timeout
        res = []
        while time.monotonic() < deadline:
            res = self.query(q)
            if check(res):
                return res
            time.sleep(0.5)
        raise AssertionError(f"query {q!r}: no acceptable result in {timeout} s; last {res}\n"
                             f"{self.log()}")

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"prometheus ignored SIGTERM\n{self.log()}")
        self.logf.close()
        if exc[0] is None:
            assert self.proc.returncode == 0, f"prometheus exit {self.proc.returncode}\n{self.log()}"
        return False


@pytest.mark.parametrize("auth", ["open", "api_key"])
def test_prometheus_scrapes_server(bin_path, tmp_path, auth):
    key = "ops-test-key-4f1c" if auth == "api_key" else None
    args = ["--api-key", key] if key else []
    with Server(bin_path, *args) as srv:
        n = 4
        for _ in range(n):
            embed_ok(srv.url, texts(2), key=key)
        target = f"127.0.0.1:{srv.port}"
        jobs = [("bgeicl", target, key)]
        if key:
            jobs.append(("bgeicl_noauth", target, None))
        t0 = time.monotonic()
        with Prometheus(tmp_path, jobs) as prom:
            def good(res):
                ok = [r for r in res if r["metric"].get("provider") == PROVIDER
                      and r["metric"].get("job") == "bgeicl"
                      and r["metric"].get("status") == "success"]
                return ok and sum(float(r["value"][1]) for r in ok) == n

            res = prom.poll("bge_icl_requests_total", good)
            up = prom.poll('up{job="bgeicl"}', lambda r: len(r) == 1)
            assert up[0]["value"][1] == "1", up
            assert up[0]["metric"]["instance"] == target, up
            if key:
                # Without the key the scrape is refused (401), so up is 0.
                down = prom.poll('up{job="bgeicl_noauth"}', lambda r: len(r) == 1)
                assert down[0]["value"][1] == "0", down
            took = time.monotonic() - t0
        seen = [r for r in res if r["metric"].get("status") == "success"]
        print(f"[{auth}] prometheus saw {seen[0]['metric']} = {seen[0]['value'][1]} "
              f"after {took:.1f} s")


# ---- c. bounded load with wrk -------------------------------------------------------

def test_wrk_load_statuses_and_rss(bin_path, tmp_path):
    need("wrk")
    conns = 16 if ASAN else 64
    seconds = int(os.environ.get("BGEICL_LOAD_SECONDS", "20" if ASAN else "10"))
    bodies = load_bodies(vary=True)
    lua = write_lua(tmp_path / "load.lua", bodies, vary=True)
    with Server(bin_path) as srv:
        sampler = RssSampler(srv.rss_bytes, 0.5)
        t0 = time.monotonic()
        with sampler:
            w = run_wrk(srv.url + "/v1/embeddings", lua, connections=conns, threads=2,
                        seconds=seconds, timeout_s=30 if ASAN else 10)
        wall = time.monotonic() - t0
        st, _, body = http("GET", srv.url + "/health", timeout=30)
        assert st == 200, (st, body)
        rss = sampler.summary(wall)
        lat = w["latency_s"]
        lua_res = w["lua"]
        print(f"wrk: {conns} connections, 2 threads, {seconds} s: {w['requests']} requests, "
              f"{w['requests_per_s']} req/s, "
              f"~{w['requests_per_s'] * sum(len(b['input']) for b in bodies) / len(bodies):.0f}"
              f" texts/s")
        print("latency ms: " + ", ".join(f"{k}={v * 1e3:.1f}" for k, v in lat.items()))
        print(f"statuses: {lua_res and lua_res['statuses']}, socket errors: {w['socket_errors']}")
        print(f"RSS MB: start={rss['start_mb']:.1f} after-warm-up={rss['after_warmup_mb']:.1f} "
              f"end={rss['end_mb']:.1f} max={rss['max_mb']:.1f} "
              f"max-last-half={rss['max_last_half_mb']:.1f} growth={rss['growth_mb']:+.1f} "
              f"({rss['samples']} samples)")
        print(w["raw"])

    assert lua_res is not None, f"no WRKJSON line from the Lua done hook:\n{w['raw']}\n{w['stderr']}"
    assert w["requests"] and w["requests"] > 0, w["raw"]
    se = w["socket_errors"]
    assert se is None or not any(se.values()), f"wrk socket errors {se}\n{w['raw']}"
    # wrk's own error counts: errors.status is the non-2xx/3xx count, checked below.
    sock = {k: v for k, v in lua_res["errors"].items() if k != "status"}
    assert not any(sock.values()), f"wrk errors {lua_res['errors']}"
    statuses = {int(k): v for k, v in lua_res["statuses"].items()}
    assert sum(v for k, v in statuses.items() if 200 <= k < 300) > 0, statuses
    bad = {k: v for k, v in statuses.items() if not 200 <= k < 300 and k != 429}
    assert not bad, f"non-2xx statuses other than 429: {bad}"
    assert w["non_2xx_3xx"] == sum(v for k, v in statuses.items() if k >= 300), (
        w["non_2xx_3xx"], statuses)
    if not ASAN:
        assert rss["growth_mb"] <= 64, (
            f"RSS grew {rss['growth_mb']:.1f} MB after warm-up (limit 64): {rss}")
