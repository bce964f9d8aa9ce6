"""Connectivity, event-driven vs dense delivery, delays, vmap, recording, Poisson input, I/O."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
from scipy import stats

from brainmodels import snn
from brainmodels.data import load_netcdf, save_netcdf
from brainmodels.testing import compilations


def _small_net(seed=0, n=60, delays=True):
    rng = np.random.default_rng(seed)
    model = snn.LIF(t_ref=2.0)
    n_exc = int(0.8 * n)
    exc = snn.fixed_probability(n, n, 0.15, 2.5, seed=seed, pre_indices=np.arange(n_exc),
                                delay_ms=1.0 if delays else 0.0)
    inh = snn.fixed_probability(n, n, 0.15, -5.0, seed=seed + 1,
                                pre_indices=np.arange(n_exc, n))
    if delays:
        inh = snn.from_indices(inh.pre, inh.post, inh.weight, n_pre=n, n_post=n,
                               delay_ms=rng.integers(0, 25, inh.n_synapses) * 0.1)
    pop = snn.Population("P", n, model, v0=rng.uniform(-60, -50, n),
                         i_ext=rng.uniform(9.0, 14.0, n))
    return snn.Network((pop,), (snn.Projection("P", "P", "e", exc),
                                snn.Projection("P", "P", "i", inh)), seed=seed)


# ----------------------------------------------------------------------------- connectivity


def test_fixed_probability_density_is_binomial():
    c = snn.fixed_probability(300, 200, 0.1, 1.0, seed=3)
    # number of synapses ~ Binomial(60000, 0.1): within 4 standard deviations
    assert abs(c.n_synapses - 6000) < 4 * np.sqrt(60000 * 0.1 * 0.9)
    assert c.pre.min() >= 0 and c.post.max() < 200
    empty, full = (snn.fixed_probability(10, 10, p, seed=0) for p in (0.0, 1.0))
    assert empty.n_synapses == 0 and full.n_synapses == 100
    no_auto = snn.fixed_probability(20, 20, 1.0, seed=0, autapses=False)
    assert no_auto.n_synapses == 380 and not np.any(no_auto.pre == no_auto.post)


def test_fixed_in_degree_gives_exact_in_degree():
    c = snn.fixed_in_degree(50, 30, 7, 0.5, seed=1, autapses=False)
    np.testing.assert_array_equal(np.bincount(c.post, minlength=30), 7)
    for j in range(30):  # no duplicate sources per target
        assert len(set(c.pre[c.post == j])) == 7


def test_dense_roundtrip_and_multapses_add():
    w = np.array([[0.0, 1.5], [-2.0, 0.0], [0.5, 0.25]])
    np.testing.assert_allclose(snn.dense(w).to_dense(), w)
    c = snn.from_indices([0, 0], [1, 1], [1.0, 2.0], n_pre=1, n_post=2)
    np.testing.assert_allclose(c.to_dense(), [[0.0, 3.0]])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: snn.fixed_probability(10, 10, 1.5, seed=0), "probability"),
        (lambda: snn.fixed_probability(10, 10, -0.1, seed=0), "probability"),
        (lambda: snn.fixed_in_degree(5, 5, 9, seed=0), "k must"),
        (lambda: snn.from_indices([0, 1], [0], n_pre=2, n_post=2), "same length"),
        (lambda: snn.from_indices([0, 5], [0, 1], n_pre=2, n_post=2), "pre indices"),
        (lambda: snn.from_indices([0], [0], [1.0, 2.0], n_pre=2, n_post=2), "weight"),
        (lambda: snn.from_indices([0], [0], n_pre=2, n_post=2, delay_ms=-1.0), "delay_ms"),
        (lambda: snn.dense(np.ones(3)), "2-D"),
        (lambda: snn.fixed_probability(0, 10, 0.1, seed=0), "n_pre"),
    ],
)
def test_bad_connectivity_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_projection_shape_mismatch_raises():
    net = _small_net()
    wrong = snn.fixed_probability(10, 60, 0.1, seed=0)
    bad = snn.Network(net.populations, (snn.Projection("P", "P", "e", wrong),))
    with pytest.raises(ValueError, match="shape"):
        snn.simulate(bad, 10.0, 0.1)
    bad = snn.Network(net.populations, (snn.Projection("P", "P", "nmda", net.projections[0].conn),))
    with pytest.raises(ValueError, match="channel"):
        snn.simulate(bad, 10.0, 0.1)
    bad = snn.Network(net.populations, (snn.Projection("X", "P", "e", net.projections[0].conn),))
    with pytest.raises(ValueError, match="population"):
        snn.simulate(bad, 10.0, 0.1)


# ----------------------------------------------------------------------------- kernels


@pytest.fixture(scope="module")
def small_runs():
    net = _small_net()
    return net, {mode: snn.simulate(net, 300.0, 0.1, mode=mode) for mode in ("event", "dense")}


def test_event_and_dense_kernels_give_identical_spikes(small_runs):
    _, runs = small_runs
    assert runs["event"].attrs["kernels"] == ["EventKernel"]
    assert runs["dense"].attrs["kernels"] == ["DenseKernel"]
    assert runs["event"].spike_time.size > 100
    # same sums of the same floats (order may differ): identical spike trains in float32
    assert snn.spike_time_agreement(runs["event"], runs["dense"]) == 1.0


def test_spike_bound_overflow_is_exact(small_runs):
    net, runs = small_runs
    tiny = snn.simulate(net, 300.0, 0.1, mode="event", max_spikes=1)  # cond fallback branch
    assert snn.spike_time_agreement(tiny, runs["event"]) == 1.0


def test_delay_shifts_the_postsynaptic_response():
    """One presynaptic spike reaches the target exactly round(delay/dt) steps later."""
    model = snn.LIF(t_ref=0.0)
    pops = (snn.Population("A", 1, model, v0=-49.0), snn.Population("B", 1, model))
    t_arrival = {}
    for delay in (0.0, 1.5):
        conn = snn.from_indices([0], [0], 5.0, n_pre=1, n_post=1, delay_ms=delay)
        net = snn.Network(pops, (snn.Projection("A", "B", "e", conn),))
        rec = snn.Recording(traces=("g_e",), neurons=[1], every_ms=0.1)
        res = snn.simulate(net, 5.0, 0.1, recording=rec)
        g = res["g_e"].values[:, 0]
        t_arrival[delay] = res.time.values[np.argmax(g > 0)]
    # A spikes in step 0; the increment lands in step round(d/dt) and is visible one step later
    assert t_arrival[0.0] == pytest.approx(0.1)
    assert t_arrival[1.5] - t_arrival[0.0] == pytest.approx(1.5)


def test_second_call_does_not_recompile():
    net = _small_net(delays=False)
    snn.simulate(net, 20.0, 0.1, mode="event")
    other = _small_net(seed=0, delays=False)  # new arrays, same shapes
    with compilations() as compiled:
        snn.simulate(other, 20.0, 0.1, mode="event")
    assert compiled.count == 0, compiled.names


# ----------------------------------------------------------------------------- vmap


@pytest.mark.parametrize("method", ["loop", "union", "vmap"])
def test_simulate_many_matches_individual_runs(method):
    nets = [snn.cuba(seed=s, n=300) for s in range(3)]
    # different parameters per network too: these become per-neuron arrays / a vmapped axis
    nets[1] = dataclasses.replace(nets[1], populations=(dataclasses.replace(
        nets[1].populations[0], model=nets[1].populations[0].model.replace(tau_m=18.0)),))
    rec = snn.Recording(traces=("v",), neurons=[7, 3, 250], every_ms=1.0)
    many = snn.simulate_many(nets, 100.0, 0.1, recording=rec, method=method,
                             max_spikes=2 if method == "vmap" else None)  # vmap: reruns
    assert many.sizes["network"] == 3
    for s, net in enumerate(nets):
        one = snn.simulate(net, 100.0, 0.1, recording=rec)
        sel = many.spike_network.values == s
        np.testing.assert_array_equal(many.spike_time.values[sel], one.spike_time.values)
        np.testing.assert_array_equal(many.spike_neuron.values[sel], one.spike_neuron.values)
        np.testing.assert_allclose(many["rate_P"].values[s], one["rate_P"].values)
        np.testing.assert_allclose(many["v"].values[s], one["v"].values, atol=1e-5)
    np.testing.assert_array_equal(many.neuron.values, [3, 7, 250])
    rates = snn.firing_rates(many)
    assert rates.dims == ("network", "neuron") and rates.shape == (3, 300)


def test_simulate_many_methods_draw_the_same_poisson_input():
    """With Poisson drive, and a different rate in each network, loop, union and vmap give
    identical spikes for one key (network b draws from split(key, n)[b] in every method), and
    network b equals simulate(net_b, key=split(key, n)[b]). The union used to drive every
    network at network 0's rate, from one stream."""
    nets = []
    for s, rate in enumerate((900.0, 1400.0, 2000.0)):
        net = _small_net(seed=s, n=60, delays=True)
        pop = dataclasses.replace(net.populations[0], i_ext=0.0)
        nets.append(dataclasses.replace(net, populations=(pop,), inputs=(
            snn.PoissonInput("P", "e", n_sources=20, rate_hz=rate, weight=0.9),)))
    key = jax.random.key(7)
    # dense kernels: one compiled program per method (the event kernel's switch compiles many
    # branches); delivery is not what this test is about
    runs = {m: snn.simulate_many(nets, 50.0, 0.1, key=key, method=m, mode="dense")
            for m in ("loop", "union", "vmap")}
    keys = jax.random.split(key, 3)
    counts = []
    for b, net in enumerate(nets):
        one = snn.simulate(net, 50.0, 0.1, key=keys[b], mode="dense")
        counts.append(one.spike_time.size)
        for m, many in runs.items():
            sel = many.spike_network.values == b
            np.testing.assert_array_equal(many.spike_time.values[sel], one.spike_time.values,
                                          err_msg=m)
            np.testing.assert_array_equal(many.spike_neuron.values[sel],
                                          one.spike_neuron.values, err_msg=m)
    assert counts[0] < counts[1] < counts[2]  # each network ran at its own rate


