#!/usr/bin/env python3
"""Deterministic tokenizer test corpus built from source code on this machine.

No third-party text is stored in the repository: only the rule below is. The
corpus is rebuilt from whatever toolchains the machine has, so it is
deterministic for a given machine.

Rule, for each language (root, file pattern):
  1. list every matching file under the root, sorted by path;
  2. take every k-th file, k = max(1, n_files // FILES_PER_LANG);
  3. read it as UTF-8 (files that are not valid UTF-8 are skipped);
  4. from each file take every LINE_STRIDE-th non-blank line, at most
     LINES_PER_FILE of them, dropping lines seen before (any language);
  5. stop at LINES_PER_LANG lines for the language.
The first LONG_PER_LANG files taken also go in whole, as long texts (most
are far over 512 tokens, which exercises truncation).

Languages: Python (stdlib), Go (GOROOT/src), C (/usr/include headers),
JavaScript (npm's sources), Java (the JDK's lib/src.zip), shell scripts and
Perl modules (/usr/share). A language whose root is missing is skipped.

Then tests/data/prose.txt: one text per line ("#:" lines are comments,
"\\u{XXXX}" is the code point U+XXXX), plus the whole file as one text.

Usage: tok_corpus.py [--jsonl FILE]   prints counts per language
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

FILES_PER_LANG = 600
LINE_STRIDE = 3
LINES_PER_FILE = 25
LINES_PER_LANG = 4500
LONG_PER_LANG = 4

ROOT = Path(__file__).resolve().parents[2]
PROSE = ROOT / "tests" / "data" / "prose.txt"


def _walk(root, suffixes, skip_dirs=()):
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs)
        for f in filenames:
            if f.endswith(suffixes):
                p = os.path.join(dirpath, f)
                if os.path.isfile(p) and not os.path.islink(p):
                    out.append(p)
    return sorted(out)


def _go_root():
    go = shutil.which("go") or "/usr/local/go/bin/go"
    try:
        r = subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True, timeout=30)
        if r.returncode == 0 and r.stdout.strip():
            return Path(r.stdout.strip()) / "src"
    except (OSError, subprocess.SubprocessError):
        pass
    return Path("/usr/local/go/src")


def _jdk_src_zip():
    java = shutil.which("java")
    cands = []
    if java:
        home = Path(os.path.realpath(java)).parent.parent
        cands += [home / "lib" / "src.zip", home / "src.zip"]
    cands += sorted(Path("/usr/lib/jvm").glob("*/lib/src.zip"))
    for c in cands:
        if c.is_file():
            return c
    return None


class _FileSource:
    """Files on disk: (name, text) pairs in sorted order."""

    def __init__(self, root, suffixes, skip_dirs=()):
        self.root, self.suffixes, self.skip_dirs = Path(root), suffixes, skip_dirs

    def names(self):
        if not self.root.is_dir():
            return []
        return _walk(self.root, self.suffixes, self.skip_dirs)

    def read(self, name):
        with open(name, "rb") as f:
            return f.read()


class _ZipSource:
    """Members of a zip archive (the JDK's src.zip)."""

    def __init__(self, path, suffix):
        self.path, self.suffix = path, suffix
        self.zf = zipfile.ZipFile(path) if path else None

    def names(self):
        if not self.zf:
            return []
        return sorted(n for n in self.zf.namelist() if n.endswith(self.suffix))

    def read(self, name):
        return self.zf.read(name)


def sources():
    """(language, source) in a fixed order."""
    stdlib = sysconfig.get_paths()["stdlib"]
    return [
        ("python", _FileSource(stdlib, (".py",), ("site-packages", "__pycache__"))),
        ("go", _FileSource(_go_root(), (".go",))),
        ("c", _FileSource("/usr/include", (".h",))),
        ("javascript", _FileSource("/usr/lib/node_modules/npm", (".js",))),
        ("java", _ZipSource(_jdk_src_zip(), ".java")),
        ("shell", _FileSource("/usr/share", (".sh",))),
        ("perl", _FileSource("/usr/share", (".pm",))),
    ]


def _take_lines(text, seen):
    lines = [l for l in text.split("\n") if l.strip()]
    out = []
    for line in lines[::LINE_STRIDE]:
        if line not in seen:
            seen.add(line)
            out.append(line)
            if len(out) == LINES_PER_FILE:
                break
    return out


def language_texts(src, seen):
    """Returns (lines, long_texts) of one language by the rule above."""
    names = src.names()
    if not names:
        return [], []
    k = max(1, len(names) // FILES_PER_LANG)
    lines, longs = [], []
    for name in names[::k]:
        try:
            text = src.read(name).decode("utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if len(longs) < LONG_PER_LANG and text.strip():
            longs.append(text)
        lines.extend(_take_lines(text, seen)[: LINES_PER_LANG - len(lines)])
        if len(lines) >= LINES_PER_LANG:
            break
    return lines, longs


_ESC = re.compile(r"\\u\{([0-9A-Fa-f]{1,6})\}")


def prose_texts(path=PROSE):
    """The lines of prose.txt with \\u{XXXX} escapes decoded, then the whole file."""
    raw = path.read_text(encoding="utf-8")
    lines = raw.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    texts = [_ESC.sub(lambda m: chr(int(m.group(1), 16)), l) for l in lines
             if not l.startswith("#:")]
    return texts + ["\n".join(texts)]


def corpus():
    """List of (language, text): source lines, long texts, then prose."""
    seen = set()
    out = []
    for lang, src in sources():
        lines, longs = language_texts(src, seen)
        out += [(lang, l) for l in lines]
        out += [(lang + "-long", t) for t in longs]
    out += [("prose", t) for t in prose_texts()]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jsonl", help="also write the texts as JSON Lines to this file")
    args = ap.parse_args()
    items = corpus()
    counts = {}
    for lang, _ in items:
        counts[lang] = counts.get(lang, 0) + 1
    for lang, n in counts.items():
        print(f"{lang:16} {n}")
    print(f"{'total':16} {len(items)}")
    if args.jsonl:
        with open(args.jsonl, "w", encoding="utf-8") as f:
            for _, t in items:
                f.write(json.dumps(t, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
