"""betas_from_bids on a tiny BIDS tree written here, against the betas used to make it."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import make_first_level_design_matrix

from brainmodels.datasets import GLMOptions, betas_from_bids, find_bids_runs

TR = 2.0
N_FRAMES = 110
SHAPE = (4, 3, 3)
STIMULI = [f"img{n:02d}" for n in range(8)]


def _write_run(func, run, true_betas, rng, noise=0.0):
    order = rng.permutation(len(STIMULI))
    onsets = 6.0 + 12.0 * np.arange(len(STIMULI)) + rng.uniform(0, 2, len(STIMULI))
    events = pd.DataFrame({"onset": onsets, "duration": 1.0,
                           "trial_type": [STIMULI[i] for i in order]})
    extra = pd.DataFrame({"onset": [100.0], "duration": [2.0], "trial_type": ["fixation"]})
    events = pd.concat([events, extra], ignore_index=True)
    dm = make_first_level_design_matrix(np.arange(N_FRAMES) * TR, events, hrf_model="spm",
                                        drift_model=None)
    effects = np.zeros((dm.shape[1], true_betas.shape[1]))
    for n, name in enumerate(STIMULI):
        effects[list(dm.columns).index(name)] = true_betas[n]
    effects[list(dm.columns).index("fixation")] = 0.7
    effects[list(dm.columns).index("constant")] = 100.0
    y = dm.to_numpy() @ effects + noise * rng.standard_normal((N_FRAMES, true_betas.shape[1]))
    vol = y.T.reshape(*SHAPE, N_FRAMES).astype(np.float32)
    stem = func / f"sub-01_task-objects_run-{run}"
    nib.save(nib.Nifti1Image(vol, np.eye(4)), f"{stem}_bold.nii.gz")
    events.to_csv(f"{stem}_events.tsv", sep="\t", index=False)


@pytest.fixture(scope="module")
def bids(tmp_path_factory):
    root = tmp_path_factory.mktemp("bids")
    (root / "dataset_description.json").write_text(json.dumps({"Name": "tiny", "BIDSVersion":
                                                                "1.8.0"}))
    (root / "task-objects_bold.json").write_text(json.dumps({"RepetitionTime": TR}))
    func = root / "sub-01" / "func"
    func.mkdir(parents=True)
    rng = np.random.default_rng(0)
    true = rng.standard_normal((len(STIMULI), int(np.prod(SHAPE))))
    for run in (1, 2):
        _write_run(func, run, true, rng)
    nib.save(nib.Nifti1Image(np.ones(SHAPE, dtype=np.uint8), np.eye(4)), root / "mask.nii.gz")
    return root, true


def test_lsa_recovers_betas(bids):
    root, true = bids
    ds = betas_from_bids(root, "01", "objects", mask_img=root / "mask.nii.gz",
                         ignore=["fixation"],
                         glm=GLMOptions(noise_model="ols", signal_scaling=False))
    assert ds.sizes["trial"] == 16 and list(np.unique(ds.run)) == [1, 2]
    assert list(np.unique(ds.stimulus)) == STIMULI
    # noiseless data in the span of the model (cosine drifts included): exact up to float32
    # storage of the BOLD (values ~100, eps 1e-5 relative -> 1e-3 absolute)
    np.testing.assert_allclose(ds.betas.values, true[ds.stimulus_id.values], atol=2e-3)
    # voxel order is nilearn's masker order (C order of the mask)
    np.testing.assert_array_equal(np.stack([ds.i, ds.j, ds.k], 1), np.argwhere(np.ones(SHAPE)))


def test_lss_matches_numpy_reference(bids):
    """LSS: one OLS per event on nilearn's design matrix (target, others, nuisance)."""
    root, true = bids
    ds = betas_from_bids(root, "sub-01", "objects", method="lss", mask_img=root / "mask.nii.gz",
                         ignore=["fixation"],
                         glm=GLMOptions(noise_model="ols", signal_scaling=False))
    assert ds.sizes["trial"] == 16
    func = root / "sub-01" / "func"
    ref = []
    for run in (1, 2):
        events = pd.read_csv(func / f"sub-01_task-objects_run-{run}_events.tsv", sep="\t")
        y = nib.load(func / f"sub-01_task-objects_run-{run}_bold.nii.gz").get_fdata()
        y = y.reshape(-1, N_FRAMES).T
        stim = events["trial_type"] != "fixation"
        for n in np.flatnonzero(stim):
            kind = np.where(stim, "others", "nuisance").astype(object)
            kind[n] = "target"
            dm = make_first_level_design_matrix(np.arange(N_FRAMES) * TR,
                                                events.assign(trial_type=kind), hrf_model="spm")
            coef = np.linalg.lstsq(dm.to_numpy(), y, rcond=None)[0]
            ref.append(coef[list(dm.columns).index("target")])
    # same model, two solvers (nilearn's pinv vs numpy lstsq) on float32 data: 1e-4
    np.testing.assert_allclose(ds.betas.values, np.asarray(ref), atol=1e-4)
    # LSS lumps the other trials into one regressor: biased where responses overlap, but
    # still ordered like the truth
    r = np.corrcoef(ds.betas.values.ravel(), true[ds.stimulus_id.values].ravel())[0, 1]
    assert r > 0.8


