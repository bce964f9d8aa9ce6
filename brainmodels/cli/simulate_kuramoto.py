"""``brainmodels simulate kuramoto``: a coupling sweep of the classic Kuramoto model.

Writes ``kuramoto_sweep.nc`` (order parameter r(t) for every coupling x seed, the stationary
r and the N -> inf theory), ``order_parameter_time.png`` (r(t)) and
``order_parameter_vs_coupling.png`` (stationary r against K with the analytic curve).
"""

from __future__ import annotations

import argparse

from brainmodels.cli._common import add_out_argument, add_seed_argument, format_table, progress

_DISTRIBUTIONS = ("lorentzian", "gaussian", "uniform")


def parse_couplings(text: str) -> list[float]:
    """``"START:STOP:NUM"`` (inclusive linspace) or a comma-separated list of couplings."""
    try:
        if ":" in text:
            start, stop, num = text.split(":")
            num = int(num)
            if num < 1:
                raise ValueError
            step = (float(stop) - float(start)) / max(num - 1, 1)
            return [float(start) + i * step for i in range(num)]
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--coupling must be START:STOP:NUM (e.g. 0:4:41) or a list like 1,2,3; got {text!r}"
        ) from None


def register(sub) -> None:
    parser = sub.add_parser(
        "kuramoto",
        help="sweep the coupling of N all-to-all Kuramoto oscillators",
        description=(
            "Simulate N Kuramoto phase oscillators,\n"
            "    dtheta_i/dt = omega_i + (K/N) sum_j sin(theta_j - theta_i - lag) (+ noise),\n"
            "for every coupling K and seed in one vectorised call (mean field, O(N) per step),\n"
            "and compare the stationary order parameter r (mean over the second half of the\n"
            "run) with the N -> inf theory: K_c = 2 / (pi g(0)); r = sqrt(1 - K_c/K) for\n"
            "Lorentzian frequencies, the self-consistency integral otherwise."
        ),
        epilog=(
            "example: brainmodels simulate kuramoto --n 10000 --coupling 0:4:41 --out runs/k\n"
            "outputs: kuramoto_sweep.nc, order_parameter_time.png, "
            "order_parameter_vs_coupling.png"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--n", type=int, default=10_000, help="number of oscillators (default: 10000)")
    parser.add_argument("--coupling", type=parse_couplings, default=parse_couplings("0:4:41"),
                        metavar="START:STOP:NUM",
                        help="couplings K: inclusive range START:STOP:NUM or a list 1,2,3 "
                             "(default: 0:4:41)")
    parser.add_argument("--distribution", choices=_DISTRIBUTIONS, default="lorentzian",
                        help="natural-frequency density (default: lorentzian)")
    parser.add_argument("--width", type=float, default=1.0,
                        help="half-width gamma (lorentzian), sigma (gaussian) or support "
                             "half-width (uniform) (default: 1.0)")
    parser.add_argument("--sampling", choices=("quantile", "random"), default="quantile",
                        help="deterministic quantile frequencies or random draws per seed "
                             "(default: quantile)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="number of seeds (initial phases/noise), from --seed (default: 1)")
    parser.add_argument("--r0", type=float, default=0.1,
                        help="initial order parameter in [0, 1) (default: 0.1)")
    parser.add_argument("--lag", type=float, default=0.0, help="Sakaguchi phase lag (rad)")
    parser.add_argument("--noise", type=float, default=0.0, help="noise intensity D >= 0")
    parser.add_argument("--dt", type=float, default=0.1, help="time step (default: 0.1)")
    parser.add_argument("--steps", type=int, default=1000, help="number of steps (default: 1000)")
    parser.add_argument("--method", choices=("euler", "heun", "rk4"), default="rk4",
                        help="integrator (default: rk4; Euler-Maruyama noise is added after it)")
    parser.add_argument("--record-every", type=int, default=10,
                        help="record r every this many steps (default: 10)")
    parser.add_argument("--batch", type=int, default=-1,
                        help="couplings per vectorised call (default: a tenth of them, so the "
                             "progress bar moves and memory stays low; 0 = all at once); every "
                             "batch reuses one compiled program, and the results agree to "
                             "float32 rounding")
    add_seed_argument(parser)
    add_out_argument(parser, "kuramoto_output")
    parser.set_defaults(func=run)


def _run_sweep(args):
    import numpy as np
    import xarray as xr

    from brainmodels import kuramoto as km

    ks = np.asarray(args.coupling, dtype=float)
    batch = {-1: -(-len(ks) // 10), 0: len(ks)}.get(args.batch, args.batch)
    if batch < 1:
        raise ValueError(f"--batch must be >= 0 (0: all couplings at once), got {args.batch}")
    n_chunks = -(-len(ks) // batch)
    padded = np.concatenate([ks, np.full(n_chunks * batch - len(ks), ks[-1])])
    seeds = list(range(args.seed, args.seed + args.seeds))
    parts = []
    for i in progress(range(n_chunks), total=n_chunks, desc="kuramoto sweep"):
        parts.append(km.sweep(
            padded[i * batch:(i + 1) * batch], n=args.n, distribution=args.distribution,
            width=args.width, sampling=args.sampling, seeds=seeds, r0=args.r0,
            params=km.KuramotoParams(coupling=0.0, omega=None, lag=args.lag, noise=args.noise),
            dt=args.dt, steps=args.steps, method=args.method,
            record_every=args.record_every))
    ds = parts[0] if len(parts) == 1 else xr.concat(
        parts, dim="coupling", data_vars="minimal", coords="minimal", compat="override",
        combine_attrs="override")
    ds = ds.isel(coupling=slice(0, len(ks)))
    half = ds.sizes["time"] // 2
    ds["order_parameter_stationary"] = ds.order_parameter.isel(time=slice(half, None)).mean("time")
    ds["order_parameter_stationary"].attrs["description"] = "mean r over the second half of the run"
    return ds


def _plots(ds, args):
    from brainmodels import kuramoto as km

    fig_t = km.plot_order_parameter(ds)
    fig_t.axes[0].set_title(f"Kuramoto, N = {args.n}, {args.distribution} frequencies")
    fig_k = km.plot_sweep(ds)
    fig_k.axes[0].set_title("order parameter against coupling")
    return fig_t, fig_k


def run(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from brainmodels._io import savefig_atomic
    from brainmodels.data import save_netcdf

    if args.n < 1:
        raise ValueError(f"--n must be a positive number of oscillators, got {args.n}")
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    if not args.coupling:
        raise ValueError("--coupling must name at least one coupling strength")
    ds = _run_sweep(args)
    out = args.out
    save_netcdf(ds, out / "kuramoto_sweep.nc")
    fig_t, fig_k = _plots(ds, args)
    savefig_atomic(fig_t, out / "order_parameter_time.png", dpi=120, bbox_inches="tight")
    savefig_atomic(fig_k, out / "order_parameter_vs_coupling.png", dpi=120, bbox_inches="tight")
    plt.close(fig_t)
    plt.close(fig_k)
    theory = ds.get("order_parameter_theory")
    rows = [{"K": float(k), "r (sim)": float(ds.order_parameter_stationary.sel(coupling=k)
                                             .mean()),
             "r (theory)": float(theory.sel(coupling=k)) if theory is not None else np.nan}
            for k in ds.coupling.values]
    print(format_table(rows))
    if "critical_coupling" in ds.attrs:
        print(f"K_c (N -> inf) = {ds.attrs['critical_coupling']:.4f}")
    return 0
