"""Hugging Face decoder math, written from scratch in plain PyTorch.

An independent reference for ringrl's TypeScript Llama-family model: the tests compare
against fixtures produced with it (test/fixtures/make_model_fixtures.py) and
`npm run bench -- train` times a training step with it (bench/peers/train_torch.py).

It follows the semantics of HF transformers' modeling_llama / modeling_qwen2 /
modeling_qwen3 / modeling_mixtral / modeling_qwen3_moe (eager attention, no KV cache, no padding
mask), and modeling_rope_utils' rope_scaling types linear, dynamic and llama3:

- RMSNorm in float32: weight * x * rsqrt(mean(x^2) + eps).
- rotate-half RoPE: inv_freq = 1 / theta^(arange(0, d, 2) / d), emb = cat(freqs, freqs),
  x' = x * cos + rotate_half(x) * sin, positions 0..T-1.
- attention: q/k/v/o projections; llama/mixtral biases follow `attention_bias` (q,k,v,o);
  qwen2 always has q/k/v bias (never o); qwen3 follows `attention_bias` and applies
  q_norm/k_norm (RMSNorm over head_dim) per head BEFORE RoPE; GQA by repeating k/v;
  scores = q k^T * head_dim^-0.5, causal mask, float32 softmax, @ v, o_proj.
- dense MLP: down(silu(gate(x)) * up(x)); mixtral sparse MoE: softmax router, top-k,
  renormalised top-k weights, experts w2(silu(w1 x) * w3 x), and HF's
  load_balancing_loss_func (no attention mask) as the auxiliary loss; qwen3_moe the same with
  `mlp.experts.{e}.{gate,up,down}_proj`, top-k renormalised only if norm_topk_prob, experts of
  moe_intermediate_size, and a dense MLP on layers in mlp_only_layers or off decoder_sparse_step.
- tied word embeddings: lm_head shares model.embed_tokens.weight.

Parameter names are exactly HF's (`model.layers.{i}.self_attn.q_proj.weight`, ...), so a
model directory (config.json + model.safetensors) round-trips through load_model_dir /
save_model_dir. A minimal safetensors reader/writer is included (no safetensors package).

Only the Debian python3-torch / python3-numpy stack is needed: run with /usr/bin/python3.
"""

import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SUPPORTED_MODEL_TYPES = ("llama", "qwen2", "qwen3", "mixtral", "qwen3_moe")

# --------------------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------------------

_NP_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


def read_safetensors(path, keep_bf16=False):
    """Return (dict name -> torch.Tensor, metadata dict or None).

    Format: u64 little-endian header length N, N bytes of JSON header
    {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__"?: {str: str}},
    then the byte buffer; offsets are relative to the buffer start, tensors row-major LE.
    BF16 tensors are widened to float32 (numpy has no bfloat16), or kept as torch.bfloat16.
    """
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    data = memoryview(raw)[8 + n :]
    metadata = header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        dtype = info["dtype"]
        buf = data[begin:end]
        if dtype == "BF16":
            if keep_bf16:
                u16 = np.frombuffer(buf, dtype="<i2").reshape(shape).copy()
                out[name] = torch.from_numpy(u16).view(torch.bfloat16)
                continue
            u16 = np.frombuffer(buf, dtype="<u2").astype(np.uint32)
            arr = (u16 << 16).view(np.float32)
        elif dtype in _NP_DTYPES:
            arr = np.frombuffer(buf, dtype=np.dtype(_NP_DTYPES[dtype]).newbyteorder("<"))
        else:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dtype}")
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"{path}: tensor {name}: {arr.size} elements for shape {shape}")
        out[name] = torch.from_numpy(arr.reshape(shape).astype(arr.dtype.newbyteorder("="), copy=True))
    return out, metadata


