"""The client library through `bgeicl embed --server`, against real `bgeicl
serve` replicas on loopback ports: failover when a replica is killed,
retries through a draining server, the adaptive batch size reacting to a
stalled server, the API key, and client-side ICL against the server's own.

Replicas run all-MiniLM-L6-v2 with one thread (the tests exercise the
client, and that model is the fastest of the two); the ICL tests use
bge-small-en-v1.5.
"""
import json
import os
import signal
import subprocess
import threading
import time

import numpy as np
import pytest

from conftest import BGE, MINILM, model_dir
from serverproc import Server, http

SAN = os.environ.get("BGEICL_BIN", "").endswith("san/bgeicl")
T = 900 if SAN else 300  # a whole client run, seconds
MINI = model_dir(MINILM)
STATS_KEYS = {"total_requests", "total_texts", "total_time", "avg_texts_per_second",
              "avg_response_time", "cache_hit_rate", "current_batch_size",
              "adaptive_batching_enabled", "recent_batch_sizes", "retries", "failovers",
              "errors", "servers"}


def replica(bin_path, *args, **kw):
    kw.setdefault("model", MINI)
    kw.setdefault("threads", 1)
    kw.setdefault("ready_timeout", T)
    return Server(bin_path, *args, **kw)


def jsonl(texts):
    return "".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(texts)).encode()


def parse_output(out, n):
    """The vectors of `embed` output, checking one line per input, in order."""
    lines = out.decode().splitlines()
    assert len(lines) == n, f"{len(lines)} lines for {n} inputs"
    rows = []
    for i, line in enumerate(lines):
        d = json.loads(line)
        assert d["index"] == i and d["id"] == i, line[:80]
        rows.append(d["embedding"])
    return np.array(rows, dtype=np.float64)


def embed(bin_path, servers, texts, *flags, env=None, cwd=None, stats=None):
    """Runs `bgeicl embed --server`; returns (returncode, stdout, stderr, stats dict)."""
    args = [os.path.abspath(bin_path), "embed", "--server", ",".join(servers), *flags]
    if stats:
        args += ["--stats", str(stats)]
    r = subprocess.run(args + ["-"], input=jsonl(texts), capture_output=True, timeout=T,
                       env=dict(os.environ, **(env or {})), cwd=cwd)
    st = json.loads(stats.read_text()) if stats and stats.exists() else None
    return r.returncode, r.stdout, r.stderr.decode(errors="replace"), st


def embed_ok(bin_path, servers, texts, *flags, **kw):
    rc, out, err, st = embed(bin_path, servers, texts, *flags, **kw)
    assert rc == 0, err[-3000:]
    return parse_output(out, len(texts)), err, st


def assert_same(got, want, what):
    assert got.shape == want.shape, (what, got.shape, want.shape)
    diff = float(np.abs(got - want).max())
    assert diff <= 1e-5, f"{what}: max abs diff {diff}"


def short_texts(n, tag):
    return [f"{tag}{i} v{i * 7 % 13}" for i in range(n)]


def count_requests(srv):
    return srv.log().count("path=/v1/embeddings")


