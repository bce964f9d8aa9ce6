"""Theory for :mod:`brainmodels.kuramoto`: frequency distributions and analytic results.

Public names are re-exported by :mod:`brainmodels.kuramoto`; see there for the model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.integrate
import scipy.optimize
import scipy.special

from brainmodels._types import ArrayLike, PRNGKeyArray


@dataclasses.dataclass(frozen=True)
class Distribution:
    """A unimodal, even frequency density in standard form (centre 0, ``width`` 1).

    ``width`` scales it: ``g_w(x) = g(x / w) / w``. ``support`` is the half-width of the
    support (inf when unbounded).
    """

    pdf: Callable[[np.ndarray], np.ndarray]
    quantile: Callable[[np.ndarray], np.ndarray]
    sample: Callable[..., jax.Array]
    density_at_zero: float
    support: float
    width_means: str


def _uniform_sample(key, shape, dtype):
    return jax.random.uniform(key, shape, dtype, minval=-1.0, maxval=1.0)


#: Frequency distributions by name; ``width`` is the half-width at half-maximum (Lorentzian),
#: the standard deviation (Gaussian) or the half-width of the support (uniform).
DISTRIBUTIONS: dict[str, Distribution] = {
    "lorentzian": Distribution(
        pdf=lambda x: 1.0 / (math.pi * (1.0 + x * x)),
        quantile=lambda u: np.tan(math.pi * (u - 0.5)),
        sample=lambda key, shape, dtype: jax.random.cauchy(key, shape, dtype),
        density_at_zero=1.0 / math.pi, support=math.inf, width_means="half-width gamma"),
    "gaussian": Distribution(
        pdf=lambda x: np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi),
        quantile=scipy.special.ndtri,
        sample=lambda key, shape, dtype: jax.random.normal(key, shape, dtype),
        density_at_zero=1.0 / math.sqrt(2.0 * math.pi), support=math.inf,
        width_means="standard deviation sigma"),
    "uniform": Distribution(
        pdf=lambda x: np.where(np.abs(x) <= 1.0, 0.5, 0.0),
        quantile=lambda u: 2.0 * u - 1.0,
        sample=_uniform_sample,
        density_at_zero=0.5, support=1.0, width_means="half-width of the support"),
}


def get_distribution(name: str) -> Distribution:
    try:
        return DISTRIBUTIONS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"distribution must be one of {sorted(DISTRIBUTIONS)}, got {name!r}") from None


def _check_width(width: float) -> float:
    width = float(width)
    if not (np.isfinite(width) and width > 0):
        raise ValueError(f"width must be a positive finite number, got {width!r}")
    return width


def natural_frequencies(n: int, distribution: str = "lorentzian", *, width: float = 1.0,
                        center: float = 0.0, key: PRNGKeyArray | None = None) -> jax.Array:
    """Natural frequencies from a named distribution.

    Without ``key`` the frequencies are deterministic quantiles
    ``omega_k = center + width G^{-1}((k - 1/2) / n)``, k = 1..n (sorted), which removes the
    sampling noise of finite ``n`` (the standard trick for comparing with N -> inf theory);
    with ``key`` they are independent random draws.

    Parameters
    ----------
    n : int
    distribution : {"lorentzian", "gaussian", "uniform"}
    width : float
        See :data:`DISTRIBUTIONS` (half-width gamma, sigma, or support half-width).
    center : float
    key : jax PRNG key, optional

    Returns
    -------
    jax.Array (n,), default float dtype.
    """
    dist = get_distribution(distribution)
    width = _check_width(width)
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    dtype = jnp.zeros(()).dtype
    if key is None:
        u = (np.arange(int(n), dtype=np.float64) + 0.5) / int(n)
        return jnp.asarray(center + width * dist.quantile(u), dtype)
    return center + width * dist.sample(key, (int(n),), dtype)


def as_scipy(adjacency):
    """A dense numpy array, or a scipy CSR matrix for sparse input (BCOO, EdgeList, scipy)."""
    import scipy.sparse as sp

    from brainmodels.data import to_numpy
    from brainmodels.kuramoto.engine import EdgeList

    if isinstance(adjacency, EdgeList):
        return sp.csr_matrix((np.asarray(adjacency.weight), (np.asarray(adjacency.target),
                                                            np.asarray(adjacency.source))),
                             shape=(adjacency.n, adjacency.n))
    if sp.issparse(adjacency):
        return sp.csr_matrix(adjacency)
    if hasattr(adjacency, "indices") and hasattr(adjacency, "todense"):  # jax BCOO
        idx = np.asarray(adjacency.indices)
        return sp.csr_matrix((np.asarray(adjacency.data), (idx[:, 0], idx[:, 1])),
                             shape=adjacency.shape)
    return to_numpy(adjacency, name="adjacency").astype(np.float64)


def _lambda_max(adjacency) -> float:
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    adjacency = as_scipy(adjacency)
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise ValueError(f"adjacency must be a square matrix, got shape {adjacency.shape}")
    if sp.issparse(adjacency) and adjacency.shape[0] > 64:
        vals = spla.eigs(adjacency.astype(float), k=1, which="LR", return_eigenvectors=False)
        return float(np.max(vals.real))
    dense = adjacency.toarray() if sp.issparse(adjacency) else np.asarray(adjacency, float)
    if np.allclose(dense, dense.T):
        return float(np.linalg.eigvalsh(dense)[-1])
    return float(np.max(np.linalg.eigvals(dense).real))


def critical_coupling(distribution: str = "lorentzian", *, width: float = 1.0, lag: float = 0.0,
                      noise: float = 0.0, adjacency: ArrayLike | None = None) -> float:
    """Onset coupling ``K_c`` of synchrony for N -> inf.

    ``K_c = 2 / (pi g(0))`` for an even unimodal density (Kuramoto 1984): ``2 gamma``
    (Lorentzian), ``sigma sqrt(8 / pi)`` (Gaussian), ``4 w / pi`` (uniform, where the
    transition is first order). With noise intensity D, ``K_c = 2 / int g(w) D / (D^2 + w^2) dw``
    (Strogatz & Mirollo 1991; ``2 (gamma + D)`` for a Lorentzian). With a Sakaguchi lag
    (Lorentzian only), ``K_c = 2 (gamma + D) / cos(alpha)`` (inf if ``cos(alpha) <= 0``). On a
    network, ``K_c / lambda_max(A)`` (Restrepo, Ott & Hunt 2005, eq. 9; all-to-all ``A = 1/N``
    has lambda_max = 1).

    Raises
    ------
    ValueError
        Unknown distribution, bad width/noise, or a lag with a non-Lorentzian density.
    """
    dist = get_distribution(distribution)
    width = _check_width(width)
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    if lag != 0.0 and distribution != "lorentzian":
        raise ValueError(f"a lag is supported for distribution='lorentzian' only, got {distribution!r}")
    if distribution == "lorentzian":
        kc = 2.0 * (width + noise) / math.cos(lag) if math.cos(lag) > 0 else math.inf
    elif noise == 0:
        kc = 2.0 * width / (math.pi * dist.density_at_zero)
    else:
        lim = dist.support * width
        val, _ = scipy.integrate.quad(
            lambda w: dist.pdf(w / width) / width * noise / (noise**2 + w * w), -lim, lim,
            limit=200)
        kc = 2.0 / val
    if adjacency is not None:
        lam = _lambda_max(adjacency)
        if lam <= 0:
            raise ValueError(f"adjacency has lambda_max = {lam:.3g} <= 0; no synchrony onset")
        kc /= lam
    return kc


def _self_consistency_gap(r: float, k: float, dist: Distribution, width: float) -> float:
    """``K int cos^2 t g_w(K r sin t) dt - 1`` over the locked oscillators (Strogatz eq. 6)."""
    kr = k * r
    tmax = math.asin(min(1.0, dist.support * width / kr)) if kr > 0 else math.pi / 2
    val, _ = scipy.integrate.quad(
        lambda t: math.cos(t) ** 2 * float(dist.pdf(kr * math.sin(t) / width)) / width,
        -tmax, tmax, limit=200, epsabs=1e-12, epsrel=1e-10)
    return k * val - 1.0


def stationary_order_parameter(coupling: ArrayLike, distribution: str = "lorentzian", *,
                               width: float = 1.0, lag: float = 0.0) -> np.ndarray:
    """Stationary r(K) of the partially locked state for N -> inf (0 when incoherent).

    Lorentzian: ``r = sqrt(1 - 2 gamma / (K cos alpha))`` (Kuramoto 1984; Sakaguchi & Kuramoto
    1986). Other densities (no lag): the non-zero root of the self-consistency equation
    ``1 = K int_{-pi/2}^{pi/2} cos^2(t) g(K r sin t) dt`` (Strogatz 2000, eq. 6), found with
    adaptive quadrature and Brent's method; e.g. Gaussian sigma = 1: r(1.7) = 0.425,
    r(2.0) = 0.715, r(3.0) = 0.925. For the uniform density (first-order transition) the
    upper branch is returned for K > K_c.

    Returns
    -------
    numpy array shaped like ``coupling`` (float64).
    """
    dist = get_distribution(distribution)
    width = _check_width(width)
    k = np.asarray(coupling, dtype=np.float64)
    if lag != 0.0 and distribution != "lorentzian":
        raise ValueError(f"a lag is supported for distribution='lorentzian' only, got {distribution!r}")
    if distribution == "lorentzian":
        keff = k * math.cos(lag)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.sqrt(np.clip(1.0 - 2.0 * width / keff, 0.0, None))
        return np.where(keff > 2.0 * width, r, 0.0)
    out = np.zeros(k.shape)
    for idx, kk in np.ndenumerate(k):
        lo = 1e-9
        if kk <= 0 or _self_consistency_gap(lo, kk, dist, width) <= 0:
            continue
        out[idx] = scipy.optimize.brentq(_self_consistency_gap, lo, 1.0,
                                         args=(kk, dist, width), xtol=1e-12)
    return out


def ott_antonsen_order_parameter(t: ArrayLike, coupling: float, *, width: float, r0: float,
                                 lag: float = 0.0) -> np.ndarray:
    """r(t) on the Ott-Antonsen manifold for Lorentzian frequencies (exact as N -> inf).

    Solves ``dr/dt = -gamma r + (K cos(alpha) / 2) r (1 - r^2)`` (Ott & Antonsen 2008, eq. 11
    with the Sakaguchi lag) in closed form: with ``u = r^2``, ``a = K cos(alpha) - 2 gamma``,
    ``b = K cos(alpha)``, ``u(t) = a u0 / (a e^{-a t} + b u0 (1 - e^{-a t}))``.
    """
    t = np.asarray(t, dtype=np.float64)
    width = _check_width(width)
    if not 0.0 < r0 <= 1.0:
        raise ValueError(f"r0 must be in (0, 1], got {r0!r}")
    b = coupling * math.cos(lag)
    a = b - 2.0 * width
    u0 = r0 * r0
    if abs(a) < 1e-12:
        return np.sqrt(u0 / (1.0 + b * u0 * t))
    e = np.exp(-a * t)
    return np.sqrt(np.clip(a * u0 / (a * e + b * u0 * (1.0 - e)), 0.0, None))
