"""Space-time images of wave-RNN hidden states."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_waves"]


def plot_waves(states, *, sample: int = 0, channels=None, ax=None, cmap: str = "magma"):
    """Draw hidden states as space-time images (neuron across, time down): waves are diagonals.

    Parameters
    ----------
    states : array
        ``(batch, time, channel, neuron)`` (WaveRNN), ``(batch, time, neuron)`` (the others),
        or one sample ``(time, channel, neuron)``.
    sample : int
        Which sequence of the batch to draw.
    channels : sequence of int, optional
        Channels to draw side by side (default: up to the first 4).
    ax : matplotlib Axes or array of Axes, optional
    cmap : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    s = np.asarray(states)
    if s.ndim == 4:
        if not 0 <= sample < s.shape[0]:
            raise ValueError(f"sample must be in [0, {s.shape[0]}), got {sample}")
        s = s[sample]
    elif s.ndim == 3 and channels is None and ax is None and s.shape[0] > 1:
        s = s[sample][:, None, :]  # (batch, time, neuron) of a wave-free model
    elif s.ndim == 2:
        s = s[:, None, :]
    if s.ndim != 3:
        raise ValueError("states must be (batch, time, channel, neuron), (batch, time, neuron) "
                         f"or (time, neuron), got shape {np.asarray(states).shape}")
    chans = list(range(min(4, s.shape[1]))) if channels is None else list(channels)
    if ax is None:
        fig, axes = plt.subplots(1, len(chans), figsize=(3 * len(chans), 3), squeeze=False)
        axes = axes[0]
    else:
        axes = np.atleast_1d(ax)
        fig = axes[0].figure
    for a, c in zip(axes, chans, strict=True):
        a.imshow(s[:, c, :], aspect="auto", origin="upper", cmap=cmap, interpolation="nearest")
        a.set(xlabel="neuron", ylabel="time step", title=f"channel {c}")
    fig.tight_layout()
    return fig
