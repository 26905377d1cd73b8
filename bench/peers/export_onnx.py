#!/usr/bin/env python3
"""Export a BERT model folder to ONNX (fp32), for the ONNX Runtime peer.

    python bench/peers/export_onnx.py MODEL_DIR OUT.onnx

Only used where the model folder did not come from an ONNX export in the
first place (scripts/fetch_model.py's Maven fallback keeps the original
graph, which setup.sh prefers). Inputs input_ids, attention_mask and
token_type_ids (int64, dynamic batch and length); output last_hidden_state.
"""
import sys

import torch
from transformers import AutoModel


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    model = AutoModel.from_pretrained(sys.argv[1]).eval()
    ids = torch.ones(2, 8, dtype=torch.long)
    dyn = {0: "batch", 1: "seq"}
    with torch.no_grad():
        torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), sys.argv[2],
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["last_hidden_state"],
                          dynamic_axes={"input_ids": dyn, "attention_mask": dyn,
                                        "token_type_ids": dyn, "last_hidden_state": dyn},
                          opset_version=14)


if __name__ == "__main__":
    main()
