"""Bridge to brian2: build the same network in brian2, run it, compare with the JAX run.

:func:`to_brian2` translates a :class:`~brainmodels.snn.network.Network` into brian2 objects
with the same equations, parameters, connectivity (the explicit synapse lists), delays and
initial state; :func:`run_brian2` runs it and returns a Dataset in the layout of
:func:`~brainmodels.snn.network.simulate`; :func:`compare` reports firing rates, CV of ISIs and
spike-time agreement side by side.

Both simulators use brian2's default schedule (groups, thresholds, synapses, resets) and the
same integration schemes (``exact`` for current-based LIF, ``exponential_euler`` for
conductance-based LIF, ``euler``/``rk2``/``rk4`` for the others), so a deterministic network
gives the same spike trains up to floating-point rounding.

References
----------
Stimberg, M., Brette, R. & Goodman, D. F. M. (2019). Brian 2, an intuitive and efficient neural
simulator. eLife 8, e47314.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings

import numpy as np
import xarray as xr

from brainmodels.data import provenance
from brainmodels.snn.analysis import population_summary, spike_time_agreement
from brainmodels.snn.network import Network, Recording
from brainmodels.snn.neurons import LIF, NEURON_UNITS, AdaptiveLIF, Izhikevich

__all__ = ["Brian2Model", "to_brian2", "run_brian2", "compare"]


@dataclasses.dataclass
class Brian2Model:
    """The brian2 side of a network: the ``Network``, its groups, synapses and monitors."""

    network: object
    groups: dict
    synapses: list
    spike_monitors: dict
    state_monitors: dict
    dt_ms: float


class _Params:
    """A neuron model's parameters in brian2: a uniform value goes into the namespace as a
    Quantity, a per-neuron one becomes a ``(constant)`` variable of the group. Values are
    converted with ``float``/``np.asarray`` (Python, numpy and JAX scalars and arrays alike),
    never written into equations as text."""

    # brian2 unit of each parameter and the name of its base unit in equations
    _UNITS = {"ms": ("ms", "second"), "mV": ("mV", "volt"), "Mohm": ("Mohm", "ohm"),
              "usiemens": ("usiemens", "siemens"), "nA": ("nA", "amp"), "1": (None, "1")}

    def __init__(self, model, size: int, b2):
        self.model, self.size, self.b2 = model, size, b2
        self.namespace: dict = {}
        self.per_neuron: dict = {}

    def values(self, name: str) -> np.ndarray:
        """The parameter per neuron, shape (size,)."""
        value = np.asarray(getattr(self.model, name), dtype=float)
        if value.ndim > 1 or (value.ndim == 1 and value.shape[0] not in (1, self.size)):
            raise ValueError(f"{type(self.model).__name__}.{name} has shape {value.shape}; "
                             f"expected a scalar or one value per neuron ({self.size},)")
        return np.broadcast_to(value.reshape(-1) if value.ndim else value, (self.size,))

    def add(self, name: str, unit: str) -> None:
        values = self.values(name)
        scale = getattr(self.b2, self._UNITS[unit][0]) if unit != "1" else 1.0
        if np.all(values == values[0]):
            self.namespace[name] = float(values[0]) * scale
        else:
            self.per_neuron[name] = (values * scale, self._UNITS[unit][1])

    def equations(self) -> list[str]:
        return [f"{name} : {unit} (constant)" for name, (_, unit) in self.per_neuron.items()]

    def assign(self, group) -> None:
        for name, (values, _) in self.per_neuron.items():
            setattr(group, name, values)


def _channel_eqs(model, b2):
    syn = model.syn
    unit = "volt" if syn.kind == "current" else "1"
    eqs, ns, drive = [], {}, []
    if syn.kind == "delta":  # no synaptic variables: spikes move v (see to_brian2)
        return eqs, ns, "0*mV"
    for c, name in enumerate(syn.names):
        eqs.append(f"dg_{name}/dt = -g_{name} / tau_{name} : {unit}")
        ns[f"tau_{name}"] = float(syn.tau[c]) * b2.ms
        if syn.kind == "current":
            drive.append(f"g_{name}")
        else:
            ns[f"E_{name}"] = float(syn.e_rev[c]) * b2.mV
            drive.append(f"g_{name} * (E_{name} - v)")
    return eqs, ns, " + ".join(drive) or "0*mV"


def _lif_eqs(model: LIF, params: _Params, b2):
    eqs, ns, drive = _channel_eqs(model, b2)
    eqs.insert(0, f"dv/dt = (v_rest - v + I_drive + {drive}) / tau_m : volt (unless refractory)")
    params.add("tau_m", "ms")
    params.add("v_rest", "mV")
    method = "exact" if model.syn.kind == "current" else "exponential_euler"
    degenerate = np.isclose(params.values("tau_m")[:, None],
                            np.asarray(model.syn.tau, float)[None, :], rtol=1e-6)
    if method == "exact" and degenerate.any():
        # brian2's closed form divides by (tau_m - tau_syn): NaN voltages, silently no spikes
        equal = np.asarray(model.syn.tau, float)[degenerate.any(axis=0)].tolist()
        warnings.warn(
            f"tau_m equals a synaptic time constant ({equal} ms), where brian2's exact integrator divides by zero; using brian2's "
            "exponential_euler instead (spike times may differ from the JAX run by a step)",
            RuntimeWarning, stacklevel=4)
        method = "exponential_euler"
    return eqs, ns, method, {}


def _alif_eqs(model: AdaptiveLIF, params: _Params, b2):
    eqs, ns, drive = _channel_eqs(model, b2)
    eqs.insert(0, f"dv/dt = (v_rest - v + I_drive - r_m * w + {drive}) / tau_m : volt "
                  "(unless refractory)")
    eqs.insert(1, "dw/dt = (a * (v - v_rest) - w) / tau_w : amp")
    for name, unit in (("tau_m", "ms"), ("v_rest", "mV"), ("r_m", "Mohm"), ("tau_w", "ms"),
                       ("a", "usiemens"), ("b", "nA")):
        params.add(name, unit)
    return eqs, ns, model.method, {"reset_extra": "w += b", "init": {"w": 0.0 * b2.nA}}


def _izh_eqs(model: Izhikevich, params: _Params, b2):
    eqs, ns, drive = _channel_eqs(model, b2)
    eqs.insert(0, "dv/dt = (0.04 / mV * v**2 + 5 * v + 140 * mV - u + I_drive + "
                  f"{drive}) / ms : volt (unless refractory)")
    eqs.insert(1, "du/dt = a * (b * v - u) / ms : volt")
    for name, unit in (("a", "1"), ("b", "1"), ("d", "mV")):
        params.add(name, unit)
    return eqs, ns, model.method, {"reset_extra": "u += d", "init_u": True}


#: brian2 equations per neuron model type.
_EQUATIONS = {LIF: _lif_eqs, AdaptiveLIF: _alif_eqs, Izhikevich: _izh_eqs}
_RESETS = {"value": "v = v_reset", "subtract": "v = v - (v_th - v_reset)"}


def _group(pop, dt_ms, b2):
    model = pop.model
    if type(model) not in _EQUATIONS:
        raise TypeError(f"to_brian2 supports {[t.__name__ for t in _EQUATIONS]}, got "
                        f"{type(model).__name__}")
    params = _Params(model, pop.size, b2)
    eqs, ns, method, extra = _EQUATIONS[type(model)](model, params, b2)
    eqs.append("I_drive : volt (constant)")
    for name, unit in (("v_th", "mV"), ("v_reset", "mV"), ("t_ref", "ms")):
        params.add(name, unit)
    ns.update(params.namespace)
    reset = "\n".join([_RESETS[model.reset_mode], extra.get("reset_extra", "")]).strip()
    group = b2.NeuronGroup(
        pop.size, "\n".join(eqs + params.equations()), threshold="v > v_th", reset=reset,
        refractory="t_ref", method=method, namespace=ns, dt=float(dt_ms) * b2.ms,
        name=f"pop_{pop.name}",
    )
    params.assign(group)
    v0 = np.broadcast_to(np.asarray(model.v_rest if pop.v0 is None else pop.v0, float),
                         (pop.size,))
    group.v = v0 * b2.mV
    # r_m (MOhm) times i_ext (nA) is the drive in mV
    r_m = params.values("r_m") if hasattr(model, "r_m") else 1.0
    drive = r_m * np.broadcast_to(np.asarray(pop.i_ext, float), (pop.size,))
    group.I_drive = drive * b2.mV
    if extra.get("init_u"):
        group.u = params.values("b") * v0 * b2.mV
    return group


def to_brian2(net: Network, *, dt_ms: float = 0.1, recording: Recording | None = None):
    """Build ``net`` in brian2 (runtime device; the codegen target is set by the caller).

    Returns
    -------
    Brian2Model
        With a ``brian2.Network`` holding one ``NeuronGroup`` per population, one
        ``Synapses`` per projection (explicit ``i``/``j`` lists, weights, per-synapse delays),
        ``PoissonInput`` objects, a ``SpikeMonitor`` per population and ``StateMonitor``s for
        the recorded traces.
    """
    import brian2 as b2

    net.validate(dt_ms)
    recording = recording or Recording()
    groups = {p.name: _group(p, dt_ms, b2) for p in net.populations}
    synapses = []
    for k, pr in enumerate(net.projections):
        kind = net.population(pr.post).model.syn.kind
        unit = b2.mV if kind in ("current", "delta") else 1.0
        # delta synapses: v jumps, except while refractory (the neuron is clamped at V_r, as
        # in Brunel 2000 and brainmodels)
        on_pre = ("v_post += w * int(not_refractory_post)" if kind == "delta"
                  else f"g_{pr.channel}_post += w")
        s = b2.Synapses(groups[pr.pre], groups[pr.post],
                        "w : 1" if kind == "conductance" else "w : volt",
                        on_pre=on_pre, dt=float(dt_ms) * b2.ms, name=f"syn_{k}")
        s.connect(i=np.asarray(pr.conn.pre, np.int64), j=np.asarray(pr.conn.post, np.int64))
        s.w = np.asarray(pr.conn.weight, float) * unit
        s.delay = np.asarray(pr.conn.delay_ms, float) * b2.ms
        synapses.append(s)
    for inp in net.inputs:
        kind = net.population(inp.target).model.syn.kind
        if kind == "delta":  # jumps of v, ignored while refractory: an expression of a float
            weight, var = f"{float(inp.weight)!r} * mV * int(not_refractory)", "v"
        else:
            weight = float(inp.weight) * (b2.mV if kind == "current" else 1.0)  # a value
            var = f"g_{inp.channel}"
        synapses.append(b2.PoissonInput(groups[inp.target], var, int(inp.n_sources),
                                        float(inp.rate_hz) * b2.Hz, weight=weight))
    spikes = {name: b2.SpikeMonitor(g) for name, g in groups.items()}
    states = {}
    offsets = net.offsets
    neurons = np.asarray(recording.neurons, int)
    for name, g in groups.items():
        start, stop = offsets[name]
        local = neurons[(neurons >= start) & (neurons < stop)] - start
        if recording.traces and local.size:
            states[name] = b2.StateMonitor(g, list(recording.traces), record=local,
                                           dt=float(recording.every_ms) * b2.ms)
    network = b2.Network(*groups.values(), *synapses, *spikes.values(), *states.values())
    return Brian2Model(network, groups, synapses, spikes, states, float(dt_ms))


@contextlib.contextmanager
def _codegen_target(target: str):
    from brian2 import prefs

    old = prefs.codegen.target
    prefs.codegen.target = target
    try:
        yield
    finally:
        prefs.codegen.target = old


def run_brian2(
    net: Network, duration_ms: float = 1000.0, dt_ms: float = 0.1, *, target: str = "numpy",
    recording: Recording | None = None, seed: int | None = None,
) -> xr.Dataset:
    """Run ``net`` in brian2 and return a Dataset in :func:`simulate`'s layout.

    ``target`` is brian2's runtime code-generation target (``"numpy"`` or ``"cython"``);
    ``seed`` seeds brian2's random numbers (Poisson inputs).
    """
    import brian2 as b2

    recording = recording or Recording()
    with _codegen_target(target):
        if seed is not None:
            b2.seed(seed)
        model = to_brian2(net, dt_ms=dt_ms, recording=recording)
        model.network.run(float(duration_ms) * b2.ms, namespace={})
    return _dataset(net, model, duration_ms, dt_ms, recording, target)


def _dataset(net, model, duration_ms, dt_ms, recording, target) -> xr.Dataset:
    times, neurons = [], []
    n_steps = int(round(duration_ms / dt_ms))
    k = max(1, int(round(recording.every_ms / dt_ms)))
    data = {}
    for name, (start, _) in net.offsets.items():
        mon = model.spike_monitors[name]
        steps = np.round(np.asarray(mon.t) * 1000.0 / dt_ms).astype(np.int64)
        times.append(steps)
        neurons.append(np.asarray(mon.i, np.int64) + start)
        counts = np.bincount(steps // k, minlength=n_steps // k)[: n_steps // k]
        size = net.population(name).size
        data[f"rate_{name}"] = ("time", counts / (size * k * dt_ms * 1e-3), {"units": "Hz"})
    steps, idx = np.concatenate(times), np.concatenate(neurons)
    order = np.lexsort((idx, steps))
    data["spike_time"] = ("event", steps[order] * dt_ms, {"units": "ms"})
    data["spike_neuron"] = ("event", idx[order].astype(np.int32))
    ds = xr.Dataset(data, coords={"time": np.arange(n_steps // k) * k * dt_ms})
    ds.attrs = provenance(
        f"brian2:{net.name}", seed=net.seed, units=dict(NEURON_UNITS), dt_ms=float(dt_ms),
        duration_ms=float(n_steps * dt_ms), n_neurons=net.n_neurons,
        populations={name: list(r) for name, r in net.offsets.items()}, brian2_target=target,
    )
    return ds


def compare(res: xr.Dataset, ref: xr.Dataset, *, start_ms: float = 0.0,
            tol_ms: float | None = None) -> list[dict]:
    """Side-by-side report: per population, rates and CV-ISI of both runs, spike agreement.

    Returns rows (dicts) for :func:`brainmodels.cli._common.format_table`: ``population``,
    ``rate_hz``, ``rate_hz_ref``, ``rate_rel_diff``, ``cv_isi``, ``cv_isi_ref``,
    ``cv_rel_diff``, and a final ``spike_agreement`` (see
    :func:`~brainmodels.snn.analysis.spike_time_agreement`).
    """
    a = population_summary(res, start_ms=start_ms)
    b = population_summary(ref, start_ms=start_ms)
    agreement = spike_time_agreement(res, ref, tol_ms=tol_ms)
    rows = []
    for name in a:
        ra, rb, ca, cb = a[name]["rate_hz"], b[name]["rate_hz"], a[name]["cv_isi"], b[name]["cv_isi"]
        rows.append({
            "population": name, "rate_hz": ra, "rate_hz_ref": rb,
            "rate_rel_diff": abs(ra - rb) / max(abs(rb), 1e-12), "cv_isi": ca, "cv_isi_ref": cb,
            "cv_rel_diff": abs(ca - cb) / max(abs(cb), 1e-12), "spike_agreement": agreement,
        })
    return rows