class Run:
    """`bgeicl embed --server` in the background, its stderr lines timestamped."""

    def __init__(self, bin_path, servers, texts, *flags, env=None, stats=None):
        args = [bin_path, "embed", "--server", ",".join(servers), *flags]
        if stats:
            args += ["--stats", str(stats)]
        self.proc = subprocess.Popen(args + ["-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=dict(os.environ, **(env or {})))
        self.err_lines = []  # (monotonic time, line)
        self.out = []
        self._threads = [threading.Thread(target=self._read_out),
                         threading.Thread(target=self._read_err),
                         threading.Thread(target=self._write, args=(jsonl(texts),))]
        for t in self._threads:
            t.start()

    def _write(self, data):
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.close()
        except BrokenPipeError:
            pass

    def _read_out(self):
        self.out.append(self.proc.stdout.read())

    def _read_err(self):
        for line in self.proc.stderr:
            self.err_lines.append((time.monotonic(), line.decode(errors="replace")))

    def wait(self):
        rc = self.proc.wait(T)
        for t in self._threads:
            t.join(T)
        return rc, self.out[0], "".join(l for _, l in self.err_lines)


def wait_until(cond, what, timeout=T):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# ---------------------------------------------------------------- 1. failover


def test_sigkill_a_replica_mid_run_every_vector_once_in_order(bin_path, tmp_path):
    n = 400 if SAN else 5000
    texts = short_texts(n, "k")
    with replica(bin_path) as a, replica(bin_path) as b, replica(bin_path, expect_rc=None) as c:
        ref, _, _ = embed_ok(bin_path, [a.url], texts, "--no-adaptive", "--batch-size", "64")
        stats = tmp_path / "stats.json"
        run = Run(bin_path, [a.url, b.url, c.url], texts, "--batch-size", "20", stats=stats)
        wait_until(lambda: count_requests(c) >= 2 or run.proc.poll() is not None,
                   "replica c to answer twice")
        c.proc.send_signal(signal.SIGKILL)
        rc, out, err = run.wait()
        assert rc == 0, err[-3000:]
        assert_same(parse_output(out, n), ref, "3 replicas, one killed, vs one server")
        st = json.loads(stats.read_text())
        assert set(st) == STATS_KEYS
        assert st["failovers"] > 0 and st["retries"] >= st["failovers"], st
        assert st["total_texts"] == n, st
        killed = st["servers"][2]
        assert killed["url"] == c.url and killed["errors"] >= 1, st
        assert not killed["healthy"] and killed["status"] == "unreachable", st
        assert killed["effective_weight"] == pytest.approx(killed["weight"] / 1000), st
        assert all(s["healthy"] for s in st["servers"][:2]), st


def test_weights_share_the_batches(bin_path, tmp_path):
    texts = short_texts(60 if SAN else 200, "w")
    with replica(bin_path) as a, replica(bin_path) as b:
        _, _, st = embed_ok(bin_path, [a.url + "@3", b.url], texts, "--no-adaptive",
                            "--batch-size", "5", "--concurrency", "2", stats=tmp_path / "s.json")
        ra, rb = (s["requests"] for s in st["servers"])
        assert ra + rb == len(texts) // 5 and ra == 3 * rb, st


# ---------------------------------------------------------------- 2. retries and drain


def hold_busy(srv, texts):
    """A slow request that keeps `srv` draining after SIGTERM, in a thread."""
    result = {}

    def go():
        try:
            result["r"] = http("POST", srv.url + "/v1/embeddings", {"input": texts}, timeout=T)
        except OSError as e:
            result["r"] = e

    def admitted():
        st, _, raw = http("GET", srv.url + "/metrics?format=json", timeout=10)
        return st == 200 and json.loads(raw)["queue_depth"] >= 1

    t = threading.Thread(target=go)
    t.start()
    wait_until(admitted, "the slow request to be admitted", timeout=60)
    return t, result


def sigterm_and_wait_draining(srv):
    srv.proc.send_signal(signal.SIGTERM)

    def draining():
        st, _, body = http("GET", srv.url + "/health", timeout=10)
        return st == 503 and b"draining" in body

    wait_until(draining, "/health to say draining", timeout=30)


def test_draining_replica_503_fails_over(bin_path, tmp_path):
    texts = short_texts(40 if SAN else 200, "d")
    delay = "6000" if SAN else "4000"
    with replica(bin_path) as a, \
            replica(bin_path, "--debug-batch-delay-ms", delay, expect_rc=None) as b:
        ref, _, _ = embed_ok(bin_path, [a.url], texts)
        t, res = hold_busy(b, ["slow"])
        sigterm_and_wait_draining(b)
        got, err, st = embed_ok(bin_path, [b.url, a.url], texts, "--batch-size", "10",
                                stats=tmp_path / "s.json")
        assert_same(got, ref, "one replica draining")
        assert "answered 503" in err and "shutting down" in err, err[-2000:]
        assert st["failovers"] >= 1, st
        drained = st["servers"][0]
        assert drained["errors"] >= 1 and drained["status"] == "draining", st
        t.join(T)
        assert b.proc.wait(T) == 0
        assert res["r"][0] == 200


def test_single_draining_server_restarted_retries_then_succeeds(bin_path, tmp_path):
    texts = short_texts(20, "r")
    with replica(bin_path) as ref_srv:
        ref, _, _ = embed_ok(bin_path, [ref_srv.url], texts)
    s = replica(bin_path, "--debug-batch-delay-ms", "2000", expect_rc=None).start()
    t, _ = hold_busy(s, ["slow"])
    sigterm_and_wait_draining(s)
    run = Run(bin_path, [s.url], texts, "--retries", "8", "--retry-delay", "0.5",
              stats=tmp_path / "s.json")
    assert s.proc.wait(T) == 0  # drained, exited
    t.join(T)
    with replica(bin_path, port=s.port):  # the restart, on the same port
        rc, out, err = run.wait()
    assert rc == 0, err[-3000:]
    assert_same(parse_output(out, len(texts)), ref, "after a restart")
    assert "answered 503" in err or "Couldn't connect" in err, err[-2000:]
    st = json.loads((tmp_path / "s.json").read_text())
    assert st["retries"] >= 1 and st["failovers"] == 0, st


def test_single_draining_server_gives_up_after_max_retries(bin_path):
    with replica(bin_path, "--debug-batch-delay-ms", "6000", expect_rc=None) as s:
        t, _ = hold_busy(s, ["slow"])
        sigterm_and_wait_draining(s)
        rc, out, err, _ = embed(bin_path, [s.url], ["one", "two"], "--retries", "2",
                                "--retry-delay", "0.1")
        assert rc == 1, err
        assert "gave up after 3 attempts" in err and "answered 503" in err, err
        assert out == b""
        t.join(T)


def test_unreachable_server_exits_1_quickly(bin_path):
    with replica(bin_path) as s:
        port = s.port
    t0 = time.monotonic()
    rc, _, err, _ = embed(bin_path, [f"http://127.0.0.1:{port}"], ["x"], "--retries", "2",
                          "--retry-delay", "0.05")
    assert rc == 1 and time.monotonic() - t0 < 30
    assert f"127.0.0.1:{port}" in err and "gave up after 3 attempts" in err, err


# ---------------------------------------------------------------- 3. adaptive batching


def size_changes(err_lines):
    """(time, from, to) of every batch-size change the client logged."""
    out = []
    for t, line in err_lines:
        if "msg=batch_size " in line:
            kv = dict(p.split("=", 1) for p in line.split() if "=" in p)
            out.append((t, int(kv["from"]), int(kv["to"])))
    return out


def batch_ms(err_lines):
    return [float(dict(p.split("=", 1) for p in line.split() if "=" in p)["ms"])
            for _, line in err_lines if "msg=batch " in line]


def test_adaptive_batch_shrinks_on_stall_and_grows_back(bin_path, tmp_path):
    """The server is stopped (SIGSTOP) for many times a batch's duration in
    the middle of a run: the batch in flight then takes far longer per text,
    the controller shrinks the size, and grows it back once batches are
    fast again. Only the reaction is asserted, never a speed."""
    n, size = (400, 8) if SAN else (3000, 20)
    texts = short_texts(n, "a")
    with replica(bin_path) as s:
        stats = tmp_path / "s.json"
        run = Run(bin_path, [s.url], texts, "--concurrency", "1", "--batch-size", str(size),
                  "--min-batch-size", str(size // 5), "--max-batch-size", str(size * 2),
                  env={"BGE_ICL_LOG_LEVEL": "debug"}, stats=stats)
        wait_until(lambda: len(batch_ms(run.err_lines)) >= 12 or run.proc.poll() is not None,
                   "12 batches")
        stall = max(1.5, 10 * float(np.median(batch_ms(run.err_lines))) / 1000)
        t_stop = time.monotonic()
        os.kill(s.proc.pid, signal.SIGSTOP)
        time.sleep(stall)
        os.kill(s.proc.pid, signal.SIGCONT)
        rc, out, err = run.wait()
        assert rc == 0, err[-3000:]
        parse_output(out, n)
        changes = size_changes(run.err_lines)
        shrinks = [c for c in changes if c[0] >= t_stop and c[2] < c[1]]
        assert shrinks, f"no shrink after a {stall:.1f} s stall: {changes}"
        grows = [c for c in changes if c[0] > shrinks[0][0] and c[2] > c[1]]
        assert grows, f"no growth after the shrink: {changes}"
        st = json.loads(stats.read_text())
        assert st["adaptive_batching_enabled"] is True
        assert all(size // 5 <= b <= size * 2 for b in st["recent_batch_sizes"]), st


def test_no_adaptive_keeps_the_size(bin_path, tmp_path):
    texts = short_texts(45, "f")
    with replica(bin_path) as s:
        _, _, st = embed_ok(bin_path, [s.url], texts, "--no-adaptive", "--batch-size", "7",
                            stats=tmp_path / "s.json")
    assert st["adaptive_batching_enabled"] is False and st["current_batch_size"] == 7
    assert sorted(st["recent_batch_sizes"]) == [3] + [7] * 6, st
    assert st["total_requests"] == 7 and st["total_texts"] == 45


# ---------------------------------------------------------------- 4. API key


def test_api_key_right_wrong_missing_and_env(bin_path):
    texts = ["alpha", "beta"]
    with replica(bin_path, "--api-key", "s3cret") as s:
        got, _, _ = embed_ok(bin_path, [s.url], texts, "--api-key", "s3cret")
        got_env, _, _ = embed_ok(bin_path, [s.url], texts, env={"BGE_ICL_API_KEY": "s3cret"})
        assert_same(got_env, got, "key from the environment")
        for flags in (["--api-key", "wrong"], []):
            rc, out, err, _ = embed(bin_path, [s.url], texts, *flags,
                                    env={"BGE_ICL_API_KEY": ""})
            assert rc == 1, err
            assert "API key" in err and "--api-key" in err and "BGE_ICL_API_KEY" in err, err
            assert "401" in err and out == b""


# ---------------------------------------------------------------- parity and surface


def test_same_vectors_as_local_model_documents_and_queries(bin_path):
    texts = ["def add(a, b): return a + b", "int main(void) { return 0; }", "héllo wörld"]
    with replica(bin_path) as s:
        for flags in ([], ["--query"]):
            got, _, _ = embed_ok(bin_path, [s.url], texts, *flags)
            r = subprocess.run([bin_path, "embed", "--model", str(MINI), *flags, "-"],
                               input=jsonl(texts), capture_output=True, timeout=T)
            assert r.returncode == 0, r.stderr
            assert_same(got, parse_output(r.stdout, len(texts)), f"local vs server {flags}")


@pytest.mark.parametrize("args,needle", [
    (["--model", "m", "--server", "http://a", "x"], "exclude each other"),
    (["--model", "m", "--api-key", "k", "x"], "--api-key needs --server"),
    (["--server", "ftp://a", "x"], "not an http"),
    (["--server", "http://a@0", "x"], "must be > 0"),
    (["--server", "http://a", "--batch-size", "0", "x"], "--batch-size"),
    (["--server", "http://a", "--timeout", "never", "x"], "--timeout"),
    (["--server", "http://a", "--threads", "2", "x"], "--threads needs --model"),
    (["--server", "http://a", "--min-batch-size", "50", "--max-batch-size", "5", "x"],
     "min_batch_size"),
])
def test_client_usage_errors_exit_2(bin_path, args, needle):
    r = subprocess.run([bin_path, "embed", *args], capture_output=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr.decode(), r.stderr


def test_bad_environment_exits_2_naming_the_variable(bin_path):
    r = subprocess.run([bin_path, "embed", "--server", "http://a", "x"], capture_output=True,
                       timeout=60, env=dict(os.environ, BGE_ICL_BATCH_SIZE="many"))
    assert r.returncode == 2 and b"BGE_ICL_BATCH_SIZE" in r.stderr, r.stderr


# ---------------------------------------------------------------- 5. client-side ICL


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """Several examples per language, so that the selection matters."""
    d = tmp_path_factory.mktemp("bank")
    ex = {
        "generic": [("sort a list", "sorted(xs)"), ("read a file", "open(p).read()"),
                    ("http get request", "requests.get(url)")],
        "python": [("parse json", "json.loads(s)"), ("read a csv file", "csv.reader(f)"),
                   ("start a thread", "threading.Thread(target=f).start()")],
        "go": [("parse json", "json.Unmarshal(b, &v)"), ("start a goroutine", "go f()")],
    }
    for lang, pairs in ex.items():
        (d / f"{lang}.json").write_text(json.dumps({
            "language": lang,
            "instruction": f"Given a {lang} code search query, retrieve the snippet.",
            "examples": [{"query": q, "response": r} for q, r in pairs]}))
    return d


QUERIES = ["how do I parse json in python", "def load(path): return json.load(open(path))",
           "start a goroutine and wait", "func main() { go worker(ch) }",
           "read csv rows", "sort a list of tuples by the second field",
           "import threading; t = threading.Thread(target=run)"]


def server_icl_reference(srv, queries):
    st, _, raw = http("POST", srv.url + "/v1/embeddings",
                      {"input": queries, "input_type": "query", "enable_icl": True})
    assert st == 200, raw
    return np.array([d["embedding"] for d in json.loads(raw)["data"]], dtype=np.float64)


def test_client_icl_equals_server_icl_and_cache_hits(bin_path, bank, tmp_path):
    with replica(bin_path, "--icl-examples", str(bank), model=model_dir(BGE)) as s:
        ref = server_icl_reference(s, QUERIES)
        got, _, st = embed_ok(bin_path, [s.url], QUERIES, "--query", "--icl",
                              "--icl-examples", str(bank), stats=tmp_path / "s.json")
        assert_same(got, ref, "client-side ICL vs server-side ICL")
        assert st["cache_hit_rate"] == 0, st  # distinct queries
        plain, _, _ = embed_ok(bin_path, [s.url], QUERIES, "--query", "--no-icl")
        assert float(np.abs(plain - ref).max()) > 1e-3  # ICL changed the vectors

        # Without a bank (none next to the working directory) the server's ICL runs.
        got2, _, _ = embed_ok(bin_path, [s.url], QUERIES, "--query", "--icl", cwd=tmp_path)
        assert_same(got2, ref, "server-side ICL asked by the client")

        # Similar queries reuse a context: the client's context cache hits.
        similar = ["parse json in python", "parse the json in python",
                   "parse json file in python", "parse json string in python"]
        _, _, st = embed_ok(bin_path, [s.url], similar, "--query", "--icl",
                            "--icl-examples", str(bank), "--language", "python",
                            stats=tmp_path / "s2.json")
        assert st["cache_hit_rate"] > 0, st