def test_delivery_object_and_shorthands():
    net = _small_net(seed=2)
    a = snn.simulate(net, 50.0, 0.1, delivery=snn.Delivery(mode="event", max_spikes=4))
    b = snn.simulate(net, 50.0, 0.1, mode="event", max_spikes=4)
    np.testing.assert_array_equal(a.spike_time.values, b.spike_time.values)
    with pytest.raises(ValueError, match="not both"):
        snn.simulate(net, 50.0, 0.1, mode="event", delivery=snn.Delivery())
    with pytest.raises(ValueError, match="mode must be 'auto' or one of"):
        snn.Delivery(mode="sparse")
    with pytest.raises(ValueError, match="max_spikes must be a positive integer"):
        snn.Delivery(max_spikes=0)


def test_simulate_many_rejects_mismatched_networks():
    with pytest.raises(ValueError, match="same populations"):
        snn.simulate_many([snn.cuba(seed=0, n=100), snn.cuba(seed=1, n=120)], 10.0)
    with pytest.raises(ValueError, match="method"):
        snn.simulate_many([snn.cuba(seed=0, n=100)], 10.0, method="pmap")


# ----------------------------------------------------------------------------- recording


def test_recording_traces_and_errors():
    net = _small_net()
    rec = snn.Recording(traces=("v", "g_e", "g_i"), neurons=[0, 5, 59], every_ms=0.5)
    res = snn.simulate(net, 50.0, 0.1, recording=rec)
    assert res["v"].dims == ("time", "neuron")
    assert res["v"].shape == (100, 3)
    np.testing.assert_array_equal(res.neuron.values, [0, 5, 59])
    np.testing.assert_allclose(res["v"].values[0], net.populations[0].v0[[0, 5, 59]], atol=1e-6)
    assert np.all(res["v"].values <= -50.0 + 1e-4)  # recorded after resets: never above V_th
    quiet = snn.simulate(net, 50.0, 0.1, recording=dataclasses.replace(rec, spikes=False))
    assert quiet.spike_time.size == 0 and quiet["rate_P"].sum() > 0
    np.testing.assert_array_equal(quiet["v"].values, res["v"].values)
    with pytest.raises(ValueError, match="neurons"):
        snn.simulate(net, 10.0, 0.1, recording=snn.Recording(traces=("v",), neurons=[60]))
    with pytest.raises(ValueError, match="no variable"):
        snn.simulate(net, 10.0, 0.1, recording=snn.Recording(traces=("w",), neurons=[0]))
    with pytest.raises(ValueError, match="every_ms"):
        snn.simulate(net, 10.0, 0.1, recording=snn.Recording(every_ms=0.25))
    with pytest.raises(ValueError, match="duration_ms"):
        snn.simulate(net, -1.0, 0.1)


