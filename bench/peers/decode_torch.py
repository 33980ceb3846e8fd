#!/usr/bin/python3
"""PyTorch CPU KV-cached decode peer for `npm run bench -- decode`.

    /usr/bin/python3 bench/peers/decode_torch.py --model-dir DIR --batch 64 --prompt-len 16 \
        --new-tokens 64 --threads 2 [--ttft-prompt 512] [--repeats 2]

Loads the model dir with hf_reference.py (the same HF math ringrl is tested against) and decodes
with a preallocated KV cache (keys/values written in place, attention over the filled prefix), in
torch.inference_mode, sampling from softmax(logits) with torch.multinomial at temperature 1: the
work ringrl's engine does per token. Dense llama-family models only.

Prints ONE JSON line: {"tokens_per_s", "seconds", "ttft_ms", "batch", "new_tokens", "torch", "blas"}
where tokens/s = batch * new_tokens / seconds for the whole generation (a `prompt_len` prefill,
then new_tokens - 1 decode steps; the best of `repeats` runs) and ttft_ms is the time to the first
token for one prompt of --ttft-prompt tokens.
"""
import argparse
import json
import os
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--model-dir", required=True)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--prompt-len", type=int, default=16)
p.add_argument("--new-tokens", type=int, default=64)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--ttft-prompt", type=int, default=0)
p.add_argument("--repeats", type=int, default=2)
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_reference as ref  # noqa: E402
from train_torch import blas_in_use  # noqa: E402

torch.set_num_threads(args.threads)
model = ref.load_model_dir(args.model_dir)
cfg = model.cfg
if cfg.model_type == "mixtral":
    sys.exit("decode_torch.py: dense models only")
model.eval()
H, Hkv, D = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))


def rope(pos):  # pos [T] -> cos, sin [T, D]
    freqs = torch.outer(pos.float(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def step(tokens, start, cache_k, cache_v):
    """tokens [B, T] at positions start..start+T-1; writes keys/values into the caches in place."""
    B, T = tokens.shape
    cos, sin = rope(torch.arange(start, start + T))
    x = model.model.embed_tokens(tokens)
    causal = torch.ones(T, start + T, dtype=torch.bool).triu(start + 1)
    for i, layer in enumerate(model.model.layers):
        a = layer.self_attn
        h = layer.input_layernorm(x)
        q = a.q_proj(h).view(B, T, H, D)
        k = a.k_proj(h).view(B, T, Hkv, D)
        v = a.v_proj(h).view(B, T, Hkv, D)
        if cfg.model_type == "qwen3":
            q, k = a.q_norm(q), a.k_norm(k)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q = ref.apply_rope(q, cos, sin)
        cache_k[i][:, :, start:start + T] = ref.apply_rope(k, cos, sin)
        cache_v[i][:, :, start:start + T] = v
        keys = ref.repeat_kv(cache_k[i][:, :, : start + T], H // Hkv)
        values = ref.repeat_kv(cache_v[i][:, :, : start + T], H // Hkv)
        scores = torch.matmul(q, keys.transpose(2, 3)) * (D ** -0.5)
        scores = scores.masked_fill(causal, float("-inf"))
        out = torch.matmul(F.softmax(scores, dim=-1), values).transpose(1, 2).reshape(B, T, H * D)
        x = x + a.o_proj(out)
        x = x + layer.mlp(layer.post_attention_layernorm(x))
    return model.lm_head(model.model.norm(x[:, -1]))  # [B, V]


def generate(prompts, new_tokens):
    B, P = prompts.shape
    total = P + new_tokens
    cache_k = [torch.empty(B, Hkv, total, D) for _ in model.model.layers]
    cache_v = [torch.empty(B, Hkv, total, D) for _ in model.model.layers]
    logits = step(prompts, 0, cache_k, cache_v)
    token = torch.multinomial(F.softmax(logits, dim=-1), 1)
    for t in range(new_tokens - 1):
        logits = step(token, P + t, cache_k, cache_v)
        token = torch.multinomial(F.softmax(logits, dim=-1), 1)
    return token


g = torch.Generator().manual_seed(args.seed)
torch.manual_seed(args.seed)
with torch.inference_mode():
    prompts = torch.randint(0, cfg.vocab_size, (args.batch, args.prompt_len), generator=g)
    generate(prompts[:, :4], 4)  # warm-up
    best = float("inf")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        generate(prompts, args.new_tokens)
        best = min(best, time.perf_counter() - t0)
    ttft = None
    if args.ttft_prompt:
        long_prompt = torch.randint(0, cfg.vocab_size, (1, args.ttft_prompt), generator=g)
        ttft = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            generate(long_prompt, 1)
            ttft = min(ttft, (time.perf_counter() - t0) * 1000)

print(json.dumps({"tokens_per_s": args.batch * args.new_tokens / best, "seconds": best, "ttft_ms": ttft,
                  "batch": args.batch, "new_tokens": args.new_tokens, "prompt_len": args.prompt_len,
                  "threads": args.threads, "torch": torch.__version__, "blas": blas_in_use()}))
