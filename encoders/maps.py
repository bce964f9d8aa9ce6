"""Brain maps of per-voxel results (re-exported from :mod:`brainmodels.brainmaps`).

``to_nifti(values, ds)`` puts any per-voxel vector (scores, alphas, noise ceilings) back into a
NIfTI volume using the dataset's ``i, j, k`` voxel coords and ``affine``/``volume_shape`` attrs;
``plot_brain_map(values, ds, output_file=..., kind="stat"|"glass")`` draws it with nilearn;
``save_nifti(img, path)`` writes it atomically.
"""

from __future__ import annotations

from brainmodels.brainmaps import plot_brain_map, save_nifti, to_nifti

__all__ = ["plot_brain_map", "save_nifti", "to_nifti"]
