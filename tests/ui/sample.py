"""The bundled sample study and its truth Anatomy (read from sample_data/truth), no Qt."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from needleplan.io import load_ct, read_label_image
from needleplan.segmentation.model import Anatomy, PedicleLandmarks, Plane, VertebraAnatomy

REPO = Path(__file__).resolve().parents[2]
SAMPLE_DICOM = REPO / "sample_data" / "dicom"
SAMPLE_TRUTH = REPO / "sample_data" / "truth"


def _a(x):
    return None if x is None else np.asarray(x, dtype=np.float64)


def _plane(d):
    return None if not d else Plane(_a(d["point_lps"]), _a(d["normal_lps"]))


def anatomy_from_truth(volume, truth_dir: Path = SAMPLE_TRUTH) -> Anatomy:
    """The sample's exact Anatomy on ``volume``'s grid (label maps resampled onto it)."""
    labels, _ = read_label_image(truth_dir / "vertebrae.nii.gz", like=volume)
    parts, _ = read_label_image(truth_dir / "parts.nii.gz", like=volume)
    canal, _ = read_label_image(truth_dir / "canal.nii.gz", like=volume)
    d = json.loads((truth_dir / "anatomy.json").read_text())
    verts = {}
    for v in d["vertebrae"]:
        peds = {s: PedicleLandmarks(p["side"], _a(p["isthmus_center_lps"]), _a(p["axis_lps"]),
                                    float(p["width_mm"]), float(p["height_mm"]))
                for s, p in (v.get("pedicles") or {}).items()}
        verts[int(v["label"])] = VertebraAnatomy(
            label=int(v["label"]), body_center_lps=_a(v["body_center_lps"]), ap_axis_lps=_a(v["ap_axis_lps"]),
            left_lps=_a(v["left_lps"]), superior_endplate=_plane(v.get("superior_endplate")),
            inferior_endplate=_plane(v.get("inferior_endplate")),
            body_depth_mm=float(v["body_depth_mm"]) if v.get("body_depth_mm") is not None else float("nan"),
            posterior_wall_lps=_a(v.get("posterior_wall_lps")), anterior_wall_lps=_a(v.get("anterior_wall_lps")),
            pedicles=peds, body_heights_mm=dict(v.get("body_heights_mm") or {}),
            height_ratio=v.get("height_ratio"), genant_grade=v.get("genant_grade"),
            posterior_wall_intact=v.get("posterior_wall_intact"), confidence=float(v.get("confidence", 1.0)),
            flags=list(v.get("flags") or []))
    return Anatomy(labels=labels.astype(np.uint8), parts=parts.astype(np.uint8), canal=canal.astype(bool),
                   ijk_to_lps=volume.ijk_to_lps, vertebrae=verts, method="phantom-truth")


@lru_cache(maxsize=1)
def sample_study():
    """``(volume, anatomy)`` of sample_data (cached)."""
    vol = load_ct(SAMPLE_DICOM)
    return vol, anatomy_from_truth(vol)
