"""``brainmodels simulate cuba|coba``: the Brette et al. (2007) spiking benchmark networks.

Writes ``<model>_spikes.nc`` (spike events, population rate, provenance attrs) and
``<model>_raster.png`` (spike raster and population rate) into ``--out``, and prints the mean
rate and CV of interspike intervals. ``--compare-brian2`` also runs the identical network in
brian2 and prints the comparison.
"""

from __future__ import annotations

import argparse
import re

from brainmodels.cli._common import add_out_argument, add_seed_argument

_DESCRIPTIONS = {
    "cuba": "current-based LIF network (Brette et al. 2007, brian2 examples/CUBA.py, ~5.5 Hz)",
    "coba": "conductance-based LIF network (Brette et al. 2007 COBA, E_e = 0, E_i = -80 mV)",
}
_UNITS_MS = {"ms": 1.0, "s": 1000.0, "": 1.0}


def parse_duration_ms(text: str) -> float:
    """``"1s"`` -> 1000.0, ``"250ms"`` -> 250.0, ``"100"`` -> 100.0 (ms)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*(ms|s|)\s*", str(text))
    if match is None:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 1s, 250ms or 100 (ms), got {text!r}")
    value = float(match.group(1)) * _UNITS_MS[match.group(2)]
    if value <= 0:
        raise argparse.ArgumentTypeError(f"duration must be positive, got {text!r}")
    return value


def register(sub) -> None:
    for name, description in _DESCRIPTIONS.items():
        parser = sub.add_parser(
            name, help=description,
            description=f"Simulate the {description} and write spikes (netCDF) and a raster "
                        "+ population-rate plot (PNG).",
            epilog=f"example: brainmodels simulate {name} --duration 1s --out results/",
        )
        parser.add_argument("--duration", type=parse_duration_ms, default=1000.0,
                            help="simulated time, e.g. 1s or 500ms (default: 1s)")
        parser.add_argument("--dt", type=parse_duration_ms, default=0.1,
                            help="time step, e.g. 0.1ms (default: 0.1ms)")
        parser.add_argument("--n", type=int, default=4000,
                            help="number of neurons (80%% excitatory; default: 4000)")
        parser.add_argument("--compare-brian2", action="store_true",
                            help="also run the identical network in brian2 (cython target) "
                                 "and print rates, CV-ISI and spike agreement side by side")
        add_seed_argument(parser)
        add_out_argument(parser, default="snn_output")
        parser.set_defaults(func=run, preset=name)


def _plot(res, path, title: str) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    from brainmodels._io import savefig_atomic

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    t, i = res["spike_time"].values, res["spike_neuron"].values
    shown = i < 1000
    ax1.plot(t[shown], i[shown], ",k", rasterized=True)
    ax1.set_ylabel("neuron (first 1000)")
    ax1.set_title(title)
    for name in res.attrs["populations"]:
        ax2.plot(res["time"].values, np.asarray(res[f"rate_{name}"].values), lw=0.8, label=name)
    ax2.set_xlabel("time (ms)")
    ax2.set_ylabel("rate (Hz)")
    fig.tight_layout()
    savefig_atomic(fig, path, dpi=120)
    plt.close(fig)


def run(args) -> int:
    import jax

    from brainmodels import snn
    from brainmodels.cli._common import format_table
    from brainmodels.data import save_netcdf

    net = {"cuba": snn.cuba, "coba": snn.coba}[args.preset](seed=args.seed, n=args.n)
    print(f"simulating {args.preset}: {args.n} neurons, {args.duration:g} ms at dt = "
          f"{args.dt:g} ms (compiling, then running)...")
    res = snn.simulate(net, duration_ms=args.duration, dt_ms=args.dt,
                       key=jax.random.key(args.seed))
    out = args.out
    save_netcdf(res, out / f"{args.preset}_spikes.nc")
    png = out / f"{args.preset}_raster.png"
    summary = snn.population_summary(res)["P"]
    _plot(res, png, f"{args.preset.upper()}: {summary['rate_hz']:.2f} Hz, "
                    f"CV-ISI {summary['cv_isi']:.2f}")
    rows = [{"model": args.preset, "neurons": args.n, "spikes": summary["n_spikes"],
             "rate_hz": summary["rate_hz"], "cv_isi": summary["cv_isi"]}]
    print(format_table(rows))
    if args.compare_brian2:
        ref = snn.run_brian2(net, args.duration, args.dt, target="cython")
        print(format_table(snn.compare(res, ref)))
    return 0