def test_population_rate_equals_event_count(small_runs):
    net, runs = small_runs
    res = runs["event"]
    # rate_P bins of 1 ms: sum(rate * n * 1 ms) = number of spike events
    total = res["rate_P"].values.sum() * net.n_neurons * 1e-3
    assert total == pytest.approx(res.spike_time.size)
    rates = snn.firing_rates(res)
    assert float(rates.sum()) * 0.3 == pytest.approx(res.spike_time.size)


def test_netcdf_roundtrip_keeps_events_and_units(small_runs, tmp_path):
    _, runs = small_runs
    res = runs["event"]
    back = load_netcdf(save_netcdf(res, tmp_path / "spikes.nc"))
    np.testing.assert_array_equal(back.spike_neuron.values, res.spike_neuron.values)
    assert back.attrs["units"]["v"] == "mV" and back.attrs["dt_ms"] == 0.1
    assert back.attrs["params"]["P"]["tau_m"] == 20.0


# ----------------------------------------------------------------------------- inputs


def test_poisson_input_drive_matches_expectation():
    """g_e jumps by w * Poisson(n r dt): its stationary mean is w n r tau_e (shot noise)."""
    model = snn.LIF(v_th=1e6, syn=snn.current_synapses((5.0, 10.0)))
    pop = snn.Population("P", 200, model)
    inp = snn.PoissonInput("P", "e", n_sources=100, rate_hz=20.0, weight=0.1)
    net = snn.Network((pop,), inputs=(inp,))
    rec = snn.Recording(traces=("g_e",), neurons=range(200), every_ms=1.0)
    res = snn.simulate(net, 300.0, 0.1, key=jax.random.key(1), recording=rec)
    g = res["g_e"].values[100:]  # after 100 ms (20 tau_e) of burn-in
    expected = 0.1 * 100 * 20.0 * 1e-3 * 5.0  # w n r tau = 1.0 mV
    # 200 x 200 correlated samples: the mean is within 3 % (std of the mean ~ 0.6 %)
    assert g.mean() == pytest.approx(expected, rel=0.03)
    with pytest.raises(ValueError, match="key"):
        snn.simulate(net, 10.0, 0.1)
    # the per-step counts are Poisson: variance of g ~ w^2 n r tau / 2 (Campbell's theorem)
    var_expected = 0.1**2 * 100 * 20.0 * 1e-3 * 5.0 / 2 / (1 - np.exp(-0.1 / 5.0)) * 0.1 / 5.0
    assert stats.describe(g.ravel()).variance == pytest.approx(var_expected, rel=0.1)


