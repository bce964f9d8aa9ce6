"""The paper's copy task, permuted digits, memoryless baselines, and plot_waves."""

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from flax import nnx  # noqa: E402

from brainmodels.datasets import adding_task, copy_memory_task, memoryless_loss, sequential_digits  # noqa: E402
from brainmodels.wave_rnn import WaveRNN, plot_waves  # noqa: E402


def test_copy_memory_layout_matches_the_paper():
    t = copy_memory_task(delay=7, n_train=5, n_test=3, seed=2)
    codes = t.x_train.argmax(-1)
    assert t.x_train.shape == (5, 27, 10)  # T + 20 steps, one-hot over 10 codes
    assert ((codes[:, :10] >= 1) & (codes[:, :10] <= 8)).all()
    assert (codes[:, 10:16] == 0).all() and (codes[:, 16] == 9).all() and (codes[:, 17:] == 0).all()
    np.testing.assert_array_equal(t.y_train[:, -10:], codes[:, :10])
    assert (t.y_train[:, :-10] == 0).all()
    # memoryless: blanks are certain, each recalled symbol one of 8 -> 10 log 8 / (T + 20)
    assert memoryless_loss(t) == pytest.approx(10 * np.log(8) / 27, rel=1e-15)
    again = copy_memory_task(delay=7, n_train=5, n_test=3, seed=2)
    np.testing.assert_array_equal(again.x_test, t.x_test)  # same seed, same data


def test_permuted_digits_are_one_fixed_permutation_of_the_plain_ones():
    plain = sequential_digits(order="pixel", seed=3)
    perm = sequential_digits(order="pixel", permute=True, seed=3)
    np.testing.assert_array_equal(plain.y_test, perm.y_test)
    # a single permutation of time maps every plain sequence to its permuted one
    a, b = plain.x_train[:, :, 0], perm.x_train[:, :, 0]
    # each permuted step equals one plain step across all samples; constant (always-blank)
    # pixels are interchangeable, so match informative columns only
    informative = [j for j in range(64) if b[:, j].std() > 0]
    sources = [int(np.flatnonzero((a == b[:, [j]]).all(0))[0]) for j in informative]
    assert len(set(sources)) == len(sources)
    assert not np.array_equal(plain.x_train, perm.x_train)
    assert memoryless_loss(plain) == pytest.approx(np.log(10), abs=2e-3)  # near-balanced classes


def test_adding_baseline_is_target_variance():
    t = adding_task(length=20, n_test=4000, seed=1)
    assert memoryless_loss(t) == pytest.approx(1 / 6, rel=0.05)  # Var(U1 + U2) = 1/6


def test_plot_waves_draws_the_travelling_bump_as_a_diagonal():
    m = WaveRNN(1, 8, 2, 1, rngs=nnx.Rngs(0))
    x = np.zeros((1, 8, 1), np.float32)
    x[0, 0, 0] = 1.0
    _, h = m(x, return_states=True)
    fig = plot_waves(h)
    img = fig.axes[0].images[0].get_array()
    np.testing.assert_array_equal(np.asarray(img), np.eye(8))
    with pytest.raises(ValueError, match="states must be"):
        plot_waves(np.zeros(5))
