"""Token ids and byte offsets of `bgeicl tokenize` must equal those of the
Hugging Face tokenizers library, for every text, for both test models, for
both ways of loading a tokenizer (tokenizer.json, and vocab.txt +
tokenizer_config.json), with truncation at the model's max length.

Corpus: tests/py/tok_corpus.py (source code lines in seven languages, long
files, tests/data/prose.txt), plus a sweep over every Unicode code point and
generated runs of combining marks (NFD reordering and its offsets).

The library reports offsets in characters; they are converted to bytes here.
Texts containing U+0000 are left out: the CLI reads JSON through cJSON,
whose strings end at the first NUL (the unit tests cover U+0000 directly).
"""
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

import tokenizers  # the reference; scripts/setup-python.sh installs it

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import MODELS, model_dir  # noqa: E402
import tok_corpus  # noqa: E402

SHOW = 5  # mismatching texts printed in full


def max_length(d: Path) -> int:
    sb = d / "sentence_bert_config.json"
    if sb.is_file():
        v = json.loads(sb.read_text()).get("max_seq_length")
        if v:
            return int(v)
    return int(json.loads((d / "config.json").read_text())["max_position_embeddings"])


def require_model(name: str) -> Path:
    """The model folder; a missing one skips, or fails under BGEICL_REQUIRE_MODELS=1."""
    d = model_dir(name)
    if not (d / "config.json").is_file():
        msg = f"{d} is not fetched (scripts/fetch_model.py)"
        if os.environ.get("BGEICL_REQUIRE_MODELS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return d


def byte_offsets(text: str, offsets):
    """Char offsets of the library -> byte offsets into text's UTF-8."""
    pos = [0]
    for ch in text:
        pos.append(pos[-1] + len(ch.encode("utf-8")))
    return [[pos[s], pos[e]] for s, e in offsets]


def reference(tok, texts, max_len):
    tok.no_padding()
    tok.enable_truncation(max_len)
    encs = tok.encode_batch(texts)
    return [(e.ids, byte_offsets(t, e.offsets)) for t, e in zip(texts, encs)]


def run_cli(bin_path, d, texts):
    data = "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts)
    r = subprocess.run([bin_path, "tokenize", "--model", str(d), "-"],
                       input=data.encode("utf-8"), capture_output=True, timeout=1800)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    out = [json.loads(l) for l in r.stdout.decode().splitlines()]
    assert len(out) == len(texts), f"{len(out)} results for {len(texts)} texts"
    return [(o["ids"], o["offsets"]) for o in out]


def describe(tok, text, ids, offs):
    b = text.encode("utf-8")
    return " ".join(f"{tok.id_to_token(i)}@{s}:{e}={b[s:e].decode(errors='replace')!r}"
                    for i, (s, e) in zip(ids, offs))


def compare(tok, texts, ours, ref, what):
    bad = [i for i in range(len(texts)) if list(ours[i][0]) != list(ref[i][0])
           or [list(o) for o in ours[i][1]] != [list(o) for o in ref[i][1]]]
    for i in bad[:SHOW]:
        print(f"--- {what}: text {i}: {texts[i][:300]!r}")
        print("  ours:", describe(tok, texts[i], *ours[i])[:3000])
        print("  ref: ", describe(tok, texts[i], *ref[i])[:3000])
    assert not bad, f"{what}: {len(bad)} of {len(texts)} texts differ (first {SHOW} shown above)"


@pytest.fixture(scope="module")
def corpus_texts():
    items = tok_corpus.corpus()
    langs = {l for l, _ in items if not l.endswith("-long") and l != "prose"}
    lines = [t for l, t in items if l in langs]
    assert len(langs) >= 6, f"only {sorted(langs)} found"
    assert len(set(lines)) >= 20000, f"only {len(set(lines))} distinct source lines"
    texts = [t for _, t in items if "\x00" not in t]
    print(f"\ncorpus: {len(texts)} texts, {len(set(lines))} distinct source lines in "
          f"{len(langs)} languages ({', '.join(sorted(langs))})")
    return texts


def symlinked_copy(src: Path, dst: Path, skip):
    """dst gets a symlink to every entry of src except those in skip."""
    dst.mkdir(exist_ok=True)
    for p in src.iterdir():
        if p.name not in skip:
            os.symlink(p.resolve(), dst / p.name)
    return dst


def vocab_txt_reference(d: Path):
    """What BertTokenizerFast would build from vocab.txt + tokenizer_config.json."""
    from tokenizers.implementations import BertWordPieceTokenizer
    cfg_path = d / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
    wp = BertWordPieceTokenizer.from_file(
        str(d / "vocab.txt"),
        lowercase=cfg.get("do_lower_case", True),
        handle_chinese_chars=cfg.get("tokenize_chinese_chars", True),
        strip_accents=cfg.get("strip_accents"),
    )
    return wp._tokenizer


@pytest.mark.parametrize("name", MODELS)
def test_parity_tokenizer_json(bin_path, name, corpus_texts):
    d = require_model(name)
    tok = tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
    ref = reference(tok, corpus_texts, max_length(d))
    ours = run_cli(bin_path, d, corpus_texts)
    compare(tok, corpus_texts, ours, ref, f"{name} tokenizer.json")
    assert any(len(r[0]) == max_length(d) for r in ref), "no text reached truncation"


@pytest.mark.parametrize("name", MODELS)
def test_parity_vocab_txt(bin_path, name, corpus_texts, tmp_path):
    d = require_model(name)
    copy = symlinked_copy(d, tmp_path / name, {"tokenizer.json"})
    tok = vocab_txt_reference(copy)
    ref = reference(tok, corpus_texts, max_length(d))
    ours = run_cli(bin_path, copy, corpus_texts)
    compare(tok, corpus_texts, ours, ref, f"{name} vocab.txt")


def sweep_code_points():
    """Every code point of planes 0-3 and of U+E0000..E0FFF (tags, variation
    selectors); planes 4-13 are unassigned and 15-16 private use, each
    uniform, so they are sampled (every 97th plus each plane's ends). No
    U+0000, no surrogates."""
    cps = set(range(1, 0x40000)) | set(range(0xE0000, 0xE1000))
    cps |= set(range(0x40000, 0x110000, 97))
    cps |= {p << 16 | e for p in range(4, 17) for e in (0, 0xFFFF)}
    return sorted(c for c in cps if not 0xD800 <= c <= 0xDFFF)


def code_point_texts(per_text=16):
    """Each code point between letters, alone and doubled, so that its
    removal, splitting, punctuation, decomposition, accent stripping and
    lowercasing show in the ids or offsets. per_text code points share a
    text, separated by spaces."""
    cps = sweep_code_points()
    return [" ".join(f"a{chr(c)}b {chr(c)} {chr(c)}{chr(c)}" for c in cps[i:i + per_text])
            for i in range(0, len(cps), per_text)]


def test_every_code_point(bin_path):
    d = require_model(MODELS[0])
    tok = tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
    texts = code_point_texts()
    compare(tok, texts, run_cli(bin_path, d, texts), reference(tok, texts, 512),
            "code point sweep")


# Marks of many combining classes (some unknown to the library's Unicode
# tables), chars that decompose into several marks, removed chars that bring
# marks together, CJK and Hangul, case expansions, whitespace.
POOL = ("a", "E", "o", "\u0130", "\u03a3", "\u00e9", "\u1e69", "\u0301", "\u0316", "\u0334",
        "\u031b", "\u0345", "\u05b0", "\u05bc", "\u0f71", "\u0f72", "\u0f73", "\u0f75",
        "\u0344", "\u1df6", "\u08d3", "\u08d4", "\u1734", "\u111c9", "\ua9bd", "\u1885",
        "\u0e48", "\u093c", "\u094d", "\u0903", "\u302a", "\u1d165", "\u1d16d", "\u200b",
        "\u0007", "\u00ad", "\u4e2d", "\uf900", "\uac00", "\u1100", "\u1161", "\u11a8",
        "\u212b", "\u2126", " ", "\u00a0", ".", "[SEP]", "\ufffd", "\u0300", "\u0327")


def combining_texts(n=20000, seed=20240531):
    rnd = random.Random(seed)
    return ["".join(rnd.choice(POOL) for _ in range(rnd.randint(1, 14))) for _ in range(n)]


@pytest.mark.parametrize("name", MODELS)
def test_combining_sequences(bin_path, name):
    d = require_model(name)
    tok = tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
    texts = combining_texts()
    compare(tok, texts, run_cli(bin_path, d, texts), reference(tok, texts, max_length(d)),
            f"{name} combining runs")
