"""A tiny hand-built lumbar vertebra (volume + exact Anatomy) for fast planner unit tests.

Independent of needleplan.phantom: body = elliptic cylinder, pedicles = oblique
elliptic cylinders converging by ``pedicle_angle_deg``, canal = elliptic tube, arch,
transverse and spinous processes, soft tissue in an elliptic body outline, air outside.
HFP, 1 mm voxels, axes (L, P, S).
"""

from __future__ import annotations

import numpy as np

from needleplan.io.volume import Volume
from needleplan.segmentation.model import (PART_ARCH, PART_BODY, PART_PEDICLE_LEFT, PART_PEDICLE_RIGHT, Anatomy,
                                           PedicleLandmarks, Plane, VertebraAnatomy)


def synthetic_vertebra(*, label: int = 22, pedicle_width_mm: float = 10.0, pedicle_height_mm: float = 14.0,
                       pedicle_angle_deg: float = 15.0, pedicle_x_mm: float = 17.0, spacing_mm: float = 1.0,
                       posterior_wall_intact: bool = True, rib: bool = False):
    sp = float(spacing_mm)
    xs = np.arange(-80, 80 + 1e-6, sp)
    ys = np.arange(-70, 80 + 1e-6, sp)
    zs = np.arange(-30, 30 + 1e-6, sp)
    X, Y, Z = np.meshgrid(xs, ys, zs, indexing="ij")
    aff = np.diag([sp, sp, sp, 1.0])
    aff[:3, 3] = [xs[0], ys[0], zs[0]]
    outline = (X / 75) ** 2 + (Y / 65) ** 2 <= 1
    hu = np.where(outline, 40.0, -1000.0)
    body = ((X / 22) ** 2 + ((Y + 20) / 16) ** 2 <= 1) & (np.abs(Z) <= 13)
    canal = (X / 11) ** 2 + ((Y - 10) / 8) ** 2 <= 1
    parts = np.zeros(X.shape, np.uint8)
    parts[body] = PART_BODY
    th = np.radians(pedicle_angle_deg)
    peds = {}
    for side, sx, code in (("left", 1.0, PART_PEDICLE_LEFT), ("right", -1.0, PART_PEDICLE_RIGHT)):
        c = np.array([sx * pedicle_x_mm, 5.0, 0.0])
        a = np.array([-sx * np.sin(th), -np.cos(th), 0.0])
        e1 = np.array([sx * np.cos(th), -np.sin(th), 0.0])
        rel = np.stack([X - c[0], Y - c[1], Z - c[2]], -1)
        t = rel @ a
        u = rel @ e1
        m = (((u / (pedicle_width_mm / 2)) ** 2 + (Z / (pedicle_height_mm / 2)) ** 2) <= 1) & (t >= -9) & (t <= 16)
        m &= ~canal
        parts[m & (parts == 0)] = code
        peds[side] = PedicleLandmarks(side, c, a, pedicle_width_mm, pedicle_height_mm)
        # arch behind the pedicle: lamina/articular block and transverse process
        blk = (np.abs(X - sx * 16) <= 6) & (Y >= 12) & (Y <= 24) & (np.abs(Z) <= 9)
        tp = (sx * X >= 16) & (sx * X <= 40) & (Y >= 8) & (Y <= 14) & (np.abs(Z) <= 4)
        parts[(blk | tp) & (parts == 0) & ~canal] = PART_ARCH
    lamina = (np.abs(X) <= 20) & (Y >= 18) & (Y <= 24) & (np.abs(Z) <= 9) & ~canal
    spinous = (np.abs(X) <= 3) & (Y >= 18) & (Y <= 45) & (np.abs(Z) <= 8)
    parts[(lamina | spinous) & (parts == 0)] = PART_ARCH
    if not posterior_wall_intact:
        defect = (np.abs(X) <= 5) & (Y >= -6) & (Y <= -3) & (np.abs(Z) <= 5)
        parts[defect & (parts == PART_BODY)] = 0
    labels = np.where(parts > 0, label, 0).astype(np.uint8)
    hu = np.where(parts > 0, 400.0, hu)
    if rib:
        for sx in (1.0, -1.0):
            ribm = ((X - sx * 45) ** 2 + (Y - 30) ** 2 <= 16) & (np.abs(Z) <= 20)
            hu = np.where(ribm, 600.0, hu)
    hu = np.where(canal & outline, 20.0, hu)
    vol = Volume(hu.astype(np.int16), aff, meta={"patient_position": "HFP", "series_uid": "1.2.3"})
    va = VertebraAnatomy(
        label=label, body_center_lps=np.array([0.0, -20.0, 0.0]), ap_axis_lps=np.array([0.0, -1.0, 0.0]),
        left_lps=np.array([1.0, 0.0, 0.0]),
        superior_endplate=Plane(np.array([0.0, -20.0, 13.0]), np.array([0.0, 0.0, 1.0])),
        inferior_endplate=Plane(np.array([0.0, -20.0, -13.0]), np.array([0.0, 0.0, 1.0])),
        body_depth_mm=32.0, posterior_wall_lps=np.array([0.0, -4.0, 0.0]),
        anterior_wall_lps=np.array([0.0, -36.0, 0.0]), pedicles=peds,
        body_heights_mm={"anterior": 26.0, "middle": 26.0, "posterior": 26.0}, height_ratio=1.0, genant_grade=0,
        posterior_wall_intact=posterior_wall_intact)
    anat = Anatomy(labels=labels, parts=parts, canal=canal & outline, ijk_to_lps=aff, vertebrae={label: va},
                   method="synthetic")
    return vol, anat
