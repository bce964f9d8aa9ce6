"""Transformer pieces of the nonlinear encoders: pre-norm attention blocks that return their
attention weights (the encoders expose them)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = ["Attention", "Block", "FeedForward"]


class Attention(nnx.Module):
    """Multi-head attention of queries ``(B, Q, d)`` over keys/values ``(B, T, d)``.

    Returns ``(out (B, Q, d), weights (B, heads, Q, T))``. ``mask (B, T)`` (True = attend)
    leaves tokens out; a query that can attend nowhere gets zeros.
    """

    def __init__(self, d: int, heads: int, *, rngs: nnx.Rngs):
        if d % heads:
            raise ValueError(f"d_model ({d}) must be divisible by heads ({heads})")
        self.heads = heads
        self.q = nnx.Linear(d, d, rngs=rngs)
        self.k = nnx.Linear(d, d, rngs=rngs)
        self.v = nnx.Linear(d, d, rngs=rngs)
        self.o = nnx.Linear(d, d, rngs=rngs)

    def __call__(self, x: jax.Array, context: jax.Array,
                 mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        b, nq, d = x.shape
        t, h = context.shape[1], self.heads
        q = self.q(x).reshape(b, nq, h, d // h)
        k = self.k(context).reshape(b, t, h, d // h)
        v = self.v(context).reshape(b, t, h, d // h)
        logits = jnp.einsum("bqhe,bthe->bhqt", q, k) / jnp.sqrt(d // h).astype(x.dtype)
        if mask is not None:
            logits = jnp.where(mask[:, None, None, :], logits, -1e30)
        w = jax.nn.softmax(logits, axis=-1)
        if mask is not None:
            w = jnp.where(mask[:, None, None, :], w, 0.0)
        out = jnp.einsum("bhqt,bthe->bqhe", w, v).reshape(b, nq, d)
        return self.o(out), w


class FeedForward(nnx.Module):
    def __init__(self, d: int, expansion: int, *, rngs: nnx.Rngs):
        self.up = nnx.Linear(d, expansion * d, rngs=rngs)
        self.down = nnx.Linear(expansion * d, d, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.down(jax.nn.gelu(self.up(x)))


class Block(nnx.Module):
    """Pre-norm block: ``x + attn(LN x, LN context)``, then ``x + FFN(LN x)``.

    Self-attention when ``context`` is None (the normalised ``x`` itself)."""

    def __init__(self, d: int, heads: int, expansion: int = 4, *, rngs: nnx.Rngs):
        self.norm_q = nnx.LayerNorm(d, rngs=rngs)
        self.norm_kv = nnx.LayerNorm(d, rngs=rngs)
        self.attn = Attention(d, heads, rngs=rngs)
        self.norm_ff = nnx.LayerNorm(d, rngs=rngs)
        self.ff = FeedForward(d, expansion, rngs=rngs)

    def __call__(self, x: jax.Array, context: jax.Array | None = None,
                 mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        q = self.norm_q(x)
        kv = q if context is None else self.norm_kv(context)
        a, w = self.attn(q, kv, mask)
        x = x + a
        return x + self.ff(self.norm_ff(x)), w
