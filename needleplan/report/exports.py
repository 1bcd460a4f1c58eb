"""Exports for other tools: label maps (NIfTI, NRRD), fluoroscopy PNGs, DICOM SEG.

Label maps are written on the CT grid (same shape and voxel-to-LPS affine as the
:class:`~needleplan.io.Volume`) through :func:`needleplan.io.write_label_image`, so
3D Slicer, ITK-SNAP or nibabel overlay them on the CT without resampling.  None of these
files carries patient identity; DICOM SEG does by design (it belongs to the patient's
study) unless anonymised.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from needleplan.errors import InputError, NeedlePlanError, OutputError

__all__ = ["LABEL_MAPS", "export_label_maps", "export_views", "write_dicom_seg", "HIGHDICOM_MISSING"]

log = logging.getLogger("needleplan.report")

#: Label maps of the plan folder: file stem -> description.
LABEL_MAPS = {
    "vertebrae": "VerSe vertebra labels (1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6, 26 sacrum, 28 T13)",
    "parts": "vertebra parts: 1 body, 2 left pedicle, 3 right pedicle, 4 posterior arch",
    "canal": "spinal canal (1)",
}

HIGHDICOM_MISSING = ("DICOM SEG export needs the optional package 'highdicom' "
                     "(pip install 'highdicom>=0.22'); NIfTI and NRRD label maps were written instead")


def _label_arrays(anatomy) -> dict[str, np.ndarray]:
    return {"vertebrae": np.asarray(anatomy.labels), "parts": np.asarray(anatomy.parts),
            "canal": np.asarray(anatomy.canal).astype(np.uint8)}


def export_label_maps(anatomy, out_dir: str | os.PathLike, *, formats=(".nii.gz",),
                      maps=("vertebrae", "parts", "canal")) -> dict[str, Path]:
    """Write the anatomy's label maps on the CT grid.

    Parameters
    ----------
    anatomy : needleplan.segmentation.Anatomy
    out_dir : str or os.PathLike
        Existing folder.
    formats : sequence of str
        File suffixes: ``.nii.gz``, ``.nii``, ``.nrrd``, ``.mha``.
    maps : sequence of str
        Which of :data:`LABEL_MAPS` to write.

    Returns
    -------
    dict
        ``{file name: path}``, e.g. ``{'vertebrae.nii.gz': ..., 'canal.nrrd': ...}``.

    Raises
    ------
    needleplan.errors.OutputError
        Unknown suffix or unwritable folder.
    """
    from needleplan.io import write_label_image

    out = Path(out_dir)
    arrays = _label_arrays(anatomy)
    unknown = [m for m in maps if m not in arrays]
    if unknown:
        raise ValueError(f"unknown label map(s) {unknown}; choose from {sorted(arrays)}")
    files = {}
    for fmt in formats:
        suffix = fmt if fmt.startswith(".") else f".{fmt}"
        for name in maps:
            path = out / f"{name}{suffix}"
            files[path.name] = Path(write_label_image(arrays[name], anatomy.ijk_to_lps, path))
    return files


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(name)).strip("-") or "x"


def _describe(traj) -> tuple[str, ...]:
    parts = [f"{traj.gauge}G", f"{traj.length_mm:.0f} mm"]
    if np.isfinite(traj.medial_angle_deg):
        parts.append(f"medial {traj.medial_angle_deg:.0f}°")
    if np.isfinite(traj.craniocaudal_angle_deg):
        parts.append(f"cc {traj.craniocaudal_angle_deg:+.0f}°")
    return ("  ".join(parts),)


def export_views(plan, volume, out_dir: str | os.PathLike, *, pixels: int = 512, overviews: bool = False,
                 scan_position: str | None = None) -> dict[str, Path]:
    """Bull's-eye and progression PNGs of every trajectory (``L1_left_bullseye.png`` ...).

    The pictures are :func:`needleplan.geometry.fluoro.render_trajectory`'s, labelled like a
    monitor (angles, position, orientation letters burnt in), for the *procedure* position
    of each trajectory (:meth:`~needleplan.planner.model.Trajectory.procedure_position`).
    ``needleplan render`` writes the same files.  PNGs carry no metadata.

    Parameters
    ----------
    plan : needleplan.planner.model.Plan
    volume : needleplan.io.Volume
        The CT the plan was made on.
    out_dir : str or os.PathLike
        Output folder (created if missing).
    pixels : int
        Detector matrix per side (images smaller than 512 are upscaled for legible text).
    overviews : bool
        Also write ``overview_ap.png`` and ``overview_lateral.png`` with every needle.
    scan_position : str, optional
        The CT's PatientPosition; default the plan's, then the volume's.

    Returns
    -------
    dict
        ``{file name: path}`` in the order written.

    Raises
    ------
    needleplan.errors.OutputError
        The folder cannot be created or a file cannot be written.
    """
    from collections import Counter

    from needleplan.geometry.annotate import save_png
    from needleplan.geometry.fluoro import needle_of, overview_views, render_trajectory, render_views

    from needleplan.io import prepare_out_dir

    out = prepare_out_dir(out_dir)
    scan_pp = scan_position or plan.input.get("patient_position") or (volume.meta or {}).get("patient_position")
    trajs = list(plan.trajectories)
    files: dict[str, Path] = {}
    used: set[str] = set()
    for i, t in enumerate(trajs, 1):
        log.info("rendering %s %s (%d/%d)", t.level, t.side, i, len(trajs))
        stem = f"{_safe(t.level)}_{_safe(t.side)}"
        k = 2
        while stem in used:
            stem = f"{_safe(t.level)}_{_safe(t.side)}_{k}"
            k += 1
        used.add(stem)
        rendered = render_trajectory(volume, t, t.procedure_position(scan_pp), size=pixels,
                                     extra_lines=_describe(t))
        for kind in ("bullseye", "progression"):
            path = save_png(rendered[kind].rgb, out / f"{stem}_{kind}.png")
            files[path.name] = path
    if overviews and trajs:
        log.info("rendering AP and lateral overviews")
        pp = Counter(t.procedure_position(scan_pp) for t in trajs).most_common(1)[0][0]
        rendered = render_views(volume, overview_views(trajs, pp), needles=[needle_of(t) for t in trajs],
                                size=pixels)
        for kind in ("ap", "lateral"):
            path = save_png(rendered[kind].rgb, out / f"overview_{kind}.png")
            files[path.name] = path
    return files


def write_dicom_seg(anatomy, source, path: str | os.PathLike, *, anonymize: bool = False,
                    series_uid: str | None = None) -> Path:
    """Write the vertebrae as a DICOM Segmentation referencing the source CT series.

    Needs the optional package ``highdicom``.

    Parameters
    ----------
    anatomy : needleplan.segmentation.Anatomy
        On the grid of the source series.
    source : str or os.PathLike
        The DICOM folder (or one file) of the CT series the anatomy was made on.
    path : str or os.PathLike
        Output ``.dcm`` file.
    anonymize : bool
        Replace the patient module (name, ID, birth date, sex) by "anonymised" values.
    series_uid : str, optional
        The CT series to reference when the folder holds several.

    Raises
    ------
    needleplan.errors.NeedlePlanError
        ``highdicom`` is not installed (the message says how to install it).
    needleplan.errors.InputError
        The source series cannot be read or does not match the anatomy's grid.
    """
    try:
        import highdicom as hd
        from pydicom.sr.codedict import codes
    except ImportError:
        raise NeedlePlanError(HIGHDICOM_MISSING) from None
    import pydicom

    from needleplan.io import atomic_path
    from needleplan.segmentation.model import level_name

    src = Path(source)
    files = sorted(src.rglob("*")) if src.is_dir() else [src]
    datasets = []
    for f in files:
        if not f.is_file():
            continue
        try:
            ds = pydicom.dcmread(f)
        except Exception:  # not DICOM
            continue
        if getattr(ds, "Modality", "") == "CT" and hasattr(ds, "ImagePositionPatient"):
            if series_uid is None or ds.SeriesInstanceUID == series_uid:
                datasets.append(ds)
    if not datasets:
        raise InputError(f"no CT slices found in '{src}' to reference in the DICOM SEG", path=src)
    uid = series_uid or datasets[0].SeriesInstanceUID
    datasets = [d for d in datasets if d.SeriesInstanceUID == uid]
    normal = np.cross(*np.asarray(datasets[0].ImageOrientationPatient, float).reshape(2, 3))
    datasets.sort(key=lambda d: float(np.asarray(d.ImagePositionPatient, float) @ normal))
    labels = np.asarray(anatomy.labels)
    if labels.shape[2] != len(datasets) or labels.shape[:2] != (int(datasets[0].Columns), int(datasets[0].Rows)):
        raise InputError(f"'{src}': series {uid} ({len(datasets)} slices of {datasets[0].Columns}x"
                         f"{datasets[0].Rows}) is not the grid of the segmentation {labels.shape}", path=src)
    present = [int(v) for v in np.unique(labels) if v != 0]
    if not present:
        raise NeedlePlanError("no vertebra to export as DICOM SEG")
    # highdicom wants (frames, rows, columns, segments) in the order of the source slices
    mask = np.stack([(labels == v).transpose(2, 1, 0) for v in present], axis=-1).astype(np.uint8)
    descriptions = []
    for n, v in enumerate(present, start=1):
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=n, segment_label=level_name(v),
            segmented_property_category=codes.SCT.AnatomicalStructure,
            segmented_property_type=codes.SCT.Vertebra if hasattr(codes.SCT, "Vertebra") else codes.SCT.Bone,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=hd.AlgorithmIdentificationSequence(
                name="needleplan", version=_version(), family=codes.cid7162.ArtificialIntelligence)))
    seg = hd.seg.Segmentation(
        source_images=datasets, pixel_array=mask, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=900,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="needleplan",
        manufacturer_model_name="needleplan", software_versions=_version(), device_serial_number="0",
        series_description="needleplan vertebrae")
    if anonymize:
        for key, value in (("PatientName", "ANONYMISED"), ("PatientID", "ANONYMISED"), ("PatientBirthDate", ""),
                           ("PatientSex", ""), ("AccessionNumber", ""), ("ReferringPhysicianName", ""),
                           ("StudyDate", ""), ("StudyTime", ""), ("StudyID", "")):
            if key in seg:
                setattr(seg, key, value)
        for key in ("PatientAge", "OtherPatientIDs", "InstitutionName", "InstitutionAddress"):
            if key in seg:
                delattr(seg, key)
        seg.PatientIdentityRemoved = "YES"
    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            seg.save_as(tmp)
        except OSError as exc:
            raise OutputError(f"cannot write '{path}': {exc.strerror or exc}", path=path) from exc
    return path


def _version() -> str:
    from needleplan import __version__

    return __version__
