#!/usr/bin/env python3
"""Run llama.cpp's convert_hf_to_gguf.py on Debian's torch 1.13.

    python bench/peers/gguf_convert.py CONVERT_HF_TO_GGUF.py MODEL_DIR --outtype f16 ...

The converter names float8 and unsigned torch dtypes (torch >= 2.1) in
tables at import time; a BERT checkpoint in fp32 never uses them. This adds
stand-ins for the missing names and runs the converter unchanged, with the
remaining arguments, so that no second (multi-GB) torch has to be installed
just to write two GGUF files.
"""
import runpy
import sys
from pathlib import Path

import torch

for name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
             "uint16", "uint32", "uint64"):
    if not hasattr(torch, name):
        setattr(torch, name, type(name, (), {})())

if len(sys.argv) < 3:
    sys.exit(__doc__.split("\n\n")[1])
script = Path(sys.argv[1]).resolve()
sys.argv = [str(script)] + sys.argv[2:]
sys.path.insert(0, str(script.parent))
runpy.run_path(str(script), run_name="__main__")
