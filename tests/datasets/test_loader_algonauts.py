"""load_algonauts2023 on a tiny Algonauts-2023-shaped folder written here."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from brainmodels.datasets import load_algonauts2023

N_IMG, N_LH, N_RH = 12, 30, 25


@pytest.fixture
def algonauts(tmp_path, rng):
    sub = tmp_path / "subj01"
    fmri = sub / "training_split" / "training_fmri"
    imgs = sub / "training_split" / "training_images"
    rois = sub / "roi_masks"
    for d in (fmri, imgs, rois):
        d.mkdir(parents=True)
    lh = rng.standard_normal((N_IMG, N_LH)).astype(np.float32)
    rh = rng.standard_normal((N_IMG, N_RH)).astype(np.float32)
    np.save(fmri / "lh_training_fmri.npy", lh)
    np.save(fmri / "rh_training_fmri.npy", rh)
    pixels = rng.integers(0, 256, (N_IMG, 16, 16, 3), dtype=np.uint8)
    for n in range(N_IMG):
        Image.fromarray(pixels[n]).save(imgs / f"train-{n + 1:04d}_nsd-{100 + 7 * n:05d}.png")
    vis = {h: rng.integers(0, 3, n) for h, n in (("lh", N_LH), ("rh", N_RH))}
    faces = {h: rng.integers(0, 2, n) for h, n in (("lh", N_LH), ("rh", N_RH))}
    for h in ("lh", "rh"):
        np.save(rois / f"{h}.prf-visualrois_challenge_space.npy", vis[h])
        np.save(rois / f"{h}.floc-faces_challenge_space.npy", faces[h])
        fs = np.zeros(100, dtype=bool)
        fs[np.sort(rng.choice(100, N_LH if h == "lh" else N_RH, replace=False))] = True
        np.save(rois / f"{h}.all-vertices_fsaverage_space.npy", fs)
    np.save(rois / "mapping_prf-visualrois.npy", {0: "Unknown", 1: "V1v", 2: "V1d"})
    np.save(rois / "mapping_floc-faces.npy", {0: "Unknown", 1: "FFA-1"})
    return tmp_path, lh, rh, pixels, vis, faces


def test_round_trip(algonauts):
    path, lh, rh, pixels, vis, faces = algonauts
    ds = load_algonauts2023(path, 1, load_images=True)
    np.testing.assert_array_equal(ds.betas.values, np.concatenate([lh, rh], 1))
    np.testing.assert_array_equal(ds.stimulus_id.values, np.arange(N_IMG))
    assert ds.nsd_id.values.tolist() == [100 + 7 * n for n in range(N_IMG)]
    assert (ds.hemisphere.values == "lh").sum() == N_LH
    np.testing.assert_array_equal(ds.images.values, pixels / np.float32(255))  # PNG lossless
    names = {0: "none", 1: "V1v", 2: "V1d"}
    expected_vis = [names[c] for c in np.concatenate([vis["lh"], vis["rh"]])]
    assert ds["roi_prf-visualrois"].values.tolist() == expected_vis
    both = np.concatenate([faces["lh"], faces["rh"]])
    first = np.where(np.array(expected_vis) != "none", expected_vis,
                     np.where(both == 1, "FFA-1", "none"))
    assert ds.roi.values.tolist() == first.tolist()
    assert ds.fsaverage_vertex.values.min() >= 0
    # "subj01", "01" and 1 name the same subject; images resized on request
    small = load_algonauts2023(path, "subj01", load_images=True, image_size=8)
    assert small.images.shape == (N_IMG, 8, 8, 3)


def test_bad_inputs(algonauts):
    path, lh, rh, *_ = algonauts
    fmri = path / "subj01" / "training_split" / "training_fmri"
    with pytest.raises(FileNotFoundError, match="subj02"):
        load_algonauts2023(path, 2)
    next(iter(sorted((path / "subj01/training_split/training_images").glob("*.png")))).unlink()
    with pytest.raises(ValueError, match=r"training_images .* lists 11 .* has 12"):
        load_algonauts2023(path, 1)
    np.save(fmri / "rh_training_fmri.npy", rh[:11])
    with pytest.raises(ValueError, match="rh_training_fmri.npy has 11"):
        load_algonauts2023(path, 1)
    (fmri / "rh_training_fmri.npy").unlink()
    with pytest.raises(FileNotFoundError, match="rh_training_fmri.npy"):
        load_algonauts2023(path, 1)


def test_bad_vertices(algonauts):
    path, lh, rh, *_ = algonauts
    fmri = path / "subj01" / "training_split" / "training_fmri"
    lh = lh.copy()
    lh[3, 5] = np.nan
    lh[:, 7] = 0.0
    np.save(fmri / "lh_training_fmri.npy", lh)
    with pytest.raises(ValueError, match=r"NaN/inf values \(indices \[5\]\).*zero variance"):
        load_algonauts2023(path, 1)
    ds = load_algonauts2023(path, 1, on_bad_voxels="drop")
    assert ds.sizes["voxel"] == N_LH + N_RH - 2 and 5 not in ds.vertex.values[:N_LH - 2]
    roi_file = path / "subj01" / "roi_masks" / "lh.floc-faces_challenge_space.npy"
    np.save(roi_file, np.zeros(N_LH + 1))
    with pytest.raises(ValueError, match="lh.floc-faces_challenge_space.npy has shape"):
        load_algonauts2023(path, 1, on_bad_voxels="drop")


class _Crafted:
    """What a crafted mapping file holds: an object whose unpickling calls ``call``."""

    def __init__(self, call):
        self.call = call

    def __reduce__(self):
        return self.call


@pytest.mark.parametrize("how", ["os.system", "builtins.exec", "numpy.save"])
def test_a_crafted_mapping_file_runs_no_code(algonauts, tmp_path, how):
    import os

    path, *_ = algonauts
    marker = tmp_path / "marker.npy"
    call = {"os.system": (os.system, (f"touch {marker}",)),
            "builtins.exec": (exec, (f"open({str(marker)!r}, 'w').close()",)),
            "numpy.save": (np.save, (str(marker), np.zeros(1)))}[how]
    crafted = np.empty((), dtype=object)
    crafted[()] = {1: _Crafted(call)}
    mapping = path / "subj01" / "roi_masks" / "mapping_prf-visualrois.npy"
    np.save(mapping, crafted, allow_pickle=True)
    with pytest.raises(ValueError, match="refusing to run code from a data file") as exc:
        load_algonauts2023(path, 1)
    assert str(mapping) in str(exc.value)
    assert not marker.exists()


def test_mapping_files_of_numpy_1_and_str_keys_load(tmp_path):
    import pickle

    from brainmodels.datasets._npy import load_label_mapping

    array = np.empty((), dtype=object)
    array[()] = {0: "Unknown", "1": np.str_("V1v")}
    payload = pickle.dumps(array, protocol=3)  # as numpy 1's np.save: text GLOBAL opcodes
    assert b"numpy._core.multiarray" in payload
    path = tmp_path / "mapping_old.npy"
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "|O", "fortran_order": False,
                                                  "shape": ()})
        fh.write(payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert load_label_mapping(path) == {0: "Unknown", 1: "V1v"}
    np.save(path, np.arange(3))
    with pytest.raises(ValueError, match="not a pickled dict"):
        load_label_mapping(path)
    np.save(path, {"a": "V1"})
    with pytest.raises(ValueError, match="expected integer labels"):
        load_label_mapping(path)
