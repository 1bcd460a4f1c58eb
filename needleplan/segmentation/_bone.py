"""Working grid and bone mask for the classical spine segmentation.

The CT is resampled (linear) onto an axis-aligned LPS grid of roughly isotropic
1.5-2 mm voxels: array axis 0 points to the patient's left, axis 1 posterior and axis 2
superior, whatever the orientation of the source.  Every later step reasons about
anatomy in that grid and maps its result back to the CT grid at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from needleplan.io.volume import Volume

__all__ = ["WorkGrid", "make_work_grid", "bone_mask", "body_outline", "to_ct_grid"]

#: Bone threshold (HU, after ~1 mm smoothing) for cortex.
CORTEX_HU = 160.0
#: Voxels this dense next to cortex are cancellous bone even when the cortex is open.
SPONGY_HU = 110.0


@dataclass
class WorkGrid:
    """The CT resampled onto an LPS-aligned grid.

    Attributes
    ----------
    hu : (X, Y, Z) ndarray of float32
        HU; axis 0 toward patient left, 1 posterior, 2 superior.
    spacing_mm : (3,) ndarray
        Voxel size along the three axes.
    origin_lps : (3,) ndarray
        LPS mm of voxel (0, 0, 0).
    inside : (X, Y, Z) ndarray of bool
        Voxels that lie inside the source CT's field of view.
    """

    hu: np.ndarray
    spacing_mm: np.ndarray
    origin_lps: np.ndarray
    inside: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.hu.shape)  # type: ignore[return-value]

    @property
    def ijk_to_lps(self) -> np.ndarray:
        a = np.diag(np.r_[self.spacing_mm, 1.0])
        a[:3, 3] = self.origin_lps
        return a

    def to_lps(self, ijk) -> np.ndarray:
        return np.asarray(ijk, float) * self.spacing_mm + self.origin_lps

    def to_ijk(self, lps) -> np.ndarray:
        return (np.asarray(lps, float) - self.origin_lps) / self.spacing_mm


def _sitk_image(volume: Volume) -> sitk.Image:
    vox = np.asarray(volume.voxels)
    if vox.dtype not in (np.int16, np.float32):
        vox = vox.astype(np.float32)
    img = sitk.GetImageFromArray(np.ascontiguousarray(vox.transpose(2, 1, 0)))
    img.SetSpacing([float(s) for s in volume.spacing_mm])
    img.SetDirection([float(x) for x in volume.direction.ravel()])
    img.SetOrigin([float(x) for x in volume.origin_lps])
    return img


def _target_spacing(volume: Volume) -> np.ndarray:
    sp = np.asarray(volume.spacing_mm, float)
    extent = sp * np.asarray(volume.shape)
    target = 1.5 if np.prod(extent / 1.5) < 8e6 else 2.0
    return np.maximum(sp, target)


def make_work_grid(volume: Volume, *, spacing_mm=None) -> WorkGrid:
    """Resample ``volume`` onto an LPS-aligned grid (linear interpolation).

    Parameters
    ----------
    volume : Volume
    spacing_mm : float or (3,) array_like, optional
        Output voxel size; default: the source spacing but at least 1.5 mm (2 mm for
        large volumes).
    """
    if spacing_mm is None:
        # voxel sizes sorted by the LPS axis each source axis maps to
        lps_axis = np.argmax(np.abs(volume.direction), axis=0)
        tgt = _target_spacing(volume)
        spacing = np.empty(3)
        spacing[lps_axis] = tgt
    else:
        spacing = np.broadcast_to(np.asarray(spacing_mm, float), (3,)).copy()
    lo, hi = volume.bounds_lps()
    size = np.floor((hi - lo) / spacing + 1e-6).astype(int) + 1
    img = _sitk_image(volume)
    res = sitk.ResampleImageFilter()
    res.SetOutputSpacing([float(s) for s in spacing])
    res.SetOutputOrigin([float(x) for x in lo])
    res.SetOutputDirection([1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0])
    res.SetSize([int(s) for s in size])
    res.SetInterpolator(sitk.sitkLinear)
    res.SetDefaultPixelValue(-3000.0)
    res.SetOutputPixelType(sitk.sitkFloat32)
    resampled = res.Execute(img)  # keep a reference: the array view must not outlive the image
    out = sitk.GetArrayViewFromImage(resampled).transpose(2, 1, 0)
    hu = np.ascontiguousarray(out, dtype=np.float32)
    del resampled
    inside = hu > -2500
    hu[~inside] = -1000.0
    return WorkGrid(hu=hu, spacing_mm=spacing, origin_lps=np.asarray(lo, float), inside=inside)


def body_outline(grid: WorkGrid) -> np.ndarray:
    """The patient's body (soft tissue and bone), without table and air; bool mask."""
    soft = grid.hu > -400
    # detach the couch and blankets: open in-plane by ~6 mm
    r = np.maximum(1, np.round(6.0 / grid.spacing_mm[:2]).astype(int))
    st = np.zeros((2 * r[0] + 1, 2 * r[1] + 1, 1), bool)
    yy, xx = np.ogrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1]
    st[..., 0] = (yy / max(r[0], 1)) ** 2 + (xx / max(r[1], 1)) ** 2 <= 1.0
    opened = ndi.binary_opening(soft, structure=st)
    lab, n = ndi.label(opened)
    if n == 0:
        return np.zeros_like(soft)
    sizes = ndi.sum_labels(np.ones_like(lab, np.int32), lab, np.arange(1, n + 1))
    keep = np.flatnonzero(sizes >= 0.05 * sizes.max()) + 1
    body = np.isin(lab, keep)
    body = ndi.binary_dilation(body, structure=st) & soft
    return body


