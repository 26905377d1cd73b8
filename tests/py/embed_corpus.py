"""Deterministic texts for embedding parity and benchmarks.

Texts are cut from source code that is already on the machine (the Python
standard library, plus Go and C sources where present) by a fixed rule, so
the corpus is reproducible without committing anyone else's source text:
files are listed in sorted order, every k-th file is taken, and each file
gives chunks of a fixed number of lines starting at line 0.
"""
import os
import sysconfig
from pathlib import Path


def python_stdlib() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _files(root: Path, suffix: str, exclude=("test", "tests", "idlelib", "site-packages")):
    if not root.is_dir():
        return []
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in exclude and not d.startswith("."))
        for f in sorted(filenames):
            if f.endswith(suffix):
                out.append(Path(dirpath) / f)
    return out


def _read(path: Path):
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def chunks_from(files, lines_per_chunk, per_file, stride, limit):
    """Every `stride`-th file; up to `per_file` chunks of `lines_per_chunk` lines each."""
    out = []
    for path in files[::stride]:
        text = _read(path)
        if not text:
            continue
        lines = text.splitlines()
        for c in range(per_file):
            part = lines[c * lines_per_chunk:(c + 1) * lines_per_chunk]
            chunk = "\n".join(part).strip()
            if len(chunk) >= 20:
                out.append(chunk)
            if len(out) >= limit:
                return out
    return out


def python_code_chunks(limit=1000, lines_per_chunk=20, per_file=3, stride=2):
    """Code chunks from the Python standard library: the benchmark corpus."""
    return chunks_from(_files(python_stdlib(), ".py"), lines_per_chunk, per_file, stride, limit)


def parity_texts():
    """At least 1,000 distinct texts: code in several languages, short
    snippets, and long chunks that run past 512 tokens (truncation)."""
    go_root = Path(os.environ.get("GOROOT", "/usr/local/go")) / "src"
    texts = []
    # Mostly short chunks: the reference runs on a plain CPU build of torch,
    # so total tokens, not the number of texts, sets the test's duration.
    texts += python_code_chunks(limit=600, lines_per_chunk=4, per_file=2, stride=2)
    texts += chunks_from(_files(go_root, ".go"), 5, 1, 15, 260)
    texts += chunks_from(_files(Path("/usr/include"), ".h"), 5, 1, 3, 150)
    # Long chunks: 200 lines is well past 512 tokens for any code.
    texts += python_code_chunks(limit=30, lines_per_chunk=200, per_file=1, stride=7)
    # Short texts: first line of chunks, like queries.
    texts += [t.splitlines()[0] for t in python_code_chunks(limit=400, lines_per_chunk=8,
                                                            per_file=1, stride=5)]
    prose = Path(__file__).resolve().parent.parent / "data" / "prose.txt"
    if prose.exists():
        texts += [l for l in prose.read_text(encoding="utf-8").splitlines() if l.strip()]
    seen, out = set(), []
    for t in texts:
        if t.strip() and t not in seen:
            seen.add(t)
            out.append(t)
    return out
