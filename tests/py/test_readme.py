"""The README's examples work as written: the curl command after the
`<!-- readme-curl -->` marker and the openai snippet, run against a real
server (only its address differs from the README's localhost:8080)."""
import json
import re
import subprocess
from pathlib import Path

from serverproc import Server

README = Path(__file__).resolve().parents[2] / "README.md"


def block_after(marker: str, lang: str) -> str:
    text = README.read_text()
    tail = text[text.index(marker):] if marker else text
    m = re.search(r"```" + lang + r"\n(.*?)```", tail, re.S)
    assert m, f"no ```{lang} block after {marker!r}"
    return m.group(1)


def test_readme_curl_and_openai_examples(bin_path):
    curl = block_after("<!-- readme-curl -->", "sh")
    py = block_after("or, with the `openai` Python package", "python")
    assert "http://localhost:8080" in curl and "http://localhost:8080" in py
    with Server(bin_path) as srv:
        r = subprocess.run(["bash", "-c", curl.replace("http://localhost:8080", srv.url)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        body = json.loads(r.stdout)
        assert body["model"] == "bge-small-en-v1.5"
        assert [d["index"] for d in body["data"]] == [0, 1]
        assert all(len(d["embedding"]) == 384 for d in body["data"])
        scope = {}
        exec(py.replace("http://localhost:8080", srv.url), scope)
        assert len(scope["vectors"].data[0].embedding) == 384
