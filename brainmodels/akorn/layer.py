"""The AKOrN unit: oscillator algebra, couplings ``J``, the Kuramoto layer and its readout.

Each unit is an ``n``-dimensional unit vector (``n`` even, default 4). A :class:`KuramotoLayer`
runs ``T`` steps of the generalised Kuramoto update (Miyato et al. 2025, eq. 2-3)

    x <- normalize(x + gamma * (Omega x + Proj_x(c + J(x)))),   Proj_x(y) = y - <y, x> x,

with ``Omega`` block-diagonal 2x2 rotations (natural frequencies), ``c`` the conditional stimulus
(normalised with GroupNorm) and ``J`` a fully connected, convolutional or attentive coupling.
It exposes the energy ``E = -1/2 sum x.J(x) - sum c.x`` (eq. 4) and the trajectory.

Layout: channels last. A state has shape ``(batch, *space, channels)``; the channels are
``channels // n`` oscillators of ``n`` consecutive entries.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from brainmodels._types import Array, ArrayLike, Float

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


def gta_angles(height: int, width: int, head_dim: int) -> Array:
    """Rotation angles ``(height * width, head_dim // 2)`` of GTA's 2-D position transforms.

    The head's channels are taken in pairs; the first half of the pairs turn with the token's
    column, the second half with its row, at octave frequencies ``pi / 2^k`` per grid step.
    """
    if head_dim % 4:
        raise ValueError(f"GTA needs a head dimension divisible by 4 (pairs for x and y), "
                         f"got {head_dim}")
    k = head_dim // 4
    freqs = jnp.pi / 2.0 ** jnp.arange(k)
    row, col = jnp.meshgrid(jnp.arange(height), jnp.arange(width), indexing="ij")
    return jnp.concatenate([col.reshape(-1, 1) * freqs[None], row.reshape(-1, 1) * freqs[None]],
                           axis=1)


def gta_rotate(t: Array, angles: Array, inverse: bool = False) -> Array:
    """Apply the block-diagonal rotation ``rho(g)`` (``rho(g)^T`` with ``inverse``) of each
    token to ``t (batch, token, head, head_dim)``; ``angles (token, head_dim // 2)``."""
    a, b = t[..., 0::2], t[..., 1::2]
    cos, sin = jnp.cos(angles)[None, :, None, :], jnp.sin(angles)[None, :, None, :]
    sin = -sin if inverse else sin
    return jnp.stack([cos * a - sin * b, sin * a + cos * b], axis=-1).reshape(t.shape)


class AttentionCoupling(nnx.Module):
    """Attentive ``J``: multi-head self-attention over all positions (1x1 linear Q, K, V, out).

    With ``gta`` (geometric transform attention, Miyato et al. 2024, used by the AKOrN authors
    for objects) each token's 2-D grid position ``g`` acts on queries, keys and values by a
    rotation ``rho(g)``: ``out_i = rho(g_i) sum_j a_ij rho(g_j)^T v_j`` with logits ``(rho(g_i)^T
    q_i) . (rho(g_j)^T k_j)``, so attention depends on relative positions only. Needs a
    ``(batch, height, width, channel)`` state.
    """

    def __init__(self, channels: int, heads: int = 4, *, gta: bool = False, rngs: nnx.Rngs):
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        if gta and (channels // heads) % 4:
            raise ValueError(f"GTA needs channels / heads divisible by 4, got {channels} / "
                             f"{heads}")
        self.qkv = nnx.Linear(channels, 3 * channels, use_bias=False, rngs=rngs)
        self.out = nnx.Linear(channels, channels, use_bias=False, rngs=rngs)
        self.heads = heads
        self.gta = gta

    def __call__(self, x: Float[Array, "batch ... channel"]) -> Array:
        b, ch = x.shape[0], x.shape[-1]
        q, k, v = jnp.split(self.qkv(x.reshape(b, -1, ch)), 3, axis=-1)
        split = lambda t: t.reshape(b, -1, self.heads, ch // self.heads)  # noqa: E731
        q, k, v = split(q), split(k), split(v)
        if self.gta:
            if x.ndim != 4:
                raise ValueError(f"GTA attention needs a (batch, height, width, channel) state, "
                                 f"got shape {x.shape}")
            angles = gta_angles(x.shape[1], x.shape[2], ch // self.heads)
            q, k, v = (gta_rotate(t, angles, inverse=True) for t in (q, k, v))
        att = jnp.einsum("blhd,bmhd->bhlm", q, k) / math.sqrt(ch // self.heads)
        y = jnp.einsum("bhlm,bmhd->blhd", jax.nn.softmax(att, axis=-1), v)
        if self.gta:
            y = gta_rotate(y, angles)
        return self.out(y.reshape(b, -1, ch)).reshape(x.shape)


#: Coupling registry: name -> factory(channels, *, units, kernel_size, heads, rngs).
COUPLINGS = {
    "dense": lambda ch, *, units, kernel_size, heads, rngs: DenseCoupling(units, rngs=rngs),
    "conv": lambda ch, *, units, kernel_size, heads, rngs: ConvCoupling(ch, kernel_size, rngs=rngs),
    "attn": lambda ch, *, units, kernel_size, heads, rngs: AttentionCoupling(ch, heads, rngs=rngs),
    "attn_gta": lambda ch, *, units, kernel_size, heads, rngs: AttentionCoupling(
        ch, heads, gta=True, rngs=rngs),
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


#: runs of up to this many steps are unrolled (see _unroll)
UNROLL_STEPS = 32


def _unroll(steps: int) -> int | bool:
    """Unroll short runs: XLA's CPU backend runs a convolution's gradient inside a loop body
    ~18x slower than the same gradient unrolled (8 steps of a 3 x 3, 64-channel conv on
    128 9 x 9 maps: 4.3 s against 0.24 s; forward 2x), and a SimCLR step of AKOrN is mostly
    that gradient. Longer runs keep the loop (compile time grows with the unrolled length)."""
    return True if steps <= UNROLL_STEPS else 1


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
    coupling : {"dense", "conv", "attn", "attn_gta"} or nnx.Module
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
        Size of a state for ``"dense"``; kernel of ``"conv"``; heads of ``"attn"`` (``"attn_gta"``: with
        GTA's 2-D position transforms, see :class:`AttentionCoupling`).
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
        final, (es, xs) = jax.lax.scan(step, x, None, length=steps, unroll=_unroll(steps))
        es = jnp.concatenate([energy(x, c, self.J)[None], es])
        xs = jnp.concatenate([x[None], xs]) if return_states else None
        return Trajectory(final, es, xs)


#: KuramotoLayer arguments that the non-oscillatory IterativeLayer accepts and ignores
OSCILLATOR_ONLY = frozenset({"n", "omega", "learn_omega", "c_norm", "project"})


class IterativeLayer(nnx.Module):
    """Non-oscillatory baseline with the same ``J`` and ``c``: ``x <- x + gamma (J(LN x) + c)``.

    With ``coupling="attn"`` this is an iterated (weight-shared) self-attention block, the
    paper's ItrSA baseline; with ``"conv"`` an iterated residual convolution. No energy
    (``Trajectory.energy`` is None). The oscillator-only arguments of :class:`KuramotoLayer`
    (:data:`OSCILLATOR_ONLY`) are accepted and ignored, so the two layer classes are
    interchangeable in :class:`AKOrN`; any other argument is an error.
    """

    def __init__(self, channels: int, *, coupling="attn", T: int = 8, gamma: float = 1.0,
                 units: int | None = None, kernel_size: int = 3, heads: int = 4,
                 rngs: nnx.Rngs, **oscillator_only):
        unknown = sorted(set(oscillator_only) - OSCILLATOR_ONLY)
        if unknown:
            raise TypeError(f"IterativeLayer got unexpected argument(s) {unknown}; it takes "
                            f"those of KuramotoLayer ({sorted(OSCILLATOR_ONLY)} are ignored)")
        self.T, self.gamma = T, float(gamma)
        self.J = _make_coupling(coupling, channels, units, kernel_size, heads, rngs)
        self.norm_c = nnx.LayerNorm(channels, rngs=rngs)
        self.norm_x = nnx.LayerNorm(channels, rngs=rngs)

    def __call__(self, x, c, *, T: int | None = None, return_states: bool = False) -> Trajectory:
        c = self.norm_c(c)

        def step(state, _):
            new = state + self.gamma * (self.J(self.norm_x(state)) + c)
            return new, new if return_states else None

        steps = self.T if T is None else T
        final, xs = jax.lax.scan(step, x, None, length=steps, unroll=_unroll(steps))
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