def test_default_percent_signal_change(bids):
    root, true = bids
    ds = betas_from_bids(root, "01", "objects", mask_img=root / "mask.nii.gz",
                         ignore=["fixation"], glm=GLMOptions(noise_model="ols"))
    # nilearn scales each voxel by its mean (~100) to percent signal change: betas ~ true
    np.testing.assert_allclose(ds.betas.values, true[ds.stimulus_id.values], atol=0.05)


def test_bad_inputs(bids, tmp_path):
    root, _ = bids
    with pytest.raises(FileNotFoundError, match="no BOLD run"):
        betas_from_bids(root, "01", "rest")
    with pytest.raises(FileNotFoundError, match="sub-02"):
        betas_from_bids(root, "02", "objects")
    with pytest.raises(ValueError, match="method must be one of"):
        betas_from_bids(root, "01", "objects", method="glmsingle")
    # a copy with one events file missing and one that runs past the end of its run
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    (bad / "sub-01/func/sub-01_task-objects_run-2_events.tsv").unlink()
    with pytest.raises(FileNotFoundError, match="run-2_events.tsv"):
        betas_from_bids(bad, "01", "objects", mask_img=root / "mask.nii.gz")
    ev = pd.read_csv(bad / "sub-01/func/sub-01_task-objects_run-1_events.tsv", sep="\t")
    ev.loc[0, "onset"] = 500.0
    ev.to_csv(bad / "sub-01/func/sub-01_task-objects_run-1_events.tsv", sep="\t", index=False)
    with pytest.raises(ValueError, match=r"run-1_events.tsv has 1 onset\(s\) at or after the end"):
        betas_from_bids(bad, "01", "objects", mask_img=root / "mask.nii.gz")
    empty = tmp_path / "empty.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(SHAPE, dtype=np.uint8), np.eye(4)), empty)
    with pytest.raises(ValueError, match="empty"):
        betas_from_bids(root, "01", "objects", mask_img=empty)


SPACE = "MNI152NLin2009cAsym"


@pytest.fixture(scope="module")
def fmriprep(bids):
    """fMRIPrep-like derivatives of the tiny dataset: preprocessed runs that also carry a
    motion and a CSF signal (weights 3 and -2), confounds tables, brain masks (run 2's
    lacks one voxel) and a second space for run 1."""
    root, true = bids
    deriv = root / "derivatives" / "fmriprep"
    func = deriv / "sub-01" / "func"
    func.mkdir(parents=True)
    rng = np.random.default_rng(5)
    for run in (1, 2):
        raw = root / "sub-01" / "func" / f"sub-01_task-objects_run-{run}"
        y = nib.load(f"{raw}_bold.nii.gz").get_fdata().reshape(-1, N_FRAMES).T
        motion = np.cumsum(rng.standard_normal((N_FRAMES, 6)), axis=0) * 0.05
        table = pd.DataFrame(motion, columns=["trans_x", "trans_y", "trans_z", "rot_x",
                                              "rot_y", "rot_z"])
        table["white_matter"] = rng.standard_normal(N_FRAMES)
        table["csf"] = np.sin(np.arange(N_FRAMES) / 3.0) + 0.3 * rng.standard_normal(N_FRAMES)
        _add_fmriprep_columns(table, rng)
        y = y + 3.0 * table["trans_x"].to_numpy()[:, None] - 2.0 * table["csf"].to_numpy()[:, None]
        stem = func / f"sub-01_task-objects_run-{run}"
        vol = y.T.reshape(*SHAPE, N_FRAMES).astype(np.float32)
        nib.save(nib.Nifti1Image(vol, np.eye(4)), f"{stem}_space-{SPACE}_desc-preproc_bold.nii.gz")
        (func / f"{stem.name}_space-{SPACE}_desc-preproc_bold.json").write_text(
            json.dumps({"RepetitionTime": TR}))
        mask = np.ones(SHAPE, np.uint8)
        if run == 2:
            mask[0, 0, 0] = 0
        nib.save(nib.Nifti1Image(mask, np.eye(4)), f"{stem}_space-{SPACE}_desc-brain_mask.nii.gz")
        table.to_csv(f"{stem}_desc-confounds_timeseries.tsv", sep="\t", index=False, na_rep="n/a")
        (func / f"{stem.name}_desc-confounds_timeseries.json").write_text("{}")
    return root, deriv, true