def write_safetensors(path, tensors, metadata=None, dtype="F32"):
    """Write float32 ("F32") or bfloat16 ("BF16", torch's round-to-nearest-even) tensors, names
    sorted, header padded with spaces to a multiple of 8 bytes (as the safetensors package does).
    Deterministic byte output."""
    names = sorted(tensors)
    header = {}
    chunks = []
    offset = 0
    for name in names:
        if dtype == "BF16":
            t = tensors[name].detach().to("cpu", torch.bfloat16).contiguous()
            b = t.view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            t = tensors[name].detach().to("cpu", torch.float32).contiguous()
            b = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    if metadata:
        header = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}, **header}
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------


class Config:
    """The HF config fields this reference reads, with HF's defaults per model_type."""

    def __init__(self, d):
        self.raw = dict(d)
        mt = d.get("model_type")
        if mt not in SUPPORTED_MODEL_TYPES:
            raise ValueError(f"unsupported model_type {mt!r}; expected one of {SUPPORTED_MODEL_TYPES}")
        self.model_type = mt
        self.vocab_size = int(d["vocab_size"])
        self.hidden_size = int(d["hidden_size"])
        self.intermediate_size = int(d["intermediate_size"])
        self.num_hidden_layers = int(d["num_hidden_layers"])
        self.num_attention_heads = int(d["num_attention_heads"])
        self.num_key_value_heads = int(d.get("num_key_value_heads") or self.num_attention_heads)
        hd = d.get("head_dim")
        if not hd and mt == "qwen3":
            hd = 128  # Qwen3Config's default head_dim (real Qwen3 configs always set it)
        self.head_dim = int(hd) if hd else self.hidden_size // self.num_attention_heads
        default_eps = 1e-5 if mt == "mixtral" else 1e-6
        self.rms_norm_eps = float(d.get("rms_norm_eps", default_eps))
        default_theta = 1e6 if mt == "mixtral" else 10000.0
        self.rope_theta = float(d.get("rope_theta", default_theta))
        self.max_position_embeddings = int(d.get("max_position_embeddings", 2048))
        rs = d.get("rope_scaling") or {}
        self.rope_type = rs.get("rope_type", rs.get("type", "default"))
        if self.rope_type not in ("default", "linear", "dynamic", "llama3"):
            raise NotImplementedError(f"rope_scaling {rs} is not implemented in this reference")
        self.rope_scaling = rs
        self.tie_word_embeddings = bool(d.get("tie_word_embeddings", False))
        self.attention_bias = bool(d.get("attention_bias", False))
        self.mlp_bias = bool(d.get("mlp_bias", False)) if mt == "llama" else False
        act = d.get("hidden_act", "silu")
        if act != "silu":
            raise NotImplementedError(f"hidden_act {act!r}: only silu is implemented")
        if mt == "mixtral":
            self.num_local_experts = int(d.get("num_local_experts", 8))
            self.num_experts_per_tok = int(d.get("num_experts_per_tok", 2))
            self.router_aux_loss_coef = float(d.get("router_aux_loss_coef", 0.001))
            self.norm_topk_prob = True
            self.moe_intermediate_size = self.intermediate_size
        if mt == "qwen3_moe":  # Qwen3MoeConfig's defaults
            self.num_local_experts = int(d.get("num_experts", 128))
            self.num_experts_per_tok = int(d.get("num_experts_per_tok", 8))
            self.router_aux_loss_coef = float(d.get("router_aux_loss_coef", 0.001))
            self.norm_topk_prob = bool(d.get("norm_topk_prob", False))
            self.moe_intermediate_size = int(d.get("moe_intermediate_size", 768))
            self.decoder_sparse_step = int(d.get("decoder_sparse_step", 1))
            self.mlp_only_layers = list(d.get("mlp_only_layers", []))
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")

    @property
    def is_moe(self):
        return self.model_type in ("mixtral", "qwen3_moe")

    @property
    def qk_norm(self):
        return self.model_type in ("qwen3", "qwen3_moe")

    def sparse_layer(self, i):
        if self.model_type == "mixtral":
            return True
        if self.model_type == "qwen3_moe":
            return i not in self.mlp_only_layers and (i + 1) % self.decoder_sparse_step == 0
        return False

    @property
    def qkv_bias(self):
        if self.model_type == "qwen2":
            return True
        if self.model_type in ("llama", "qwen3", "qwen3_moe"):
            return self.attention_bias
        return False  # mixtral: no attention biases

    @property
    def o_bias(self):
        if self.model_type in ("llama", "qwen3", "qwen3_moe"):
            return self.attention_bias
        return False

    def to_dict(self):
        return dict(self.raw)


