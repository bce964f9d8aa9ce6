"""Arguments are checked when they are parsed, before any data is generated or loaded."""

from __future__ import annotations

import pytest

from brainmodels.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["encode", "--cv", "runs"], "'runs' (leave-one-run-out) is for BOLD time series"),
        (["encode", "--cv", "1"], "K >= 2"),
        (["encode", "--cv", "kfold"], "must be loo or a number of folds"),
        (["encode", "--alphas=-2,6"], "LO,HI,N"),
        (["encode", "--alphas=6,-2,5"], "LO <= HI"),
        (["encode", "--test-fraction", "1.5"], "between 0 and 1"),
        (["encode", "--voxel-batch", "0"], "whole number >= 1"),
        (["simulate", "cuba", "--duration", "1"], "1s (seconds) or 1ms"),
    ],
)
def test_bad_arguments_fail_before_any_work(argv, message, tmp_path, capsys, monkeypatch):
    """`encode --cv runs` used to fail after 15 s of generating the synthetic dataset."""
    def no_work(*args, **kwargs):
        raise AssertionError("data work started before the arguments were checked")

    monkeypatch.setattr("brainmodels.datasets.make_synthetic_fmri", no_work)
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err  # usage + one error line
    assert not (tmp_path / "out").exists()


def test_error_messages_print_plain_values(tmp_path, capsys):
    """Lists in messages read ['V1', 'V2'], not [np.str_('V1'), np.str_('V2')]."""
    code = main(["rsa", "--data", "synthetic", "--n-stimuli", "30", "--rois", "V9",
                 "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "ROIs with voxels: ['V1', 'V2'" in err and "np." not in err
