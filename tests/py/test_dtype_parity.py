"""Reduced-precision parity: `--dtype bf16` and `--dtype int8` against
sentence-transformers fp32.

For each model, every text of a 200-text stride over the parity corpus must
reach cosine >= 0.999 (bf16) or >= 0.99 (int8) with the fp32 reference, on
the best kernels of this CPU (AMX where present) and with each BGEICL_ISA
cap below them that selects other GEMMs (avx512: AVX512_BF16 and
AVX512-VNNI without AMX; avx512f: neither; avx2; scalar). The minimum per
model, dtype and ISA is printed so that it can be reported.
BGEICL_PARITY_LIMIT caps the corpus as in test_embedding_parity.py; the
scalar GEMMs are plain C, so that path gets every fourth of those texts.
"""
import os

import numpy as np
import pytest

from conftest import MODELS, model_dir
from test_embedding_parity import cosines, reference, texts  # noqa: F401 (fixture)

MIN_COSINE = {"bf16": 0.999, "int8": 0.99}


def cpu_flags():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def isa_caps():
    """None (the best), then each lower path this CPU can run."""
    flags = cpu_flags()
    caps = [None]
    if "amx_int8" in flags and ("avx512_bf16" in flags or "avx512_vnni" in flags):
        caps.append("avx512")
    if "avx512_bf16" in flags or "avx512_vnni" in flags or "amx_int8" in flags:
        caps.append("avx512f")
    if "avx2" in flags and "avx512f" in flags:
        caps.append("avx2")
    caps.append("scalar")
    return caps


def run_embed(bin_path, model, texts, dtype, isa):
    import json
    import subprocess
    env = dict(os.environ)
    env.pop("BGEICL_ISA", None)
    if isa:
        env["BGEICL_ISA"] = isa
    args = [bin_path, "embed", "--model", str(model), "--dtype", dtype, "-"]
    stdin = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    out = subprocess.run(args, input=stdin.encode(), capture_output=True, check=True,
                         env=env).stdout
    rows = [json.loads(line) for line in out.decode().splitlines()]
    assert [r["index"] for r in rows] == list(range(len(texts)))
    return np.array([r["embedding"] for r in rows], dtype=np.float64)


# The fp32 reference runs on Debian's torch at about one text a second, and
# test_embedding_parity.py already pays for it on the whole corpus; this test
# takes a stride of DTYPE_TEXTS texts across it (every language, long and
# short), so that every dtype and ISA is covered at a bounded cost.
DTYPE_TEXTS = 200


@pytest.fixture(scope="module")
def dtype_texts(texts):  # noqa: F811 (the imported fixture)
    return texts[::max(1, len(texts) // DTYPE_TEXTS)][:DTYPE_TEXTS]


@pytest.fixture(scope="module")
def refs(dtype_texts):
    return {name: reference(name, dtype_texts)[0] for name in MODELS}


@pytest.mark.parametrize("isa", isa_caps(), ids=lambda i: i or "best")
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("dtype", sorted(MIN_COSINE))
def test_dtype_matches_fp32_reference(bin_path, dtype_texts, refs, name, dtype, isa):
    texts = dtype_texts
    idx = list(range(0, len(texts), 4 if isa == "scalar" else 1))
    sample = [texts[i] for i in idx]
    ref = refs[name][idx]
    ours = run_embed(bin_path, model_dir(name), sample, dtype, isa)
    assert ours.shape == ref.shape
    cos = cosines(ours, ref)
    worst = int(np.argmin(cos))
    print(f"\n{name} {dtype} isa={isa or 'best'}: {len(sample)} texts, min cosine "
          f"{cos.min():.6f} (1 - min = {1 - cos.min():.2e}), mean {cos.mean():.6f}")
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert cos.min() >= MIN_COSINE[dtype], \
        f"text {idx[worst]} ({sample[worst][:80]!r}): cosine {cos[worst]}"


def test_info_reports_dtype(bin_path):
    import json
    import subprocess
    flags = cpu_flags()
    best = {"fp32": "avx512" if "avx512f" in flags else "avx2",
            "bf16": "amx-bf16" if "amx_bf16" in flags else None,
            "int8": "amx-int8" if "amx_int8" in flags else None}
    scalar = {"fp32": "openblas", "bf16": "scalar", "int8": "scalar"}
    for dtype in ["fp32", "bf16", "int8"]:
        out = subprocess.run([bin_path, "info", "--model", str(model_dir(MODELS[0])),
                              "--dtype", dtype], capture_output=True, check=True).stdout
        info = json.loads(out)
        assert info["dtype"] == dtype
        if best[dtype]:  # the GEMM named is the one the CPU's best path has
            assert info["gemm"] == best[dtype], info
        env = dict(os.environ, BGEICL_ISA="scalar")
        out = subprocess.run([bin_path, "info", "--model", str(model_dir(MODELS[0])),
                              "--dtype", dtype], capture_output=True, check=True, env=env).stdout
        assert json.loads(out)["gemm"] == scalar[dtype]
    bad = subprocess.run([bin_path, "info", "--model", str(model_dir(MODELS[0])),
                          "--dtype", "fp8"], capture_output=True)
    assert bad.returncode == 2 and b"--dtype" in bad.stderr
    bad = subprocess.run([bin_path, "embed", "--server", "http://127.0.0.1:1", "--dtype",
                          "bf16", "x"], capture_output=True)
    assert bad.returncode == 2 and b"--dtype needs --model" in bad.stderr
