"""Membrane-potential batch normalisation (MPBN) and its folding into the firing threshold.

The MPBN neuron (Guo et al. 2023, eqs. 8-10) normalises the membrane potential just before the
threshold, with a hard reset on the *un-normalised* potential:

    u[t] = decay u[t-1] (1 - s[t-1]) + x[t]                         (decay = 0.25)
    m[t] = lambda (u[t] - mu) / sqrt(var + eps) + beta               (per neuron / channel)
    s[t] = H(m[t] - theta)

At inference ``mu, var`` are running statistics, so ``m >= theta`` is an affine condition on
``u`` and folds into a per-neuron threshold (their eq. 12, extended to every sign of lambda):

    lambda > 0:  s = H(u - theta'),   theta' = (theta - beta) sqrt(var + eps) / lambda + mu
    lambda < 0:  s = H(theta' - u)    (the inequality flips)
    lambda = 0:  s = 1 if beta >= theta else 0   (theta' = -inf or +inf)

:class:`FoldedLIF` runs the folded network without any normalisation and emits exactly the
same spikes as :class:`MPBNLIF` in inference mode (tested, including lambda < 0).

References
----------
Guo, Zhang, Chen, Tong, Liu, Ma, Huang & Ma (2023), Membrane potential batch normalization for
spiking neural networks, ICCV, eqs. 8-12 (code: github.com/yfguo91/MPBN).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from brainmodels._types import Array, ArrayLike, Float
from brainmodels.snn.rsnn import RSNNOutput
from brainmodels.snn.surrogate import get_surrogate

__all__ = ["MPBNLIF", "FoldedLIF", "fold_mpbn", "MPBNClassifier"]


def _check_decay(decay: float) -> float:
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"decay must be in [0, 1), got {decay!r}")
    return float(decay)


def _scan_mpbn(current, decay, fire):
    """Hard-reset LIF over time-major ``current``; ``fire(t, u) -> (spikes, aux)``."""

    def step(carry, xs):
        u, s = carry
        t, x_t = xs
        u = decay * u * (1.0 - jax.lax.stop_gradient(s)) + x_t
        s, aux = fire(t, u)
        return (u, s), (s, aux)

    zeros = jnp.zeros(current.shape[1:], current.dtype)
    steps = jnp.arange(current.shape[0])
    _, (spikes, aux) = jax.lax.scan(step, (zeros, zeros), (steps, current))
    return spikes, aux


class MPBNLIF(nnx.Module):
    """A linear layer feeding hard-reset LIF neurons with membrane-potential BN.

    Parameters
    ----------
    n_in, n_out : int
    decay : float in [0, 1)
        Membrane decay per step (0.25 in the paper).
    threshold : float
        ``theta``, applied to the normalised potential.
    eps, momentum : float
        BN constants; running stats ``r <- momentum r + (1 - momentum) batch_stat``.
    surrogate : str
        Surrogate spike function (training).
    rngs : nnx.Rngs

    Notes
    -----
    In training mode (``use_running_average=False``) each step is normalised with the batch
    statistics of that step (over the batch axis); the running statistics are updated with
    their average over steps. ``eval()``/``use_running_average=True`` uses the running ones.
    """

    def __init__(self, n_in: int, n_out: int, *, decay: float = 0.25, threshold: float = 0.5,
                 eps: float = 1e-5, momentum: float = 0.9, surrogate: str = "arctan",
                 rngs: nnx.Rngs):
        self.decay = _check_decay(decay)
        self.threshold, self.eps, self.momentum = float(threshold), float(eps), float(momentum)
        self.surrogate = surrogate
        get_surrogate(surrogate)  # validate the name now
        self.w = nnx.Param(jax.random.normal(rngs.params(), (n_in, n_out)) / np.sqrt(n_in))
        self.scale = nnx.Param(jnp.ones((n_out,)))  # lambda
        self.bias = nnx.Param(jnp.zeros((n_out,)))  # beta
        self.mean = nnx.BatchStat(jnp.zeros((n_out,)))
        self.var = nnx.BatchStat(jnp.ones((n_out,)))
        self.use_running_average = False

    def _normalise(self, u, mean, var):
        scale, bias = self.scale[...][None, :], self.bias[...][None, :]
        return scale * (u - mean[None, :]) / jnp.sqrt(var[None, :] + self.eps) + bias

    def __call__(self, x: Float[ArrayLike, "batch time feature"]) -> Float[Array, "batch time unit"]:
        current = jnp.einsum("btf,fu->tbu", jnp.asarray(x), self.w[...])
        theta, spike_fn = self.threshold, get_surrogate(self.surrogate)
        if self.use_running_average:
            mean, var = self.mean[...], self.var[...]

            def fire(t, u):
                return spike_fn(self._normalise(u, mean, var) - theta), ()

            spikes, _ = _scan_mpbn(current, self.decay, fire)
        else:
            def fire(t, u):
                m, v = u.mean(axis=0), u.var(axis=0)
                return spike_fn(self._normalise(u, m, v) - theta), (m, v)

            spikes, (ms, vs) = _scan_mpbn(current, self.decay, fire)
            n = current.shape[1]
            unbiased = vs.mean(axis=0) * n / max(n - 1, 1)
            mom = self.momentum
            self.mean[...] = mom * self.mean[...] + (1 - mom) * jax.lax.stop_gradient(
                ms.mean(axis=0))
            self.var[...] = mom * self.var[...] + (1 - mom) * jax.lax.stop_gradient(unbiased)
        return jnp.swapaxes(spikes, 0, 1)


class FoldedLIF(nnx.Module):
    """Hard-reset LIF layer with per-neuron thresholds and firing directions (no BN).

    ``s = H(sign (u - theta'))``; built by :func:`fold_mpbn`.
    """

    def __init__(self, w, threshold, sign, *, decay: float):
        self.decay = _check_decay(decay)
        self.w = nnx.Param(jnp.asarray(w))
        self.folded_threshold = nnx.Variable(jnp.asarray(threshold))
        self.sign = nnx.Variable(jnp.asarray(sign))

    def __call__(self, x: Float[ArrayLike, "batch time feature"]) -> Float[Array, "batch time unit"]:
        current = jnp.einsum("btf,fu->tbu", jnp.asarray(x), self.w[...])
        theta, sign = self.folded_threshold[...], self.sign[...]

        def fire(t, u):
            # where theta is +-inf, u - theta is -+inf: the spike is constant, as it must be
            return (sign[None, :] * (u - theta[None, :]) >= 0).astype(u.dtype), ()

        spikes, _ = _scan_mpbn(current, self.decay, fire)
        return jnp.swapaxes(spikes, 0, 1)


def fold_mpbn(layer: MPBNLIF) -> FoldedLIF:
    """Fold a trained :class:`MPBNLIF`'s running-statistics BN into per-neuron thresholds.

    Returns
    -------
    FoldedLIF
        ``theta' = (theta - beta) sqrt(var + eps) / lambda + mu`` with ``sign = sign(lambda)``;
        for ``lambda = 0`` the neuron always (``beta >= theta``) or never fires.

    References
    ----------
    Guo et al. (2023), ICCV, eq. 12.
    """
    lam, beta = layer.scale[...], layer.bias[...]
    mu, sd = layer.mean[...], jnp.sqrt(layer.var[...] + layer.eps)
    theta = layer.threshold
    safe = jnp.where(lam == 0, 1.0, lam)
    folded = (theta - beta) * sd / safe + mu
    always = beta >= theta
    folded = jnp.where(lam == 0, jnp.where(always, -jnp.inf, jnp.inf), folded)
    sign = jnp.where(lam < 0, -1.0, 1.0).astype(folded.dtype)
    return FoldedLIF(layer.w[...], folded, sign, decay=layer.decay)


class MPBNClassifier(nnx.Module):
    """One MPBN-LIF layer and a linear per-step readout, trainable with
    :func:`brainmodels.snn.train.train_classifier` (returns an ``RSNNOutput``).

    ``fold()`` returns a copy whose hidden layer is the folded :class:`FoldedLIF` (inference
    without normalisation, identical spikes).
    """

    def __init__(self, n_in: int, n_hidden: int, n_out: int, *, decay: float = 0.25,
                 threshold: float = 0.5, surrogate: str = "arctan", rngs: nnx.Rngs):
        self.hidden = MPBNLIF(n_in, n_hidden, decay=decay, threshold=threshold,
                              surrogate=surrogate, rngs=rngs)
        self.w_out = nnx.Param(jax.random.normal(rngs.params(), (n_hidden, n_out))
                               / np.sqrt(n_hidden))
        self.b_out = nnx.Param(jnp.zeros((n_out,)))

    def __call__(self, x: Float[ArrayLike, "batch time feature"]) -> RSNNOutput:
        spikes = self.hidden(x)
        readout = jnp.einsum("btn,nc->btc", spikes, self.w_out[...]) + self.b_out[...][None, None]
        return RSNNOutput(readout, spikes)

    def fold(self) -> MPBNClassifier:
        """A copy with the BN folded into per-neuron thresholds (uses the running stats)."""
        new = nnx.clone(self)
        new.hidden = fold_mpbn(self.hidden)
        return new
