"""Artificial Kuramoto Oscillatory Neurons (AKOrN): Kuramoto layers as trainable network units.

Each unit is an ``n``-dimensional unit vector (``n`` even, default 4). A :class:`KuramotoLayer`
runs ``T`` steps of the generalised Kuramoto update (Miyato et al. 2025, eq. 2-3) with a
fully connected, convolutional or attentive coupling ``J``, and exposes the energy (eq. 4) and
the trajectory. :class:`AKOrN` stacks blocks on a patch embedding for image classification and
for unsupervised object discovery (clustering the final features with :func:`kmeans`, scored
with :func:`fg_ari`).

Modules
-------
``layer``
    oscillator algebra, couplings, :class:`KuramotoLayer`, :class:`IterativeLayer`, readout;
``network``
    :class:`AKOrN` and its output;
``contrastive``
    SimCLR views and loss, trained with :func:`brainmodels.training.fit`;
``objects``
    k-means, object discovery and FG-ARI.

References
----------
Miyato, Loewe, Geiger & Welling (2025). Artificial Kuramoto Oscillatory Neurons. ICLR.
Chen et al. (2020). A simple framework for contrastive learning (SimCLR). ICML (the objective).
"""

from brainmodels.akorn.contrastive import (
    augment,
    contrastive_loss,
    make_contrastive_step,
    nt_xent,
    train_contrastive,
)
from brainmodels.akorn.layer import (
    COUPLINGS,
    AttentionCoupling,
    ConvCoupling,
    DenseCoupling,
    IterativeLayer,
    KuramotoLayer,
    Readout,
    Trajectory,
    energy,
    kuramoto_update,
    normalize_oscillators,
    project_tangent,
    rotate,
)
from brainmodels.akorn.network import AKOrN, AKOrNConfig, AKOrNOutput, count_params
from brainmodels.akorn.objects import CLUSTERING, PatchColour, discover_objects, fg_ari, kmeans

__all__ = [
    # the unit
    "normalize_oscillators", "project_tangent", "rotate", "kuramoto_update", "energy",
    "DenseCoupling", "ConvCoupling", "AttentionCoupling", "COUPLINGS",
    "KuramotoLayer", "IterativeLayer", "Readout", "Trajectory",
    # the network
    "AKOrN", "AKOrNConfig", "AKOrNOutput", "count_params",
    # contrastive training
    "augment", "nt_xent", "contrastive_loss", "make_contrastive_step", "train_contrastive",
    # object discovery
    "kmeans", "discover_objects", "fg_ari", "PatchColour", "CLUSTERING",
]
