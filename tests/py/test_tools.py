"""The client tools `bgeicl bench`, `monitor`, `diagnose` and `health` against
real `bgeicl serve` processes: outputs, report files, exit codes, signals.

These tests also run against the ASan+UBSan binary, whose forward pass is about
20 times slower, so they keep the model work small: the 6-layer MiniLM model,
short texts (a corpus of one-line files) for the full configuration matrix,
small batch sizes for diagnose, and server-side ICL without worked examples
(see `icl_server`)."""
import csv
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import MINILM, model_dir
from serverproc import Server, free_port, http

CONFIGS = {"default", "high_throughput", "low_latency", "no_icl"}
MONITOR_METRICS = ["latency_ms", "throughput_tps", "cache_hit_pct", "cpu_pct", "memory_pct",
                   "batch_size", "queue_depth"]


def clean_env(**extra):
    """The environment without BGE_ICL_* client settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BGE_ICL_")}
    env.update(extra)
    return env


def run(bin_path, *args, env=None, timeout=300, cwd=None):
    return subprocess.run([os.path.abspath(bin_path), *map(str, args)], capture_output=True,
                          timeout=timeout, env=env or clean_env(), cwd=cwd)


def metrics(url):
    st, _, body = http("GET", url + "/metrics?format=json")
    assert st == 200
    return json.loads(body)


def counter(m, family):
    return sum(s["value"] for s in m[family]["series"])


MODEL = model_dir(MINILM)


@pytest.fixture(scope="module")
def server(bin_path):
    with Server(bin_path, model=MODEL, threads=1) as srv:
        yield srv


@pytest.fixture(scope="module")
def icl_server(bin_path):
    """A server for the ICL-heavy bench runs. They run from a folder without
    icl/examples, so the client has no example bank and asks for server-side
    ICL, which --icl-k 0 keeps to the instruction: the ICL path is taken at a
    fraction of the tokens of worked examples."""
    with Server(bin_path, "--icl-k", "0", model=MODEL, threads=1) as srv:
        yield srv


def one_line_corpus(folder, n):
    """n files of one short line each: n short, distinct texts."""
    folder.mkdir()
    for i in range(n):
        (folder / f"f{i:03}.py").write_text(f"total_{i} = compute(items, {i})\n")
    return folder


@pytest.fixture(scope="module")
def dead_url():
    return f"http://127.0.0.1:{free_port()}"


# ---- usage -------------------------------------------------------------------------

def test_help(bin_path):
    for cmd in ("bench", "monitor", "diagnose", "health"):
        r = run(bin_path, cmd, "--help")
        assert r.returncode == 0, cmd
        assert b"usage: bgeicl " + cmd.encode() in r.stdout
    r = run(bin_path, "--help")
    for cmd in (b"bench", b"monitor", b"diagnose", b"health"):
        assert cmd in r.stdout


U = "http://127.0.0.1:9"


@pytest.mark.parametrize("args,needle", [
    (["bench", "--server", U, "--config", "fastest"], b"--config"),
    (["bench", "--server", U, "--batch-sizes", "1,x"], b"--batch-sizes"),
    (["bench", "--server", U, "--batch-sizes", "0"], b"--batch-sizes"),
    (["bench", "--server", U, "--runs", "0"], b"--runs"),
    (["bench", "--server", U, "--languages", "cobol"], b"--languages"),
    (["bench", "--server", U, "--corpus", "/nonexistent/folder"], b"--corpus"),
    (["bench"], b"--server"),
    (["bench", "--server"], b"--server"),
    (["bench", "--server", U, "--bogus"], b"unknown option"),
    (["monitor"], b"--server"),
    (["monitor", "--server", U, "--interval", "0"], b"--interval"),
    (["monitor", "--server", U, "--duration", "soon"], b"--duration"),
    (["monitor", "--server", U + "," + U], b"--server"),
    (["diagnose", "--server", U, "--check", "speed"], b"--check"),
    (["diagnose", "--server", U, "--batch-sizes", "8,1"], b"--batch-sizes"),
    (["diagnose"], b"--server"),
    (["health"], b"--server"),
    (["health", "--server", U, "--interval", "abc"], b"--interval"),
    (["health", "--server", "ftp://nowhere"], b"--server"),
])
def test_usage_errors_exit_2_naming_the_flag(bin_path, args, needle):
    r = run(bin_path, *args)
    assert r.returncode == 2, (args, r.stderr)
    assert needle in r.stderr, r.stderr


def test_bad_environment_is_a_usage_error(bin_path):
    r = run(bin_path, "health", "--server", U, env=clean_env(BGE_ICL_TIMEOUT="never"))
    assert r.returncode == 2
    assert b"BGE_ICL_TIMEOUT" in r.stderr


# ---- health ------------------------------------------------------------------------

def test_health_good_and_bad(bin_path, server, dead_url):
    r = run(bin_path, "health", "--server", f"{server.url}@3,{dead_url}")
    assert r.returncode == 1, r.stderr
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 2
    good, bad = lines
    assert good.startswith(server.url) and " healthy " in good
    assert f"model={MINILM}" in good and "weight=3" in good
    assert float(good.split("latency_ms=")[1].split()[0]) > 0
    assert bad.startswith(dead_url) and " unreachable " in bad and "weight=1" in bad


def test_health_all_good_exits_0_and_reads_the_environment(bin_path, server):
    r = run(bin_path, "health", env=clean_env(BGE_ICL_BASE_URL=server.url))
    assert r.returncode == 0, r.stderr
    assert " healthy " in r.stdout.decode()


def test_health_watch_stops_on_sigint(bin_path, server, dead_url):
    p = subprocess.Popen([bin_path, "health", "--server", f"{server.url},{dead_url}", "--watch",
                          "--interval", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=clean_env())
    time.sleep(2.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 1, err  # the dead server is unhealthy in every round
    lines = out.decode().splitlines()
    rounds = len([l for l in lines if server.url in l])
    assert rounds >= 2 and len(lines) == 2 * rounds
    assert all(l[:4].isdigit() and "T" in l.split()[0] for l in lines)  # time first


def test_health_watch_all_good_exits_0(bin_path, server):
    p = subprocess.Popen([bin_path, "health", "--server", server.url, "--watch", "--interval",
                          "0.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    time.sleep(1.3)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert len(out.decode().splitlines()) >= 2


# ---- bench -------------------------------------------------------------------------

def test_bench_all_configs(bin_path, icl_server, tmp_path):
    server = icl_server
    before = metrics(server.url)
    out, csv_path = tmp_path / "x.json", tmp_path / "x.csv"
    corpus = one_line_corpus(tmp_path / "corpus", 100)
    r = run(bin_path, "bench", "--server", server.url, "--config", "all", "--batch-sizes", "1,5",
            "--runs", "2", "--warmup", "1", "--adaptive-texts", "4", "--output", out,
            "--csv", csv_path, "--corpus", corpus, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert b"\r" not in r.stderr  # no progress bar when stderr is not a terminal
    res = json.loads(out.read_text())
    fixed = [x for x in res["results"] if x["mode"] == "fixed"]
    assert {(x["config"], x["batch_size"]) for x in fixed} == {(c, b) for c in CONFIGS
                                                               for b in (1, 5)}
    for x in fixed:
        for k in ("avg_ms", "min_ms", "max_ms", "p95_ms", "throughput_tps", "tokens"):
            assert x[k] > 0, (x, k)
        assert x["stddev_ms"] >= 0 and len(x["latencies_ms"]) == 2
        assert x["min_ms"] <= x["avg_ms"] <= x["max_ms"]
        assert x["texts"] == 2 * x["batch_size"] and x["icl"] == (x["config"] != "no_icl")
    adaptive = [x for x in res["results"] if x["mode"] == "adaptive"]
    assert {x["config"] for x in adaptive} == CONFIGS
    assert all(x["texts"] == 4 and x["throughput_tps"] > 0 and x["requests"] >= 1
               for x in adaptive)
    s = res["summary"]
    for k in ("best_throughput", "best_latency", "recommended"):
        assert s[k]["config"] in CONFIGS and s[k]["batch_size"] in (1, 5)
    assert s["recommended"]["reason"]
    env = res["environment"]
    assert env["model"] == MINILM and env["dtype"] == "fp32" and env["texts"] == "corpus"
    assert env["servers"][0]["url"] == server.url and env["client_version"] and env["date"]
    rows = list(csv.DictReader(csv_path.open()))
    assert len([x for x in rows if x["mode"] == "fixed"]) == 8 and len(rows) == 12
    assert all(float(x["throughput_tps"]) > 0 for x in rows)
    # The table and the summary are on stdout.
    text = r.stdout.decode()
    assert "recommended:" in text and "best throughput:" in text
    # No text was embedded twice: the embedding cache never answered.
    after = metrics(server.url)
    hits = "bge_icl_embedding_cache_hits_total"
    assert counter(after, hits) == counter(before, hits)
    # ICL was applied: the server built contexts for the ICL configurations.
    prep = after["bge_icl_context_preparation_seconds"]["series"]
    assert sum(x["count"] for x in prep) >= 3 * (1 + 5) * 3


def test_bench_generated_texts(bin_path, icl_server, tmp_path):
    before = metrics(icl_server.url)
    out = tmp_path / "g.json"
    r = run(bin_path, "bench", "--server", icl_server.url, "--config", "low_latency",
            "--batch-sizes", "2", "--runs", "2", "--warmup", "0", "--adaptive-texts", "0",
            "--languages", "go,sql", "--output", out, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["settings"]["languages"] == ["go", "sql"] and res["environment"]["texts"] == "generated"
    assert [(x["config"], x["batch_size"], x["texts"]) for x in res["results"]] == [
        ("low_latency", 2, 4)]
    after = metrics(icl_server.url)
    hits = "bge_icl_embedding_cache_hits_total"
    assert counter(after, hits) == counter(before, hits)
    # Calls take turns by language, and the server labels them so.
    langs = {s["labels"]["language"] for s in after["bge_icl_embeddings_generated_total"]["series"]}
    assert {"go", "sql"} <= langs


def test_bench_corpus(bin_path, server, tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "pkg" / "sub").mkdir(parents=True)
    (corpus / ".git").mkdir()
    (corpus / "a.py").write_text("".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(15)))
    (corpus / "pkg" / "b.go").write_text("package b\n\nfunc B() int { return 1 }\n")
    (corpus / "pkg" / "sub" / "c.txt").write_text("def f0(x):\n    return x + 0\n" * 2)
    (corpus / "blob.bin").write_bytes(b"\x00\x01\x02binary")
    (corpus / "latin1.txt").write_bytes(b"caf\xe9\n")
    (corpus / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    before = metrics(server.url)
    out = tmp_path / "c.json"
    # 4 usable chunks (a.py: 30 lines, 2 chunks; b.go and c.txt: 1 each) for 9
    # texts (warm-up and 2 runs of 3): the passes after the first must still be new.
    r = run(bin_path, "bench", "--server", server.url, "--config", "no_icl", "--batch-sizes", "3",
            "--runs", "2", "--warmup", "1", "--adaptive-texts", "0", "--corpus", corpus,
            "--output", out)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["settings"]["corpus"] == str(corpus) and res["environment"]["texts"] == "corpus"
    assert len(res["results"]) == 1 and res["results"][0]["texts"] == 6
    after = metrics(server.url)
    hits = "bge_icl_embedding_cache_hits_total"
    assert counter(after, hits) == counter(before, hits)


def test_bench_empty_corpus_is_a_usage_error(bin_path, tmp_path):
    (tmp_path / "only.bin").write_bytes(b"\x00" * 10)
    r = run(bin_path, "bench", "--server", U, "--corpus", tmp_path)
    assert r.returncode == 2 and b"--corpus" in r.stderr


def test_bench_unreachable_server_exits_1(bin_path, dead_url):
    r = run(bin_path, "bench", "--server", dead_url, "--config", "no_icl", "--batch-sizes", "1",
            "--runs", "1", "--warmup", "0", "--adaptive-texts", "0",
            env=clean_env(BGE_ICL_TIMEOUT="5"))
    assert r.returncode == 1
    assert b"no healthy server" in r.stderr


def test_bench_api_key(bin_path, tmp_path):
    with Server(bin_path, "--api-key", "sesame", threads=1) as srv:
        args = ["bench", "--server", srv.url, "--config", "no_icl", "--batch-sizes", "1",
                "--runs", "1", "--warmup", "0", "--adaptive-texts", "0"]
        r = run(bin_path, *args)
        assert r.returncode == 1 and (b"401" in r.stderr or b"key" in r.stderr.lower())
        r = run(bin_path, *args, "--api-key", "sesame")
        assert r.returncode == 0, r.stderr
        r = run(bin_path, *args, env=clean_env(BGE_ICL_API_KEY="sesame"))
        assert r.returncode == 0, r.stderr


# ---- monitor -----------------------------------------------------------------------

def parse_line(line):
    parts = line.split("  ALERT")[0].split()
    return parts[0], dict(p.split("=", 1) for p in parts[1:])


def test_monitor_report_and_alerts(bin_path, tmp_path):
    with Server(bin_path, threads=1) as srv:
        report = tmp_path / "r.json"
        r = run(bin_path, "monitor", "--server", srv.url, "--duration", "10", "--interval", "1",
                "--report", report, "--latency-alert-ms", "0.001")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.decode().splitlines()
        assert 9 <= len(lines) <= 11
        for line in lines:
            ts, fields = parse_line(line)
            assert ts.endswith("Z") and "T" in ts
            assert list(fields) == MONITOR_METRICS
            assert float(fields["latency_ms"]) > 0 and float(fields["memory_pct"]) > 0
            assert "ALERT latency_ms" in line
            # No ICL traffic: a 0% context-cache hit rate raises nothing.
            assert "cache_hit_pct" not in line.split("ALERT", 1)[1]
        rep = json.loads(report.read_text())
        assert rep["snapshots"] == len(lines)
        for m in MONITOR_METRICS:
            for k in ("avg", "min", "max", "p95"):
                assert k in rep["metrics"][m], (m, k)
        assert rep["metrics"]["latency_ms"]["p95"] >= rep["metrics"]["latency_ms"]["min"] > 0
        assert rep["alert_count"] == len(rep["alerts"]) >= len(lines)
        assert {a["metric"] for a in rep["alerts"]} == {"latency_ms"}
        assert rep["thresholds"]["latency_ms"] == 0.001 and rep["thresholds"]["cpu_pct"] == 90
        assert rep["start"] <= rep["end"]
        assert r.stderr.count(b"ALERT") == rep["alert_count"]


def test_monitor_sees_throughput_and_stops_on_sigint(bin_path, server, tmp_path):
    report = tmp_path / "r.json"
    p = subprocess.Popen([bin_path, "monitor", "--server", server.url, "--interval", "0.5",
                          "--report", str(report)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=clean_env())
    texts = [f"load traffic {i} {time.time()}" for i in range(3)]
    time.sleep(0.7)
    st, _, _ = http("POST", server.url + "/v1/embeddings", {"input": texts})
    assert st == 200
    time.sleep(2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    lines = out.decode().splitlines()
    assert len(lines) >= 2
    assert max(float(parse_line(l)[1]["throughput_tps"]) for l in lines) > 0
    rep = json.loads(report.read_text())
    assert rep["snapshots"] == len(lines) and rep["alert_count"] == len(rep["alerts"])
    # A one-thread server embedding the burst may well pass 90% CPU; nothing else fires.
    assert {a["metric"] for a in rep["alerts"]} <= {"cpu_pct"}
    assert rep["metrics"]["throughput_tps"]["max"] > 0


# ---- diagnose ----------------------------------------------------------------------

def test_diagnose_all(bin_path, icl_server, tmp_path):
    out = tmp_path / "d.json"
    r = run(bin_path, "diagnose", "--server", icl_server.url, "--check", "all", "--json", out,
            "--batch-sizes", "1,4", "--concurrency", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    text = r.stdout.decode()
    sections = ["health", "latency", "throughput", "memory", "cache"]
    for s in sections:
        assert f"== {s}" in text
    assert text.count("   -> ") == 5 and "overall:" in text
    res = json.loads(out.read_text())
    assert res["status"] in ("OK", "WARN")
    for s in sections:
        sec = res["sections"][s]
        assert sec["status"] in ("OK", "WARN", "FAIL") and sec["findings"], s
        for f in sec["findings"]:
            assert f["status"] in ("OK", "WARN", "FAIL") and f["message"]
            assert f["status"] == "OK" or f["remedy"]
    data = {s: res["sections"][s]["data"] for s in sections}
    assert data["health"]["info"]["model"] == MINILM
    assert [b["batch_size"] for b in data["latency"]["batches"]] == [1, 4]
    assert all(b["latency_ms"] > 0 and b["per_text_ms"] > 0 for b in data["latency"]["batches"])
    assert data["throughput"]["speedup"] > 0 and data["throughput"]["providers"] == 2
    assert len(data["memory"]["rounds"]) == 5 and min(data["memory"]["rounds"]) > 0
    assert data["cache"]["embedding_cache_hits_delta"] >= 1
    # Without an example bank in the working folder the server kept the contexts.
    assert data["cache"]["context_cache_hits_delta"] + data["cache"]["context_cache_misses_delta"] > 0
    assert res["sections"]["health"]["status"] == "OK"


def test_diagnose_one_check_and_a_dead_server(bin_path, server, icl_server, dead_url, tmp_path):
    r = run(bin_path, "diagnose", "--server", icl_server.url, "--check", "cache", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    assert "== cache" in text and "== latency" not in text and "== health" in text
    r = run(bin_path, "diagnose", "--server", server.url, "--check", "latency", "--batch-sizes",
            "1,2")
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    assert "== latency" in text and "== memory" not in text and "== cache" not in text
    out = tmp_path / "dead.json"
    r = run(bin_path, "diagnose", "--server", dead_url, "--json", out)
    assert r.returncode == 1
    res = json.loads(out.read_text())
    assert res["status"] == "FAIL" and res["sections"]["health"]["status"] == "FAIL"
    assert "skipped" in r.stdout.decode()
