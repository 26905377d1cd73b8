"""The BPE tokenizer of the decoder model BAAI/bge-en-icl, against references
written elsewhere:

  - ids and byte offsets of the C tokenizer must equal those of the Hugging
    Face tokenizers library (Tokenizer.from_file on the same tokenizer.json)
    on the code/prose corpus of tests/py/tok_corpus.py, a sample of every
    Unicode plane, and hand-made edge cases (byte fallback, spaces, special
    tokens typed in the text, very long inputs), with and without special
    tokens and with truncation;
  - tok_decode must equal the library's decode(ids, skip_special_tokens=False);
  - the decoder ICL assembly (src/icl/prompt_decoder.c) must equal
    FlagEmbedding's algorithm (the model card's get_new_queries, then the
    final tokenization) run here over transformers' LlamaTokenizerFast.

The folder is models/bge-en-icl-tokenizer from scripts/fetch_model.py; it
is missing -> skip, or fail under BGEICL_REQUIRE_MODELS=1. The C side runs
through the bpe_tok driver (bench/bpe_tok.c, built by `make bench-bin`),
taken next to $BGEICL_BIN (<build>/bench/bpe_tok) or else from build/bench/:
`bgeicl tokenize --model` loads a whole embedding model, which a tokenizer
folder is not. BGEICL_PARITY_LIMIT caps the corpus (the ASan run sets it).
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
from conftest import ROOT, bgeicl_bin  # noqa: E402
import tok_corpus  # noqa: E402
from test_tokenizer_parity import byte_offsets, code_point_texts, compare  # noqa: E402

FOLDER = ROOT / "models" / "bge-en-icl-tokenizer"
TASK = "Given a code search query, retrieve code snippets that answer the query."


@pytest.fixture(scope="module")
def folder():
    if not (FOLDER / "tokenizer.json").is_file():
        msg = f"{FOLDER} is not fetched (scripts/fetch_model.py bge-en-icl-tokenizer)"
        if os.environ.get("BGEICL_REQUIRE_MODELS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return FOLDER


@pytest.fixture(scope="module")
def driver():
    here = Path(bgeicl_bin()).resolve().parent / "bench" / "bpe_tok"
    for p in (here, ROOT / "build" / "bench" / "bpe_tok"):
        if os.access(p, os.X_OK):
            return str(p)
    pytest.fail(f"{here} is not built; run make bench-bin")


@pytest.fixture(scope="module")
def ref(folder):
    tok = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok


def run_driver(driver, folder, mode, lines, *args):
    data = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines)
    r = subprocess.run([driver, mode, str(folder), *args], input=data.encode("utf-8"),
                       capture_output=True, timeout=1800)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    out = [json.loads(l) for l in r.stdout.decode().splitlines()]
    assert len(out) == len(lines), f"{len(out)} results for {len(lines)} inputs"
    return out


def c_encode(driver, folder, texts, special=True, max_len=0):
    args = ([] if special else ["--no-special"]) + (["--max-len", str(max_len)] if max_len else [])
    return [(o["ids"], o["offsets"]) for o in run_driver(driver, folder, "encode", texts, *args)]


def reference(tok, texts, special=True, max_len=0):
    if max_len:
        tok.enable_truncation(max_len)
    try:
        encs = tok.encode_batch(texts, add_special_tokens=special)
    finally:
        tok.no_truncation()
    return [(e.ids, byte_offsets(t, e.offsets)) for t, e in zip(texts, encs)]


def limited(texts):
    """BGEICL_PARITY_LIMIT (the sanitised run) keeps a stride over the whole
    corpus, so every language stays, plus the long files that truncate."""
    limit = int(os.environ.get("BGEICL_PARITY_LIMIT", "0"))
    if not limit:
        return texts
    longs = [t for t in texts if len(t) > 3000][:8]
    return texts[::max(1, len(texts) // limit)][:limit] + longs


@pytest.fixture(scope="module")
def corpus_texts():
    # U+0000 cannot cross the driver's JSON reader (cJSON strings end there).
    texts = [t for _, t in tok_corpus.corpus() if "\x00" not in t]
    assert len(texts) > 20000, f"only {len(texts)} corpus texts"
    return limited(texts)


def edge_texts():
    """Byte fallback, whitespace runs, special tokens in the text, long inputs."""
    long_code = (ROOT / "src" / "tokenizer" / "tok_bpe.c").read_text(encoding="utf-8")
    return [
        "", " ", "  ", "\t", "\n", "\r\n", " \n ", "a", " a", "a ", "  a  b   c    ",
        "emoji 🙂🚀👩‍👩‍👧 flags 🇫🇷", "北京是中国的首都。", "日本語のテキスト", "한국어 텍스트",
        "control \x01\x07\x1b\x7f bytes", "\u200b\u200d\ufeff zero width", "\ufffd replacement",
        "\U0010ffff \U000e0001 \ue000 planes", "▁ already a metaspace ▁▁", "tab\tand\nnewline\n\n",
        "<s>", "</s>", "<unk>", "a<s>b</s>c<unk>d", "<s> spaced </s>", "<instruct>x\n<query>y",
        "<response>", "<s", "</s", "<<s>>", "<query><query>", "text <instruct>", "<0x41>",
        "naïve café — “quotes” ‘single’ …", "x" * 5000, "🙂" * 3000,
        " ".join(["word"] * 20000), "a" * 200000, long_code, long_code * 8,
        "\n".join(f"line {i}\twith\ttabs  and   spaces" for i in range(3000)),
    ]


def test_corpus_parity(driver, folder, ref, corpus_texts):
    texts = corpus_texts
    compare(ref, texts, c_encode(driver, folder, texts), reference(ref, texts), "bge-en-icl corpus")
    print(f"\nbge-en-icl corpus: {len(texts)} texts, ids and offsets identical")


def test_corpus_truncated(driver, folder, ref, corpus_texts):
    texts = corpus_texts
    ours = c_encode(driver, folder, texts, max_len=512)
    want = reference(ref, texts, max_len=512)
    compare(ref, texts, ours, want, "bge-en-icl corpus, max 512")
    assert any(len(w[0]) == 512 for w in want), "no text reached truncation"


def test_edge_cases(driver, folder, ref):
    texts = edge_texts()
    for special in (True, False):
        compare(ref, texts, c_encode(driver, folder, texts, special=special),
                reference(ref, texts, special=special), f"edge cases, special={special}")
    compare(ref, texts, c_encode(driver, folder, texts, max_len=7),
            reference(ref, texts, max_len=7), "edge cases, max 7")


def test_code_points(driver, folder, ref):
    texts = limited(code_point_texts(per_text=64))
    compare(ref, texts, c_encode(driver, folder, texts), reference(ref, texts),
            "code point sweep")


def test_decode(driver, folder, ref, corpus_texts):
    """Whole encodings, and random cuts that split byte-fallback runs."""
    rnd = random.Random(7)
    texts = [t for t in edge_texts() if len(t) < 20000] + corpus_texts[::50]
    seqs = []
    for ids, _ in reference(ref, texts):
        seqs.append(ids)
        a, b = sorted(rnd.randrange(len(ids) + 1) for _ in range(2))
        seqs.append(ids[a:b])
    seqs += [[rnd.randrange(32003) for _ in range(rnd.randint(1, 40))] for _ in range(300)]
    seqs += [[3 + b for b in "é🙂".encode()][1:], [32000, 5, 6, 1, 300, 2], [99999, 1]]
    ours = [o["text"] for o in run_driver(driver, folder, "decode", seqs)]
    want = [ref.decode(s, skip_special_tokens=False) for s in seqs]
    bad = [i for i in range(len(seqs)) if ours[i] != want[i]]
    for i in bad[:5]:
        print(f"ids {seqs[i][:30]}\n  ours {ours[i][:200]!r}\n  ref  {want[i][:200]!r}")
    assert not bad, f"{len(bad)} of {len(seqs)} decodes differ"


# --- decoder ICL assembly ------------------------------------------------------

def flag_embedding_reference(tok, task, query, examples, query_max_len):
    """FlagEmbedding's bge-en-icl query path, as its model card runs it."""
    prefix = ("\n\n".join(f"<instruct>{task}\n<query>{q}\n<response>{r}" for q, r in examples)
              + "\n\n") if examples else ""
    queries = [f"<instruct>{task}\n<query>{query}"]
    n1 = len(tok("<s>", add_special_tokens=False)["input_ids"])
    n2 = len(tok("\n<response></s>", add_special_tokens=False)["input_ids"])
    inputs = tok(queries, max_length=query_max_len - n1 - n2, return_token_type_ids=False,
                 truncation=True, return_tensors=None, add_special_tokens=False)
    prefix_ids = tok(prefix, add_special_tokens=False)["input_ids"]
    suffix_ids = tok("\n<response>", add_special_tokens=False)["input_ids"]
    new_max_length = (len(prefix_ids) + len(suffix_ids) + query_max_len + 8) // 8 * 8 + 8
    new_queries = [prefix + q + "\n<response>" for q in tok.batch_decode(inputs["input_ids"])]
    # One query per call, so padding (and pad_to_multiple_of) never adds ids.
    out = tok(new_queries, max_length=new_max_length, truncation=True, return_tensors=None,
              add_special_tokens=True)
    return out["input_ids"][0], new_queries[0], new_max_length