@pytest.mark.parametrize("lam", [0.0, 0.02, 2.0, 17.5, 90.0])
def test_poisson_inversion_sampler_is_poisson(lam):
    """Per-step counts by inversion of one uniform (snn._engine.poisson_inverse): the
    histogram of 200,000 draws against Poisson(lam) by a chi-square test (cells with an
    expected count >= 5; p > 1e-4, so a correct sampler fails once in 10^4 runs), and the
    mean and variance within 5 standard errors. Tables: 16 / 16 / 32 / 64 / 256 entries."""
    from brainmodels.snn import _engine

    table = _engine.poisson_table_size(lam)
    assert table >= lam + 8 * np.sqrt(lam) + 8 and table & (table - 1) == 0
    x = np.asarray(_engine.poisson_inverse(jax.random.key(3), lam, (200_000,), table))
    if lam == 0.0:
        assert not x.any()
        return
    n = x.size
    assert abs(x.mean() - lam) < 5 * np.sqrt(lam / n)
    assert abs(x.var() - lam) < 5 * lam * np.sqrt(2 / n) + 5 * np.sqrt(lam / n)
    k = np.arange(x.max() + 2)
    expected = n * stats.poisson.pmf(k, lam)
    observed = np.bincount(x, minlength=k.size)[:k.size]
    keep = expected >= 5
    # pool the tails into the first and last kept cells
    obs = observed[keep].astype(float)
    exp = expected[keep]
    obs[0] += observed[:np.argmax(keep)].sum()
    exp[0] += expected[:np.argmax(keep)].sum()
    last = np.flatnonzero(keep)[-1]
    obs[-1] += observed[last + 1:].sum()
    exp[-1] += n - expected[:last + 1].sum()
    p = stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue
    assert p > 1e-4, (lam, p)
    # and large means are drawn by jax.random.poisson
    assert _engine.poisson_table_size(500.0) == 0


