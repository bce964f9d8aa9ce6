"""AKOrN Kuramoto-layer throughput at the object-discovery experiment's size, JAX vs numpy.

Both sides run the same update (attentive J, GroupNorm-free c, global Omega, T steps,
x <- normalize(x + gamma (Omega x + Proj_x(c + J x)))) on the same float32 data in this
process; the numpy side is a straightforward vectorised implementation (BLAS matmuls).
Prints oscillator-layer steps/s (one step = one update of the whole batch), the ratio and
the achieved GFLOP/s of the JAX side (attention + projections; elementwise work ignored).
Timings are medians of ``--repeats`` runs; the CPU may be shared, so they are noisy.

    python benchmarks/akorn.py            # CPU experiment size (batch 32, 8x8 tokens, ch 32)
    python benchmarks/akorn.py --gpu-size # paper size (batch 256, 16x16 tokens, ch 256)
    python benchmarks/akorn.py --quick
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import median_time  # benchmarks/ is on sys.path


def _np_layer(x, c, wqkv, wout, omega, gamma, n, heads, T):
    b, ntok, ch = x.shape
    d = ch // heads

    def norm(v):
        g = v.reshape(b, ntok, ch // n, n)
        return (g / np.sqrt((g * g).sum(-1, keepdims=True) + 1e-12)).reshape(b, ntok, ch)

    x = norm(x)
    for _ in range(T):
        q, k, v = np.split(x @ wqkv, 3, axis=-1)
        q, k, v = (t.reshape(b, ntok, heads, d).transpose(0, 2, 1, 3) for t in (q, k, v))
        a = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        y = (a @ v).transpose(0, 2, 1, 3).reshape(b, ntok, ch) @ wout + c
        gx, gy = x.reshape(b, ntok, ch // n, n), y.reshape(b, ntok, ch // n, n)
        gy = gy - (gy * gx).sum(-1, keepdims=True) * gx
        p = x.reshape(b, ntok, ch // n, n // 2, 2)
        rot = np.stack([-omega * p[..., 1], omega * p[..., 0]], -1).reshape(b, ntok, ch)
        x = norm(x + gamma * (rot + gy.reshape(b, ntok, ch)))
    return x


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small size, few repeats")
    ap.add_argument("--gpu-size", action="store_true", help="the paper's size (slow on CPU)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)

    import jax
    import jax.numpy as jnp
    from flax import nnx

    from brainmodels.akorn import AttentionCoupling, KuramotoLayer

    b, side, ch, heads, T = (256, 16, 256, 8, 8) if args.gpu_size else (32, 8, 32, 4, 4)
    if args.quick:
        b, side, ch, heads, T, args.repeats = 8, 4, 16, 2, 4, 3
    n, gamma, omega = 4, 1.0, 0.1
    J = AttentionCoupling(ch, heads, rngs=nnx.Rngs(0))
    layer = KuramotoLayer(ch, n=n, coupling=J, T=T, gamma=gamma, omega=omega, c_norm=False,
                          rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((b, side, side, ch)).astype(np.float32)
    c = rng.standard_normal((b, side, side, ch)).astype(np.float32)
    run = nnx.jit(lambda m, x, c: m(x, c).final)
    xj, cj = jnp.asarray(x), jnp.asarray(c)
    run(layer, xj, cj).block_until_ready()  # compile once
    t_jax = median_time(lambda: run(layer, xj, cj), args.repeats).median

    wqkv = np.asarray(J.qkv.kernel[...])
    wout = np.asarray(J.out.kernel[...])
    xs, cs = x.reshape(b, -1, ch), c.reshape(b, -1, ch)
    ref = _np_layer(xs, cs, wqkv, wout, np.float32(omega), gamma, n, heads, T)
    got = np.asarray(run(layer, xj, cj)).reshape(ref.shape)
    err = float(np.abs(ref - got).max())
    t_np = median_time(lambda: _np_layer(xs, cs, wqkv, wout, np.float32(omega), gamma, n,
                                          heads, T), args.repeats).median
    tokens = side * side
    flops = T * b * (2 * tokens * ch * 3 * ch + 4 * tokens * tokens * ch + 2 * tokens * ch * ch)
    print(f"AKOrN attentive Kuramoto layer: batch {b}, {side}x{side} tokens, {ch} channels "
          f"(N={n}), T={T}; median of {args.repeats}; devices: {jax.devices()}")
    print(f"  max |jax - numpy| after T steps: {err:.2e}")
    print(f"  jax   : {t_jax * 1e3:8.2f} ms/call  {T / t_jax:9.1f} layer steps/s  "
          f"{flops / t_jax / 1e9:6.2f} GFLOP/s")
    print(f"  numpy : {t_np * 1e3:8.2f} ms/call  {T / t_np:9.1f} layer steps/s  "
          f"{flops / t_np / 1e9:6.2f} GFLOP/s")
    print(f"  speed-up jax / numpy: {t_np / t_jax:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
