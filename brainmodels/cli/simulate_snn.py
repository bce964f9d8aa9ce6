"""``brainmodels simulate cuba|coba|brunel``: the Brette et al. (2007) spiking benchmark
networks and Brunel's (2000) model A.

Writes ``<model>_spikes.nc`` (spike events, population rate, provenance attrs) and
``<model>_raster.png`` (spike raster and population rate) into ``--out``, and prints the mean
rate and CV of interspike intervals. ``--compare-brian2`` also runs the identical network in
brian2 and prints the comparison.
"""

from __future__ import annotations

import argparse
import re

from brainmodels.cli._common import add_out_argument, add_seed_argument, progress

_DESCRIPTIONS = {
    "cuba": "current-based LIF network (Brette et al. 2007, brian2 examples/CUBA.py, ~5.5 Hz)",
    "coba": "conductance-based LIF network (Brette et al. 2007 COBA, E_e = 0, E_i = -80 mV)",
    "brunel": "Brunel (2000) model A: sparse E/I LIF network, delta synapses, Poisson drive",
}
_TITLES = {"cuba": "CUBA", "coba": "COBA", "brunel": "Brunel A"}
_UNITS_MS = {"ms": 1.0, "s": 1000.0}
#: simulated time from which the run shows a progress bar (10 s: ~1 s of wall time and more)
_METER_FROM_MS = 10_000.0
#: the rate plot's axis ignores the first this many ms (at most a fifth of the run)
_TRANSIENT_MS = 50.0


def parse_duration_ms(text: str) -> float:
    """``"1s"`` -> 1000.0, ``"250ms"`` -> 250.0; a bare number is refused (seconds or ms?).

    Examples
    --------
    >>> parse_duration_ms("1.5s"), parse_duration_ms("250ms")
    (1500.0, 250.0)
    >>> parse_duration_ms("1")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: '1' has no unit: write 1s (seconds) or 1ms (milliseconds)
    """
    number = r"\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*"
    bare = re.fullmatch(number, str(text))
    if bare is not None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no unit: write {bare.group(1)}s (seconds) or {bare.group(1)}ms "
            "(milliseconds)")
    match = re.fullmatch(number + r"(ms|s)\s*", str(text))
    if match is None:
        raise argparse.ArgumentTypeError(
            f"expected a duration with its unit, such as 1s or 250ms, got {text!r}")
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
        default_n = 10_000 if name == "brunel" else 4000
        parser.add_argument("--n", type=int, default=default_n,
                            help=f"number of neurons (80%% excitatory; default: {default_n})")
        if name == "brunel":
            parser.add_argument("--g", type=float, default=5.0,
                                help="relative inhibition g (default: 5; Brunel's Fig. 8: 3, "
                                     "6, 5, 4.5)")
            parser.add_argument("--eta", type=float, default=2.0,
                                help="external rate over the threshold rate (default: 2; "
                                     "Fig. 8: 2, 4, 2, 0.9)")
        parser.add_argument("--compare-brian2", action="store_true",
                            help="also run the identical network in brian2 (cython target) "
                                 "and print rates, CV-ISI and spike agreement side by side")
        add_seed_argument(parser)
        add_out_argument(parser, default="snn_output")
        parser.set_defaults(func=run, preset=name)


def rate_axis_limit(time, rates: dict) -> tuple[float | None, str]:
    """The rate plot's upper limit and its caption, or ``(None, "")`` to leave it as is.

    The start-up volley (neurons drawn near threshold fire together) would set the axis to
    several hundred Hz and flatten the steady state: the axis is scaled to what follows the
    first :data:`_TRANSIENT_MS` ms (at most a fifth of the run), and the caption says so.
    """
    import numpy as np

    transient = min(_TRANSIENT_MS, 0.2 * float(time[-1]))
    late = np.asarray(time) > transient
    if not late.any() or late.all():
        return None, ""
    top = max(float(np.max(r[late])) for r in rates.values())
    peak = max(float(np.max(r[~late])) for r in rates.values())
    if top <= 0 or peak <= 1.2 * top:
        return None, ""
    return 1.2 * top, (f"start-up volley off-scale: peak {peak:.0f} Hz in the first "
                       f"{transient:g} ms")


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
    time = res["time"].values
    rates = {name: np.asarray(res[f"rate_{name}"].values) for name in res.attrs["populations"]}
    for name, rate in rates.items():
        ax2.plot(time, rate, lw=0.8, label=name)
    top, note = rate_axis_limit(time, rates)
    if top is not None:
        ax2.set_ylim(0, top)
        ax2.text(0.99, 0.95, note, transform=ax2.transAxes, ha="right", va="top", fontsize=8)
    ax2.set_xlabel("time (ms)")
    ax2.set_ylabel("rate (Hz)")
    fig.tight_layout()
    savefig_atomic(fig, path, dpi=120)
    plt.close(fig)


def run(args) -> int:
    import jax
    import numpy as np

    from brainmodels import snn
    from brainmodels.cli._common import format_table
    from brainmodels.data import save_netcdf

    if args.preset == "brunel":
        if args.n < 50 or args.n % 5:
            raise SystemExit(f"--n must be a multiple of 5 of at least 50 (4 excitatory per "
                             f"inhibitory neuron), got {args.n}")
        net = snn.brunel(g=args.g, eta=args.eta, seed=args.seed, n_exc=args.n * 4 // 5)
    else:
        net = {"cuba": snn.cuba, "coba": snn.coba}[args.preset](seed=args.seed, n=args.n)
    print(f"simulating {args.preset}: {args.n} neurons, {args.duration:g} ms at dt = "
          f"{args.dt:g} ms (compiling, then running)...")
    # a meter for long runs only: segments cost a second compiled program
    meter = (lambda segments: progress(segments, desc="simulate")) \
        if args.duration >= _METER_FROM_MS else None
    res = snn.simulate(net, duration_ms=args.duration, dt_ms=args.dt,
                       key=jax.random.key(args.seed), progress=meter)
    out = args.out
    save_netcdf(res, out / f"{args.preset}_spikes.nc")
    png = out / f"{args.preset}_raster.png"
    summary = snn.population_summary(res)["P"]
    cv = summary["cv_isi"]  # NaN when no neuron fired twice: say so rather than print nan
    _plot(res, png, f"{_TITLES[args.preset]}: {summary['rate_hz']:.2f} Hz, "
                    + (f"CV-ISI {cv:.2f}" if np.isfinite(cv) else "CV-ISI n/a"))
    rows = [{"model": args.preset, "neurons": args.n, "spikes": summary["n_spikes"],
             "rate_hz": summary["rate_hz"],
             "cv_isi": cv if np.isfinite(cv) else "n/a (no neuron fired twice)"}]
    print(format_table(rows))
    if args.compare_brian2:
        ref = snn.run_brian2(net, args.duration, args.dt, target="cython")
        print(format_table(snn.compare(res, ref)))
    return 0
