"""The AKOrN network: patch embedding, blocks of (Kuramoto layer, readout), an MLP head."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from brainmodels._types import Array, ArrayLike, Float, PRNGKeyArray
from brainmodels.akorn.layer import IterativeLayer, KuramotoLayer, Readout


class AKOrNOutput(NamedTuple):
    """Network output: head output, final readout features, final states, energies per block."""

    out: Array
    features: Array
    states: Array
    energies: list


@dataclasses.dataclass(frozen=True)
class AKOrNConfig:
    """Architecture of an :class:`AKOrN` network (see its docstring for each field)."""

    image_size: int = 32
    in_channels: int = 3
    patch: int = 2
    channels: int = 64
    n: int = 4
    blocks: int = 1
    T: int = 8
    coupling: str = "attn"
    kernel_size: int = 3
    heads: int = 4
    gamma: float = 1.0
    omega: float | None = 0.1
    learn_omega: bool = True
    c_norm: bool = True
    out_features: int = 64
    oscillatory: bool = True


class AKOrN(nnx.Module):
    """AKOrN network: patch embedding -> blocks of (Kuramoto layer, readout) -> pooled MLP head.

    The patch embedding (plus a learned position embedding) is the first block's ``c``; each
    block's readout is the next block's ``c``, its final state the next block's initial state
    (Miyato et al. 2025, Fig. 2). The head max-pools the last readout and applies a 2-layer MLP
    (class logits, or a projection for contrastive training).

    Parameters
    ----------
    config : AKOrNConfig, optional
        The architecture; keyword arguments override its fields (``AKOrN(channels=32,
        rngs=...)``), and a misspelt one is a TypeError.
    rngs : nnx.Rngs

    Fields of :class:`AKOrNConfig`
    ------------------------------
    image_size, in_channels, patch : int
        Square input side, colour channels, patch size of the embedding (stride = patch).
    channels, n, blocks, T : int
        Channels per position (``channels // n`` oscillators), oscillator dimension, number
        of blocks, Kuramoto steps per block.
    coupling : {"attn", "attn_gta", "conv", "dense"}
        Connectivity ``J`` of every block (see :data:`COUPLINGS`).
    kernel_size, heads : int
        For ``"conv"`` and ``"attn"``.
    gamma, omega : float
        Step size and initial global frequency (see :class:`KuramotoLayer`).
    learn_omega, c_norm : bool
        Learn ``Omega``; GroupNorm the stimulus ``c`` (see :class:`KuramotoLayer`). The
        authors' recipe for objects switches both off, with ``omega=None``: no ``Omega``, no
        normalisation of ``c``.
    out_features : int
        Output width of the head (number of classes for classification).
    oscillatory : bool
        ``False`` builds the same-size non-oscillatory baseline (:class:`IterativeLayer`
        blocks, zero initial state, group-mean GELU readout).

    Notes
    -----
    Call as ``model(images, key=key)`` with images ``(batch, height, width, color)`` in
    [0, 1]; ``key`` draws the random initial oscillator state (as in the paper's code).
    Returns an :class:`AKOrNOutput`.
    """

    def __init__(self, config: AKOrNConfig | None = None, *, rngs: nnx.Rngs, **overrides):
        try:
            config = dataclasses.replace(config or AKOrNConfig(), **overrides)
        except TypeError as err:
            fields = [f.name for f in dataclasses.fields(AKOrNConfig)]
            raise TypeError(f"AKOrN got an unknown argument ({err}); the architecture's fields "
                            f"are {fields}") from None
        self.config = config
        c = config
        image_size, in_channels, patch, channels, n = (c.image_size, c.in_channels, c.patch,
                                                      c.channels, c.n)
        blocks, T, coupling, kernel_size, heads = c.blocks, c.T, c.coupling, c.kernel_size, c.heads
        gamma, omega, out_features, oscillatory = c.gamma, c.omega, c.out_features, c.oscillatory
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
                      learn_omega=c.learn_omega, c_norm=c.c_norm,
                      units=side * side * channels, kernel_size=kernel_size, heads=heads,
                      rngs=rngs)
            for _ in range(blocks)])
        self.readouts = nnx.List([Readout(channels, channels, n=n, oscillatory=oscillatory,
                                          rngs=rngs) for _ in range(blocks)])
        self.head1 = nnx.Linear(channels, 4 * channels, rngs=rngs)
        self.head2 = nnx.Linear(4 * channels, out_features, rngs=rngs)

    def __call__(self, images: Float[ArrayLike, "batch height width color"], *, key: PRNGKeyArray,
                 T: int | None = None) -> AKOrNOutput:
        blocks = self.blocks(images, key=key, T=T)
        x, c, _ = blocks[-1]
        pooled = jnp.max(c, axis=tuple(range(1, c.ndim - 1)))
        out = self.head2(jax.nn.relu(self.head1(pooled)))
        return AKOrNOutput(out, c, x, [energy for _, _, energy in blocks])

    def blocks(self, images: Float[ArrayLike, "batch height width color"], *, key: PRNGKeyArray,
               T: int | None = None) -> list[tuple[Array, Array, Array | None]]:
        """Every block's ``(final oscillator states, readout, energy per step)``; the energy is
        None for blocks that do not compute one (the non-oscillatory baselines).

        States are ``(batch, height', width', channels)`` unit vectors in groups of ``n``
        channels; the readout is the next block's conditional stimulus ``c``. These are the
        per-block representations :func:`brainmodels.representations.representations` reads.
        """
        c = self.embed(2.0 * images - 1.0) + self.pos[...][None]
        if self.oscillatory:
            x = jax.random.normal(key, c.shape, c.dtype)
        else:
            x = jnp.zeros_like(c)
        out = []
        for layer, readout in zip(self.layers, self.readouts, strict=True):
            traj = layer(x, c, T=T)
            x, c = traj.final, readout(traj.final)
            out.append((x, c, traj.energy))
        return out


def count_params(model: nnx.Module) -> int:
    """Number of trainable scalars (``nnx.Param``) of a module."""
    return int(sum(np.prod(v.shape) for v in jax.tree.leaves(nnx.state(model, nnx.Param))))
