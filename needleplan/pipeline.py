"""The main job as one call: load -> segment -> plan -> write every plan output.

``needleplan plan``, ``needleplan demo`` and the GUI's "Export plan folder" all go through
:func:`write_plan_outputs`, the single place that decides what a plan folder holds:

=====================  ==========================================================
``plan.json``          the plan (schema ``needleplan.plan/1``), never patient identity
``plan.pdf``           the report for the clinician (identity unless anonymised)
``plan.mrk.json``      3D Slicer markups: one Line per trajectory + planned points
``vertebrae.nii.gz``   VerSe vertebra labels on the CT grid
``*.png`` (optional)   bull's-eye and progression views of each trajectory
=====================  ==========================================================
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from needleplan.io import prepare_out_dir

__all__ = ["PlanJobResult", "run_plan_job", "write_plan_outputs", "prepare_out_dir", "anonymised_plan"]

log = logging.getLogger("needleplan")

Progress = Callable[[int, int, str], None]


@dataclass
class PlanJobResult:
    """What :func:`run_plan_job` made.

    Attributes
    ----------
    plan : needleplan.planner.Plan
    volume : needleplan.io.Volume
    anatomy : needleplan.segmentation.Anatomy
    files : dict
        ``{'plan_json'|'pdf'|'markups'|'vertebrae'|...: pathlib.Path}``.
    """

    plan: object
    volume: object
    anatomy: object
    files: dict[str, Path] = field(default_factory=dict)


def anonymised_plan(plan, volume=None, *, anonymize: bool):
    """A copy of ``plan`` whose ``input`` carries no identifying field.

    PHI keys are always dropped; with ``anonymize`` also visit identifiers (study UID,
    dates) and a source path that contains a patient identifier.
    """
    from needleplan.report._privacy import scrub_input

    phi = getattr(volume, "phi", None) if volume is not None else None
    return replace(plan, input=scrub_input(plan.input, phi, anonymize=anonymize))


def write_plan_outputs(out_dir: str | os.PathLike, plan, volume, anatomy, *, anonymize: bool = False,
                       pdf: bool = True, markups: bool = True, labels: bool = True, views: bool = False,
                       label_formats: tuple[str, ...] = (".nii.gz",), images: dict | None = None,
                       progress: Progress | None = None) -> dict[str, Path]:
    """Write the plan folder: ``plan.json``, ``plan.pdf``, ``plan.mrk.json``, ``vertebrae.nii.gz``.

    Each file is written atomically (temporary file in the same folder, then renamed), so
    an interrupted run leaves either the previous file or the new one, never half a file.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Created when missing.
    plan : needleplan.planner.Plan
    volume : needleplan.io.Volume
    anatomy : needleplan.segmentation.Anatomy or None
        Needed for the label maps and the pedicle outlines in the PDF.
    anonymize : bool
        Leave every identifying field out of every file (the PDF header then says
        "anonymised").  ``plan.json``, markups and label maps never carry the patient's
        name or ID in any case.
    pdf, markups, labels, views : bool
        Which outputs to write (``views``: bull's-eye/progression PNGs per trajectory).
    label_formats : tuple of str
        Suffixes of the label maps, e.g. ``(".nii.gz", ".nrrd")``.
    images : dict, optional
        Pre-rendered pictures for the PDF (see :func:`needleplan.report.write_report_pdf`).
    progress : callable, optional
        ``progress(done, total, what)``.

    Returns
    -------
    dict
        ``{'plan_json', 'pdf', 'markups', 'vertebrae', ...: pathlib.Path}``.

    Raises
    ------
    needleplan.errors.OutputError
        The folder cannot be created or written (one line naming it).
    """
    from needleplan.io import write_plan_json

    out = prepare_out_dir(out_dir)
    clean = anonymised_plan(plan, volume, anonymize=anonymize)
    steps = [("plan_json", "plan.json")]
    if pdf:
        steps.append(("pdf", "plan.pdf"))
    if markups:
        steps.append(("markups", "plan.mrk.json"))
    if labels and anatomy is not None:
        steps.append(("labels", "label maps"))
    if views:
        steps.append(("views", "fluoroscopy views"))
    files: dict[str, Path] = {}
    for i, (key, what) in enumerate(steps):
        if progress is not None:
            progress(i, len(steps), f"writing {what}")
        if key == "plan_json":
            files[key] = Path(write_plan_json(clean, out / "plan.json"))
        elif key == "pdf":
            from needleplan.report.pdf import write_report_pdf

            files[key] = write_report_pdf(clean, volume, anatomy, out / "plan.pdf", anonymize=anonymize,
                                          images=images)
        elif key == "markups":
            from needleplan.report.slicer import write_slicer_markups

            files[key] = write_slicer_markups(clean, out / "plan.mrk.json")
        elif key == "labels":
            from needleplan.report.exports import export_label_maps

            files.update(export_label_maps(anatomy, out, formats=label_formats))
        elif key == "views":
            from needleplan.report.exports import export_views

            files.update(export_views(clean, volume, out))
    if progress is not None:
        progress(len(steps), len(steps), "plan written")
    for key, path in files.items():
        log.debug("wrote %s: %s", key, path)
    return files


def run_plan_job(path: str | os.PathLike, out_dir: str | os.PathLike, *, levels=None, approach: str = "auto",
                 gauge: int = 11, needle_length_mm: float | None = None, canal_margin_mm: float = 2.0,
                 labels=None, series_uid: str | None = None, anonymize: bool = False,
                 views: bool = False, label_formats: tuple[str, ...] = (".nii.gz",),
                 progress: Progress | None = None) -> PlanJobResult:
    """Load a CT, segment the spine, plan the levels and write the plan folder.

    ``needleplan plan``, ``needleplan demo`` and the GUI's batch planning all call this.

    Parameters
    ----------
    path : str or os.PathLike
        DICOM folder or file, NIfTI, NRRD or MHA (see :func:`needleplan.io.load_ct`).
    out_dir : str or os.PathLike
        Plan folder (created when missing); checked before any work is done.
    levels : sequence of str, optional
        E.g. ``["L1", "L2"]``; default every vertebra in view that can be planned.
    approach : str
        ``auto``, ``transpedicular``, ``bipedicular``, ``anterolateral`` ...
    gauge : int
        Needle gauge (11, 13, ...).
    needle_length_mm : float, optional
        Needle length; None picks the shortest standard needle (10 or 15 cm) per path.
    canal_margin_mm : float
        Least distance from the needle surface to the spinal canal.
    labels : str or os.PathLike, optional
        An external vertebra label map (TotalSegmentator, VerSe) to use instead of the
        built-in segmentation.
    series_uid : str, optional
        Which DICOM series to load from a folder holding several.
    anonymize : bool
        See :func:`write_plan_outputs`.
    views : bool
        Also write the fluoroscopy PNGs.
    label_formats : tuple of str
        Suffixes of the label maps written (``".nii.gz"``, ``".nrrd"``, ``".mha"``).
    progress : callable, optional
        ``progress(done, total, what)`` for every step.

    Returns
    -------
    PlanJobResult

    Raises
    ------
    needleplan.errors.NeedlePlanError
        Bad input (:class:`~needleplan.errors.InputError`), no spine found, no plan
        possible, or an output folder that cannot be written.
    """
    from needleplan.errors import InputError, SegmentationError
    from needleplan.io import load_ct
    from needleplan.planner import PlanRequest, plan as make_plan
    from needleplan.segmentation import segment
    from needleplan.segmentation.model import level_label, level_name

    src_name = "the input" if anonymize else f"'{path}'"
    if not Path(path).exists():
        raise InputError(f"{src_name} does not exist", path=path)
    if labels is not None and not Path(labels).exists():
        raise InputError(f"label file '{labels}' does not exist", path=labels)
    try:
        wanted = [level_name(level_label(lv)) for lv in levels] if levels else None
        request = PlanRequest(levels=wanted, approach=approach, gauge=int(gauge),
                              needle_length_mm=needle_length_mm, canal_margin_mm=float(canal_margin_mm))
        from needleplan.planner._plan import _check_request

        _check_request(request)
    except ValueError as exc:
        raise InputError(f"bad plan request: {exc}") from None
    prepare_out_dir(out_dir)  # fail before minutes of work, not after

    def step(i, what):
        if progress is not None:
            progress(i, 4, what)
        else:
            log.info("%s", what)

    step(0, "loading CT")
    volume = load_ct(path, series_uid=series_uid)
    step(1, "segmenting the spine")
    anatomy = segment(volume, labels=labels)
    if not anatomy.vertebrae:
        raise SegmentationError(f"no vertebra found in {src_name}")
    if wanted:
        have = {va.name for va in anatomy.vertebrae.values()}
        missing = [lv for lv in wanted if lv not in have]
        if missing:
            raise InputError(f"level(s) {' '.join(missing)} not in the scan (found: "
                             f"{', '.join(va.name for va in anatomy.sorted_vertebrae())})")
    step(2, "planning trajectories")
    the_plan = make_plan(volume, anatomy, request)
    the_plan = _with_input(the_plan, volume, path)
    # "imported:<path>" names the label file, whose path may hold a patient's name
    the_plan.input["segmentation"] = anatomy.method.split(":")[0] if anonymize else anatomy.method
    step(3, "writing the plan")
    files = write_plan_outputs(out_dir, the_plan, volume, anatomy, anonymize=anonymize, views=views,
                               label_formats=tuple(label_formats))
    return PlanJobResult(anonymised_plan(the_plan, volume, anonymize=anonymize), volume, anatomy, files)


def _with_input(plan, volume, path):
    """Fill ``plan.input`` from the volume's non-identifying metadata."""
    meta = dict(getattr(volume, "meta", {}) or {})
    info = dict(plan.input)
    for key in ("series_uid", "study_uid", "patient_position", "modality", "description"):
        if meta.get(key) is not None:
            info.setdefault(key, meta[key])
    info.setdefault("source", str(meta.get("source") or path))
    info.setdefault("shape", list(volume.shape))
    info.setdefault("spacing_mm", [round(float(s), 4) for s in volume.spacing_mm])
    return replace(plan, input=info)
