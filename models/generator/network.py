"""A small decoder-only transformer (pre-norm, learned positions, tied embeddings) with a KV cache.

Positions are counted from the end of the prompt, not from the start of the sequence: the first middle
token sits at position ``max_len`` in every example, so the middle is always written at the same
positions however long its prefix and suffix are (counted from the start, a longer context pushed the
middle to positions seen less in training, which cost more than the suffix gave).

Each token also carries where it sits (``vocab.annotate``): its segment (header, prefix, suffix, middle)
and its bar counted from the gap's first bar, so the suffix's bars line up with the middle's; and every
middle token carries the density target. These three tables start at zero, so a checkpoint trained
without them starts fine-tuning from exactly what it computed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from reascribe.models.generator.vocab import BAR_ROWS, MIDDLE, N_DENSITY, SEGMENTS


@dataclass(frozen=True)
class Config:
    vocab_size: int
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    max_len: int = 768
    dropout: float = 0.1

    def as_dict(self) -> dict:
        return asdict(self)


class Block(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        hidden = 4 * cfg.d_model
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, hidden), nn.GELU(), nn.Linear(hidden, cfg.d_model))
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor, cache: "KVCache | None", mask: torch.Tensor | None = None) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        if cache is not None and cache.shared is not None:
            y = cache.attend_shared(q, k, v)
        else:
            if cache is not None:
                k, v = cache.append(k, v)
            # Without a mask, a cached single step attends to everything before it and a fresh block is causal.
            causal = mask is None and k.shape[2] == t
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                               dropout_p=self.dropout if self.training else 0.0)
        x = x + F.dropout(self.proj(y.transpose(1, 2).reshape(b, t, d)), self.dropout, self.training)
        return x + F.dropout(self.mlp(self.norm2(x)), self.dropout, self.training)


class InfillNet(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.position = nn.Embedding(2 * cfg.max_len, cfg.d_model)
        self.segment = nn.Embedding(len(SEGMENTS), cfg.d_model)
        self.bar = nn.Embedding(BAR_ROWS, cfg.d_model)
        self.density = nn.Embedding(N_DENSITY, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.d_model)
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.position.weight, std=0.02)
        for table in (self.segment, self.bar, self.density):
            nn.init.zeros_(table.weight)

    def new_caches(self, batch: int) -> list["KVCache"]:
        return [KVCache(batch, self.cfg) for _ in self.blocks]

    def forward(self, tokens: torch.Tensor, prompt: torch.Tensor | int, where: torch.Tensor, density: torch.Tensor,
                caches: list["KVCache"] | None = None, pad: torch.Tensor | None = None) -> torch.Tensor:
        """Logits for the next token at every position; ``caches`` (from ``new_caches``) fill as it goes.

        ``prompt`` is the prompt's length (through MID), per row or for all; ``tokens`` go on from the
        caches' length. ``where`` holds each token's (segment, bar row), ``density`` each row's density
        bin (``vocab.annotate``). ``pad`` (per row) counts PAD tokens on the left of rows shorter than the
        batch's longest prompt: they are never attended to.
        """
        t = tokens.shape[1]
        start = caches[0].length if caches else 0
        steps = torch.arange(start, start + t)
        prompt = torch.as_tensor(prompt).reshape(-1, 1)
        positions = (steps[None] + self.cfg.max_len - prompt).clamp(0, 2 * self.cfg.max_len - 1)
        segment, bar = where.unbind(-1)
        x = self.embed(tokens) + self.position(positions) + self.segment(segment) + self.bar(bar)
        x = x + (segment == MIDDLE)[..., None] * self.density(density)[:, None]
        mask = None
        if pad is not None:
            keys = torch.arange(start + t)
            # Real keys, in causal order; a pad query sees itself only, so its softmax stays finite.
            mask = (keys[None, None] >= pad[:, None, None]) & (keys[None, None] <= steps[None, :, None])
            mask = (mask | (keys[None, None] == steps[None, :, None]))[:, None]
        for i, block in enumerate(self.blocks):
            x = block(x, None if caches is None else caches[i], mask)
        return self.norm(x) @ self.embed.weight.T


class KVCache:
    """Keys and values of one layer, preallocated for the whole window so a step copies one row.

    After ``share``, every row goes on from one prompt: its keys and values are kept once, not per row.
    A sampling step reads every key in the cache, so at a few hundred prompt tokens and 8 to 32 rows the
    per-row copies made each step memory-bound (measured 1.5 times slower than reading the prompt once
    at 8 rows, 5 times at 32)."""

    def __init__(self, batch: int, cfg: Config):
        shape = (batch, cfg.n_heads, cfg.max_len, cfg.d_model // cfg.n_heads)
        self.k, self.v, self.length = torch.empty(shape), torch.empty(shape), 0
        self.shared: tuple[torch.Tensor, torch.Tensor] | None = None  # the prompt's (1, heads, length, dim)
        self.prompt = 0  # tokens in ``shared``; the rows' own keys start after them

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows' own keys and values so far, ``k`` and ``v`` added."""
        start, end = self.length - self.prompt, self.length - self.prompt + k.shape[2]
        self.k[:, :, start:end] = k
        self.v[:, :, start:end] = v
        self.length += k.shape[2]
        return self.k[:, :, :end], self.v[:, :, :end]

    def share(self, batch: int) -> None:
        """Go on from this one-row cache in ``batch`` rows, which read its keys as one."""
        self.prompt = self.length
        self.shared = self.k[:, :, : self.prompt].clone(), self.v[:, :, : self.prompt].clone()
        _, heads, window, dim = self.k.shape
        own = (batch, heads, window - self.prompt, dim)
        self.k, self.v = torch.empty(own), torch.empty(own)

    def attend_shared(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Attention of queries ``q`` (batch, heads, t, dim) to the shared prompt and to each row's own
        keys so far, ``k`` and ``v`` among them (causal within those)."""
        t, dim = q.shape[2], q.shape[3]
        own_k, own_v = self.append(k, v)
        prompt_k, prompt_v = self.shared
        # (t, heads, batch, dim) queries against the one row of prompt keys: every row's in one product.
        to_prompt = (q.transpose(0, 2) @ prompt_k.transpose(-1, -2)).transpose(0, 2)
        to_own = q @ own_k.transpose(-1, -2)
        if t > 1:
            later = torch.ones(t, own_k.shape[2], dtype=torch.bool).triu(own_k.shape[2] - t + 1)
            to_own = to_own.masked_fill(later, float("-inf"))
        weights = torch.softmax(torch.cat([to_prompt, to_own], -1) * dim**-0.5, -1)
        from_prompt = (weights[..., : self.prompt].transpose(0, 2) @ prompt_v).transpose(0, 2)
        return from_prompt + weights[..., self.prompt :] @ own_v
