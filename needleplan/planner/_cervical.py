"""Anterolateral cervical approach (C3-C7, supine) and the neck structures it must miss.

Structures are found in the CT around each level (a box from the skin in front of the
neck to the back of the vertebral body, +-15 mm around the level):

* **airway**: air (< -400 HU) inside the neck outline, in front of the spine (pharynx,
  larynx or trachea);
* **oesophagus**: the soft-tissue tube between the airway's back wall and the vertebral
  body, slightly to the left; its lumen air is used when present, otherwise its place
  is estimated from the airway and the body (said so in the check message);
* **carotid-jugular complex**: contrast-filled vessels (140-500 HU blobs outside bone)
  lateral to the airway on each side; without contrast their place is estimated
  (medial edge ~ 9 mm lateral to the airway) and the check says so.

The needle enters from the anterolateral skin (the right side is preferred because the
oesophagus lies to the left), passes medial to the vessels and lateral to the airway and
oesophagus, enters the anterior body and ends near the midline in the middle of the body.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from needleplan.planner._angles import procedure_position, unit
from needleplan.planner._evaluate import BONE_HU, LONGEST_NEEDLE_MM, depth_fraction, evaluate, vertebra_frame
from needleplan.planner._maps import in_view, sample_volume, vertebra_maps
from needleplan.planner.model import Check, needle_diameter_mm

__all__ = ["NeckStructures", "neck_structures", "plan_anterolateral", "STRUCTURE_MARGIN_MM"]

#: Minimum distance (mm) from the needle surface to each neck structure.
STRUCTURE_MARGIN_MM = {"airway": 2.0, "oesophagus": 2.0, "vessels_right": 2.0, "vessels_left": 2.0}
_NAMES = {"airway": "airway (trachea/larynx)", "oesophagus": "oesophagus",
          "vessels_right": "right carotid-jugular complex", "vessels_left": "left carotid-jugular complex"}
_CACHE: dict = {}
_LOCK = threading.Lock()
_GRID_MM = 1.2   # structures are found on a grid no finer than this
_MAX_CC_DEG = 20.0  # steepest craniocaudal tilt of an anterolateral neck path


@dataclass
class NeckStructures:
    """Distance maps (mm) to the neck structures around one level, on a cropped grid."""

    lps_to_box: np.ndarray
    dist: dict = field(default_factory=dict)        # name -> float32 distance map (0 inside)
    found: dict = field(default_factory=dict)       # name -> "found in CT" | "estimated" | "not found"
    vessel_centres: dict = field(default_factory=dict)  # side name -> (3,) LPS centroid of the complex
    centre_lps: np.ndarray | None = None            # body centre of the level
    left_lps: np.ndarray | None = None
    ap_lps: np.ndarray | None = None

    def vessel_side_margin(self, pts_lps: np.ndarray) -> dict[str, float]:
        """Per side: how far (mm) the path runs medial to the vessel centre at the vessels' AP level.

        Negative means the path passes lateral to (behind) the carotid-jugular complex.
        ``pts_lps`` is ``(..., n, 3)`` paths; returns arrays of shape ``(...)``.
        """
        out = {}
        p = np.asarray(pts_lps, float)
        for name, c in self.vessel_centres.items():
            sgn = 1.0 if name.endswith("left") else -1.0
            ap_p = (p - self.centre_lps) @ self.ap_lps
            ap_c = float((c - self.centre_lps) @ self.ap_lps)
            j = np.argmin(np.abs(ap_p - ap_c), axis=-1)
            lat_p = np.take_along_axis((p - self.centre_lps) @ self.left_lps, j[..., None], axis=-1)[..., 0]
            lat_c = float((c - self.centre_lps) @ self.left_lps)
            out[name] = sgn * (lat_c - lat_p)
        return out

    def distances(self, pts_lps: np.ndarray) -> dict[str, np.ndarray]:
        p = np.asarray(pts_lps, float)
        ijk = p @ self.lps_to_box[:3, :3].T + self.lps_to_box[:3, 3]
        out = {}
        for name, arr in self.dist.items():
            out[name] = ndimage.map_coordinates(arr, ijk.reshape(-1, 3).T, order=1, mode="nearest",
                                                output=np.float32).reshape(p.shape[:-1])
        return out

    def checks(self, path_pts: np.ndarray, radius: float) -> list[Check]:
        out = []
        for name, v in self.vessel_side_margin(path_pts).items():
            v = float(v)
            out.append(Check(f"medial_to_{name}", v > 0, v, 0.0, "mm", "unsafe",
                             f"path passes {'medial' if v > 0 else 'lateral'} to the {_NAMES[name]} "
                             f"({abs(v):.1f} mm from its centre)"))
        for name, d in self.distances(path_pts).items():
            if self.found.get(name) == "not found":
                continue
            v = float(d.min() - radius)
            lim = STRUCTURE_MARGIN_MM[name]
            how = self.found.get(name, "")
            out.append(Check(f"{name}_clearance", v >= lim, v, lim, "mm", "unsafe",
                             f"{_NAMES[name]} ({how}): needle surface {v:.1f} mm away (limit {lim:g} mm)"))
        return out


def _neck_box(volume, va):
    ap, left, sup = vertebra_frame(va)
    c = np.asarray(va.body_center_lps, float)
    depth = float(va.body_depth_mm) if np.isfinite(va.body_depth_mm) else 16.0
    corners = []
    for x in (-55.0, 55.0):
        for y in (-depth / 2 - 2.0, depth / 2 + 75.0):   # back of the body .. 75 mm in front of it
            for z in (-16.0, 16.0):
                corners.append(c + x * left + y * ap + z * sup)
    ijk = volume.to_ijk(np.array(corners))
    lo = np.maximum(np.floor(ijk.min(0)).astype(int), 0)
    hi = np.minimum(np.ceil(ijk.max(0)).astype(int) + 1, volume.shape)
    return lo, hi


def neck_structures(volume, anatomy, label: int) -> NeckStructures:
    """Find (and cache) the airway, oesophagus and great vessels around level ``label``."""
    key = (id(volume), id(volume.voxels), id(anatomy), id(anatomy.labels), int(label))
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is not None and hit[0]() is volume and hit[1]() is anatomy:
        return hit[2]
    va = anatomy.vertebra(label)
    ap, left, sup = vertebra_frame(va)
    lo, hi = _neck_box(volume, va)
    # work on a grid of ~1.2 mm or coarser (every 2nd voxel of a fine scan): 4-8x less work
    stride = np.maximum(1, np.round(_GRID_MM / volume.spacing_mm)).astype(int)
    sl = tuple(slice(a, b, st) for a, b, st in zip(lo, hi, stride))
    hu = np.asarray(volume.voxels[sl], np.float32)
    spacing = volume.spacing_mm * stride
    box_to_lps = volume.ijk_to_lps.copy()
    box_to_lps[:3, :3] = volume.ijk_to_lps[:3, :3] * stride[None, :]
    box_to_lps[:3, 3] = volume.ijk_to_lps[:3, 3] + volume.ijk_to_lps[:3, :3] @ lo
    idx = np.indices(hu.shape).reshape(3, -1).T
    pts = (idx @ box_to_lps[:3, :3].T + box_to_lps[:3, 3]).reshape(*hu.shape, 3)
    rel = pts - np.asarray(va.body_center_lps, float)
    x = rel @ left                   # + toward patient left
    y = rel @ ap                     # + anterior
    bone_any = anatomy.labels[sl] > 0
    # neck outline: tissue, holes filled slice by slice along the box's most superior axis
    zaxis = int(np.argmax(np.abs(volume.direction.T @ sup)))
    tissue = hu > -300
    outline = np.zeros_like(tissue)
    for k in range(hu.shape[zaxis]):
        s = [slice(None)] * 3
        s[zaxis] = k
        outline[tuple(s)] = ndimage.binary_fill_holes(tissue[tuple(s)])
    front = y > float(va.body_depth_mm) / 2 - 1.0        # anterior to the body's front wall region
    found: dict[str, str] = {}
    masks: dict[str, np.ndarray] = {}
    airway = (hu < -400) & outline & (np.abs(x) < 30) & (y > 0)
    lab, n = ndimage.label(airway)
    if n:
        sizes = ndimage.sum_labels(airway, lab, index=np.arange(1, n + 1))
        airway = lab == (1 + int(np.argmax(sizes)))
        found["airway"] = "found in CT (air column)"
        wall = max(1, int(round(2.0 / float(spacing.min()))))   # the airway wall (cartilage) ~2 mm
        airway_wall = ndimage.binary_dilation(airway, iterations=wall) & outline
    else:
        found["airway"] = "not found"
    masks["airway"] = airway_wall if airway.any() else airway
    body_dist = ndimage.distance_transform_edt(~bone_any, sampling=spacing)
    if airway.any():
        ax = x[airway]
        cx = float(np.median(ax))
        half = float(np.percentile(np.abs(ax - cx), 95))
        y_back = float(np.percentile(y[airway], 2))       # posterior wall of the airway
    else:
        cx, half, y_back = 0.0, 8.0, float(va.body_depth_mm) / 2 + 14.0
    prevert = (y < y_back) & (body_dist > 3.0) & front & outline & (x > cx - 5.0) & (x < cx + 11.0) & ~airway
    oes_air = prevert & (hu < -400)
    if oes_air.sum() * np.prod(spacing) > 5.0:
        # a collapsed oesophagus is ~15 x 10 mm around its lumen
        lx, ly = float(np.mean(x[oes_air])), float(np.mean(y[oes_air]))
        tube = ((x - lx) / 7.5) ** 2 + ((y - ly) / 5.0) ** 2 <= 1.0
        lumen = ndimage.binary_dilation(oes_air, iterations=max(1, int(round(3.0 / spacing.min()))))
        masks["oesophagus"] = (tube | lumen) & outline & (body_dist > 1.0)
        found["oesophagus"] = "found in CT (lumen air)"
    else:
        masks["oesophagus"] = prevert & (hu > -150) & (hu < 150)
        found["oesophagus"] = "estimated behind the airway" if masks["oesophagus"].any() else "not found"
    hu_s = ndimage.gaussian_filter(hu, 0.7 / spacing)
    contrast = (hu_s > 140) & (hu_s < 500) & ~bone_any & outline & (body_dist > 2.0) & front
    for name, sgn in (("vessels_right", -1.0), ("vessels_left", 1.0)):
        lateral = (sgn * (x - cx) > half + 3.0) & (sgn * (x - cx) < half + 40.0)
        cand = contrast & lateral
        lab, n = ndimage.label(cand)
        vox_mm3 = float(np.prod(spacing))
        keep = np.zeros_like(cand)
        if n:
            sizes = ndimage.sum_labels(cand, lab, index=np.arange(1, n + 1)) * vox_mm3
            for i in np.flatnonzero(sizes > 150.0):
                keep |= lab == i + 1
        if keep.any():
            masks[name] = ndimage.binary_dilation(keep, iterations=1)
            found[name] = "found in CT (contrast)"
        else:   # no contrast: a 20 x 14 mm sheath whose medial edge lies 9 mm lateral to the airway
            xc = cx + sgn * (half + 9.0 + 10.0)
            yc = y_back + 6.0
            masks[name] = (((x - xc) / 10.0) ** 2 + ((y - yc) / 7.0) ** 2 <= 1.0) & outline
            found[name] = "estimated (no contrast)"
    dist = {}
    for name, m in masks.items():
        if m.any():
            d = ndimage.distance_transform_edt(~m, sampling=spacing) - 0.5 * float(spacing.min())
            dist[name] = np.maximum(d, 0.0).astype(np.float32)
        else:
            found[name] = "not found"
    centres = {}
    for name in ("vessels_right", "vessels_left"):
        m = masks.get(name)
        if m is not None and m.any() and found.get(name) != "not found":
            centres[name] = pts[m].mean(axis=0)
    out = NeckStructures(lps_to_box=np.linalg.inv(box_to_lps), dist=dist, found=found, vessel_centres=centres,
                         centre_lps=np.asarray(va.body_center_lps, float), left_lps=left, ap_lps=ap)
    with _LOCK:
        for k in [k for k, v in _CACHE.items() if v[0]() is None or v[1]() is None]:
            del _CACHE[k]
        _CACHE[key] = (weakref.ref(volume), weakref.ref(anatomy), out)
    return out


def _lines(volume, anatomy, va, structures: NeckStructures, request) -> dict:
    """Sample every candidate line once (clearances without the needle radius)."""
    ap, left, sup = vertebra_frame(va)
    maps = vertebra_maps(anatomy, va.label)
    depth = float(va.body_depth_mm) if np.isfinite(va.body_depth_mm) else 16.0
    f_c = float(depth_fraction(va, np.asarray(va.body_center_lps)[None])[0])
    targets = []
    for f in (0.45, 0.6):
        for xo in (-4.5, -3.0, -1.5, 0.0, 1.5, 3.0, 4.5):
            targets.append(np.asarray(va.body_center_lps, float) + (f - f_c) * depth * ap + xo * left)
    targets = np.array(targets)
    dirs, meta = [], []
    for side, sgn in (("right", -1.0), ("left", 1.0)):
        for th in np.arange(10.0, 47.6, 2.5):
            for cc in (-10.0, -5.0, 0.0, 5.0, 10.0):
                t, c = np.radians(th), np.radians(cc)
                hub = unit(np.cos(c) * (np.cos(t) * ap + np.sin(t) * sgn * left) + np.sin(c) * sup)
                dirs.append(hub)
                meta.append((side, th, cc))
    dirs = np.array(dirs)
    T, D = len(targets), len(dirs)
    tt = np.repeat(targets, D, axis=0)
    hh = np.tile(dirs, (T, 1))
    s = np.arange(0.0, 75.0, 1.0)
    pts = tt[:, None, :] + s[None, :, None] * hh[:, None, :]
    three = maps.sample_all(pts)
    bone = maps.bone_sd(anatomy, pts)
    hu = sample_volume(volume, pts)
    outside = bone <= 0
    j_entry = np.where(outside.any(axis=1), np.argmax(outside, axis=1), len(s) - 1)
    skin = np.where((hu < -300).any(axis=1), np.argmax(hu < -300, axis=1), len(s) - 1)
    in_path = s[None, :] <= skin[:, None]
    before = (s[None, :] > j_entry[:, None] + 2) & in_path
    ok = (((hu > BONE_HU) & before).sum(axis=1) == 0) & (j_entry < skin)
    canal = np.where(in_path, three[..., 1], 1e3).min(axis=1)
    other = np.where(in_path, three[..., 2], 1e3).min(axis=1)
    struct = {name: np.where(in_path, d, 1e3).min(axis=1) for name, d in structures.distances(pts).items()
              if structures.found.get(name) != "not found"}
    for name, v in structures.vessel_side_margin(np.where(in_path[..., None], pts, tt[:, None, :])).items():
        ok &= v > 0
    skin_pts = tt + s[np.minimum(skin, len(s) - 1)][:, None] * hh
    view_pen = np.where(in_view(volume, skin_pts), 0.0, 3.0)
    # a neck path: skin reached within the needle, craniocaudal tilt (patient frame) <= 20 deg
    ok &= skin < len(s) - 1
    ok &= s[np.minimum(skin, len(s) - 1)] <= (request.needle_length_mm or LONGEST_NEEDLE_MM)
    cc_patient = np.degrees(np.arctan2(hh[:, 2], np.abs(hh[:, 1])))
    ok &= np.abs(cc_patient) <= _MAX_CC_DEG
    ahead = maps.bone_sd(anatomy, tt[:, None, :] - np.arange(0.0, 6.0, 0.5)[None, :, None] * hh[:, None, :])
    ok &= np.where((ahead > 0).all(axis=1), 6.0, np.argmax(ahead <= 0, axis=1) * 0.5) >= 3.0
    side_pen = np.array([0.0 if m[0] == "right" else 0.5 for m in meta] * T)
    th = np.array([m[1] for m in meta] * T)
    cc = np.array([m[2] for m in meta] * T)
    frac = depth_fraction(va, tt)
    mid = np.abs((tt - va.body_center_lps) @ left)
    quality = (-4.0 * np.abs(frac - 0.55) - 0.4 * mid - side_pen - view_pen - 0.02 * np.abs(th - 35.0)
               - 0.03 * np.abs(cc))
    return {"tt": tt, "hh": hh, "ok": ok, "canal": canal, "other": other, "struct": struct,
            "quality": quality, "side": [meta[i % D][0] for i in range(len(tt))]}


def _rank(lines: dict, request, gauge: int, top: int = 6):
    r = needle_diameter_mm(gauge) / 2
    ok = lines["ok"] & (lines["canal"] - r >= request.canal_margin_mm) & (lines["other"] - r >= 0)
    clear = np.full(len(ok), 50.0)
    for name, c in lines["struct"].items():
        clear = np.minimum(clear, c - r - STRUCTURE_MARGIN_MM[name])
        ok &= c - r >= STRUCTURE_MARGIN_MM[name]
    score = (2.0 * np.minimum(clear, 3.0) + np.minimum(lines["canal"] - r - request.canal_margin_mm, 3.0)
             + lines["quality"])
    key = np.where(ok, score, -1e3 + score)
    order = np.argsort(-key)[:top]
    return [(lines["side"][i], lines["tt"][i] + lines["hh"][i] * 40.0, lines["tt"][i], bool(ok[i]))
            for i in order]


def plan_anterolateral(volume, anatomy, va, request):
    """``(recommendation, reasons, trajectories)`` for one cervical level."""
    structures = neck_structures(volume, anatomy, va.label)
    gauge = int(request.gauge)
    reasons = ["structures: " + "; ".join(f"{_NAMES[k]} {v}" for k, v in structures.found.items())]
    if va.label < 3 or va.label > 7:
        return "not advised", ["anterolateral approach planned only for C3-C7"] + reasons, []
    body_small = np.isfinite(va.body_depth_mm) and va.body_depth_mm < 18.0 and gauge == 11
    if body_small:
        reasons.append(f"small cervical body ({va.body_depth_mm:.0f} mm deep): a 13 or 15 G needle is usual")
    pp = procedure_position((volume.meta or {}).get("patient_position"), "anterolateral")
    first = None
    lines = _lines(volume, anatomy, va, structures, request)
    for g in [gauge] + [g for g in (13, 15) if g > gauge]:
        for side, hub, target, ok in _rank(lines, request, g):
            t = evaluate(volume, anatomy, va.label, side, "anterolateral", hub, target, gauge=g,
                         needle_length_mm=request.needle_length_mm, canal_margin_mm=request.canal_margin_mm,
                         midline_limit_mm=request.midline_limit_mm, patient_position=pp,
                         structures=structures, unipedicular=True)
            first = first or t
            if t.status != "unsafe":
                reasons.insert(0, f"anterolateral from the {side}, tip {t.target_to_midline_mm:.1f} mm from "
                                  f"the midline")
                if g != gauge:
                    reasons.insert(1, f"no {gauge} G corridor between the vessels and the airway/oesophagus; "
                                      f"a {g} G needle fits")
                return "anterolateral", reasons, [t]
            if not ok:
                break
    if first is not None:   # the best attempt is described, not drawn
        bad = [c.message for c in first.checks if not c.passed and c.severity == "unsafe"]
        reasons.insert(0, "no safe anterolateral corridor: " + "; ".join(bad))
        return "not advised", reasons, []
    return "not advised", ["no anterolateral corridor found"] + reasons, []
