#!/usr/bin/env python3
"""Integration test of `inferno quantize` without llama.cpp.

Usage: quantize_test.py INFERNO SHARED_TESTDATA_DIR   (exit 77 when the shared data is absent)

Checks, on stories260K (rows of 64 and 172 values, so the fallback path runs):
  * Q8_0 and Q4_0 tensor bytes equal those of an independent pure-Python reference quantizer
    (struct + math: per-32 block absmax scale, round to nearest, as the public formats define);
  * per-tensor type assignment for every type and preset equals EXPECTED below, which was
    recorded from llama.cpp 0.5.0's `llama-quantize stories260K.gguf out.gguf TYPE` (llama-quantize
    output is used only as recorded expected values; nothing of llama.cpp runs here);
  * metadata preserved, general.file_type / general.quantization_version as llama.cpp writes;
  * `inferno models info --json --tensors` reads the result; `inferno run` on the Q8_0 model gives
    the F32 model's greedy tokens for the first 8 tokens (11 measured);
  * an interrupted run (SIGINT, SIGTERM) leaves no output and no temporary file;
  * error cases: unknown type, input not GGUF, output == input, output exists, a tensor type that
    cannot be dequantized; --dry-run and --pure; `convert --quantize` as an alias.
"""
import json
import math
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
from array import array

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, summary  # noqa: E402
from gguf_crosscheck import GGML_TYPES, read_tensors  # noqa: E402

