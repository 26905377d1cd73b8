#!/usr/bin/env python3
"""Write fasttextembed's weight files from a bge-small model folder.

    python bench/peers/convert_fte.py MODEL_DIR OUT_DIR

fasttextembed (PyPI) embeds with BAAI/bge-small-en-v1.5 in C, but its
package carries no weights: on first use it downloads `model.fte` and
`vocab.tsv` from its project's release page. Here they are written from the
same model.safetensors that bgeicl loads, so that every engine of the peer
benchmark runs the same weights.

The layout, as read by the library's loader (format version 2):
  header   u64 table offset, u64 blob offset, then u32 magic "FTE1",
           version, hidden, layers, heads, intermediate, vocab,
           max positions, type vocab, tensor count, padding
  table    one 104-byte entry per tensor: u64 absolute offset, u64 bytes,
           64-byte name, i32 rank, i32 shape[4], i32 dtype (0 fp32, 1 fp16)
  blob     the tensors, each 64-byte aligned
Matrices are fp16 and stored [in, out] (x @ W, as in an ONNX graph); the
query, key and value projections of a layer are one [hidden, 3 x hidden]
matrix with the bias concatenated the same way. Vectors stay fp32. The
names are those the library looks up: Hugging Face's for the embeddings,
biases and LayerNorms, "Attention_<L>_qkv_*" for the fused projection, and
the ONNX initializer names its compiled-in table gives the three other
matrices of each layer ("onnx::MatMul_<1536 + 13 L + i>", i = attention
output, intermediate, output).
vocab.tsv is "token<TAB>id" per line, from tokenizer.json.
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

MAGIC, VERSION, ALIGN, NAME_LEN = 0x31455446, 2, 64, 64
HEADER = struct.Struct("<QQ11I")
ENTRY = struct.Struct(f"<QQ{NAME_LEN}s6i")
F32, F16 = 0, 1


def matmul_name(layer, which):
    return f"onnx::MatMul_{1536 + 13 * layer + which}"


def tensors(w, cfg):
    out = {}

    def mat(name, a):  # fp16 [in, out]
        out[name] = (np.ascontiguousarray(a.astype(np.float16)), F16)

    def vec(name, a):
        out[name] = (np.ascontiguousarray(a.astype(np.float32)), F32)

    for n in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        mat(f"embeddings.{n}.weight", w[f"embeddings.{n}.weight"])
    for n in ("weight", "bias"):
        vec(f"embeddings.LayerNorm.{n}", w[f"embeddings.LayerNorm.{n}"])
    for L in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{L}."
        qkv = [p + f"attention.self.{x}" for x in ("query", "key", "value")]
        mat(f"Attention_{L}_qkv_weight",
            np.concatenate([w[q + ".weight"].T for q in qkv], axis=1))
        vec(f"Attention_{L}_qkv_bias", np.concatenate([w[q + ".bias"] for q in qkv]))
        for i, m in enumerate(("attention.output.dense", "intermediate.dense", "output.dense")):
            mat(matmul_name(L, i), w[p + m + ".weight"].T)
            vec(p + m + ".bias", w[p + m + ".bias"])
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            for n in ("weight", "bias"):
                vec(p + f"{ln}.{n}", w[p + f"{ln}.{n}"])
    return out


def write_fte(path, cfg, ts):
    names = sorted(ts)
    table_off = -(-HEADER.size // ALIGN) * ALIGN
    blob_off = -(-(table_off + ENTRY.size * len(names)) // ALIGN) * ALIGN
    entries, blob = [], bytearray()
    for n in names:
        a, dt = ts[n]
        blob += b"\0" * (-len(blob) % ALIGN)
        shape = list(a.shape) + [0] * (4 - a.ndim)
        entries.append(ENTRY.pack(blob_off + len(blob), a.nbytes, n.encode().ljust(NAME_LEN, b"\0"),
                                  a.ndim, *shape, dt))
        blob += a.tobytes()
    hdr = HEADER.pack(table_off, blob_off, MAGIC, VERSION, cfg["hidden_size"],
                      cfg["num_hidden_layers"], cfg["num_attention_heads"],
                      cfg["intermediate_size"], cfg["vocab_size"],
                      cfg["max_position_embeddings"], cfg["type_vocab_size"], len(names), 0)
    with open(path, "wb") as f:
        f.write(hdr.ljust(table_off, b"\0"))
        f.write(b"".join(entries).ljust(blob_off - table_off, b"\0"))
        f.write(blob)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    model, out = Path(sys.argv[1]), Path(sys.argv[2])
    cfg = json.loads((model / "config.json").read_text())
    w = load_file(str(model / "model.safetensors"))
    w = {k.removeprefix("bert."): v for k, v in w.items()}
    out.mkdir(parents=True, exist_ok=True)
    write_fte(out / "model.fte.part", cfg, tensors(w, cfg))
    vocab = json.loads((model / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    with open(out / "vocab.tsv", "w", encoding="utf-8") as f:
        for tok, i in sorted(vocab.items(), key=lambda x: x[1]):
            f.write(f"{tok}\t{i}\n")
    (out / "model.fte.part").rename(out / "model.fte")
    print(f"wrote {out}/model.fte and vocab.tsv")


if __name__ == "__main__":
    main()
