"""``segment``: one entry point for every way of getting an :class:`Anatomy`.

Backends
--------
- ``labels=`` a label file/folder (TotalSegmentator, VerSe) or array: imported, then the
  canal, parts and landmarks are derived from it.
- ``"classical"``: the built-in weight-free segmentation of the vertebrae, then the same.
- ``"totalsegmentator"``: the TotalSegmentator package, only when it and its weights are
  installed (it is never a dependency and never downloads anything from here).
- ``"auto"``: TotalSegmentator when available, else classical.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import tempfile
from pathlib import Path

import numpy as np

from needleplan.errors import InputError, SegmentationError
from needleplan.segmentation._anatomy import anatomy_from_labels
from needleplan.segmentation._import import import_labels
from needleplan.segmentation.model import VERSE_NAMES, Anatomy, level_label, level_name

__all__ = ["segment", "rename_levels", "totalsegmentator_available", "BACKENDS"]

BACKENDS = ("auto", "classical", "totalsegmentator")


def _weights_dir() -> Path:
    if os.environ.get("TOTALSEG_WEIGHTS_PATH"):
        return Path(os.environ["TOTALSEG_WEIGHTS_PATH"])
    home = Path(os.environ.get("TOTALSEG_HOME_DIR", Path.home() / ".totalsegmentator"))
    return home / "nnunet" / "results"


def totalsegmentator_available() -> tuple[bool, str]:
    """Whether the TotalSegmentator backend can run here, and why not."""
    if importlib.util.find_spec("totalsegmentator") is None:
        return False, "the 'totalsegmentator' package is not installed (pip install TotalSegmentator)"
    wd = _weights_dir()
    if not wd.is_dir() or not any(p.name.startswith("Dataset") for p in wd.iterdir()):
        return False, (f"TotalSegmentator's model weights are not in {wd} "
                       "(run 'totalseg_download_weights -t total' where there is network access)")
    return True, ""


def _run_totalsegmentator(volume, progress) -> tuple[np.ndarray, str]:
    from totalsegmentator.python_api import totalsegmentator  # optional, checked before

    from needleplan.io import write_volume
    rois = [f"vertebrae_{n}" for n in
            [*(f"C{i}" for i in range(1, 8)), *(f"T{i}" for i in range(1, 13)), *(f"L{i}" for i in range(1, 6)), "S1"]]
    with tempfile.TemporaryDirectory(prefix="needleplan-ts-") as tmp:
        ct = Path(tmp) / "ct.nii.gz"
        out = Path(tmp) / "seg.nii.gz"
        write_volume(volume, ct)
        if progress:
            progress(0, 1, "TotalSegmentator")
        totalsegmentator(str(ct), str(out), ml=True, task="total", roi_subset=rois, quiet=True)
        labels, _ = import_labels(out, volume, labels_format="totalseg")
    return labels, "totalsegmentator"


def segment(volume, *, labels=None, backend: str = "auto", labels_format: str = "auto",
            progress=None) -> Anatomy:
    """Segment the spine of a CT: vertebra labels, canal, parts and landmarks.

    Parameters
    ----------
    volume : Volume
        The CT in HU.
    labels : str, Path or ndarray, optional
        External vertebra labels (file or folder, see :func:`import_labels`; or a VerSe
        label array on the CT grid).  When given, ``backend`` is not used.
    backend : {'auto', 'classical', 'totalsegmentator'}
    labels_format : {'auto', 'totalseg', 'verse', 'folder'}
        How to read ``labels`` when its ids are ambiguous.
    progress : callable, optional
        ``progress(done, total, what)``.

    Returns
    -------
    Anatomy

    Raises
    ------
    InputError
        Unknown backend, unreadable or mismatched label file.
    SegmentationError
        No spine found, or the requested backend cannot run here.
    """
    if backend not in BACKENDS:
        raise InputError(f"unknown segmentation backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if labels is not None:
        if isinstance(labels, np.ndarray):
            return anatomy_from_labels(volume, labels, method="imported:array", progress=progress)
        lab, source = import_labels(labels, volume, labels_format=labels_format)
        return anatomy_from_labels(volume, lab, method=source, progress=progress)
    if backend == "auto":
        backend = "totalsegmentator" if totalsegmentator_available()[0] else "classical"
    if backend == "totalsegmentator":
        ok, why = totalsegmentator_available()
        if not ok:
            raise SegmentationError(f"backend 'totalsegmentator' cannot run: {why}; "
                                    "use --backend classical or --labels FILE")
        lab, source = _run_totalsegmentator(volume, progress)
        anatomy = anatomy_from_labels(volume, lab, method=source, progress=progress)
        anatomy.messages.append("vertebrae segmented by TotalSegmentator; level names are its own")
        return anatomy
    try:
        from needleplan.segmentation._vertebrae import segment_vertebrae
    except ImportError as exc:  # pragma: no cover - only before the classical backend lands
        raise SegmentationError(f"the classical vertebra segmentation is not available ({exc}); "
                                "give --labels FILE") from None
    # segment_vertebrae reports progress(fraction, message); ours is progress(done, total, what)
    frac = (lambda f, msg="": progress(int(round(100 * f)), 100, msg)) if progress else None
    seg = segment_vertebrae(volume, progress=frac)
    anatomy = anatomy_from_labels(volume, seg.labels, method="classical",
                                  confidence=getattr(seg, "confidence", None), progress=progress)
    anatomy.naming_confidence = float(getattr(seg, "naming_confidence", anatomy.naming_confidence))
    anatomy.messages = list(getattr(seg, "messages", [])) + anatomy.messages
    return anatomy


def _as_label(v) -> int:
    if isinstance(v, (int, np.integer)):
        if int(v) not in VERSE_NAMES:
            raise InputError(f"{v} is not a VerSe vertebra label (1-26, 28)")
        return int(v)
    try:
        return level_label(str(v))
    except ValueError as exc:
        raise InputError(str(exc)) from None


def rename_levels(anatomy: Anatomy, mapping: dict) -> Anatomy:
    """A copy of ``anatomy`` with level names changed by the user (``{'L1': 'T12', ...}``).

    Keys and values are names (``'L1'``) or VerSe numbers (20).  Every level not in the
    mapping keeps its name; two vertebrae may not end up with the same name.  Label map,
    landmarks and confidence follow (a renamed level has confidence 1: a person decided).
    """
    pairs = {_as_label(k): _as_label(v) for k, v in mapping.items()}
    missing = [level_name(k) for k in pairs if k not in anatomy.vertebrae]
    if missing:
        have = ", ".join(v.name for v in anatomy.sorted_vertebrae()) or "none"
        raise InputError(f"cannot rename {', '.join(missing)}: not in the segmentation (found: {have})")
    final = {k: pairs.get(k, k) for k in anatomy.vertebrae}
    seen: dict[int, int] = {}
    for old, new in final.items():
        if new in seen:
            raise InputError(f"renaming gives two vertebrae the name {level_name(new)} "
                             f"({level_name(seen[new])} and {level_name(old)})")
        seen[new] = old
    lut = np.arange(256, dtype=np.uint8)
    for old, new in final.items():
        lut[old] = new
    labels = lut[anatomy.labels]
    verts = {}
    for old, va in anatomy.vertebrae.items():
        new = final[old]
        changed = new != old
        verts[new] = dataclasses.replace(va, label=new, confidence=1.0 if changed else va.confidence,
                                         flags=list(va.flags), pedicles=dict(va.pedicles),
                                         body_heights_mm=dict(va.body_heights_mm))
    renamed = [f"{level_name(o)}->{level_name(n)}" for o, n in final.items() if o != n]
    messages = list(anatomy.messages)
    if renamed:
        messages.append("levels renamed by the user: " + ", ".join(renamed))
    # the user has looked at the levels and decided: their naming is taken as certain
    return dataclasses.replace(anatomy, labels=labels, vertebrae=verts, messages=messages,
                               naming_confidence=1.0 if renamed else anatomy.naming_confidence)