def _add_fmriprep_columns(table, rng):
    """The columns nilearn's load_confounds reads, as fMRIPrep writes them (first-row n/a in
    the derivatives): motion expansions, cosine drifts, FD and DVARS."""
    for name in ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z", "white_matter",
                 "csf"]:
        deriv = np.r_[np.nan, np.diff(table[name].to_numpy())]
        table[f"{name}_derivative1"] = deriv
        table[f"{name}_power2"] = table[name] ** 2
        table[f"{name}_derivative1_power2"] = deriv**2
    frames = np.arange(N_FRAMES)
    for c in range(3):
        table[f"cosine{c:02d}"] = np.sqrt(2 / N_FRAMES) * np.cos(np.pi * (frames + 0.5)
                                                                * (c + 1) / N_FRAMES)
    table["framewise_displacement"] = np.r_[np.nan, 0.05 + 0.01 * rng.random(N_FRAMES - 1)]
    table["std_dvars"] = np.r_[np.nan, 1.0 + 0.1 * rng.random(N_FRAMES - 1)]


def test_fmriprep_derivatives_with_confounds(fmriprep):
    root, deriv, true = fmriprep
    kw = {"derivatives": deriv, "ignore": ["fixation"], "glm": GLMOptions(noise_model="ols", signal_scaling=False)}
    ds = betas_from_bids(root, "01", "objects", confounds=["trans_x", "csf"], **kw)
    # the mask is the runs' intersection: 36 - 1 voxels
    assert ds.sizes == {"trial": 16, "voxel": int(np.prod(SHAPE)) - 1}
    assert ds.attrs["params"]["space"] == SPACE
    assert ds.attrs["params"]["confounds"] == ["trans_x", "csf"]
    keep = np.ravel_multi_index((ds.i.values, ds.j.values, ds.k.values), SHAPE)
    # noiseless: the confounds are in the model, so the betas are exact to float32 storage
    np.testing.assert_allclose(ds.betas.values, true[ds.stimulus_id.values][:, keep],
                               atol=2e-3)
    # without them the motion and CSF signals leak into the betas
    plain = betas_from_bids(root, "01", "objects", **kw)
    assert np.abs(plain.betas.values - true[plain.stimulus_id.values][:, keep]).max() > 0.05
    # nilearn's strategies (through load_confounds) hold trans_x and csf too: exact as well
    for confounds in ("motion+wm_csf", "simple",
                      {"strategy": ("motion", "wm_csf"), "motion": "full", "wm_csf": "basic"}):
        named = betas_from_bids(root, "01", "objects", confounds=confounds, **kw)
        np.testing.assert_allclose(named.betas.values, ds.betas.values, atol=2e-3)
    assert named.attrs["params"]["confounds"]["strategy"] == ["motion", "wm_csf"]
    # motion alone misses the CSF signal: it leaks
    motion = betas_from_bids(root, "01", "objects", confounds="motion", **kw)
    assert np.abs(motion.betas.values - ds.betas.values).max() > 0.05