# --------------------------------------------------------------------------------------
# modules
# --------------------------------------------------------------------------------------


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        h = x.float()
        var = h.pow(2).mean(-1, keepdim=True)
        h = h * torch.rsqrt(var + self.eps)
        return self.weight * h.to(dtype)


def rope_inv_freq(cfg, seq_len, device=None):
    """inv_freq [head_dim/2] (float32) as modeling_rope_utils computes it for cfg.rope_scaling,
    for a forward call whose largest position is seq_len - 1 (dynamic depends on it)."""
    dim, theta, rs = cfg.head_dim, cfg.rope_theta, cfg.rope_scaling
    if cfg.rope_type == "dynamic":
        factor, max_pos = rs["factor"], cfg.max_position_embeddings
        if seq_len > max_pos:
            theta = theta * ((factor * seq_len / max_pos) - (factor - 1)) ** (dim / (dim - 2))
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float().to(device) / dim))
    if cfg.rope_type == "linear":
        inv_freq = inv_freq / rs["factor"]
    if cfg.rope_type == "llama3":
        factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old_len = rs["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old_len / low, old_len / high
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
        smooth = (old_len / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
        inv_freq = torch.where(medium, smoothed, scaled)
    return inv_freq


def rope_cos_sin(cfg, T, device=None):
    """cos, sin of shape [T, head_dim] (float32), positions 0..T-1."""
    inv_freq = rope_inv_freq(cfg, T, device)
    pos = torch.arange(T, dtype=torch.int64, device=device).float()
    freqs = torch.outer(pos, inv_freq)  # [T, head_dim/2]
    emb = torch.cat((freqs, freqs), dim=-1)  # [T, head_dim]
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def apply_rope(x, cos, sin):
    # x: [B, H, T, D]; cos/sin: [T, D]
    return x * cos + rotate_half(x) * sin


def repeat_kv(x, n_rep):
    # [B, Hkv, T, D] -> [B, Hkv*n_rep, T, D] (kv head j serves q heads j*n_rep .. j*n_rep+n_rep-1)
    if n_rep == 1:
        return x
    B, H, T, D = x.shape
    return x[:, :, None, :, :].expand(B, H, n_rep, T, D).reshape(B, H * n_rep, T, D)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        H, Hkv, D, C = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.hidden_size
        self.q_proj = nn.Linear(C, H * D, bias=cfg.qkv_bias)
        self.k_proj = nn.Linear(C, Hkv * D, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(C, Hkv * D, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(H * D, C, bias=cfg.o_bias)
        if cfg.qk_norm:
            self.q_norm = RMSNorm(D, cfg.rms_norm_eps)
            self.k_norm = RMSNorm(D, cfg.rms_norm_eps)

    def forward(self, x, cos, sin):
        cfg = self.cfg
        B, T, _ = x.shape
        H, Hkv, D = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        q = self.q_proj(x).view(B, T, H, D)
        k = self.k_proj(x).view(B, T, Hkv, D)
        v = self.v_proj(x).view(B, T, Hkv, D)
        if cfg.qk_norm:
            q = self.q_norm(q)
            k = self.k_norm(k)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, h, T, D]
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        k = repeat_kv(k, H // Hkv)
        v = repeat_kv(v, H // Hkv)
        scores = torch.matmul(q, k.transpose(2, 3)) * (D ** -0.5)
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        scores = scores.masked_fill(causal, float("-inf"))
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(probs, v)  # [B, H, T, D]
        out = out.transpose(1, 2).reshape(B, T, H * D)
        return self.o_proj(out)


class MLP(nn.Module):
    def __init__(self, cfg, intermediate_size=None):
        super().__init__()
        C, I, b = cfg.hidden_size, intermediate_size or cfg.intermediate_size, cfg.mlp_bias
        self.gate_proj = nn.Linear(C, I, bias=b)
        self.up_proj = nn.Linear(C, I, bias=b)
        self.down_proj = nn.Linear(I, C, bias=b)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Expert(nn.Module):
    """MixtralBlockSparseTop2MLP: w1 = gate, w3 = up, w2 = down."""

    def __init__(self, cfg):
        super().__init__()
        C, I = cfg.hidden_size, cfg.intermediate_size
        self.w1 = nn.Linear(C, I, bias=False)
        self.w2 = nn.Linear(I, C, bias=False)
        self.w3 = nn.Linear(C, I, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class SparseMoE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.gate = nn.Linear(cfg.hidden_size, cfg.num_local_experts, bias=False)
        make = Expert if cfg.model_type == "mixtral" else lambda c: MLP(c, c.moe_intermediate_size)
        self.experts = nn.ModuleList([make(cfg) for _ in range(cfg.num_local_experts)])

    def forward(self, x):
        """Returns (output [B, T, C], router_logits [B*T, E])."""
        B, T, C = x.shape
        h = x.reshape(-1, C)
        router_logits = self.gate(h)  # [N, E]
        routing = F.softmax(router_logits, dim=-1, dtype=torch.float)
        weights, selected = torch.topk(routing, self.cfg.num_experts_per_tok, dim=-1)  # [N, k]
        if self.cfg.norm_topk_prob:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        weights = weights.to(h.dtype)
        out = torch.zeros_like(h)
        for e, expert in enumerate(self.experts):
            tok, slot = torch.where(selected == e)
            if tok.numel() == 0:
                continue
            y = expert(h[tok]) * weights[tok, slot, None]
            out = out.index_add(0, tok, y.to(h.dtype))
        return out.reshape(B, T, C), router_logits


class DecoderLayer(nn.Module):
    def __init__(self, cfg, index):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.is_moe = cfg.sparse_layer(index)
        if cfg.model_type == "mixtral":
            self.block_sparse_moe = SparseMoE(cfg)
        elif self.is_moe:
            self.mlp = SparseMoE(cfg)  # qwen3_moe keeps HF's `mlp.` prefix for its sparse block
        else:
            self.mlp = MLP(cfg)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        h = self.post_attention_layernorm(x)
        if self.is_moe:
            y, router_logits = (self.block_sparse_moe if hasattr(self, "block_sparse_moe") else self.mlp)(h)
            return x + y, router_logits
        return x + self.mlp(h), None


class Backbone(nn.Module):
    """HF's `model.` prefix: embed_tokens, layers, norm."""

    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList([DecoderLayer(cfg, i) for i in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class CausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        if not isinstance(cfg, Config):
            cfg = Config(cfg)
        self.cfg = cfg
        self.model = Backbone(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, tokens):
        """tokens [B, T] int64 -> (logits [B, T, V] float32, list of per-layer router logits)."""
        B, T = tokens.shape
        cos, sin = rope_cos_sin(self.cfg, T, tokens.device)
        x = self.model.embed_tokens(tokens)
        router_logits = []
        for layer in self.model.layers:
            x, rl = layer(x, cos, sin)
            if rl is not None:
                router_logits.append(rl)
        x = self.model.norm(x)
        return self.lm_head(x), router_logits

    def hf_state_dict(self):
        """name -> tensor with HF names; tied lm_head.weight omitted."""
        sd = {k: v for k, v in self.state_dict().items()}
        if self.cfg.tie_word_embeddings:
            sd.pop("lm_head.weight", None)
        return sd

    def hf_named_parameters(self):
        """(name, parameter) pairs, each parameter once (tied lm_head is reported as
        model.embed_tokens.weight, whose .grad then holds the summed gradient)."""
        return list(self.named_parameters())  # named_parameters() deduplicates shared params


def load_balancing_loss(router_logits, num_experts, top_k):
    """HF load_balancing_loss_func with attention_mask=None.
    router_logits: list of [N, E] per layer."""
    if not router_logits:
        return torch.zeros(())
    cat = torch.cat(router_logits, dim=0)  # [L*N, E]
    routing = F.softmax(cat, dim=-1)
    _, selected = torch.topk(routing, top_k, dim=-1)
    expert_mask = F.one_hot(selected, num_experts)  # [L*N, k, E]
    tokens_per_expert = torch.mean(expert_mask.float(), dim=0)  # [k, E]
    router_prob_per_expert = torch.mean(routing, dim=0)  # [E]
    return torch.sum(tokens_per_expert * router_prob_per_expert.unsqueeze(0)) * num_experts


def causal_lm_loss(model, tokens, loss_mask=None):
    """HF-style training loss. Returns dict(logits, logprobs [B, T-1], ce_loss, aux_loss, loss).

    ce_loss = mean over predicted positions t = 1..T-1 (optionally masked by loss_mask
    [B, T-1]) of -log softmax(logits[:, t-1])[tokens[:, t]]; for mixtral,
    loss = ce_loss + router_aux_loss_coef * aux_loss."""
    logits, router_logits = model(tokens)
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    tok_logp = logp.gather(-1, tokens[:, 1:, None]).squeeze(-1)  # [B, T-1]
    if loss_mask is None:
        ce = -tok_logp.mean()
    else:
        m = loss_mask.to(tok_logp.dtype)
        ce = -(tok_logp * m).sum() / m.sum().clamp_min(1)
    out = {"logits": logits, "logprobs": tok_logp, "ce_loss": ce, "aux_loss": None, "loss": ce}
    if model.cfg.is_moe:
        aux = load_balancing_loss(router_logits, model.cfg.num_local_experts, model.cfg.num_experts_per_tok)
        out["aux_loss"] = aux
        out["loss"] = ce + model.cfg.router_aux_loss_coef * aux
    return out


# --------------------------------------------------------------------------------------
# model directories
# --------------------------------------------------------------------------------------


def load_model_dir(path, dtype=torch.float32):
    """Read config.json + model.safetensors (HF names) into a CausalLM."""
    with open(os.path.join(path, "config.json")) as f:
        cfg = Config(json.load(f))
    model = CausalLM(cfg)
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors = {}
    for file in files:
        tensors.update(read_safetensors(os.path.join(path, file))[0])
    if cfg.tie_word_embeddings:
        tensors.pop("lm_head.weight", None)
    expected = model.hf_state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{path}: missing tensors {missing[:8]}, unexpected tensors {unexpected[:8]}")
    with torch.no_grad():
        for name, t in expected.items():
            src = tensors[name]
            if tuple(src.shape) != tuple(t.shape):
                raise ValueError(f"{path}: {name} has shape {tuple(src.shape)}, expected {tuple(t.shape)}")
            t.copy_(src.to(t.dtype))
    return model.to(dtype)


def save_model_dir(model, config, path):
    """Write config.json (the given HF config dict) + model.safetensors (float32, HF names)."""
    os.makedirs(path, exist_ok=True)
    if isinstance(config, Config):
        config = config.to_dict()
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    write_safetensors(os.path.join(path, "model.safetensors"), model.hf_state_dict(), {"format": "pt"})


def init_random(model, seed, std=0.1, norm_noise=0.1):
    """Deterministic init: every weight/bias ~ N(0, std), every norm weight ~ 1 + N(0, norm_noise).
    Parameters are visited in sorted HF-name order with one seeded generator."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if "norm" in name.split(".")[-2]:
                p.copy_(1.0 + norm_noise * r)
            else:
                p.copy_(std * r)
    return model
