"""Graph steps of Lyapunov Noise Pruning on a weight matrix ``w[pre, post]`` (numpy, host).

Step 2 keeps the most central neurons of the sparsified graph (:func:`betweenness_prune`,
betweenness centrality with ``1 / |w|`` as edge length); step 3 adds edges back so that the
leading eigenvectors spread over more neurons (:func:`delocalize_eigenvectors`, greedy on the
first-order change of the inverse participation ratio). :mod:`brainmodels.snn.lnp` runs them in
order and re-exports them; they are useful alone on any connectome.

References
----------
Brandes (2001), A faster algorithm for betweenness centrality, J. Math. Sociol. 25(2).
Chakraborty, Kang, Kumar & Mukhopadhyay (2024), ICLR, arXiv:2403.03409, sec. 3.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from brainmodels._types import ArrayLike, Float

__all__ = ["betweenness_centrality", "betweenness_prune", "inverse_participation_ratio",
           "Delocalization", "delocalize_eigenvectors"]

# ----------------------------------------------------------------------------- 2. neurons


def betweenness_centrality(w: Float[ArrayLike, "pre post"], *, samples: int | None = None,
                           seed: int = 0) -> np.ndarray:
    """Betweenness centrality of each neuron in the directed graph of ``w`` (networkx).

    Edge ``i -> j`` for every ``w_ij != 0``, of length ``1 / |w_ij|``; normalised by
    ``(n - 1)(n - 2)``. ``samples`` (networkx's ``k``): estimate from that many source neurons
    (drawn with ``seed``) instead of all of them.
    """
    import networkx as nx

    w = np.asarray(w, np.float64)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(w.shape[0]))
    pre, post = np.nonzero(w)
    graph.add_weighted_edges_from(zip(pre.tolist(), post.tolist(),
                                      (1.0 / np.abs(w[pre, post])).tolist(), strict=True),
                                  weight="distance")
    k = None if samples is None else min(int(samples), w.shape[0])
    bc = nx.betweenness_centrality(graph, k=k, normalized=True, weight="distance", seed=seed)
    return np.array([bc[i] for i in range(w.shape[0])])


def betweenness_prune(w: Float[ArrayLike, "pre post"], n_keep: int, *,
                      samples: int | None = None, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_keep`` most central neurons of ``w`` (sorted indices) and every centrality.

    Ties (e.g. neurons on no shortest path, centrality 0) go to the larger total synaptic
    strength ``sum_j |w_ij| + |w_ji|``, then to the lower index.

    Raises
    ------
    ValueError
        If ``n_keep`` is not in ``1..n``.

    Examples
    --------
    >>> star = np.zeros((4, 4))
    >>> star[0, 1:] = star[1:, 0] = 1.0  # neuron 0 is on every path between the others
    >>> betweenness_prune(star, 1)[0]
    array([0])
    """
    w = np.asarray(w, np.float64)
    n = w.shape[0]
    if not 1 <= n_keep <= n:
        raise ValueError(f"n_keep must be in [1, {n}], got {n_keep!r}")
    bc = betweenness_centrality(w, samples=samples, seed=seed)
    strength = np.abs(w).sum(0) + np.abs(w).sum(1)
    order = np.lexsort((np.arange(n), -strength, -bc))
    return np.sort(order[:n_keep]), bc


# ----------------------------------------------------------------------------- 3. delocalisation


def inverse_participation_ratio(v: ArrayLike) -> np.ndarray:
    """``sum_i |v_i|^4 / (sum_i |v_i|^2)^2`` of each column: 1/n (spread) .. 1 (one neuron)."""
    p = np.abs(np.asarray(v)) ** 2
    p = p / p.sum(axis=0, keepdims=True)
    return (p**2).sum(axis=0)


def _leading(w, k):
    """Eigenvalues, unit eigenvectors (columns) of the activity operator ``w.T`` and the
    indices of the ``k`` of largest modulus."""
    lam, vec = np.linalg.eig(w.T)
    return lam, vec, np.argsort(-np.abs(lam), kind="stable")[:k]


def _mean_ipr(eig):
    _, vec, order = eig
    return float(inverse_participation_ratio(vec[:, order]).mean())


def _ipr_slopes(eig, shape):
    """First-order change of the leading eigenvectors' mean IPR per unit weight added at each
    ``(pre, post)``: for ``A = W^T = V diag(l) V^-1`` and ``A_pq += e`` the eigenvector
    ``v_k`` moves by ``e V_qk G_k[:, p]``, ``G_k = V diag(1 / (l_k - l_m))_{m != k} V^-1``."""
    lam, vec, order = eig
    try:
        inv = np.linalg.inv(vec)
    except np.linalg.LinAlgError:
        return np.zeros(shape)
    slope = np.zeros(shape, np.float64)  # indexed (post p, pre q) of A
    for j in order:
        v = vec[:, j]
        ipr = np.sum(np.abs(v) ** 4)
        gap = lam[j] - lam
        d = np.where(np.abs(gap) > 1e-9 * max(1.0, abs(lam[j])), 1.0 / np.where(gap == 0, 1, gap),
                     0.0)
        h = ((np.conj(v) * (np.abs(v) ** 2 - ipr)) @ vec * d) @ inv
        slope += 4.0 * np.real(np.outer(h, v))
    return slope.T / len(order)  # -> (pre q, post p) of W


class Delocalization(NamedTuple):
    """What :func:`delocalize_eigenvectors` did."""

    w: np.ndarray
    added: np.ndarray  # (k, 3): pre, post, weight
    ipr_before: float
    ipr_after: float


def delocalize_eigenvectors(w: Float[ArrayLike, "pre post"], n_edges: int, *,
                            n_vectors: int = 4, weight: float | None = None,
                            max_tries: int = 8) -> Delocalization:
    """Add up to ``n_edges`` synapses that spread the leading eigenvectors over more neurons.

    The paper adds edges to delocalise the eigenvectors of the pruned network; which edges is
    our choice: greedily, the absent synapse (no autapse) whose first-order effect on the mean
    inverse participation ratio (IPR) of the ``n_vectors`` leading eigenvectors of ``W^T``
    (largest ``|eigenvalue|``) is largest, with magnitude ``weight`` (default: the mean
    ``|w|`` of the existing synapses) and the sign that lowers the IPR. A candidate is kept only
    if the exact IPR (a new eigendecomposition) decreases, so the IPR never increases; the
    next ``max_tries - 1`` candidates are tried before stopping early.

    Returns
    -------
    Delocalization
        New weights, the added ``(pre, post, weight)`` rows, mean IPR before and after.
    """
    w = np.array(w, np.float64)
    n = w.shape[0]
    k = max(1, min(int(n_vectors), n))
    eig = _leading(w, k)
    before = current = _mean_ipr(eig)
    if weight is None:
        weight = float(np.abs(w[w != 0]).mean()) if np.any(w != 0) else 1.0
    added = []
    while len(added) < n_edges:
        slope = _ipr_slopes(eig, w.shape)
        flat = np.flatnonzero((w == 0) & ~np.eye(n, dtype=bool) & (slope != 0))
        for idx in flat[np.argsort(-np.abs(slope.ravel()[flat]), kind="stable")[:max_tries]]:
            pre, post = divmod(int(idx), n)
            trial = w.copy()
            trial[pre, post] = -weight * np.sign(slope[pre, post])
            trial_eig = _leading(trial, k)
            if _mean_ipr(trial_eig) < current:
                w, eig, current = trial, trial_eig, _mean_ipr(trial_eig)
                added.append((pre, post, trial[pre, post]))
                break
        else:  # no candidate (left) lowers the IPR
            break
    return Delocalization(w, np.array(added, np.float64).reshape(-1, 3), before, current)
