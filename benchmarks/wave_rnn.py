"""Wave-RNN training throughput against the iRNN and GRU of the same hidden size, and a numpy peer.

Times one jitted Adam step (forward + BPTT + update) on the copy task (T = 30, 50 steps per
sequence) for wRNN 100 x 6, iRNN-100 and GRU-100, and prints sequences/s. torch is not
installed here, so the peer is the same wRNN forward pass written in plain numpy (circular
padding + loop over taps, as PyTorch's circular Conv1d): its outputs must match the JAX model
(float32, max abs difference printed) and its forward throughput is printed beside JAX's.
Timings are medians of ``--repeats`` runs; the CPU may be shared, so they are noisy. On a GPU
the same script prints the device's figures.

    python benchmarks/wave_rnn.py [--quick] [--batch 64]
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import median_time  # benchmarks/ is on sys.path


def numpy_wave_forward(x, we, be, wk, bk, wr, br, c, n):
    """wRNN forward pass in numpy: h_t = ReLU(W_x x_t + b + conv_circ(h_{t-1}) + b_u)."""
    b, steps, _ = x.shape
    k = wk.shape[-1]
    p = k // 2
    h = np.zeros((b, c, n), np.float32)
    ys = []
    for t in range(steps):
        hp = np.concatenate([h[..., n - p:], h, h[..., :p]], axis=-1)
        rec = sum(np.einsum("oc,bcn->bon", wk[:, :, j], hp[:, :, j:j + n]) for j in range(k))
        h = np.maximum((x[:, t] @ we + be).reshape(b, c, n) + rec + bk[None, :, None], 0.0)
        ys.append(h.reshape(b, c * n) @ wr + br)
    return np.stack(ys, 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats = 2

    import jax
    from flax import nnx

    from brainmodels.datasets import copy_memory_task
    from brainmodels.training import TrainConfig, make_optimizer
    from brainmodels.wave_rnn import OBJECTIVES, build_model, count_params

    t = copy_memory_task(delay=30, n_train=args.batch, n_test=1)
    batch = {"x": t.x_train, "y": t.y_train, "mask": t.mask_train}
    loss_fn = OBJECTIVES["sequence"]
    print(f"device: {jax.devices()[0].platform}; copy task T=30 ({t.n_steps} steps), "
          f"batch {args.batch}")
    for name, size in (("wave-rnn", dict(n_channels=6)), ("irnn", {}), ("gru", {})):
        model = build_model(name, 10, 10, n_neurons=100, **size)
        opt = make_optimizer(model, TrainConfig(lr=1e-3))

        @nnx.jit
        def step(model, opt, batch):
            (loss, _), g = nnx.value_and_grad(loss_fn, has_aux=True)(model, batch)
            opt.update(model, g)
            return loss

        step(model, opt, batch).block_until_ready()  # compile
        tm = median_time(lambda: step(model, opt, batch), args.repeats)  # noqa: B023
        print(f"  train {name:8s} ({count_params(model):6,d} params): "
              f"{args.batch / tm.median:8.0f} sequences/s")
    model = build_model("wave-rnn", 10, 10, n_neurons=100, n_channels=6, seed=1)
    fwd = nnx.jit(lambda m, x: m(x))
    y_jax = np.asarray(fwd(model, t.x_train))
    ro = model.readout.layers[0]
    params = [np.asarray(a) for a in (model.encode.kernel.value, model.encode.bias.value,
                                      model.kernel.value, model.bias.value, ro.kernel.value,
                                      ro.bias.value)]
    tn = median_time(lambda: numpy_wave_forward(t.x_train, *params, 6, 100), args.repeats)
    tj = median_time(lambda: fwd(model, t.x_train), args.repeats)
    print(f"  forward wave-rnn: jax {args.batch / tj.median:8.0f} seq/s, numpy "
          f"{args.batch / tn.median:8.0f} seq/s; max |y_jax - y_numpy| = "
          f"{np.abs(y_jax - tn.out).max():.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