def bone_mask(grid: WorkGrid, body: np.ndarray | None = None) -> np.ndarray:
    """Bone: smoothed HU above :data:`CORTEX_HU`, plus voxels above :data:`SPONGY_HU`
    within ~7 mm (12 mm cranio-caudally) of such cortex (dense cancellous bone).

    Dark osteoporotic marrow is *not* in this mask; the vertebral bodies are made solid
    later (convex hull per slice between the discs, :mod:`._v_label`) and hollow bodies
    are found by :func:`enclosure_radius`.  Only voxels inside ``body`` (the patient
    outline, when given) count, which drops the couch.
    """
    sigma = np.maximum(1.0 / grid.spacing_mm, 0.5)
    hu = ndi.gaussian_filter(grid.hu, sigma=sigma)
    cortex = hu > CORTEX_HU
    if body is not None:
        cortex &= body
    size = tuple(int(2 * max(1, round(r / s)) + 1) for r, s in zip((7.0, 7.0, 12.0), grid.spacing_mm))
    near = ndi.maximum_filter(cortex, size=size)
    bone = cortex | (near & (hu > SPONGY_HU))
    bone = ndi.binary_opening(bone, structure=np.ones((2, 2, 1), bool)) | cortex
    return bone


def enclosure_radius(bone: np.ndarray, spacing_mm, *, reach_mm: float = 30.0,
                     need: int = 6) -> np.ndarray:
    """Radius (mm) of the bony ring around each non-bone voxel, 0 where not enclosed.

    Eight in-plane (axial) rays are cast from every voxel; when at least ``need`` of them
    meet bone within ``reach_mm`` the voxel is enclosed and its value is the median
    distance of the hits.  The hollow-looking body of an osteoporotic vertebra (marrow
    as dark as muscle, posterior cortex broken) scores its inner radius (12-20 mm), the
    spinal canal less (6-10 mm).
    """
    sx_mm, sy_mm = float(spacing_mm[0]), float(spacing_mm[1])
    dists = []
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1)):
        step = float(np.hypot(dx * sx_mm, dy * sy_mm))
        n = max(1, int(reach_mm / step))
        dist = np.full(bone.shape, np.inf, np.float32)
        nx, ny = bone.shape[:2]
        for s in range(n, 0, -1):  # far to near: the nearest hit wins
            sx, sy = dx * s, dy * s
            src = bone[max(sx, 0):nx + min(sx, 0), max(sy, 0):ny + min(sy, 0)]
            dst = dist[max(-sx, 0):nx + min(-sx, 0), max(-sy, 0):ny + min(-sy, 0)]
            dst[src] = s * step
        dists.append(dist)
    d = np.sort(np.stack(dists, axis=-1), axis=-1)
    nhit = np.isfinite(d).sum(-1)
    mid = np.clip((nhit - 1) // 2, 0, 7)
    med = np.take_along_axis(d, mid[..., None], axis=-1)[..., 0]
    out = np.where((nhit >= need) & ~bone, med, 0.0)
    return out.astype(np.float32)


def to_ct_grid(labels_work: np.ndarray, grid: WorkGrid, volume: Volume) -> np.ndarray:
    """Nearest-neighbour map of a work-grid uint8 label map onto the CT grid (I, J, K)."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(labels_work.transpose(2, 1, 0)))
    img.SetSpacing([float(s) for s in grid.spacing_mm])
    img.SetOrigin([float(x) for x in grid.origin_lps])
    ref = sitk.Image([int(s) for s in volume.shape], sitk.sitkUInt8)
    ref.SetSpacing([float(s) for s in volume.spacing_mm])
    ref.SetDirection([float(x) for x in volume.direction.ravel()])
    ref.SetOrigin([float(x) for x in volume.origin_lps])
    out = sitk.Resample(img, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return sitk.GetArrayFromImage(out).transpose(2, 1, 0)  # (I, J, K) view, Fortran-ordered
