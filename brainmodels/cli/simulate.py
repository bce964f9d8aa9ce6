"""``brainmodels simulate MODEL``: run a simulator and write netCDF results and plots.

Each simulator family registers its own sub-subcommand from a ``simulate_<family>.py``
module next to this one (``cuba``/``coba`` from the spiking-network module, ``kuramoto`` from
the oscillator module).
"""

from __future__ import annotations

import importlib

SIMULATORS = ("simulate_snn", "simulate_kuramoto", "simulate_whitening", "simulate_wave")


def register(sub) -> None:
    parser = sub.add_parser(
        "simulate",
        help="simulate a circuit model (spiking networks, Kuramoto oscillators)",
        description="Simulate a circuit model and write the results (netCDF) and plots (PNG).",
    )
    models = parser.add_subparsers(dest="model", metavar="MODEL")
    for name in SIMULATORS:
        try:
            module = importlib.import_module(f"brainmodels.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"brainmodels.cli.{name}":
                continue
            raise
        module.register(models)
    parser.set_defaults(func=None, _parser=parser)
