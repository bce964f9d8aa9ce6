"""Artificial Kuramoto Oscillatory Neurons (AKOrN): Kuramoto layers as trainable network units.

Each unit is an ``n``-dimensional unit vector (``n`` even, default 4). A :class:`KuramotoLayer`
runs ``T`` steps of the generalised Kuramoto update (Miyato et al. 2025, eq. 2-3)

    x <- normalize(x + gamma * (Omega x + Proj_x(c + J(x)))),   Proj_x(y) = y - <y, x> x,

with ``Omega`` block-diagonal 2x2 rotations (natural frequencies), ``c`` the conditional stimulus
(normalised with GroupNorm) and ``J`` a fully connected, convolutional or attentive coupling.
It exposes the energy ``E = -1/2 sum x.J(x) - sum c.x`` (eq. 4) and the trajectory. A readout
(linear map, then the L2 norm over each group of ``n``) turns the final states into the next
block's ``c``. :class:`AKOrN` stacks blocks on a patch embedding for image classification and
for unsupervised object discovery (clustering the final features with :func:`kmeans`, scored
with :func:`fg_ari`).

Layout: channels last. A state has shape ``(batch, *space, channels)``; the channels are
``channels // n`` oscillators of ``n`` consecutive entries.

References
----------
Miyato, Loewe, Geiger & Welling (2025). Artificial Kuramoto Oscillatory Neurons. ICLR.
Chen et al. (2020). A simple framework for contrastive learning (SimCLR). ICML (the objective).
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from brainmodels._types import Array, ArrayLike, Float, Int, PRNGKeyArray

__all__ = [
    "normalize_oscillators",
    "project_tangent",
    "rotate",
    "kuramoto_update",
    "energy",
    "DenseCoupling",
    "ConvCoupling",
    "AttentionCoupling",
    "COUPLINGS",
    "KuramotoLayer",
    "IterativeLayer",
    "Readout",
    "Trajectory",
    "AKOrN",
    "AKOrNOutput",
    "augment",
    "nt_xent",
    "make_contrastive_step",
    "kmeans",
    "discover_objects",
    "fg_ari",
    "count_params",
]

_EPS = 1e-12


# ----------------------------------------------------------------------------- oscillator algebra


def _groups(x: Array, n: int) -> Array:
    return x.reshape(*x.shape[:-1], x.shape[-1] // n, n)


def normalize_oscillators(x: Float[Array, "... channel"], n: int) -> Float[Array, "... channel"]:
    """Project every group of ``n`` consecutive channels onto the unit sphere S^(n-1)."""
    g = _groups(x, n)
    g = g / jnp.sqrt(jnp.sum(g * g, axis=-1, keepdims=True) + _EPS)
    return g.reshape(x.shape)


def project_tangent(y: Float[Array, "... channel"], x: Float[Array, "... channel"], n: int) -> Float[Array, "... channel"]:
    """``Proj_x(y) = y - <y, x> x`` per oscillator (``x`` on the sphere): eq. 3 of Miyato et al."""
    gy, gx = _groups(y, n), _groups(x, n)
    return (gy - jnp.sum(gy * gx, axis=-1, keepdims=True) * gx).reshape(y.shape)


def rotate(x: Float[Array, "... channel"], omega: ArrayLike, n: int) -> Float[Array, "... channel"]:
    """Apply ``Omega x``: each pair ``(a, b)`` of an oscillator maps to ``(-w b, w a)``.

    ``omega`` is a scalar (one global frequency) or one frequency per oscillator
    (``channels // n``). With ``n = 2`` this is ``dtheta/dt = w``.
    """
    g = x.reshape(*x.shape[:-1], x.shape[-1] // n, n // 2, 2)
    w = jnp.asarray(omega, dtype=x.dtype)
    if w.ndim == 1:
        w = w.reshape((1,) * (g.ndim - 3) + (w.shape[0], 1))
    out = jnp.stack([-w * g[..., 1], w * g[..., 0]], axis=-1)
    return out.reshape(x.shape)


def kuramoto_update(x, c, coupling, omega, gamma: float, n: int, project: bool = True) -> Array:
    """One AKOrN step ``x <- normalize(x + gamma (Omega x + Proj_x(c + J x)))`` (eq. 2).

    ``coupling`` is any callable ``J`` acting on a state of the shape of ``x``.
    """
    y = coupling(x) + c
    if project:
        y = project_tangent(y, x, n)
    return normalize_oscillators(x + gamma * (rotate(x, omega, n) + y), n)


def energy(x: Float[Array, "batch ..."], c: Float[Array, "batch ..."], coupling) -> Float[Array, " batch"]:
    """``E = -1/2 sum_ij x_i^T J_ij x_j - sum_i c_i^T x_i`` per batch element (eq. 4).

    It is a Lyapunov function of the update for a symmetric ``J`` and ``Omega = 0``.
    """
    axes = tuple(range(1, x.ndim))
    return -0.5 * jnp.sum(x * coupling(x), axis=axes) - jnp.sum(c * x, axis=axes)


# ----------------------------------------------------------------------------- couplings J


class DenseCoupling(nnx.Module):
    """Fully connected ``J``: one matrix over all units of a state (all non-batch axes).

    ``symmetric=True`` uses ``(W + W^T) / 2`` so that the energy is a Lyapunov function.
    """

    def __init__(self, features: int, *, symmetric: bool = False, rngs: nnx.Rngs):
        init = jax.nn.initializers.lecun_normal()
        self.kernel = nnx.Param(init(rngs.params(), (features, features), jnp.float32))
        self.symmetric = symmetric

    @classmethod
    def from_matrix(cls, matrix: Float[ArrayLike, "unit unit"], *, symmetric: bool = False):
        """A coupling with a fixed given matrix (``J(x) = W x`` on the flattened state)."""
        w = jnp.asarray(matrix)
        if w.ndim != 2 or w.shape[0] != w.shape[1]:
            raise ValueError(f"matrix must be square (units, units), got shape {w.shape}")
        out = cls(w.shape[0], symmetric=symmetric, rngs=nnx.Rngs(0))
        out.kernel.set_value(w)
        return out

    def matrix(self) -> Array:
        w = self.kernel[...]
        return 0.5 * (w + w.T) if self.symmetric else w

    def __call__(self, x: Float[Array, "batch ..."]) -> Float[Array, "batch ..."]:
        flat = x.reshape(x.shape[0], -1)
        w = self.matrix()
        if flat.shape[1] != w.shape[0]:
            raise ValueError(f"DenseCoupling has {w.shape[0]} units, the state has {flat.shape[1]}")
        return (flat @ w.T).reshape(x.shape)


class ConvCoupling(nnx.Module):
    """Convolutional ``J`` (same padding, no bias) on ``(batch, height, width, channel)`` states.

    ``symmetric=True`` uses ``(K(d)_io + K(-d)_oi) / 2``, which makes the zero-padded operator
    self-adjoint (needs an odd kernel size).
    """

    def __init__(self, channels: int, kernel_size: int = 3, *, symmetric: bool = False,
                 rngs: nnx.Rngs):
        if symmetric and kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd for symmetric=True, got {kernel_size}")
        init = jax.nn.initializers.lecun_normal()
        shape = (kernel_size, kernel_size, channels, channels)
        self.kernel = nnx.Param(init(rngs.params(), shape, jnp.float32))
        self.symmetric = symmetric

    def weights(self) -> Array:
        k = self.kernel[...]
        return 0.5 * (k + k[::-1, ::-1].transpose(0, 1, 3, 2)) if self.symmetric else k

    def __call__(self, x: Float[Array, "batch height width channel"]) -> Array:
        k = self.weights().astype(x.dtype)
        return jax.lax.conv_general_dilated(x, k, (1, 1), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))


class AttentionCoupling(nnx.Module):
    """Attentive ``J``: multi-head self-attention over all positions (1x1 linear Q, K, V, out)."""

    def __init__(self, channels: int, heads: int = 4, *, rngs: nnx.Rngs):
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        self.qkv = nnx.Linear(channels, 3 * channels, use_bias=False, rngs=rngs)
        self.out = nnx.Linear(channels, channels, use_bias=False, rngs=rngs)
        self.heads = heads

    def __call__(self, x: Float[Array, "batch ... channel"]) -> Array:
        b, ch = x.shape[0], x.shape[-1]
        q, k, v = jnp.split(self.qkv(x.reshape(b, -1, ch)), 3, axis=-1)
        split = lambda t: t.reshape(b, -1, self.heads, ch // self.heads)  # noqa: E731
        att = jnp.einsum("blhd,bmhd->bhlm", split(q), split(k)) / math.sqrt(ch // self.heads)
        y = jnp.einsum("bhlm,bmhd->blhd", jax.nn.softmax(att, axis=-1), split(v))
        return self.out(y.reshape(b, -1, ch)).reshape(x.shape)


#: Coupling registry: name -> factory(channels, *, units, kernel_size, heads, rngs).
COUPLINGS = {
    "dense": lambda ch, *, units, kernel_size, heads, rngs: DenseCoupling(units, rngs=rngs),
    "conv": lambda ch, *, units, kernel_size, heads, rngs: ConvCoupling(ch, kernel_size, rngs=rngs),
    "attn": lambda ch, *, units, kernel_size, heads, rngs: AttentionCoupling(ch, heads, rngs=rngs),
}


def _make_coupling(coupling, channels, units, kernel_size, heads, rngs):
    if isinstance(coupling, nnx.Module):
        return coupling
    if coupling not in COUPLINGS:
        raise ValueError(f"coupling must be one of {sorted(COUPLINGS)} or an nnx.Module, "
                         f"got {coupling!r}")
    if coupling == "dense" and units is None:
        raise ValueError("coupling='dense' needs units= (the number of entries of one state)")
    return COUPLINGS[coupling](channels, units=units, kernel_size=kernel_size, heads=heads,
                               rngs=rngs)


# ----------------------------------------------------------------------------- layers


class Trajectory(NamedTuple):
    """Result of a layer: final state, energy per step ``(T + 1, batch)``, optional states."""

    final: Array
    energy: Array | None
    states: Array | None

    def to_xarray(self, n: int, **attrs):
        """Labelled copy: ``state (step, stimulus, *space, oscillator, component)`` (if
        recorded) and ``energy (step, stimulus)``; ``space`` is ``(height, width)`` for
        images, ``(unit,)`` for token sequences. ``attrs`` are added (e.g. provenance)."""
        import xarray as xr

        from brainmodels.data import provenance

        data = {}
        if self.energy is not None:
            data["energy"] = (("step", "stimulus"), np.asarray(self.energy))
        if self.states is not None:
            st = np.asarray(self.states)
            space = {0: (), 1: ("unit",), 2: ("height", "width")}[st.ndim - 3]
            st = st.reshape(*st.shape[:-1], st.shape[-1] // n, n)
            data["state"] = (("step", "stimulus", *space, "oscillator", "component"), st)
        return xr.Dataset(data, attrs={**provenance("akorn.KuramotoLayer"), **attrs})


class KuramotoLayer(nnx.Module):
    """A layer of Kuramoto oscillators run for ``T`` steps (Miyato et al. 2025, eq. 2).

    Parameters
    ----------
    channels : int
        Channels of a state (``channels // n`` oscillators).
    n : int
        Dimension of an oscillator (even; 2 is the classic phase oscillator).
    coupling : {"dense", "conv", "attn"} or nnx.Module
        Connectivity ``J`` (a module is used as given, e.g. ``DenseCoupling.from_matrix``).
    T, gamma : int, float
        Number of steps and step size.
    omega : float or None
        Initial global frequency of the 2x2 rotation blocks (learned if ``learn_omega``);
        ``None`` or ``0`` with ``learn_omega=False`` switches ``Omega`` off.
    c_norm : bool
        Normalise the conditional stimulus with GroupNorm (one group per oscillator).
    project : bool
        Apply the tangent projection ``Proj_x`` (the paper's default).
    units, kernel_size, heads : int
        Size of a state for ``"dense"``; kernel of ``"conv"``; heads of ``"attn"``.
    rngs : nnx.Rngs

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> layer = KuramotoLayer(16, n=4, coupling="conv", T=4, rngs=nnx.Rngs(0))
    >>> c = jnp.ones((2, 8, 8, 16))
    >>> traj = layer(jax.random.normal(jax.random.key(0), c.shape), c)
    >>> traj.final.shape, traj.energy.shape
    ((2, 8, 8, 16), (5, 2))
    """

    def __init__(self, channels: int, *, n: int = 4, coupling="conv", T: int = 8,
                 gamma: float = 1.0, omega: float | None = 0.1, learn_omega: bool = True,
                 c_norm: bool = True, project: bool = True, units: int | None = None,
                 kernel_size: int = 3, heads: int = 4, rngs: nnx.Rngs):
        if n < 2 or n % 2:
            raise ValueError(f"n must be an even integer >= 2, got {n}")
        if channels % n:
            raise ValueError(f"channels ({channels}) must be a multiple of n ({n})")
        if T < 0 or gamma <= 0:
            raise ValueError(f"need T >= 0 and gamma > 0, got T={T}, gamma={gamma}")
        self.n, self.T, self.gamma, self.project = n, T, float(gamma), project
        self.J = _make_coupling(coupling, channels, units, kernel_size, heads, rngs)
        w = jnp.asarray(0.0 if omega is None else omega, jnp.float32)
        self.omega = nnx.Param(w) if learn_omega else nnx.Variable(w)
        self.norm = (nnx.GroupNorm(channels, num_groups=channels // n, rngs=rngs)
                     if c_norm else None)

    def __call__(self, x: Float[Array, "batch ... channel"],
                 c: Float[Array, "batch ... channel"], *, T: int | None = None,
                 return_states: bool = False) -> Trajectory:
        """Run ``T`` steps from ``x`` (normalised first) under stimulus ``c``.

        Returns a :class:`Trajectory` with the energy before every step and after the last
        (``(T + 1, batch)``) and, if ``return_states``, the states ``(T + 1, *x.shape)``.
        """
        if x.shape != c.shape:
            raise ValueError(f"x and c must have the same shape, got {x.shape} and {c.shape}")
        c = self.norm(c) if self.norm is not None else c
        x = normalize_oscillators(x, self.n)
        omega = self.omega[...]

        def step(state, _):
            new = kuramoto_update(state, c, self.J, omega, self.gamma, self.n, self.project)
            out = (energy(new, c, self.J), new if return_states else None)
            return new, out

        steps = self.T if T is None else T
        final, (es, xs) = jax.lax.scan(step, x, None, length=steps)
        es = jnp.concatenate([energy(x, c, self.J)[None], es])
        xs = jnp.concatenate([x[None], xs]) if return_states else None
        return Trajectory(final, es, xs)


class IterativeLayer(nnx.Module):
    """Non-oscillatory baseline with the same ``J`` and ``c``: ``x <- x + gamma (J(LN x) + c)``.

    With ``coupling="attn"`` this is an iterated (weight-shared) self-attention block, the
    paper's ItrSA baseline; with ``"conv"`` an iterated residual convolution. No energy
    (``Trajectory.energy`` is None). Oscillator-only arguments (``n``, ``omega``, ...) are
    accepted and ignored, so the two layer classes are interchangeable in :class:`AKOrN`.
    """

    def __init__(self, channels: int, *, coupling="attn", T: int = 8, gamma: float = 1.0,
                 units: int | None = None, kernel_size: int = 3, heads: int = 4,
                 rngs: nnx.Rngs, **_unused):
        self.T, self.gamma = T, float(gamma)
        self.J = _make_coupling(coupling, channels, units, kernel_size, heads, rngs)
        self.norm_c = nnx.LayerNorm(channels, rngs=rngs)
        self.norm_x = nnx.LayerNorm(channels, rngs=rngs)

    def __call__(self, x, c, *, T: int | None = None, return_states: bool = False) -> Trajectory:
        c = self.norm_c(c)

        def step(state, _):
            new = state + self.gamma * (self.J(self.norm_x(state)) + c)
            return new, new if return_states else None

        final, xs = jax.lax.scan(step, x, None, length=self.T if T is None else T)
        xs = jnp.concatenate([x[None], xs]) if return_states else None
        return Trajectory(final, None, xs)


class Readout(nnx.Module):
    """Readout: linear map to ``out_channels * n``, L2 norm over each group of ``n``, plus bias.

    ``oscillatory=False`` (baseline, same size) replaces the norm by the mean of a GELU over
    each group: ``mean_g gelu(W x + b)``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, n: int = 4,
                 oscillatory: bool = True, rngs: nnx.Rngs):
        self.linear = nnx.Linear(in_channels, out_channels * n, use_bias=not oscillatory,
                                 rngs=rngs)
        self.bias = nnx.Param(jnp.zeros(out_channels)) if oscillatory else None
        self.n, self.oscillatory = n, oscillatory

    def __call__(self, x: Float[Array, "... channel"]) -> Array:
        g = _groups(self.linear(x), self.n)
        if not self.oscillatory:
            return jnp.mean(jax.nn.gelu(g), axis=-1)
        norm = jnp.sqrt(jnp.sum(g * g, axis=-1) + _EPS)
        return norm + self.bias[...].reshape((1,) * (norm.ndim - 1) + (-1,))


# ----------------------------------------------------------------------------- network


class AKOrNOutput(NamedTuple):
    """Network output: head output, final readout features, final states, energies per block."""

    out: Array
    features: Array
    states: Array
    energies: list


class AKOrN(nnx.Module):
    """AKOrN network: patch embedding -> blocks of (Kuramoto layer, readout) -> pooled MLP head.

    The patch embedding (plus a learned position embedding) is the first block's ``c``; each
    block's readout is the next block's ``c``, its final state the next block's initial state
    (Miyato et al. 2025, Fig. 2). The head max-pools the last readout and applies a 2-layer MLP
    (class logits, or a projection for contrastive training).

    Parameters
    ----------
    image_size, in_channels, patch : int
        Square input side, colour channels, patch size of the embedding (stride = patch).
    channels, n, blocks, T : int
        Channels per position (``channels // n`` oscillators), oscillator dimension, number
        of blocks, Kuramoto steps per block.
    coupling : {"attn", "conv", "dense"}
        Connectivity ``J`` of every block (see :data:`COUPLINGS`).
    kernel_size, heads : int
        For ``"conv"`` and ``"attn"``.
    gamma, omega : float
        Step size and initial global frequency (see :class:`KuramotoLayer`).
    out_features : int
        Output width of the head (number of classes for classification).
    oscillatory : bool
        ``False`` builds the same-size non-oscillatory baseline (:class:`IterativeLayer`
        blocks, zero initial state, group-mean GELU readout).
    rngs : nnx.Rngs

    Notes
    -----
    Call as ``model(images, key=key)`` with images ``(batch, height, width, color)`` in
    [0, 1]; ``key`` draws the random initial oscillator state (as in the paper's code).
    Returns an :class:`AKOrNOutput`.
    """

    def __init__(self, *, image_size: int = 32, in_channels: int = 3, patch: int = 2,
                 channels: int = 64, n: int = 4, blocks: int = 1, T: int = 8,
                 coupling: str = "attn", kernel_size: int = 3, heads: int = 4,
                 gamma: float = 1.0, omega: float | None = 0.1, out_features: int = 64,
                 oscillatory: bool = True, rngs: nnx.Rngs):
        if image_size % patch:
            raise ValueError(f"image_size ({image_size}) must be a multiple of patch ({patch})")
        side = image_size // patch
        self.n, self.oscillatory, self.patch = n, oscillatory, patch
        self.embed = nnx.Conv(in_channels, channels, (patch, patch), strides=patch,
                              padding="VALID", rngs=rngs)
        self.pos = nnx.Param(0.02 * jax.random.normal(rngs.params(), (side, side, channels)))
        layer_cls = KuramotoLayer if oscillatory else IterativeLayer
        self.layers = nnx.List([
            layer_cls(channels, n=n, coupling=coupling, T=T, gamma=gamma, omega=omega,
                      units=side * side * channels, kernel_size=kernel_size, heads=heads,
                      rngs=rngs)
            for _ in range(blocks)])
        self.readouts = nnx.List([Readout(channels, channels, n=n, oscillatory=oscillatory,
                                          rngs=rngs) for _ in range(blocks)])
        self.head1 = nnx.Linear(channels, 4 * channels, rngs=rngs)
        self.head2 = nnx.Linear(4 * channels, out_features, rngs=rngs)

    def __call__(self, images: Float[ArrayLike, "batch height width color"], *, key: PRNGKeyArray,
                 T: int | None = None) -> AKOrNOutput:
        c = self.embed(2.0 * images - 1.0) + self.pos[...][None]
        if self.oscillatory:
            x = jax.random.normal(key, c.shape, c.dtype)
        else:
            x = jnp.zeros_like(c)
        energies = []
        for layer, readout in zip(self.layers, self.readouts, strict=True):
            traj = layer(x, c, T=T)
            x, c = traj.final, readout(traj.final)
            energies.append(traj.energy)
        pooled = jnp.max(c, axis=tuple(range(1, c.ndim - 1)))
        out = self.head2(jax.nn.relu(self.head1(pooled)))
        return AKOrNOutput(out, c, x, energies)


def count_params(model: nnx.Module) -> int:
    """Number of trainable scalars (``nnx.Param``) of a module."""
    return int(sum(np.prod(v.shape) for v in jax.tree.leaves(nnx.state(model, nnx.Param))))


# ----------------------------------------------------------------------------- training


def _augment_one(img: Array, key: PRNGKeyArray, shift: int, permute_colors: bool) -> Array:
    k = jax.random.split(key, 5)
    img = jnp.where(jax.random.bernoulli(k[0]), img[:, ::-1], img)
    img = jnp.where(jax.random.bernoulli(k[1]), img[::-1], img)
    h, w, _ = img.shape
    padded = jnp.pad(img, ((shift, shift), (shift, shift), (0, 0)))
    off = jax.random.randint(k[2], (2,), 0, 2 * shift + 1)
    img = jax.lax.dynamic_slice(padded, (off[0], off[1], 0), (h, w, img.shape[2]))
    if permute_colors:
        img = img[..., jax.random.permutation(k[3], img.shape[2])]
    return jnp.clip(img * jax.random.uniform(k[4], (), img.dtype, 0.6, 1.2), 0.0, 1.0)


def augment(images: Float[ArrayLike, "batch height width color"], *, key: PRNGKeyArray,
            shift: int = 4, permute_colors: bool = False) -> Array:
    """SimCLR-style views: random flips, translation by up to ``shift`` px (zero fill),
    brightness scaling and optionally a colour-channel permutation; independent per image."""
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(_augment_one, in_axes=(0, 0, None, None))(images, keys, shift, permute_colors)


def nt_xent(z1: Float[Array, "batch feature"], z2: Float[Array, "batch feature"],
            temperature: float = 0.1) -> Array:
    """SimCLR's normalised-temperature cross entropy (Chen et al. 2020, eq. 1), mean over 2B."""
    z = jnp.concatenate([z1, z2])
    z = z / jnp.sqrt(jnp.sum(z * z, axis=-1, keepdims=True) + _EPS)
    sim = z @ z.T / temperature
    m = z1.shape[0]
    sim = jnp.where(jnp.eye(2 * m, dtype=bool), -jnp.inf, sim)
    target = jnp.concatenate([jnp.arange(m, 2 * m), jnp.arange(m)])
    return optax.softmax_cross_entropy_with_integer_labels(sim, target).mean()


def make_contrastive_step(temperature: float = 0.1, *, shift: int = 4,
                          permute_colors: bool = False):
    """An ``nnx.jit``-ed step ``step(model, optimizer, images, key) -> loss`` (SimCLR objective
    on two :func:`augment` views)."""

    @nnx.jit
    def step(model, optimizer, images, key):
        ka, kb, kx1, kx2 = jax.random.split(key, 4)

        def loss_fn(m):
            views = [augment(images, key=k, shift=shift, permute_colors=permute_colors)
                     for k in (ka, kb)]
            z1, z2 = m(views[0], key=kx1).out, m(views[1], key=kx2).out
            return nt_xent(z1, z2, temperature)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    return step


# ----------------------------------------------------------------------------- object discovery


def _kmeans_pp_init(points: Array, k: int, key: PRNGKeyArray) -> Array:
    keys = jax.random.split(key, k)
    centers = [points[jax.random.randint(keys[0], (), 0, points.shape[0])]]
    for i in range(1, k):
        d2 = jnp.min(jnp.stack([jnp.sum((points - c[None]) ** 2, -1) for c in centers]), 0)
        p = d2 / jnp.maximum(jnp.sum(d2), _EPS)
        centers.append(points[jax.random.choice(keys[i], points.shape[0], p=p)])
    return jnp.stack(centers)


def _lloyd(points: Array, centers: Array, iters: int):
    k = centers.shape[0]

    def body(_, cen):
        lab = jnp.argmin(jnp.sum((points[:, None] - cen[None]) ** 2, -1), axis=1)
        one = jax.nn.one_hot(lab, k, dtype=points.dtype)
        cnt = one.sum(0)
        new = (one.T @ points) / jnp.maximum(cnt, 1.0)[:, None]
        return jnp.where((cnt > 0)[:, None], new, cen)

    cen = jax.lax.fori_loop(0, iters, body, centers)
    d = jnp.sum((points[:, None] - cen[None]) ** 2, -1)
    return jnp.argmin(d, axis=1), jnp.sum(jnp.min(d, axis=1)), cen


def _kmeans_single(points, key, k, iters, n_init):
    def one(kk):
        return _lloyd(points, _kmeans_pp_init(points, k, kk), iters)[:2]

    labels, inertia = jax.vmap(one)(jax.random.split(key, n_init))
    best = jnp.argmin(inertia)
    return labels[best], inertia[best]


@partial(jax.jit, static_argnames=("k", "iters", "n_init"))
def _kmeans_batch(points, keys, k: int, iters: int = 30, n_init: int = 4):
    return jax.vmap(lambda p, kk: _kmeans_single(p, kk, k, iters, n_init))(points, keys)


def kmeans(points: Float[ArrayLike, "... sample feature"], k: int, *, key: PRNGKeyArray,
           iters: int = 30, n_init: int = 4) -> tuple[Array, Array]:
    """k-means (k-means++ seeding, Lloyd iterations, best of ``n_init`` runs) in JAX.

    Parameters
    ----------
    points : array (sample, feature) or (batch, sample, feature)
        A batch is clustered image by image (one jitted, vmapped call).
    k, iters, n_init : int
        Clusters, Lloyd iterations, restarts (static: one compilation per value).
    key : jax PRNG key

    Returns
    -------
    labels : int array (..., sample)
    inertia : array (...,)
        Sum of squared distances to the assigned centres.
    """
    pts = jnp.asarray(points)
    if pts.ndim not in (2, 3) or not 1 <= k <= pts.shape[-2]:
        raise ValueError(f"points must be (sample, feature) or (batch, sample, feature) with "
                         f">= k={k} samples, got shape {pts.shape}")
    batch = pts[None] if pts.ndim == 2 else pts
    labels, inertia = _kmeans_batch(batch, jax.random.split(key, batch.shape[0]), k=k,
                                    iters=iters, n_init=n_init)
    return (labels[0], inertia[0]) if pts.ndim == 2 else (labels, inertia)


@partial(nnx.jit, static_argnames=("T", "use"))
def _features(model, images, key, T=None, use="features"):
    return getattr(model(images, key=key, T=T), use)


def _uptiled_features(model, images, key, T, uptile, use="features"):
    """Features on a grid ``uptile`` times finer than the patches: shifted copies of the image
    (zero padding) run through the model and interleaved (the paper's "saccades")."""
    b, h, w, _ = images.shape
    p = model.patch
    s = p // uptile
    padded = jnp.pad(images, ((0, 0), (0, p), (0, p), (0, 0)))
    rows = []
    for dy in range(uptile):
        cols = [_features(model, padded[:, dy * s:dy * s + h, dx * s:dx * s + w], key, T=T,
                          use=use) for dx in range(uptile)]
        rows.append(jnp.stack(cols, axis=3))  # (b, hp, wp, dx, ch)
    f = jnp.stack(rows, axis=2)  # (b, hp, dy, wp, dx, ch)
    return f.reshape(b, f.shape[1] * uptile, f.shape[3] * uptile, f.shape[-1])


def discover_objects(model: AKOrN, images: Float[ArrayLike, "batch height width color"], *,
                     n_clusters: int, key: PRNGKeyArray, T: int | None = None,
                     uptile: int = 1, use: str = "features",
                     batch_size: int = 64) -> Int[np.ndarray, "batch height width"]:
    """Segment images by k-means on the model's final features (L2-normalised per position).

    ``use="features"`` clusters the last readout (what the paper clusters); ``"states"`` the
    final oscillator states.
    ``uptile > 1`` (a divisor of the patch size) evaluates ``uptile**2`` shifted copies to get
    features every ``patch // uptile`` pixels. Returns integer masks at image resolution
    (nearest upsampling of the feature grid).
    """
    if uptile < 1 or model.patch % uptile:
        raise ValueError(f"uptile must divide the patch size {model.patch}, got {uptile}")
    if use not in ("features", "states"):
        raise ValueError(f"use must be 'features' or 'states', got {use!r}")
    images = jnp.asarray(images, jnp.float32)
    kf, kc = jax.random.split(key)
    out = []
    for i in range(0, images.shape[0], batch_size):
        f = _uptiled_features(model, images[i:i + batch_size], jax.random.fold_in(kf, i), T,
                              uptile, use)
        f = f / jnp.sqrt(jnp.sum(f * f, -1, keepdims=True) + _EPS)
        b, h, w, ch = f.shape
        keys = jax.random.split(jax.random.fold_in(kc, i), b)
        lab, _ = _kmeans_batch(f.reshape(b, h * w, ch), keys, k=n_clusters)
        out.append(np.asarray(lab).reshape(b, h, w))
    lab = np.concatenate(out)
    s = model.patch // uptile
    return np.repeat(np.repeat(lab, s, axis=1), s, axis=2)


def _ari(true: np.ndarray, pred: np.ndarray) -> float:
    _, t = np.unique(true, return_inverse=True)
    _, p = np.unique(pred, return_inverse=True)
    cont = np.zeros((t.max() + 1, p.max() + 1), np.int64)
    np.add.at(cont, (t, p), 1)
    n = true.size
    sum_sq = np.sum(cont.astype(np.float64) ** 2)
    a, b = cont.sum(1).astype(np.float64), cont.sum(0).astype(np.float64)
    tp = sum_sq - n
    fp = np.sum(b**2) - sum_sq
    fn = np.sum(a**2) - sum_sq
    tn = float(n) * n - fp - fn - sum_sq
    if fn == 0 and fp == 0:  # identical partitions (incl. the single-cluster case)
        return 1.0
    return float(2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)))


def fg_ari(true_masks: Int[ArrayLike, "batch height width"],
           pred_masks: Int[ArrayLike, "batch height width"]) -> np.ndarray:
    """Foreground adjusted Rand index per image: ARI over pixels whose true label is > 0.

    Raises
    ------
    ValueError
        If the shapes differ or an image has no foreground pixel (ARI undefined).
    """
    true, pred = np.asarray(true_masks), np.asarray(pred_masks)
    if true.shape != pred.shape or true.ndim != 3:
        raise ValueError(f"true_masks and pred_masks must both be (batch, height, width), got "
                         f"{true.shape} and {pred.shape}")
    scores = np.empty(true.shape[0])
    for i, (t, p) in enumerate(zip(true, pred, strict=True)):
        fg = t > 0
        if not fg.any():
            raise ValueError(f"true_masks[{i}] has no foreground pixel; FG-ARI is undefined")
        scores[i] = _ari(t[fg], p[fg])
    return scores