def test_progress_meter_sees_segments_and_changes_no_spike(monkeypatch):
    """A run goes in equal compiled segments, wrapped by the meter; the step index seeds each
    step's Poisson draws, so 19 segments of 5 chunks give the spikes of one segment exactly."""
    from brainmodels.snn import _engine

    base = snn.coba(seed=1, n=300)  # plus Poisson drive, so the keys matter
    net = snn.Network(base.populations, base.projections,
                      (snn.PoissonInput("P", "e", n_sources=50, rate_hz=20.0, weight=0.05),))
    seen = []

    def meter(segments):
        for s in segments:
            seen.append(s)
            yield s

    key = jax.random.key(2)
    plain = snn.simulate(net, duration_ms=95.0, dt_ms=0.1, key=key)  # one segment of 128 ms
    monkeypatch.setattr(_engine, "SEGMENT_STEPS", 50)  # 5 chunks of 1 ms per segment
    metered = snn.simulate(net, duration_ms=95.0, dt_ms=0.1, key=key, progress=meter)
    assert len(seen) == 19
    np.testing.assert_array_equal(metered.spike_time.values, plain.spike_time.values)
    np.testing.assert_array_equal(metered.spike_neuron.values, plain.spike_neuron.values)
    np.testing.assert_array_equal(metered.rate_P.values, plain.rate_P.values)


def test_a_new_duration_reuses_the_compiled_run():
    """Durations are not compiled in: a 650 ms run after a 400 ms one (segments of 200 ms)
    compiles nothing, and its first 400 ms are the shorter run's spikes."""
    net = _small_net(delays=False)
    short = snn.simulate(net, 400.0, 0.1, mode="event")
    with compilations() as compiled:
        long = snn.simulate(net, 650.0, 0.1, mode="event")
    assert compiled.count == 0, compiled.names
    early = long.spike_time.values < 400.0
    np.testing.assert_array_equal(long.spike_time.values[early], short.spike_time.values)
    np.testing.assert_array_equal(long.spike_neuron.values[early],
                                  short.spike_neuron.values)


def test_networks_of_one_size_drawn_with_other_seeds_share_the_compiled_run():
    """CUBA's 4,000 neurons drawn with seeds 0-3 have largest out-degrees 110-113; padded to
    the same width (128), later draws run on the first draw's program, for any duration."""
    from brainmodels.snn._delivery import bucket_width

    assert [bucket_width(k) for k in (4, 5, 7, 9, 17, 33, 65, 110, 113, 129)] == \
        [4, 6, 8, 12, 24, 48, 96, 128, 128, 192]
    snn.simulate(snn.cuba(seed=0), 100.0)
    for seed in (1, 2, 3):
        with compilations() as compiled:
            snn.simulate(snn.cuba(seed=seed), 60.0 + 10 * seed)
        assert compiled.count == 0, (seed, compiled.names)


def test_poisson_inversion_unrolled_count_equals_table_sum(monkeypatch):
    """The unrolled compare-and-add count (tables up to _engine.UNROLL_TABLE) and the sum over
    a trailing table axis (longer tables) are the same count of the same uniforms: identical
    draws, bit for bit."""
    from brainmodels.snn import _engine

    key = jax.random.key(5)
    unrolled = np.asarray(_engine.poisson_inverse(key, 2.0, (50, 400), 32))
    monkeypatch.setattr(_engine, "UNROLL_TABLE", 0)
    summed = np.asarray(_engine.poisson_inverse(key, 2.0, (50, 400), 32))
    np.testing.assert_array_equal(unrolled, summed)
    assert unrolled.sum() > 0
