"""The bgeicl command's surface: outputs, exit codes and error messages."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import BGE, MINILM, model_dir


def run(bin_path, *args, stdin=None):
    return subprocess.run([bin_path, *args], input=stdin, capture_output=True)


def test_help_and_version(bin_path):
    for cmd in ([], ["embed"], ["tokenize"], ["info"]):
        r = run(bin_path, *cmd, "--help")
        assert r.returncode == 0, cmd
        assert b"usage" in r.stdout
    r = run(bin_path, "--version")
    assert r.returncode == 0 and r.stdout.startswith(b"bgeicl ")


@pytest.mark.parametrize("args,needle", [
    ([], b"usage"),
    (["frobnicate"], b"unknown command"),
    (["embed"], b"--model"),
    (["embed", "--model", "x"], b"no input"),
    (["embed", "--model"], b"needs a value"),
    (["embed", "--model", "x", "--format", "xml", "a"], b"jsonl or json"),
    (["embed", "--model", "x", "--threads", "0", "a"], b"--threads"),
    (["embed", "--model", "x", "--bogus", "a"], b"unknown option"),
    (["tokenize", "--model", "x"], b"TEXT"),
    (["info"], b"--model"),
])
def test_usage_errors_exit_2(bin_path, args, needle):
    r = run(bin_path, *args)
    assert r.returncode == 2
    assert needle in r.stderr


def test_missing_model_folder_exits_1_naming_it(bin_path, tmp_path):
    r = run(bin_path, "embed", "--model", str(tmp_path / "nope"), "hello")
    assert r.returncode == 1
    assert b"config.json" in r.stderr


def test_corrupt_safetensors_exits_1(bin_path, tmp_path):
    d = tmp_path / "broken"
    shutil.copytree(model_dir(MINILM), d)
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: len(data) // 2])
    r = run(bin_path, "embed", "--model", str(d), "hello")
    assert r.returncode == 1
    assert b"model.safetensors" in r.stderr


def test_embed_jsonl_ids_and_order(bin_path):
    lines = [json.dumps("first"), json.dumps({"text": "second", "id": "b.py"}), "",
             json.dumps({"text": "third\nwith newline", "id": 7, "path": "x/y.go"})]
    r = run(bin_path, "embed", "--model", str(model_dir(BGE)), "-",
            stdin=("\n".join(lines) + "\n").encode())
    assert r.returncode == 0, r.stderr
    rows = [json.loads(l) for l in r.stdout.decode().splitlines()]
    assert [x["index"] for x in rows] == [0, 1, 2]
    assert "id" not in rows[0] and rows[1]["id"] == "b.py" and rows[2]["id"] == 7
    assert all(len(x["embedding"]) == 384 for x in rows)


def test_embed_json_format_equals_jsonl(bin_path):
    m = str(model_dir(BGE))
    a = run(bin_path, "embed", "--model", m, "--format", "json", "x", "y")
    b = run(bin_path, "embed", "--model", m, "x", "y")
    assert a.returncode == 0 and b.returncode == 0
    assert json.loads(a.stdout) == [json.loads(l) for l in b.stdout.decode().splitlines()]


def test_bad_jsonl_line_is_named(bin_path):
    r = run(bin_path, "embed", "--model", str(model_dir(BGE)), "-",
            stdin=b'"ok"\n{"text": 5}\n')
    assert r.returncode == 1
    assert b"line 2" in r.stderr


def test_invalid_utf8_argument_is_rejected(bin_path):
    r = run(bin_path, "embed", "--model", str(model_dir(BGE)), b"ab\xffcd")
    assert r.returncode == 1
    assert b"UTF-8" in r.stderr
    r = run(bin_path, "tokenize", "--model", str(model_dir(BGE)), b"\xc3")
    assert r.returncode == 1


def test_info_describes_the_model(bin_path):
    r = run(bin_path, "info", "--model", str(model_dir(BGE)))
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["id"] == BGE and info["hf_id"] == "BAAI/bge-small-en-v1.5"
    assert info["dimensions"] == 384 and info["max_input_tokens"] == 512
    assert info["pooling"] == "cls" and info["dtype"] == "fp32"
    assert info["isa"] in ("avx512", "avx2", "scalar")
    r = run(bin_path, "info", "--model", str(model_dir(MINILM)))
    info = json.loads(r.stdout)
    assert info["pooling"] == "mean" and info["max_input_tokens"] == 256


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
def test_every_isa_gives_the_same_vectors(bin_path, isa):
    m = str(model_dir(BGE))
    base = run(bin_path, "embed", "--model", m, "int x = 1;", "some prose")
    env = dict(os.environ, BGEICL_ISA=isa)
    r = subprocess.run([bin_path, "embed", "--model", m, "int x = 1;", "some prose"],
                       capture_output=True, env=env)
    assert r.returncode == 0
    a = [json.loads(l)["embedding"] for l in base.stdout.decode().splitlines()]
    b = [json.loads(l)["embedding"] for l in r.stdout.decode().splitlines()]
    for u, v in zip(a, b):
        assert sum(x * y for x, y in zip(u, v)) > 0.99999


def test_nul_in_jsonl_is_refused_not_truncated(bin_path):
    r = run(bin_path, "tokenize", "--model", str(model_dir(BGE)), "-",
            stdin=b'"fine \\\\u0000 text"\n"cut\\u0000here"\n')
    assert r.returncode == 1
    assert b"line 2" in r.stderr and b"NUL" in r.stderr
    assert len(r.stdout.decode().splitlines()) == 1
