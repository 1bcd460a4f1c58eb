"""Real-scan segmentations shared by the segmentation tests (each scan segmented once)."""

from __future__ import annotations

import numpy as np
import pytest

from needleplan.io import load_ct, read_label_image
from needleplan.segmentation._vertebrae import segment_vertebrae
from tests.conftest import require_shared

#: TotalSegmentator "total" ids -> VerSe ids (T11..L5; 26 = S1 there, the whole sacrum here).
TS_TO_VERSE = {33: 18, 32: 19, 31: 20, 30: 21, 29: 22, 28: 23, 27: 24}


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(int(a.sum() + b.sum()), 1))


def angle_deg(a, b) -> float:
    """Angle (degrees) between two vectors."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1.0, 1.0))))


def true_anatomy(ph):
    """``(phantom, anatomy)`` with the anatomy derived from the phantom's true labels, so that
    landmark tests do not depend on the segmentation."""
    from needleplan.segmentation import anatomy_from_labels

    return ph, anatomy_from_labels(ph.volume, ph.truth.labels, method="test")


def identified(pred: np.ndarray, truth: np.ndarray, vol, label: int) -> bool:
    """VerSe rule: predicted centroid within 20 mm of the true one and nearest to it."""
    if not (pred == label).any():
        return False
    pc = vol.to_lps(np.argwhere(pred == label).mean(0))
    cents = {int(k): vol.to_lps(np.argwhere(truth == k).mean(0)) for k in np.unique(truth) if k}
    d = {k: np.linalg.norm(pc - c) for k, c in cents.items()}
    return d[label] <= 20.0 and min(d, key=d.get) == label


@pytest.fixture(scope="session")
def ts_abdomen():
    """(volume, TotalSegmentator reference as VerSe ids, classical segmentation) of ts-abdomen-3mm."""
    vol = load_ct(require_shared("ts-abdomen-3mm", "ct.nii.gz"))
    ref, _ = read_label_image(require_shared("ts-abdomen-3mm", "totalseg-total.nii.gz"), like=vol)
    lut = np.zeros(256, np.uint8)
    for k, v in TS_TO_VERSE.items():
        lut[k] = v
    return vol, lut[np.asarray(ref).astype(np.uint8)], segment_vertebrae(vol)


@pytest.fixture(scope="session")
def tptbox():
    """(volume, TPTBox vertebra reference, classical segmentation with an L3 hint) of the crop."""
    vol = load_ct(require_shared("tptbox-l3-1.5mm", "sub-ct_label-22_ct.nii.gz"))
    ref, _ = read_label_image(require_shared("tptbox-l3-1.5mm", "sub-ct_seg-vert_label-22_msk.nii.gz"),
                              like=vol)
    centre = vol.to_lps((np.asarray(vol.shape) - 1) / 2.0)
    return vol, np.asarray(ref).astype(np.uint8), segment_vertebrae(vol, hint=("L3", centre))


@pytest.fixture(scope="session")
def lidc_chest():
    """(volume, classical segmentation) of the kyphotic chest CT lidc0314-chest-1mm (no labels)."""
    vol = load_ct(require_shared("lidc0314-chest-1mm", "dicom"))
    return vol, segment_vertebrae(vol)