# Recorded from llama.cpp 0.5.0 llama-quantize on stories260K.gguf (F32 input); tensors that
# stay F32 are left out.
EXPECTED = {
    'Q4_0': 'output.weight=Q8_0 token_embd.weight=Q4_0 blk.0.attn_k.weight=Q4_0 blk.0.attn_output.weight=Q4_0 blk.0.attn_q.weight=Q4_0 blk.0.attn_v.weight=Q4_0 blk.0.ffn_down.weight=F16 blk.0.ffn_gate.weight=Q4_0 blk.0.ffn_up.weight=Q4_0 blk.1.attn_k.weight=Q4_0 blk.1.attn_output.weight=Q4_0 blk.1.attn_q.weight=Q4_0 blk.1.attn_v.weight=Q4_0 blk.1.ffn_down.weight=F16 blk.1.ffn_gate.weight=Q4_0 blk.1.ffn_up.weight=Q4_0 blk.2.attn_k.weight=Q4_0 blk.2.attn_output.weight=Q4_0 blk.2.attn_q.weight=Q4_0 blk.2.attn_v.weight=Q4_0 blk.2.ffn_down.weight=F16 blk.2.ffn_gate.weight=Q4_0 blk.2.ffn_up.weight=Q4_0 blk.3.attn_k.weight=Q4_0 blk.3.attn_output.weight=Q4_0 blk.3.attn_q.weight=Q4_0 blk.3.attn_v.weight=Q4_0 blk.3.ffn_down.weight=F16 blk.3.ffn_gate.weight=Q4_0 blk.3.ffn_up.weight=Q4_0 blk.4.attn_k.weight=Q4_0 blk.4.attn_output.weight=Q4_0 blk.4.attn_q.weight=Q4_0 blk.4.attn_v.weight=Q4_0 blk.4.ffn_down.weight=F16 blk.4.ffn_gate.weight=Q4_0 blk.4.ffn_up.weight=Q4_0',
    'Q4_1': 'output.weight=Q8_0 token_embd.weight=Q4_1 blk.0.attn_k.weight=Q4_1 blk.0.attn_output.weight=Q4_1 blk.0.attn_q.weight=Q4_1 blk.0.attn_v.weight=Q4_1 blk.0.ffn_down.weight=F16 blk.0.ffn_gate.weight=Q4_1 blk.0.ffn_up.weight=Q4_1 blk.1.attn_k.weight=Q4_1 blk.1.attn_output.weight=Q4_1 blk.1.attn_q.weight=Q4_1 blk.1.attn_v.weight=Q4_1 blk.1.ffn_down.weight=F16 blk.1.ffn_gate.weight=Q4_1 blk.1.ffn_up.weight=Q4_1 blk.2.attn_k.weight=Q4_1 blk.2.attn_output.weight=Q4_1 blk.2.attn_q.weight=Q4_1 blk.2.attn_v.weight=Q4_1 blk.2.ffn_down.weight=F16 blk.2.ffn_gate.weight=Q4_1 blk.2.ffn_up.weight=Q4_1 blk.3.attn_k.weight=Q4_1 blk.3.attn_output.weight=Q4_1 blk.3.attn_q.weight=Q4_1 blk.3.attn_v.weight=Q4_1 blk.3.ffn_down.weight=F16 blk.3.ffn_gate.weight=Q4_1 blk.3.ffn_up.weight=Q4_1 blk.4.attn_k.weight=Q4_1 blk.4.attn_output.weight=Q4_1 blk.4.attn_q.weight=Q4_1 blk.4.attn_v.weight=Q4_1 blk.4.ffn_down.weight=F16 blk.4.ffn_gate.weight=Q4_1 blk.4.ffn_up.weight=Q4_1',
    'Q5_0': 'output.weight=Q8_0 token_embd.weight=Q5_0 blk.0.attn_k.weight=Q5_0 blk.0.attn_output.weight=Q5_0 blk.0.attn_q.weight=Q5_0 blk.0.attn_v.weight=Q5_0 blk.0.ffn_down.weight=F16 blk.0.ffn_gate.weight=Q5_0 blk.0.ffn_up.weight=Q5_0 blk.1.attn_k.weight=Q5_0 blk.1.attn_output.weight=Q5_0 blk.1.attn_q.weight=Q5_0 blk.1.attn_v.weight=Q5_0 blk.1.ffn_down.weight=F16 blk.1.ffn_gate.weight=Q5_0 blk.1.ffn_up.weight=Q5_0 blk.2.attn_k.weight=Q5_0 blk.2.attn_output.weight=Q5_0 blk.2.attn_q.weight=Q5_0 blk.2.attn_v.weight=Q5_0 blk.2.ffn_down.weight=F16 blk.2.ffn_gate.weight=Q5_0 blk.2.ffn_up.weight=Q5_0 blk.3.attn_k.weight=Q5_0 blk.3.attn_output.weight=Q5_0 blk.3.attn_q.weight=Q5_0 blk.3.attn_v.weight=Q5_0 blk.3.ffn_down.weight=F16 blk.3.ffn_gate.weight=Q5_0 blk.3.ffn_up.weight=Q5_0 blk.4.attn_k.weight=Q5_0 blk.4.attn_output.weight=Q5_0 blk.4.attn_q.weight=Q5_0 blk.4.attn_v.weight=Q5_0 blk.4.ffn_down.weight=F16 blk.4.ffn_gate.weight=Q5_0 blk.4.ffn_up.weight=Q5_0',
    'Q5_1': 'output.weight=Q8_0 token_embd.weight=Q5_1 blk.0.attn_k.weight=Q5_1 blk.0.attn_output.weight=Q5_1 blk.0.attn_q.weight=Q5_1 blk.0.attn_v.weight=Q5_1 blk.0.ffn_down.weight=F16 blk.0.ffn_gate.weight=Q5_1 blk.0.ffn_up.weight=Q5_1 blk.1.attn_k.weight=Q5_1 blk.1.attn_output.weight=Q5_1 blk.1.attn_q.weight=Q5_1 blk.1.attn_v.weight=Q5_1 blk.1.ffn_down.weight=F16 blk.1.ffn_gate.weight=Q5_1 blk.1.ffn_up.weight=Q5_1 blk.2.attn_k.weight=Q5_1 blk.2.attn_output.weight=Q5_1 blk.2.attn_q.weight=Q5_1 blk.2.attn_v.weight=Q5_1 blk.2.ffn_down.weight=F16 blk.2.ffn_gate.weight=Q5_1 blk.2.ffn_up.weight=Q5_1 blk.3.attn_k.weight=Q5_1 blk.3.attn_output.weight=Q5_1 blk.3.attn_q.weight=Q5_1 blk.3.attn_v.weight=Q5_1 blk.3.ffn_down.weight=F16 blk.3.ffn_gate.weight=Q5_1 blk.3.ffn_up.weight=Q5_1 blk.4.attn_k.weight=Q5_1 blk.4.attn_output.weight=Q5_1 blk.4.attn_q.weight=Q5_1 blk.4.attn_v.weight=Q5_1 blk.4.ffn_down.weight=F16 blk.4.ffn_gate.weight=Q5_1 blk.4.ffn_up.weight=Q5_1',
    'Q8_0': 'output.weight=Q8_0 token_embd.weight=Q8_0 blk.0.attn_k.weight=Q8_0 blk.0.attn_output.weight=Q8_0 blk.0.attn_q.weight=Q8_0 blk.0.attn_v.weight=Q8_0 blk.0.ffn_down.weight=F16 blk.0.ffn_gate.weight=Q8_0 blk.0.ffn_up.weight=Q8_0 blk.1.attn_k.weight=Q8_0 blk.1.attn_output.weight=Q8_0 blk.1.attn_q.weight=Q8_0 blk.1.attn_v.weight=Q8_0 blk.1.ffn_down.weight=F16 blk.1.ffn_gate.weight=Q8_0 blk.1.ffn_up.weight=Q8_0 blk.2.attn_k.weight=Q8_0 blk.2.attn_output.weight=Q8_0 blk.2.attn_q.weight=Q8_0 blk.2.attn_v.weight=Q8_0 blk.2.ffn_down.weight=F16 blk.2.ffn_gate.weight=Q8_0 blk.2.ffn_up.weight=Q8_0 blk.3.attn_k.weight=Q8_0 blk.3.attn_output.weight=Q8_0 blk.3.attn_q.weight=Q8_0 blk.3.attn_v.weight=Q8_0 blk.3.ffn_down.weight=F16 blk.3.ffn_gate.weight=Q8_0 blk.3.ffn_up.weight=Q8_0 blk.4.attn_k.weight=Q8_0 blk.4.attn_output.weight=Q8_0 blk.4.attn_q.weight=Q8_0 blk.4.attn_v.weight=Q8_0 blk.4.ffn_down.weight=F16 blk.4.ffn_gate.weight=Q8_0 blk.4.ffn_up.weight=Q8_0',
    'F16': 'output.weight=F16 token_embd.weight=F16 blk.0.attn_k.weight=F16 blk.0.attn_output.weight=F16 blk.0.attn_q.weight=F16 blk.0.attn_v.weight=F16 blk.0.ffn_down.weight=F16 blk.0.ffn_gate.weight=F16 blk.0.ffn_up.weight=F16 blk.1.attn_k.weight=F16 blk.1.attn_output.weight=F16 blk.1.attn_q.weight=F16 blk.1.attn_v.weight=F16 blk.1.ffn_down.weight=F16 blk.1.ffn_gate.weight=F16 blk.1.ffn_up.weight=F16 blk.2.attn_k.weight=F16 blk.2.attn_output.weight=F16 blk.2.attn_q.weight=F16 blk.2.attn_v.weight=F16 blk.2.ffn_down.weight=F16 blk.2.ffn_gate.weight=F16 blk.2.ffn_up.weight=F16 blk.3.attn_k.weight=F16 blk.3.attn_output.weight=F16 blk.3.attn_q.weight=F16 blk.3.attn_v.weight=F16 blk.3.ffn_down.weight=F16 blk.3.ffn_gate.weight=F16 blk.3.ffn_up.weight=F16 blk.4.attn_k.weight=F16 blk.4.attn_output.weight=F16 blk.4.attn_q.weight=F16 blk.4.attn_v.weight=F16 blk.4.ffn_down.weight=F16 blk.4.ffn_gate.weight=F16 blk.4.ffn_up.weight=F16',
    'BF16': 'output.weight=BF16 token_embd.weight=BF16 blk.0.attn_k.weight=BF16 blk.0.attn_output.weight=BF16 blk.0.attn_q.weight=BF16 blk.0.attn_v.weight=BF16 blk.0.ffn_down.weight=BF16 blk.0.ffn_gate.weight=BF16 blk.0.ffn_up.weight=BF16 blk.1.attn_k.weight=BF16 blk.1.attn_output.weight=BF16 blk.1.attn_q.weight=BF16 blk.1.attn_v.weight=BF16 blk.1.ffn_down.weight=BF16 blk.1.ffn_gate.weight=BF16 blk.1.ffn_up.weight=BF16 blk.2.attn_k.weight=BF16 blk.2.attn_output.weight=BF16 blk.2.attn_q.weight=BF16 blk.2.attn_v.weight=BF16 blk.2.ffn_down.weight=BF16 blk.2.ffn_gate.weight=BF16 blk.2.ffn_up.weight=BF16 blk.3.attn_k.weight=BF16 blk.3.attn_output.weight=BF16 blk.3.attn_q.weight=BF16 blk.3.attn_v.weight=BF16 blk.3.ffn_down.weight=BF16 blk.3.ffn_gate.weight=BF16 blk.3.ffn_up.weight=BF16 blk.4.attn_k.weight=BF16 blk.4.attn_output.weight=BF16 blk.4.attn_q.weight=BF16 blk.4.attn_v.weight=BF16 blk.4.ffn_down.weight=BF16 blk.4.ffn_gate.weight=BF16 blk.4.ffn_up.weight=BF16',
    'Q2_K': 'output.weight=Q8_0 token_embd.weight=Q4_0 blk.0.attn_k.weight=Q4_0 blk.0.attn_output.weight=Q4_0 blk.0.attn_q.weight=Q4_0 blk.0.attn_v.weight=Q4_0 blk.0.ffn_down.weight=F16 blk.0.ffn_gate.weight=Q4_0 blk.0.ffn_up.weight=Q4_0 blk.1.attn_k.weight=Q4_0 blk.1.attn_output.weight=Q4_0 blk.1.attn_q.weight=Q4_0 blk.1.attn_v.weight=Q4_0 blk.1.ffn_down.weight=F16 blk.1.ffn_gate.weight=Q4_0 blk.1.ffn_up.weight=Q4_0 blk.2.attn_k.weight=Q4_0 blk.2.attn_output.weight=Q4_0 blk.2.attn_q.weight=Q4_0 blk.2.attn_v.weight=Q4_0 blk.2.ffn_down.weight=F16 blk.2.ffn_gate.weight=Q4_0 blk.2.ffn_up.weight=Q4_0 blk.3.attn_k.weight=Q4_0 blk.3.attn_output.weight=Q4_0 blk.3.attn_q.weight=Q4_0 blk.3.attn_v.weight=Q4_0 blk.3.ffn_down.weight=F16 blk.3.ffn_gate.weight=Q4_0 blk.3.ffn_up.weight=Q4_0 blk.4.attn_k.weight=Q4_0 blk.4.attn_output.weight=Q4_0 blk.4.attn_q.weight=Q4_0 blk.4.attn_v.weight=Q4_0 blk.4.ffn_down.weight=F16 blk.4.ffn_gate.weight=Q4_0 blk.4.ffn_up.weight=Q4_0',
    'Q3_K_S': 'output.weight=Q8_0 token_embd.weight=Q4_0 blk.0.attn_k.weight=Q4_0 blk.0.attn_output.weight=Q4_0 blk.0.attn_q.weight=Q4_0 blk.0.attn_v.weight=Q4_0 blk.0.ffn_down.weight=F16 blk.0.ffn_gate.weight=Q4_0 blk.0.ffn_up.weight=Q4_0 blk.1.attn_k.weight=Q4_0 blk.1.attn_output.weight=Q4_0 blk.1.attn_q.weight=Q4_0 blk.1.attn_v.weight=Q4_0 blk.1.ffn_down.weight=F16 blk.1.ffn_gate.weight=Q4_0 blk.1.ffn_up.weight=Q4_0 blk.2.attn_k.weight=Q4_0 blk.2.attn_output.weight=Q4_0 blk.2.attn_q.weight=Q4_0 blk.2.attn_v.weight=Q4_0 blk.2.ffn_down.weight=F16 blk.2.ffn_gate.weight=Q4_0 blk.2.ffn_up.weight=Q4_0 blk.3.attn_k.weight=Q4_0 blk.3.attn_output.weight=Q4_0 blk.3.attn_q.weight=Q4_0 blk.3.attn_v.weight=Q4_0 blk.3.ffn_down.weight=F16 blk.3.ffn_gate.weight=Q4_0 blk.3.ffn_up.weight=Q4_0 blk.4.attn_k.weight=Q4_0 blk.4.attn_output.weight=Q4_0 blk.4.attn_q.weight=Q4_0 blk.4.attn_v.weight=Q4_0 blk.4.ffn_down.weight=F16 blk.4.ffn_gate.weight=Q4_0 blk.4.ffn_up.weight=Q4_0',
    'Q3_K_M': 'output.weight=Q8_0 token_embd.weight=Q4_0 blk.0.attn_k.weight=Q4_0 blk.0.attn_output.weight=Q5_0 blk.0.attn_q.weight=Q4_0 blk.0.attn_v.weight=Q5_1 blk.0.ffn_down.weight=F16 blk.0.ffn_gate.weight=Q4_0 blk.0.ffn_up.weight=Q4_0 blk.1.attn_k.weight=Q4_0 blk.1.attn_output.weight=Q5_0 blk.1.attn_q.weight=Q4_0 blk.1.attn_v.weight=Q5_1 blk.1.ffn_down.weight=F16 blk.1.ffn_gate.weight=Q4_0 blk.1.ffn_up.weight=Q4_0 blk.2.attn_k.weight=Q4_0 blk.2.attn_output.weight=Q5_0 blk.2.attn_q.weight=Q4_0 blk.2.attn_v.weight=Q5_0 blk.2.ffn_down.weight=F16 blk.2.ffn_gate.weight=Q4_0 blk.2.ffn_up.weight=Q4_0 blk.3.attn_k.weight=Q4_0 blk.3.attn_output.weight=Q5_0 blk.3.attn_q.weight=Q4_0 blk.3.attn_v.weight=Q5_0 blk.3.ffn_down.weight=F16 blk.3.ffn_gate.weight=Q4_0 blk.3.ffn_up.weight=Q4_0 blk.4.attn_k.weight=Q4_0 blk.4.attn_output.weight=Q5_0 blk.4.attn_q.weight=Q4_0 blk.4.attn_v.weight=Q5_0 blk.4.ffn_down.weight=F16 blk.4.ffn_gate.weight=Q4_0 blk.4.ffn_up.weight=Q4_0',
    'Q3_K_L': 'output.weight=Q8_0 token_embd.weight=Q4_0 blk.0.attn_k.weight=Q4_0 blk.0.attn_output.weight=Q5_1 blk.0.attn_q.weight=Q4_0 blk.0.attn_v.weight=Q5_1 blk.0.ffn_down.weight=F16 blk.0.ffn_gate.weight=Q4_0 blk.0.ffn_up.weight=Q4_0 blk.1.attn_k.weight=Q4_0 blk.1.attn_output.weight=Q5_1 blk.1.attn_q.weight=Q4_0 blk.1.attn_v.weight=Q5_1 blk.1.ffn_down.weight=F16 blk.1.ffn_gate.weight=Q4_0 blk.1.ffn_up.weight=Q4_0 blk.2.attn_k.weight=Q4_0 blk.2.attn_output.weight=Q5_1 blk.2.attn_q.weight=Q4_0 blk.2.attn_v.weight=Q5_1 blk.2.ffn_down.weight=F16 blk.2.ffn_gate.weight=Q4_0 blk.2.ffn_up.weight=Q4_0 blk.3.attn_k.weight=Q4_0 blk.3.attn_output.weight=Q5_1 blk.3.attn_q.weight=Q4_0 blk.3.attn_v.weight=Q5_1 blk.3.ffn_down.weight=F16 blk.3.ffn_gate.weight=Q4_0 blk.3.ffn_up.weight=Q4_0 blk.4.attn_k.weight=Q4_0 blk.4.attn_output.weight=Q5_1 blk.4.attn_q.weight=Q4_0 blk.4.attn_v.weight=Q5_1 blk.4.ffn_down.weight=F16 blk.4.ffn_gate.weight=Q4_0 blk.4.ffn_up.weight=Q4_0',
    'Q4_K_S': 'output.weight=Q8_0 token_embd.weight=Q5_0 blk.0.attn_k.weight=Q5_0 blk.0.attn_output.weight=Q5_0 blk.0.attn_q.weight=Q5_0 blk.0.attn_v.weight=Q5_1 blk.0.ffn_down.weight=F16 blk.0.ffn_gate.weight=Q5_0 blk.0.ffn_up.weight=Q5_0 blk.1.attn_k.weight=Q5_0 blk.1.attn_output.weight=Q5_0 blk.1.attn_q.weight=Q5_0 blk.1.attn_v.weight=Q5_1 blk.1.ffn_down.weight=F16 blk.1.ffn_gate.weight=Q5_0 blk.1.ffn_up.weight=Q5_0 blk.2.attn_k.weight=Q5_0 blk.2.attn_output.weight=Q5_0 blk.2.attn_q.weight=Q5_0 blk.2.attn_v.weight=Q5_1 blk.2.ffn_down.weight=F16 blk.2.ffn_gate.weight=Q5_0 blk.2.ffn_up.weight=Q5_0 blk.3.attn_k.weight=Q5_0 blk.3.attn_output.weight=Q5_0 blk.3.attn_q.weight=Q5_0 blk.3.attn_v.weight=Q5_1 blk.3.ffn_down.weight=F16 blk.3.ffn_gate.weight=Q5_0 blk.3.ffn_up.weight=Q5_0 blk.4.attn_k.weight=Q5_0 blk.4.attn_output.weight=Q5_0 blk.4.attn_q.weight=Q5_0 blk.4.attn_v.weight=Q5_0 blk.4.ffn_down.weight=F16 blk.4.ffn_gate.weight=Q5_0 blk.4.ffn_up.weight=Q5_0',
    'Q4_K_M': 'output.weight=Q8_0 token_embd.weight=Q5_0 blk.0.attn_k.weight=Q5_0 blk.0.attn_output.weight=Q5_0 blk.0.attn_q.weight=Q5_0 blk.0.attn_v.weight=Q5_0 blk.0.ffn_down.weight=F16 blk.0.ffn_gate.weight=Q5_0 blk.0.ffn_up.weight=Q5_0 blk.1.attn_k.weight=Q5_0 blk.1.attn_output.weight=Q5_0 blk.1.attn_q.weight=Q5_0 blk.1.attn_v.weight=Q5_0 blk.1.ffn_down.weight=F16 blk.1.ffn_gate.weight=Q5_0 blk.1.ffn_up.weight=Q5_0 blk.2.attn_k.weight=Q5_0 blk.2.attn_output.weight=Q5_0 blk.2.attn_q.weight=Q5_0 blk.2.attn_v.weight=Q8_0 blk.2.ffn_down.weight=F16 blk.2.ffn_gate.weight=Q5_0 blk.2.ffn_up.weight=Q5_0 blk.3.attn_k.weight=Q5_0 blk.3.attn_output.weight=Q5_0 blk.3.attn_q.weight=Q5_0 blk.3.attn_v.weight=Q5_0 blk.3.ffn_down.weight=F16 blk.3.ffn_gate.weight=Q5_0 blk.3.ffn_up.weight=Q5_0 blk.4.attn_k.weight=Q5_0 blk.4.attn_output.weight=Q5_0 blk.4.attn_q.weight=Q5_0 blk.4.attn_v.weight=Q8_0 blk.4.ffn_down.weight=F16 blk.4.ffn_gate.weight=Q5_0 blk.4.ffn_up.weight=Q5_0',
    'Q5_K_S': 'output.weight=Q8_0 token_embd.weight=Q5_1 blk.0.attn_k.weight=Q5_1 blk.0.attn_output.weight=Q5_1 blk.0.attn_q.weight=Q5_1 blk.0.attn_v.weight=Q5_1 blk.0.ffn_down.weight=F16 blk.0.ffn_gate.weight=Q5_1 blk.0.ffn_up.weight=Q5_1 blk.1.attn_k.weight=Q5_1 blk.1.attn_output.weight=Q5_1 blk.1.attn_q.weight=Q5_1 blk.1.attn_v.weight=Q5_1 blk.1.ffn_down.weight=F16 blk.1.ffn_gate.weight=Q5_1 blk.1.ffn_up.weight=Q5_1 blk.2.attn_k.weight=Q5_1 blk.2.attn_output.weight=Q5_1 blk.2.attn_q.weight=Q5_1 blk.2.attn_v.weight=Q5_1 blk.2.ffn_down.weight=F16 blk.2.ffn_gate.weight=Q5_1 blk.2.ffn_up.weight=Q5_1 blk.3.attn_k.weight=Q5_1 blk.3.attn_output.weight=Q5_1 blk.3.attn_q.weight=Q5_1 blk.3.attn_v.weight=Q5_1 blk.3.ffn_down.weight=F16 blk.3.ffn_gate.weight=Q5_1 blk.3.ffn_up.weight=Q5_1 blk.4.attn_k.weight=Q5_1 blk.4.attn_output.weight=Q5_1 blk.4.attn_q.weight=Q5_1 blk.4.attn_v.weight=Q5_1 blk.4.ffn_down.weight=F16 blk.4.ffn_gate.weight=Q5_1 blk.4.ffn_up.weight=Q5_1',
    'Q5_K_M': 'output.weight=Q8_0 token_embd.weight=Q5_1 blk.0.attn_k.weight=Q5_1 blk.0.attn_output.weight=Q5_1 blk.0.attn_q.weight=Q5_1 blk.0.attn_v.weight=Q5_1 blk.0.ffn_down.weight=F16 blk.0.ffn_gate.weight=Q5_1 blk.0.ffn_up.weight=Q5_1 blk.1.attn_k.weight=Q5_1 blk.1.attn_output.weight=Q5_1 blk.1.attn_q.weight=Q5_1 blk.1.attn_v.weight=Q5_1 blk.1.ffn_down.weight=F16 blk.1.ffn_gate.weight=Q5_1 blk.1.ffn_up.weight=Q5_1 blk.2.attn_k.weight=Q5_1 blk.2.attn_output.weight=Q5_1 blk.2.attn_q.weight=Q5_1 blk.2.attn_v.weight=Q8_0 blk.2.ffn_down.weight=F16 blk.2.ffn_gate.weight=Q5_1 blk.2.ffn_up.weight=Q5_1 blk.3.attn_k.weight=Q5_1 blk.3.attn_output.weight=Q5_1 blk.3.attn_q.weight=Q5_1 blk.3.attn_v.weight=Q5_1 blk.3.ffn_down.weight=F16 blk.3.ffn_gate.weight=Q5_1 blk.3.ffn_up.weight=Q5_1 blk.4.attn_k.weight=Q5_1 blk.4.attn_output.weight=Q5_1 blk.4.attn_q.weight=Q5_1 blk.4.attn_v.weight=Q8_0 blk.4.ffn_down.weight=F16 blk.4.ffn_gate.weight=Q5_1 blk.4.ffn_up.weight=Q5_1',
    'Q6_K': 'output.weight=Q8_0 token_embd.weight=Q8_0 blk.0.attn_k.weight=Q8_0 blk.0.attn_output.weight=Q8_0 blk.0.attn_q.weight=Q8_0 blk.0.attn_v.weight=Q8_0 blk.0.ffn_down.weight=F16 blk.0.ffn_gate.weight=Q8_0 blk.0.ffn_up.weight=Q8_0 blk.1.attn_k.weight=Q8_0 blk.1.attn_output.weight=Q8_0 blk.1.attn_q.weight=Q8_0 blk.1.attn_v.weight=Q8_0 blk.1.ffn_down.weight=F16 blk.1.ffn_gate.weight=Q8_0 blk.1.ffn_up.weight=Q8_0 blk.2.attn_k.weight=Q8_0 blk.2.attn_output.weight=Q8_0 blk.2.attn_q.weight=Q8_0 blk.2.attn_v.weight=Q8_0 blk.2.ffn_down.weight=F16 blk.2.ffn_gate.weight=Q8_0 blk.2.ffn_up.weight=Q8_0 blk.3.attn_k.weight=Q8_0 blk.3.attn_output.weight=Q8_0 blk.3.attn_q.weight=Q8_0 blk.3.attn_v.weight=Q8_0 blk.3.ffn_down.weight=F16 blk.3.ffn_gate.weight=Q8_0 blk.3.ffn_up.weight=Q8_0 blk.4.attn_k.weight=Q8_0 blk.4.attn_output.weight=Q8_0 blk.4.attn_q.weight=Q8_0 blk.4.attn_v.weight=Q8_0 blk.4.ffn_down.weight=F16 blk.4.ffn_gate.weight=Q8_0 blk.4.ffn_up.weight=Q8_0',
}
FTYPES = {"Q4_0": 2, "Q4_1": 3, "Q5_0": 8, "Q5_1": 9, "Q8_0": 7, "F16": 1, "BF16": 32,
          "Q2_K": 10, "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15,
          "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18}

def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def round_away(v):
    return int(math.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)


def ref_q8_0(xs):
    out = bytearray()
    for b in range(0, len(xs), 32):
        blk = xs[b:b + 32]
        amax = max(abs(v) for v in blk)
        d = f32(amax / 127.0)
        idv = f32(1.0 / d) if d else 0.0
        out += struct.pack("<e", d)
        out += struct.pack("<32b", *[round_away(f32(v * idv)) for v in blk])
    return bytes(out)


def ref_q4_0(xs):
    out = bytearray()
    for b in range(0, len(xs), 32):
        blk = xs[b:b + 32]
        amax, mx = 0.0, 0.0
        for v in blk:
            if amax < abs(v):
                amax, mx = abs(v), v
        d = f32(mx / -8.0)
        idv = f32(1.0 / d) if d else 0.0
        q = [min(15, int(f32(f32(v * idv) + 8.5))) for v in blk]
        out += struct.pack("<e", d)
        out += bytes(q[j] | (q[16 + j] << 4) for j in range(16))
    return bytes(out)


def kvs(g):
    return {k: v for k, _, v in g.kvs}


def write_gguf(path, tensors, arch="llama", extra_kv=()):
    """A minimal GGUF v3: general.architecture + tensors [(name, type, shape, bytes)]."""
    def s(x):
        b = x.encode()
        return struct.pack("<Q", len(b)) + b
    kv = [s("general.architecture") + struct.pack("<I", 8) + s(arch)]
    for k, v in extra_kv:
        kv.append(s(k) + struct.pack("<II", 4, v))
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)) + b"".join(kv)
    off = 0
    infos = b""
    for name, ttype, shape, data in tensors:
        infos += s(name) + struct.pack("<I", len(shape)) + b"".join(
            struct.pack("<Q", d) for d in shape) + struct.pack("<IQ", ttype, off)
        off += (len(data) + 31) // 32 * 32
    head += infos
    head += b"\0" * ((-len(head)) % 32)
    with open(path, "wb") as f:
        f.write(head)
        for _, _, _, data in tensors:
            f.write(data)
            f.write(b"\0" * ((-len(data)) % 32))


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    inferno, testdata = sys.argv[1], sys.argv[2]
    model = os.path.join(testdata, "models", "stories260K.gguf")
    if not os.path.exists(model):
        print("skip: %s not found" % model)
        return 77
    work = tempfile.mkdtemp(prefix="quantize_test.")

    def q(*args, **kw):
        return subprocess.run([inferno, "quantize"] + list(args), capture_output=True, text=True,
                              **kw)

    src_g, src, _ = read_tensors(model)

    # every type and preset: type assignment as llama-quantize, metadata, file type
    for t, table in EXPECTED.items():
        out = os.path.join(work, "s-%s.gguf" % t)
        p = q(model, out, "--type", t.lower() if t == "Q4_K_M" else t, "-q", "--threads", "2")
        check(p.returncode == 0, "%s: exit %d %s" % (t, p.returncode, p.stderr[-500:]))
        if p.returncode:
            continue
        g, ts, _ = read_tensors(out)
        got = " ".join("%s=%s" % (n, GGML_TYPES[ty][0]) for n, (ty, _, _) in ts.items() if ty)
        check(got == table, "%s: types\n got %s\nwant %s" % (t, got, table))
        check(set(ts) == set(src), "%s: tensor set" % t)
        for n, (ty, shape, _) in ts.items():
            if shape != src[n][1]:
                check(False, "%s: %s shape %s" % (t, n, shape))
        a, b = kvs(src_g), kvs(g)
        check(b.get("general.file_type") == FTYPES[t], "%s: general.file_type %r" % (
            t, b.get("general.file_type")))
        check(b.get("general.quantization_version") == 2, "%s: quantization_version" % t)
        same = all(b.get(k) == v for k, v in a.items()
                   if k not in ("general.file_type", "general.quantization_version"))
        check(same and len(b) == len(a) + ("general.file_type" not in a)
              + ("general.quantization_version" not in a), "%s: metadata preserved" % t)
        if t in ("Q8_0", "Q4_0"):
            ref = ref_q8_0 if t == "Q8_0" else ref_q4_0
            n_cmp = 0
            for n, (ty, _, data) in ts.items():
                if GGML_TYPES[ty][0] != t:
                    continue
                xs = array("f", src[n][2]).tolist()
                check(data == ref(xs), "%s: %s bytes differ from the reference" % (t, n))
                n_cmp += 1
            check(n_cmp >= 30, "%s: only %d tensors compared" % (t, n_cmp))

    # models info reads the result
    q8 = os.path.join(work, "s-Q8_0.gguf")
    p = subprocess.run([inferno, "models", "info", q8, "--json", "--tensors"], capture_output=True,
                       text=True)
    check(p.returncode == 0, "models info: %s" % p.stderr)
    if p.returncode == 0:
        info = json.loads(p.stdout)
        check(info.get("file_type") == "MOSTLY_Q8_0", "models info file_type")
        check("Q8_0" in json.dumps(info.get("tensor_types", {})), "models info tensor types")

    # generation: Q8_0 keeps the F32 model's greedy tokens for a while
    def ids(m):
        p = subprocess.run([inferno, "run", "-m", m, "-p", "Once upon a time", "-n", "32", "--temp",
                            "0", "--json"], capture_output=True, text=True)
        return json.loads(p.stdout)["generated_ids"] if p.returncode == 0 else None
    a, b = ids(model), ids(q8)
    check(a is not None and b is not None and a[:8] == b[:8], "run: Q8_0 %r vs F32 %r" % (b, a))

    # --pure: output.weight gets Q4_0 too (the recipe gives it Q6_K, here Q8_0 by row length)
    p = q(model, os.path.join(work, "pure.gguf"), "--type", "Q4_0", "--pure", "--dry-run")
    check(p.returncode == 0 and "output.weight" in p.stdout, "dry-run prints the plan")
    lines = [l.split() for l in p.stdout.splitlines()]
    out_line = [l for l in lines if l[0] == "output.weight"]
    check(out_line and out_line[0][6] == "Q4_0", "pure: output.weight Q4_0 %r" % out_line)
    check(not os.path.exists(os.path.join(work, "pure.gguf")), "dry-run writes nothing")

    # errors
    p = q(model, os.path.join(work, "x.gguf"), "--type", "Q4_K_N")
    check(p.returncode == 2 and "did you mean" in p.stderr and "Q4_K_M" in p.stderr
          and "valid types" in p.stderr, "unknown type: %r" % p.stderr)
    notgguf = os.path.join(work, "not.gguf")
    with open(notgguf, "wb") as f:
        f.write(b"this is not a model at all" * 4)
    p = q(notgguf, os.path.join(work, "x.gguf"), "--type", "Q8_0")
    check(p.returncode == 1 and "not.gguf" in p.stderr, "not gguf: %r" % p.stderr)
    p = q(q8, q8, "--type", "Q8_0", "--force")
    check(p.returncode == 1 and "input" in p.stderr, "out == in: %r" % p.stderr)
    p = q(model, q8, "--type", "Q8_0")
    check(p.returncode == 1 and "--force" in p.stderr, "exists: %r" % p.stderr)
    p = q(model, q8, "--type", "Q8_0", "--force", "-q")
    check(p.returncode == 0, "--force overwrites: %r" % p.stderr)
    iq = os.path.join(work, "iq.gguf")
    write_gguf(iq, [("blk.0.attn_q.weight", 16, [256, 2], b"\0" * 66 * 2)],
               extra_kv=[("llama.block_count", 1)])
    p = q(iq, os.path.join(work, "x.gguf"), "--type", "Q8_0")
    check(p.returncode == 1 and "cannot be dequantized" in p.stderr, "IQ2_XXS: %r" % p.stderr)
    p = subprocess.run([inferno, "convert", model, os.path.join(work, "c.gguf"), "--quantize",
                        "Q8_0", "-q"], capture_output=True, text=True)
    check(p.returncode == 0 and open(os.path.join(work, "c.gguf"), "rb").read()
          == open(q8, "rb").read(), "convert --quantize: %r" % p.stderr)
    p = subprocess.run([inferno, "convert", model, "y.gguf"], capture_output=True, text=True)
    check(p.returncode == 2 and "--quantize" in p.stderr,
          "convert of a GGUF file without --quantize: usage error pointing at --quantize")
    check(not [f for f in os.listdir(work) if ".tmp" in f or f == "x.gguf"],
          "errors leave no files: %r" % os.listdir(work))

    # interruption: a 64 MiB F32 tensor quantized on one thread, stopped mid-run
    big = os.path.join(work, "big.gguf")
    row = array("f", [math.sin(i * 0.37) * 0.1 for i in range(4096)]).tobytes()
    write_gguf(big, [("blk.0.attn_q.weight", 0, [4096, 4096], row * 4096)],
               extra_kv=[("llama.block_count", 1)])
    for sig in (signal.SIGINT, signal.SIGTERM):
        out = os.path.join(work, "big-q2.gguf")
        proc = subprocess.Popen([inferno, "quantize", big, out, "--type", "Q2_K", "--threads", "1"],
                                stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline and proc.poll() is None and not any(
                ".tmp" in f for f in os.listdir(work)):
            time.sleep(0.005)
        saw_tmp = any(".tmp" in f for f in os.listdir(work))
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        if proc.returncode == 0:
            print("note: the run finished before the signal (%s); not checked" % sig.name)
            os.unlink(out)
            continue
        check(saw_tmp, "%s: a temporary file existed while running" % sig.name)
        check(proc.returncode != 0 and b"interrupted" in err, "%s: exit %d %r" % (
            sig.name, proc.returncode, err[-300:]))
        left = [f for f in os.listdir(work) if f.startswith("big-q2")]
        check(not left, "%s: left behind %r" % (sig.name, left))

    for f in os.listdir(work):
        os.unlink(os.path.join(work, f))
    os.rmdir(work)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
