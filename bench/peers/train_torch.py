#!/usr/bin/python3
"""PyTorch CPU training-step peer for `npm run bench -- train`.

    /usr/bin/python3 bench/peers/train_torch.py --model-dir DIR --batch 16 --seq 128 \
        --steps N --warmup W --threads 2 [--lr 1e-3] [--seed 0]
    /usr/bin/python3 bench/peers/train_torch.py --config '{"d_model":256,"n_layers":4,...}' ...
    /usr/bin/python3 bench/peers/train_torch.py ...   # no model dir, no config: the default
                                                      # d_model 256, 4 layers, 4 heads,
                                                      # d_ff 1024, vocab 64 llama

The model is bench/peers/hf_reference.py's CausalLM (the same HF math the TS model is
tested against), loaded from an HF model dir (config.json + model.safetensors) or randomly
initialised (seeded) from --config, which is inline JSON or a path to a JSON file holding
either HF config fields (model_type, hidden_size, ...) or the short names d_model, n_layers,
n_heads, n_kv_heads, d_ff, vocab, rope_theta, rms_norm_eps, tie_embeddings.
--write-model-dir DIR saves that random model as an HF model dir (e.g. for the TS side).

One step: forward, masked next-token cross-entropy (mean over masked positions; the mask
covers every predicted position), backward, clip_grad_norm_(1.0), AdamW(lr, betas
(0.9, 0.999), eps 1e-8, weight_decay 0.01) step, zero_grad. Token batches are drawn
uniformly from [0, vocab) with a fixed seed. `warmup` steps run untimed, then `steps`
timed steps. Prints ONE JSON line on stdout:
  {"tokens_per_s", "step_ms_median", "step_ms_all", "peak_rss_mb", "torch", "threads", ...}
with tokens_per_s = batch * seq / median step seconds and peak RSS from
getrusage(RUSAGE_SELF).ru_maxrss (KiB on Linux).
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time


def _threads_from_argv(argv, default=2):
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return str(default)


# BLAS thread pools (OpenBLAS, MKL, OpenMP) read these when torch loads: pin them to
# --threads so that the whole step, matmuls included, uses exactly that many threads.
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = _threads_from_argv(sys.argv[1:])

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_reference as ref  # noqa: E402

DEFAULT_SHORT = {"d_model": 256, "n_layers": 4, "n_heads": 4, "d_ff": 1024, "vocab": 64}


def hf_config_from(d):
    if "model_type" in d or "hidden_size" in d:
        out = {"model_type": "llama", "tie_word_embeddings": False, "rms_norm_eps": 1e-5, "rope_theta": 10000.0}
        out.update(d)
        return out
    s = dict(DEFAULT_SHORT)
    s.update(d)
    return {
        "model_type": "llama",
        "vocab_size": int(s["vocab"]),
        "hidden_size": int(s["d_model"]),
        "intermediate_size": int(s["d_ff"]),
        "num_hidden_layers": int(s["n_layers"]),
        "num_attention_heads": int(s["n_heads"]),
        "num_key_value_heads": int(s.get("n_kv_heads", s["n_heads"])),
        "rms_norm_eps": float(s.get("rms_norm_eps", 1e-5)),
        "rope_theta": float(s.get("rope_theta", 10000.0)),
        "max_position_embeddings": int(s.get("max_position_embeddings", 2048)),
        "tie_word_embeddings": bool(s.get("tie_embeddings", False)),
        "attention_bias": False,
        "hidden_act": "silu",
    }


def blas_in_use():
    """Which BLAS library this process mapped (Debian's torch links libblas.so.3, whose
    alternative is the slow reference BLAS unless e.g. libopenblas0-pthread is installed)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "/libblas" in line or "/libmkl" in line}
    except OSError:
        return None
    real = sorted({os.path.realpath(p) for p in paths if p.startswith("/")})
    return ",".join(real) or None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir")
    ap.add_argument("--config", help="inline JSON or path to a JSON file (used when no --model-dir)")
    ap.add_argument("--write-model-dir", help="save the (random) model here as an HF model dir")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    if a.model_dir:
        model = ref.load_model_dir(a.model_dir)
    else:
        cfg = {}
        if a.config:
            cfg = json.load(open(a.config)) if os.path.exists(a.config) else json.loads(a.config)
        hf = hf_config_from(cfg)
        model = ref.init_random(ref.CausalLM(hf), a.seed, std=0.02, norm_noise=0.0)
        if a.write_model_dir:
            ref.save_model_dir(model, hf, a.write_model_dir)
    if a.model_dir and a.write_model_dir:
        ref.save_model_dir(model, model.cfg, a.write_model_dir)
    model.train()
    V = model.cfg.vocab_size

    g = torch.Generator().manual_seed(a.seed + 1)
    n_batches = a.warmup + a.steps
    batches = [torch.randint(0, V, (a.batch, a.seq), generator=g) for _ in range(n_batches)]
    mask = torch.ones(a.batch, a.seq - 1)

    params = [p for p in model.parameters()]
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)

    def step(tokens):
        out = ref.causal_lm_loss(model, tokens, loss_mask=mask)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(out["loss"].detach())

    losses = []
    times = []
    for i, tokens in enumerate(batches):
        t0 = time.perf_counter()
        losses.append(step(tokens))
        dt = time.perf_counter() - t0
        if i >= a.warmup:
            times.append(dt)

    med = statistics.median(times) if times else float("nan")
    res = {
        "tokens_per_s": a.batch * a.seq / med,
        "step_ms_median": med * 1e3,
        "step_ms_all": [round(t * 1e3, 3) for t in times],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "torch": torch.__version__,
        "threads": a.threads,
        "blas": blas_in_use(),
        "batch": a.batch,
        "seq": a.seq,
        "steps": a.steps,
        "warmup": a.warmup,
        "model_type": model.cfg.model_type,
        "params": sum(p.numel() for p in params),
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
    }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
