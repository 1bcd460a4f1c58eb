"""A small hand-built spine case (Volume + Anatomy + Plan) for the report tests.

Independent of the phantom and the planner so the report can be tested on its own: a
lumbar column of cylinders (bodies, pedicles, canal, arch) in soft tissue, and
trajectories placed by hand through the pedicles with plausible numbers.
"""

from __future__ import annotations

import numpy as np

from needleplan.io.volume import Volume
from needleplan.planner.model import Check, LevelPlan, Plan, PlanRequest, Trajectory, needle_diameter_mm
from needleplan.segmentation.model import (PART_ARCH, PART_BODY, PART_PEDICLE_LEFT, PART_PEDICLE_RIGHT,
                                           Anatomy, PedicleLandmarks, Plane, VertebraAnatomy, level_label)

SPACING = (0.8, 0.8, 1.0)
PHI = {"PatientName": "PHANTOM^SPINE", "PatientID": "NP-TEST-0042", "PatientBirthDate": "19460317",
       "PatientSex": "O", "StudyDate": "20260110", "AccessionNumber": "ACC77123",
       "InstitutionName": "Example General Hospital"}


def make_case(levels=("L1", "L2", "L3"), *, both_sides=True, gauge=11, shape_xy=(200, 170),
              level_height_mm=30.0, phi=PHI):
    """Return ``(volume, anatomy, plan)`` for a synthetic prone lumbar spine."""
    nx, ny = shape_xy
    nz = int(round(len(levels) * level_height_mm / SPACING[2])) + 10
    aff = np.diag([*SPACING, 1.0])
    aff[:3, 3] = [-(nx - 1) * SPACING[0] / 2, -(ny - 1) * SPACING[1] / 2 - 10.0, -nz * SPACING[2] / 2]
    i, j, k = np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing="ij", sparse=True)
    x = aff[0, 3] + i * SPACING[0]
    y = aff[1, 3] + j * SPACING[1]
    z = aff[2, 3] + k * SPACING[2]
    hu = np.full((nx, ny, nz), -1000, np.int16)
    body_outline = (x / 70.0) ** 2 + ((y - 10) / 62.0) ** 2 <= 1.0
    hu[np.broadcast_to(body_outline, hu.shape)] = 40
    hu[np.broadcast_to(((x / 60.0) ** 2 + ((y - 10) / 52.0) ** 2 <= 1.0) & (np.abs(x) > 30), hu.shape)] = -90
    labels = np.zeros(hu.shape, np.uint8)
    parts = np.zeros(hu.shape, np.uint8)
    canal = np.broadcast_to(x ** 2 + (y - 22.0) ** 2 <= 8.5 ** 2, hu.shape).copy()
    vertebrae = {}
    trajectories, level_plans = [], []
    z0 = aff[2, 3] + 5.0
    for n, name in enumerate(levels[::-1]):  # caudal first: z grows upward
        lab = level_label(name)
        zc = z0 + (n + 0.5) * level_height_mm
        zin = np.abs(z - zc) <= (level_height_mm / 2 - 3.0)
        body = (x ** 2 + (y + 8.0) ** 2 <= 19.0 ** 2) & zin
        ped = {}
        for side, sx in (("left", 1.0), ("right", -1.0)):
            # pedicle: cylinder along the line from (sx*11, 10) to (sx*16, 32)
            p0 = np.array([sx * 11.0, 9.0]); p1 = np.array([sx * 16.0, 32.0])
            ax = (p1 - p0) / np.linalg.norm(p1 - p0)
            t = (x - p0[0]) * ax[0] + (y - p0[1]) * ax[1]
            dx = x - p0[0] - t * ax[0]; dy = y - p0[1] - t * ax[1]
            ped[side] = ((dx ** 2 + dy ** 2 + 0.4 * (z - zc) ** 2) <= 4.6 ** 2) & (t >= 0) & (t <= np.linalg.norm(p1 - p0)) & zin
        arch = ((x ** 2 + (y - 22.0) ** 2 <= 17.0 ** 2) & (x ** 2 + (y - 22.0) ** 2 > 10.0 ** 2) & (y > 26)
                | (np.abs(x) <= 3.0) & (y > 36) & (y < 58)) & zin
        m_body = np.broadcast_to(body, hu.shape)
        hu[m_body] = 230
        hu[m_body & ~np.broadcast_to((x ** 2 + (y + 8.0) ** 2 <= 17.0 ** 2), hu.shape)] = 900
        labels[m_body] = lab; parts[m_body] = PART_BODY
        m_arch = np.broadcast_to(arch, hu.shape) & (labels == 0)
        hu[m_arch] = 700; labels[m_arch] = lab; parts[m_arch] = PART_ARCH
        for side, code in (("left", PART_PEDICLE_LEFT), ("right", PART_PEDICLE_RIGHT)):
            m = np.broadcast_to(ped[side], hu.shape) & ~m_body
            hu[m] = 650; labels[m] = lab; parts[m] = code
        pedicles = {}
        sides = ("left", "right") if both_sides else ("left",)
        for side, sx in (("left", 1.0), ("right", -1.0)):
            axis = np.array([-5.0 * sx, -23.0, 0.0]); axis /= np.linalg.norm(axis)
            pedicles[side] = PedicleLandmarks(side, np.array([sx * 13.5, 21.0, zc]), axis, 8.6, 14.0)
        vertebrae[lab] = VertebraAnatomy(
            label=lab, body_center_lps=np.array([0.0, -8.0, zc]), ap_axis_lps=np.array([0.0, -1.0, 0.0]),
            left_lps=np.array([1.0, 0.0, 0.0]),
            superior_endplate=Plane(np.array([0, -8.0, zc + 12]), np.array([0, 0, 1.0])),
            inferior_endplate=Plane(np.array([0, -8.0, zc - 12]), np.array([0, 0, 1.0])),
            body_depth_mm=38.0, posterior_wall_lps=np.array([0, 11.0, zc]), anterior_wall_lps=np.array([0, -27.0, zc]),
            pedicles=pedicles, body_heights_mm={"anterior": 24.0 - 3 * n, "middle": 24.0, "posterior": 24.5},
            height_ratio=(24.0 - 3 * n) / 24.5, posterior_wall_intact=(n != 1))
        for side in sides:
            sx = 1.0 if side == "left" else -1.0
            target = np.array([sx * 4.0, -20.0, zc - 1.0])
            bone = np.array([sx * 17.5, 36.0, zc + 1.5])
            d = (bone - target) / np.linalg.norm(bone - target)
            skin = bone + d * 52.0
            med = float(np.degrees(np.arctan2(abs(d[0]), abs(d[1]))))
            cc = float(np.degrees(np.arcsin(d[2])))
            clear = {"medial_wall": 1.4 + 0.3 * n, "canal": 3.1 + 0.4 * n, "lateral_wall": 1.1,
                     "superior": 3.9, "inferior": 4.2, "anterior_cortex": 5.5}
            checks = [
                Check("canal clearance", clear["canal"] >= 2.0, clear["canal"], 2.0, "mm"),
                Check("medial pedicle wall", clear["medial_wall"] >= 1.0, clear["medial_wall"], 1.0, "mm"),
                Check("needle length", True, float(np.linalg.norm(skin - target)), 100.0, "mm"),
                Check("target to midline", abs(target[0]) <= 5.0, abs(target[0]), 5.0, "mm", severity="warning"),
                Check("target depth", n != 2, 0.55 if n == 2 else 0.72, 0.6, "fraction", severity="warning"),
            ]
            status = "ok" if all(c.passed for c in checks) else "warning"
            depth = np.linspace(0, np.linalg.norm(skin - target), 60)
            prof = {"depth_mm": depth.round(2).tolist(),
                    "clearance_mm": (clear["canal"] + 12 * np.exp(-((depth - 52) / 14) ** 2)
                                     + 0.08 * np.abs(depth - 52)).round(2).tolist()}
            trajectories.append(Trajectory(
                level=name, side=side, approach="transpedicular", skin_entry_lps=skin, bone_entry_lps=bone,
                target_lps=target, gauge=gauge, needle_diameter_mm=needle_diameter_mm(gauge),
                medial_angle_deg=med, craniocaudal_angle_deg=cc, clearance_mm=clear,
                target_to_midline_mm=abs(target[0]), target_depth_fraction=0.72,
                checks=checks, status=status, clearance_profile=prof))
        flags = []
        if n == 1:
            flags.append("posterior wall defect")
        if (24.0 - 3 * n) / 24.5 < 0.8:
            flags.append("height loss")
        level_plans.append(LevelPlan(level=name, recommendation="bipedicular" if both_sides else "unipedicular left",
                                     reasons=["single needle cannot reach the midline"],
                                     body_heights_mm=vertebrae[lab].body_heights_mm,
                                     posterior_wall_intact=(n != 1), flags=flags))
    order = {name: i for i, name in enumerate(levels)}
    trajectories.sort(key=lambda t: (order[t.level], t.side))
    level_plans.sort(key=lambda lp: order[lp.level])
    volume = Volume(hu, aff, meta={"series_uid": "1.2.826.0.1.3680043.8.498.1", "study_uid": "1.2.826.0.1.3680043.8.498.2",
                                   "patient_position": "HFP", "modality": "CT", "description": "synthetic lumbar spine",
                                   "source": "/data/PHANTOM_SPINE/ct"},
                    phi=dict(phi or {}))
    anatomy = Anatomy(labels=labels, parts=parts, canal=canal, ijk_to_lps=aff, vertebrae=vertebrae,
                      method="synthetic")
    plan = Plan(trajectories=trajectories, levels=level_plans, request=PlanRequest(levels=list(levels), gauge=gauge),
                input={"series_uid": volume.meta["series_uid"], "patient_position": "HFP",
                       "source": volume.meta["source"]},
                software_version="0.1.0", created="2026-01-12T09:30:00+00:00")
    return volume, anatomy, plan