def test_scrubbing_censors_high_motion_volumes(fmriprep, tmp_path):
    """Volumes with a head jerk (FD 2 mm) carry a large artifact: nilearn's scrubbing sample
    mask drops them from the GLM, and the betas are exact again."""
    import shutil

    root, deriv, true = fmriprep
    jerk = tmp_path / "fmriprep"
    shutil.copytree(deriv, jerk)
    bad = [50, 51, 52]
    for run in (1, 2):
        stem = jerk / "sub-01/func" / f"sub-01_task-objects_run-{run}"
        path = f"{stem}_space-{SPACE}_desc-preproc_bold.nii.gz"
        img = nib.load(path)
        vol = img.get_fdata().astype(np.float32)
        vol[..., bad] += 40.0
        nib.save(nib.Nifti1Image(vol, img.affine), path)
        table = pd.read_csv(f"{stem}_desc-confounds_timeseries.tsv", sep="\t")
        table.loc[bad, "framewise_displacement"] = 2.0
        table.to_csv(f"{stem}_desc-confounds_timeseries.tsv", sep="\t", index=False,
                     na_rep="n/a")
    kw = {"derivatives": jerk, "ignore": ["fixation"], "glm": GLMOptions(noise_model="ols", signal_scaling=False)}
    base = {"strategy": ("motion", "wm_csf"), "motion": "basic", "wm_csf": "basic"}
    keep = None
    unscrubbed = betas_from_bids(root, "01", "objects", confounds=base, **kw)
    keep = np.ravel_multi_index((unscrubbed.i.values, unscrubbed.j.values,
                                 unscrubbed.k.values), SHAPE)
    truth = true[unscrubbed.stimulus_id.values][:, keep]
    assert np.abs(unscrubbed.betas.values - truth).max() > 0.5
    scrub = {**base, "strategy": ("motion", "wm_csf", "scrub"), "fd_threshold": 0.5,
             "std_dvars_threshold": 100.0, "scrub": 0}
    scrubbed = betas_from_bids(root, "01", "objects", confounds=scrub, **kw)
    np.testing.assert_allclose(scrubbed.betas.values, truth, atol=2e-3)


def test_fmriprep_bad_inputs(fmriprep, tmp_path):
    root, deriv, _ = fmriprep
    with pytest.raises(ValueError, match="pass derivatives= too"):
        betas_from_bids(root, "01", "objects", confounds="motion")
    with pytest.raises(ValueError, match=r"a strategy, one of \['compcor', 'ica_aroma'"):
        betas_from_bids(root, "01", "objects", derivatives=deriv, confounds="aroma")
    with pytest.raises(ValueError, match=r"confounds \{'strategy': \['global_signal'\]"):
        betas_from_bids(root, "01", "objects", derivatives=deriv,
                        confounds={"strategy": ["global_signal"]})
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['global_signal'\]"):
        betas_from_bids(root, "01", "objects", derivatives=deriv, confounds=["global_signal"])
    with pytest.raises(FileNotFoundError, match="no preprocessed BOLD run"):
        betas_from_bids(root, "01", "rest", derivatives=deriv)
    with pytest.raises(FileNotFoundError, match="derivatives"):
        betas_from_bids(root, "01", "objects", derivatives=tmp_path / "nope")
    # a second output space: ambiguous until space= picks one
    import shutil

    two = tmp_path / "two"
    shutil.copytree(deriv, two)
    src = two / "sub-01/func" / f"sub-01_task-objects_run-1_space-{SPACE}_desc-preproc_bold.nii.gz"
    shutil.copy(src, str(src).replace(SPACE, "T1w"))
    with pytest.raises(ValueError, match=r"several spaces \['MNI152NLin2009cAsym', 'T1w'\]"):
        betas_from_bids(root, "01", "objects", derivatives=two)
    runs = find_bids_runs(root, "01", "objects", derivatives=two, space="T1w")
    assert len(runs) == 1 and runs["events"][0].name == "sub-01_task-objects_run-1_events.tsv"


def test_cli_data_bids_writes_betas(fmriprep, tmp_path, capsys):
    from brainmodels.cli import main
    from brainmodels.data import load_netcdf

    root, deriv, true = fmriprep
    out = tmp_path / "betas"
    rc = main(["data", "bids", str(root), "--subject", "01", "--task", "objects",
               "--derivatives", str(deriv), "--confounds", "trans_x,csf", "--ignore", "fixation",
               "--out", str(out)])
    assert rc == 0 and "16 trials of 8 stimuli in 2 run(s), 35 voxels" in capsys.readouterr().out
    ds = load_netcdf(out / "betas.nc")
    keep = np.ravel_multi_index((ds.i.values, ds.j.values, ds.k.values), SHAPE)
    # percent signal change (nilearn's default scaling; the voxel means are ~100): ~ the truth
    np.testing.assert_allclose(ds.betas.values, true[ds.stimulus_id.values][:, keep], atol=0.05)
    assert ds.attrs["params"]["confounds"] == ["trans_x", "csf"]
    rc = main(["data", "bids", str(root), "--subject", "01", "--task", "objects",
               "--confounds", "motion", "--out", str(out)])
    assert rc == 2 and "pass derivatives= too" in capsys.readouterr().err
