"""BrainPy peer for ``benchmarks/snn.py``: the CUBA and COBA presets rebuilt in BrainPy.

Same networks as ``brainmodels.snn.presets.cuba`` / ``coba``: ``n`` LIF neurons (first 80 %
excitatory), pairs connected independently with probability ``p`` (autapses allowed), no
transmission delay, exponential current (CUBA) or conductance (COBA, relative to the leak)
synapses. Built with BrainPy's event-driven align-post path: ``bp.dyn.LifRef`` + one
``bp.dyn.ProjAlignPostMg1`` per presynaptic type carrying a ``bp.dnn.EventCSRLinear`` over a
``bp.conn.CSRConn`` (a numpy Bernoulli draw; ``bp.conn.FixedProb`` would fix the out-degree),
an ``Expon`` synapse and a ``CUBA``/``COBA`` output; the 1 s run is one jitted
``bm.for_loop`` over ``step_run`` in float32 on the CPU.

Semantics that differ slightly from brainmodels/brian2 (rates agree within run-to-run spread):
a spike is added to ``g`` which then decays one step before the membrane uses it, and the
synaptic current is frozen over a step (exponential integration of the leak only).

    python benchmarks/_brainpy_peer.py
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

# name -> (E_l, exc weight, inh weight, drive in mV, reversal potentials or None for CUBA)
_MODELS = {"cuba": (-49.0, 1.62, -9.0, 0.0, None),
           "coba": (-60.0, 0.6, 6.7, 20.0, (0.0, -80.0))}
_METHOD = ("bp.dyn.LifRef + 2x bp.dyn.ProjAlignPostMg1(bp.dnn.EventCSRLinear(bp.conn.CSRConn),"
           " bp.dyn.Expon, bp.dyn.{out}); bm.jit(bm.for_loop(step_run)), float32, CPU,"
           " brainevent {backend} kernels")


def available() -> str | None:
    """BrainPy's version, or None when it cannot be imported beside this project's jax."""
    try:
        import brainpy
    except Exception:  # noqa: BLE001 - any import failure means "no peer"
        return None
    return str(brainpy.__version__)


def _event_backend() -> str:
    """brainevent's numba CPU kernels when numba is installed, else its pure-JAX fallback."""
    import brainevent

    try:
        import numba  # noqa: F401
        backend = "numba"
    except ImportError:
        backend = "jax_raw"
    brainevent.config.set_backend("cpu", backend)
    return backend


def _bernoulli_csr(rng, n_pre: int, n_post: int, p: float):
    """CSR (indices, indptr) of an n_pre x n_post matrix with independent Bernoulli(p) entries."""
    counts = rng.binomial(n_post, p, size=n_pre)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    rows = [np.sort(rng.choice(n_post, size=c, replace=False)) for c in counts]
    indices = np.concatenate(rows).astype(np.int32) if rows else np.zeros(0, np.int32)
    return indices, indptr


def _build(model: str, n: int, seed: int, p: float = 0.02):
    import brainpy as bp

    e_l, we, wi, drive, rev = _MODELS[model]
    n_exc = int(round(0.8 * n))
    rng = np.random.default_rng(seed)
    if rev is None:
        v0 = -60.0 + 10.0 * rng.random(n)
    else:
        v0 = -55.0 + 5.0 * rng.standard_normal(n)
    v0 = v0.astype(np.float32)
    conns = [_bernoulli_csr(rng, size, n, p) for size in (n_exc, n - n_exc)]

    class EINet(bp.DynSysGroup):
        def __init__(self):
            super().__init__()
            self.N = bp.dyn.LifRef(n, V_rest=e_l, V_th=-50.0, V_reset=-60.0, tau=20.0,
                                   tau_ref=5.0, R=1.0, V_initializer=bp.init.Constant(0.0))
            projs = []
            for (ind, ptr), w, tau, k in zip(conns, (we, wi), (5.0, 10.0), (0, 1), strict=True):
                conn = bp.conn.CSRConn(ind, ptr)(pre_size=ptr.size - 1, post_size=n)
                out = bp.dyn.CUBA.desc() if rev is None else bp.dyn.COBA.desc(E=rev[k])
                projs.append(bp.dyn.ProjAlignPostMg1(
                    comm=bp.dnn.EventCSRLinear(conn, w), syn=bp.dyn.Expon.desc(n, tau=tau),
                    out=out, post=self.N))
            self.E, self.I = projs

        def update(self):
            spk = self.N.spike.value  # last step's spikes, delivered without delay
            self.E(spk[:n_exc])
            self.I(spk[n_exc:])
            return self.N(drive).sum(dtype=np.int32)

    return EINet(), v0


def run(model: str, *, n: int = 4000, duration_ms: float = 1000.0, dt_ms: float = 0.1,
        seed: int = 0, repeats: int = 3) -> dict:
    """Time ``duration_ms`` of the ``model`` ("cuba" / "coba") network in BrainPy."""
    import brainpy as bp
    import brainpy.math as bm

    if model not in _MODELS:
        raise ValueError(f"model must be one of {sorted(_MODELS)}, got {model!r}")
    bm.set_platform("cpu")
    backend = _event_backend()
    bm.set_environment(bm.NonBatchingMode(), dt=dt_ms, float_=bm.float32)
    net, v0 = _build(model, n, seed)
    steps = bm.arange(int(round(duration_ms / dt_ms)))
    sim = bm.jit(lambda idx: bm.for_loop(net.step_run, idx))

    def once():
        net.reset_state()
        net.N.V.value = bm.asarray(v0)
        t0 = time.perf_counter()
        counts = sim(steps)
        counts = bm.as_jax(counts).block_until_ready()
        return time.perf_counter() - t0, counts

    first, counts = once()
    times = [once()[0] for _ in range(repeats)]
    run_s = float(np.median(times))
    n_spikes = int(np.asarray(counts).sum())
    return {"run_s": run_s, "compile_s": first - run_s,
            "rate_hz": n_spikes / n / (duration_ms / 1000.0), "n_spikes": n_spikes,
            "method": _METHOD.format(out=model.upper(), backend=backend),
            "version": bp.__version__}


if __name__ == "__main__":
    version = available()
    if version is None:
        print("brainpy is not importable")
    else:
        for name in ("cuba", "coba"):
            r = run(name)
            print(f"brainpy {version} {name}: run {r['run_s']:.3f} s, compile "
                  f"{r['compile_s']:.3f} s, {r['rate_hz']:.2f} Hz ({r['n_spikes']} spikes)")
            print(f"  {r['method']}")