def icl_cases(corpus_texts):
    rnd = random.Random(11)
    shorts = [t for t in corpus_texts if 5 < len(t) < 200]
    shorts = shorts[::max(1, len(shorts) // 40)][:40]
    longs = [t for t in corpus_texts if len(t) > 3000][:8]
    tricky = ["x " * 40 + "🙂" * 60, "北京" * 100, "a</s>b<s>c <query> d", "  spaced   out  ",
              "tab\there\nnew line", "ends with space ", "é" * 70]
    pool = [(f"q{i}", f"response {i}: " + t[:300]) for i, t in enumerate(shorts[:10])]
    cases = []
    for i, q in enumerate(shorts + longs + tricky):
        n_ex = i % 4
        for qmax in (64, 512) if q in longs or q in tricky else (512,):
            cases.append({"task": TASK, "query": q, "examples": rnd.sample(pool, n_ex),
                          "query_max_len": qmax})
    cases.append({"task": TASK, "query": "é" * 70, "examples": [], "query_max_len": 48})
    return cases


def test_icl_assembly(driver, folder, corpus_texts):
    from transformers import LlamaTokenizerFast
    tok = LlamaTokenizerFast.from_pretrained(str(folder))
    cases = icl_cases(corpus_texts)
    ours = run_driver(driver, folder, "icl", cases)
    bad, cut = [], 0
    for case, o in zip(cases, ours):
        ids, text, max_len = flag_embedding_reference(
            tok, case["task"], case["query"], [tuple(e) for e in case["examples"]],
            case["query_max_len"])
        cut += o["query_cut"]
        if (o["ids"], o["text"], o["max_length"]) != (ids, text, max_len):
            bad.append((case, o, ids, text, max_len))
    for case, o, ids, text, max_len in bad[:3]:
        print(f"--- query {case['query'][:80]!r}, {len(case['examples'])} examples, "
              f"max {case['query_max_len']}\n  ours {o['max_length']} {o['text'][-200:]!r}\n"
              f"  ref  {max_len} {text[-200:]!r}\n  ours ids {o['ids'][-20:]}\n  ref ids  {ids[-20:]}")
    assert not bad, f"{len(bad)} of {len(cases)} assemblies differ"
    assert cut >= 5, f"only {cut} queries were truncated"
    assert {len(c["examples"]) for c in cases} == {0, 1, 2, 3}
    print(f"\nICL assembly: {len(cases)} queries ({cut} truncated), 0-3 examples, identical")
