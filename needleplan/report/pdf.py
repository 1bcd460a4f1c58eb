"""The plan report: a PDF a radiologist takes to the suite and files with the case.

Page 1 identifies patient, study and software, states the assumptions and the need for
clinical review, and summarises every level; then one page per recommended trajectory
(oblique CT slices through the needle, simulated fluoroscopy with C-arm angles,
coordinates, angles, clearances, checks); last the pre-procedure checklist.

The PDF is deterministic for the same inputs (fixed creation date taken from the plan,
no random document id), its text is vector and searchable, and images are embedded
losslessly.
"""

from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path

import numpy as np
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import TimeStamp
from reportlab.pdfgen import canvas as _canvas
from reportlab.platypus import (Flowable, KeepInFrame, KeepTogether, PageBreak, Paragraph, SimpleDocTemplate,
                                Spacer, Table, TableStyle)

from needleplan.errors import OutputError
from needleplan.report import _privacy
from needleplan.report._checklist import CHECKLIST, level_findings
from needleplan.report._figures import AnnotatedImage, carm_angles, clearance_plot, fluoro_images, profile_for
from needleplan.report._slices import BONE_WINDOW, render_needle_slice
from needleplan.report._style import ACCENT, INK, MUTED, RULE, STYLES, esc, fonts, status_colour

__all__ = ["write_report_pdf", "build_report_pdf"]

log = logging.getLogger("needleplan.report")

PAGE_W, PAGE_H = A4
MARGIN_X = 14 * mm
FRAME_PAD = 6  # platypus frames pad their content by 6 pt on every side
MARGIN_TOP, MARGIN_BOTTOM = 17 * mm, 15 * mm
CONTENT_W = PAGE_W - 2 * MARGIN_X - 2 * FRAME_PAD
CONTENT_H = PAGE_H - MARGIN_TOP - MARGIN_BOTTOM - 2 * FRAME_PAD
#: A trajectory page that is at most this much too tall is shrunk onto one page, not split.
MIN_FIT_SCALE = 0.8
DISCLAIMER = ("Computer-generated planning aid, not a medical device. Every trajectory, level name and "
              "measurement must be checked and approved by the treating physician on the images before use; "
              "needle position is confirmed under fluoroscopy during the procedure.")

_CLEARANCE_NAMES = {
    "medial_wall": "Medial pedicle wall", "canal": "Spinal canal", "lateral_wall": "Lateral pedicle wall",
    "superior": "Superior (pedicle roof)", "inferior": "Inferior (pedicle floor)",
    "anterior_cortex": "Anterior cortex", "foramen": "Neural foramen", "aorta": "Aorta / great vessels",
}


# ----------------------------------------------------------------------------- helpers
def _f(value, nd: int = 1, unit: str = "") -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "—"
    if not np.isfinite(v):
        return "—"
    s = f"{v:.{nd}f}"
    if s in ("-0.0", "-0", "-0.00"):
        s = s[1:]
    return f"{s} {unit}".strip() if unit else s


def _p(text, style="cell") -> Paragraph:
    return Paragraph(text, STYLES[style])


def _check_result(check) -> str:
    if check.passed:
        return "PASS"
    return "WARN" if str(check.severity).lower().startswith("warn") else "FAIL"


def _badge(text: str, status: str) -> Table:
    fg, bg = status_colour(status)
    t = Table([[_p(f"<para alignment='center'><b>{esc(text)}</b></para>", "cellb")]], hAlign="RIGHT")
    t.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), bg), ("TEXTCOLOR", (0, 0), (-1, -1), fg),
                           ("BOX", (0, 0), (-1, -1), 0.8, fg), ("LEFTPADDING", (0, 0), (-1, -1), 6),
                           ("RIGHTPADDING", (0, 0), (-1, -1), 6), ("TOPPADDING", (0, 0), (-1, -1), 2),
                           ("BOTTOMPADDING", (0, 0), (-1, -1), 3)]))
    t._argW[0] = None
    return t


def _grid(data, col_widths, *, header=True, zebra=True, extra=()) -> Table:
    t = Table(data, colWidths=col_widths, repeatRows=1 if header else 0)
    style = [
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), 4), ("RIGHTPADDING", (0, 0), (-1, -1), 4),
        ("TOPPADDING", (0, 0), (-1, -1), 2.2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2.6),
        ("LINEBELOW", (0, 0), (-1, -1), 0.35, RULE),
    ]
    if header:
        style += [("BACKGROUND", (0, 0), (-1, 0), ACCENT), ("LINEBELOW", (0, 0), (-1, 0), 0.6, ACCENT)]
    if zebra:
        for r in range(1 if header else 0, len(data)):
            if (r % 2 == 0) == header:
                style.append(("BACKGROUND", (0, r), (-1, r), colors.HexColor("#f5f7fa")))
    style += list(extra)
    t.setStyle(TableStyle(style))
    return t


def _head(*labels) -> list:
    return [_p(esc(x), "head") for x in labels]


def _status_cell(text: str, status: str) -> Paragraph:
    fg, _ = status_colour(status)
    return Paragraph(f'<font color="#{fg.hexval()[2:]}"><b>{esc(text)}</b></font>', STYLES["cell"])


def _created(plan) -> _dt.datetime:
    s = (plan.created or "").strip()
    if s:
        try:
            d = _dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
            return d if d.tzinfo else d.replace(tzinfo=_dt.timezone.utc)
        except ValueError:
            pass
    return _dt.datetime(2000, 1, 1, tzinfo=_dt.timezone.utc)


def _human(name: str) -> str:
    """``'canal_clearance'`` -> ``'Canal clearance'``."""
    s = str(name).replace("_", " ").strip()
    return s[:1].upper() + s[1:]


def _limit_for(key: str, checks) -> float | None:
    """The limit of the check that tests clearance ``key`` (exact name first)."""
    norm = lambda n: str(n).lower().replace("_", " ").strip()  # noqa: E731
    for c in checks:
        if c.limit is not None and norm(c.name) in (norm(key), norm(key) + " clearance"):
            return float(c.limit)
    return None


# ----------------------------------------------------------------------------- canvas
def _make_canvas_class(created: _dt.datetime, header_left: str, header_right: str, footer_mid: str):
    class _ReportCanvas(_canvas.Canvas):
        """Canvas with a fixed timestamp, running header/footer and "page x of y"."""

        def __init__(self, *args, **kwargs):
            kwargs["invariant"] = 1
            super().__init__(*args, **kwargs)
            ts = TimeStamp(invariant=1)
            utc = created.astimezone(_dt.timezone.utc)
            ts.t = utc.timestamp()
            ts.lt = utc.timetuple()
            ts.YMDhms = tuple(ts.lt)[:6]
            self._doc._timeStamp = ts
            self._pages: list[dict] = []

        def showPage(self):
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._decorate(total)
                super().showPage()
            super().save()

        def _decorate(self, total: int):
            regular, bold, _ = fonts()
            n = self._pageNumber
            self.saveState()
            top = PAGE_H - 10 * mm
            x0, x1 = MARGIN_X + FRAME_PAD, MARGIN_X + FRAME_PAD + CONTENT_W
            self.setFillColor(ACCENT)
            self.rect(x0, top + 2.2 * mm, CONTENT_W, 0.9, stroke=0, fill=1)
            self.setFont(bold, 7.6)
            self.drawString(x0, top + 3.6 * mm, header_left)
            self.setFont(regular, 7.6)
            self.setFillColor(INK)
            self.drawRightString(x1, top + 3.6 * mm, header_right)
            self.setStrokeColor(RULE); self.setLineWidth(0.5)
            self.line(x0, 12 * mm, x1, 12 * mm)
            self.setFont(regular, 6.4); self.setFillColor(MUTED)
            self.drawString(x0, 8.6 * mm, "Planning aid - requires review by a qualified physician. "
                                          "Not for use without clinical verification.")
            self.drawString(x0, 5.6 * mm, footer_mid)
            self.setFont(bold, 7); self.setFillColor(INK)
            self.drawRightString(x1, 8.6 * mm, f"Page {n} of {total}")
            self.restoreState()

    return _ReportCanvas


# ----------------------------------------------------------------------------- sections
def _identity_section(plan, volume, anatomy, *, anonymize: bool) -> list:
    phi = getattr(volume, "phi", {}) if volume is not None else {}
    meta = dict(getattr(volume, "meta", {}) or {}) if volume is not None else {}
    inp = _privacy.scrub_input(plan.input, phi, anonymize=anonymize)
    patient = _privacy.patient_identity(phi, anonymize=anonymize)
    position = inp.get("patient_position") or meta.get("patient_position") or "HFP (assumed)"
    series = [
        ("Series UID", _privacy.ANONYMISED if anonymize
         else (inp.get("series_uid") or meta.get("series_uid") or "—")),
        ("Series", meta.get("description") or inp.get("description") or "—"),
        ("Modality", meta.get("modality") or "CT"),
    ]
    if volume is not None:
        sp = " × ".join(f"{s:.2f}" for s in volume.spacing_mm)
        series.append(("Grid", f"{' × '.join(str(s) for s in volume.shape)} voxels, {sp} mm"))
    series.append(("Patient position", f"{position} (C-arm angles assume this position)"))
    created = _created(plan)
    req = plan.request
    software = [
        ("Created", created.strftime("%Y-%m-%d %H:%M UTC") if plan.created else "—"),
        ("Software", f"needleplan {plan.software_version or _version()}"),
        ("Request", f"approach {req.approach}, {req.gauge} G, canal margin {_f(req.canal_margin_mm)} mm"),
        ("Segmentation", getattr(anatomy, "method", "—") if anatomy is not None else "—"),
    ]
    if anatomy is not None:
        software.append(("Level naming", f"confidence {getattr(anatomy, 'naming_confidence', 1.0):.0%}"))

    if anonymize:  # free-text fields (series description, file names) may name the patient
        def clean(rows):
            return [(k, _privacy.ANONYMISED if _privacy.contains_phi(str(v), phi) else v) for k, v in rows]

        series, software = clean(series), clean(software)

    def block(title, rows, width):
        label_w = 19 * mm
        data = [[_p(f"<b>{esc(title)}</b>", "cellb"), ""]]
        data += [[_p(esc(k), "muted"), _p(esc(v))] for k, v in rows]
        t = Table(data, colWidths=[label_w, width - label_w], hAlign="LEFT")
        t.setStyle(TableStyle([("SPAN", (0, 0), (1, 0)), ("LINEBELOW", (0, 0), (-1, 0), 0.6, ACCENT),
                               ("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                               ("RIGHTPADDING", (0, 0), (-1, -1), 2),
                               ("TOPPADDING", (0, 0), (-1, -1), 1.2), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.2)]))
        return t

    gap = 5 * mm
    widths = [55 * mm, 62 * mm, CONTENT_W - 117 * mm - 2 * gap]
    outer = Table([[block("Patient", patient, widths[0]), block("Study and series", series, widths[1]),
                    block("Plan", software, widths[2])]],
                  colWidths=[widths[0] + gap, widths[1] + gap, widths[2]], spaceBefore=2, hAlign="LEFT")
    outer.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                               ("RIGHTPADDING", (0, 0), (-1, -1), 0)]))
    disclaimer = Table([[_p(f"<b>Clinical review required.</b> {esc(DISCLAIMER)}", "box")]],
                       colWidths=[CONTENT_W])
    disclaimer.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#fff6e5")),
                                    ("BOX", (0, 0), (-1, -1), 0.8, colors.HexColor("#d99a2b")),
                                    ("LEFTPADDING", (0, 0), (-1, -1), 6), ("TOPPADDING", (0, 0), (-1, -1), 4),
                                    ("BOTTOMPADDING", (0, 0), (-1, -1), 5)]))
    return [outer, Spacer(1, 4 * mm), disclaimer]


def _version() -> str:
    from needleplan import __version__

    return __version__


def _summary_section(plan, anatomy) -> list:
    story = [Paragraph("Summary by level", STYLES["h2"])]
    by_level: dict[str, list] = {}
    for t in plan.trajectories:
        by_level.setdefault(t.level, []).append(t)
    data = [_head("Level", "Recommendation", "Needles (recommended)", "Gauge", "Flags / reasons")]
    extra = []
    levels = list(plan.levels) or []
    seen = {lv.level for lv in levels}
    from needleplan.planner.model import LevelPlan

    for name in by_level:
        if name not in seen:
            levels.append(LevelPlan(level=name, recommendation="—"))
    for r, lv in enumerate(levels, start=1):
        trajs = [t for t in by_level.get(lv.level, []) if getattr(t, "role", "recommended") == "recommended"]
        needles = ", ".join(f"{t.side} ({t.status})" for t in trajs) or "none"
        gauges = ", ".join(sorted({f"{t.gauge} G" for t in trajs})) or "—"
        flags = [str(f).replace("_", " ") for f in lv.flags]
        if lv.posterior_wall_intact is False and not any("posterior wall" in f.lower() for f in flags):
            flags.append("posterior wall defect")
        text = "; ".join(flags + [r_ for r_ in lv.reasons if r_ not in flags]) or "none"
        rec = lv.recommendation
        status = "not advised" if rec.lower().startswith("not advised") else (
            "warning" if any(t.status != "ok" for t in trajs) or flags else "ok")
        data.append([_p(f"<b>{esc(lv.level)}</b>", "cellb"), _status_cell(rec, status), _p(esc(needles)),
                     _p(esc(gauges)), _p(esc(text), "small")])
    story.append(_grid(data, [14 * mm, 32 * mm, 44 * mm, 14 * mm, None], extra=extra))
    story.append(Spacer(1, 3 * mm))
    story.append(Paragraph("Trajectories", STYLES["h2"]))
    pp = plan.input.get("patient_position")
    data = [_head("Trajectory", "Role", "Status", "Medial °", "Cranio-caudal °", "Length mm", "Canal clear. mm",
                  "Bull's-eye C-arm")]
    for t in plan.trajectories:
        ang = carm_angles(t, pp)["bullseye"]
        from needleplan.geometry.carm import format_carm_angles

        data.append([_p(f"<b>{esc(t.name)}</b>", "cellb"), _p(esc(getattr(t, "role", "recommended")), "small"),
                     _status_cell(t.status.upper(), t.status), _p(_f(t.medial_angle_deg)),
                     _p(_f(t.craniocaudal_angle_deg)), _p(_f(t.length_mm)), _p(_f(t.clearance_mm.get("canal"))),
                     _p(esc(format_carm_angles(*ang)))])
    if plan.trajectories:
        story.append(_grid(data, [20 * mm, 21 * mm, 18 * mm, 15 * mm, 25 * mm, 16 * mm, 20 * mm, None]))
    else:
        story.append(Paragraph("No trajectory was planned.", STYLES["body"]))
    if anatomy is not None and getattr(anatomy, "messages", None):
        story.append(Spacer(1, 2 * mm))
        story.append(Paragraph("Segmentation notes: " + esc("; ".join(anatomy.messages)), STYLES["muted"]))
    story.append(Spacer(1, 3 * mm))
    story.append(Paragraph(
        "Angles: the medial angle is measured in the axial plane between the needle and the sagittal plane; the "
        "cranio-caudal angle in the sagittal plane between the needle and the axial plane. Coordinates are patient "
        "LPS millimetres of the CT (x to the patient's left, y posterior, z superior). C-arm: LAO/RAO is the "
        "rotation about the head-foot axis, CRAN/CAUD the tilt, measured from the detector above the table.",
        STYLES["muted"]))
    return story


def _kv_table(rows, widths) -> Table:
    data = [[_p(esc(k), "muted"), _p(v)] for k, v in rows]
    t = Table(data, colWidths=widths)
    t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("LINEBELOW", (0, 0), (-1, -1), 0.3, RULE),
                           ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3),
                           ("TOPPADDING", (0, 0), (-1, -1), 1.6), ("BOTTOMPADDING", (0, 0), (-1, -1), 2.0)]))
    return t


def _trajectory_section(t, volume, anatomy, plan, images: dict) -> list:
    from needleplan.geometry.carm import format_carm_angles

    scan_pp = plan.input.get("patient_position") or (
        volume.meta.get("patient_position") if volume is not None else None)
    pp = t.procedure_position(scan_pp)  # the C-arm angles and pictures are for the procedure
    ang = carm_angles(t, scan_pp)
    title = Table([[Paragraph(f"{esc(t.name)} <font size=9 color='#5b6470'>· {esc(t.approach)} · "
                              f"{t.gauge} G ({_f(t.needle_diameter_mm, 2)} mm) · "
                              f"{_f(t.needle_length_mm, 0)} mm needle</font>", STYLES["h1"]),
                    _badge(t.status.upper(), t.status)]], colWidths=[CONTENT_W - 30 * mm, 30 * mm])
    title.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                               ("RIGHTPADDING", (0, 0), (-1, -1), 0), ("LINEBELOW", (0, 0), (-1, -1), 0.8, ACCENT),
                               ("BOTTOMPADDING", (0, 0), (-1, -1), 3)]))
    story: list = [title, Spacer(1, 2.5 * mm)]

    supplied = images.get(t.name, {}) if images else {}
    img_w = 56 * mm
    pics = []
    for plane in ("axial", "sagittal"):
        if plane in supplied:
            pics.append(AnnotatedImage(supplied[plane], img_w, title=f"{plane.capitalize()} oblique"))
            continue
        if volume is None:
            pics.append(AnnotatedImage(None, img_w, title=f"{plane.capitalize()} oblique", placeholder="no CT"))
            continue
        s = render_needle_slice(volume, t, plane, anatomy=anatomy)
        window = f"Bone window W{BONE_WINDOW[0]:.0f}/L{BONE_WINDOW[1]:.0f}"
        cap = (f"{window} · pedicle green, canal red" if plane == "axial"
               else "Needle drawn at its outer diameter · target ring")
        pics.append(AnnotatedImage(s.rgb, img_w, title=f"{plane.capitalize()} oblique through the needle",
                                   letters=s.letters, mm_per_px=s.mm_per_px, caption=cap))
    fl = {k: (v, None) for k, v in supplied.items() if k in ("bullseye", "progression")}
    if volume is not None and len(fl) < 2:
        fl = {**fluoro_images(volume, t, scan_pp), **fl}
    for view, label in (("bullseye", "Bull's-eye"), ("progression", "Progression")):
        text = format_carm_angles(*ang[view])
        rgb, letters = fl.get(view, (None, None))
        pics.append(AnnotatedImage(rgb, img_w, title=f"{label} view · {text}", letters=letters,
                                   caption=f"Simulated fluoroscopy, patient {pp}",
                                   placeholder="simulated fluoroscopy not available"))
    grid = Table([[pics[0], pics[1]], [pics[2], pics[3]]], colWidths=[img_w + 3 * mm] * 2)
    grid.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 3 * mm),
                              ("TOPPADDING", (0, 0), (-1, -1), 0), ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5 * mm),
                              ("VALIGN", (0, 0), (-1, -1), "TOP")]))

    side_w = CONTENT_W - 2 * (img_w + 3 * mm)
    lab_w = 24.5 * mm
    key = [
        ("Medial angle", f"<b>{_f(t.medial_angle_deg)}°</b>"),
        ("Cranio-caudal angle", f"<b>{_f(t.craniocaudal_angle_deg)}°</b>"),
        ("Path length", f"<b>{_f(t.length_mm)} mm</b> skin to target"),
        ("Needle", f"{t.gauge} G (Ø {_f(t.needle_diameter_mm, 2)} mm), {_f(t.needle_length_mm, 0)} mm"),
        ("Target", f"{_f(t.target_to_midline_mm)} mm from midline, depth {_f(t.target_depth_fraction, 2)}"),
        ("Bull's-eye C-arm", f"<b>{esc(format_carm_angles(*ang['bullseye']))}</b>"),
        ("Progression C-arm", f"<b>{esc(format_carm_angles(*ang['progression']))}</b>"),
        ("Patient position", esc(pp if scan_pp in (None, pp) else f"{pp} (CT scanned {scan_pp})")),
    ]
    if getattr(t, "breach_grade", None):
        key.append(("Breach grade", f"Gertzbein-Robbins {esc(t.breach_grade)}"))
    side = [Paragraph("Key figures", STYLES["h3"]), _kv_table(key, [lab_w, side_w - lab_w])]
    side.append(Paragraph("Coordinates (LPS mm)", STYLES["h3"]))
    coords = [_head("Point", "L", "P", "S")]
    for label, p in (("Skin entry", t.skin_entry_lps), ("Bone entry", t.bone_entry_lps), ("Target", t.target_lps)):
        coords.append([_p(label), _p(_f(p[0])), _p(_f(p[1])), _p(_f(p[2]))])
    cw = (side_w - 18 * mm) / 3
    side.append(_grid(coords, [18 * mm, cw, cw, cw]))
    top = Table([[grid, side]], colWidths=[CONTENT_W - side_w, side_w])
    top.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                             ("RIGHTPADDING", (0, 0), (-1, -1), 0), ("TOPPADDING", (0, 0), (-1, -1), 0)]))
    story.append(top)

    rows = [_head("Clearance", "mm", "Limit")]
    for k, v in t.clearance_mm.items():
        lim = _limit_for(k, t.checks)
        if k == "canal" and lim is None:
            lim = plan.request.canal_margin_mm
        ok = None if lim is None or v is None or not np.isfinite(v) else v >= lim
        value = _p(f"<b>{_f(v)}</b>") if ok is None else _status_cell(_f(v), "ok" if ok else "unsafe")
        rows.append([_p(esc(_CLEARANCE_NAMES.get(k, _human(k)))), value, _p(_f(lim))])
    table_w = 62 * mm
    clear_tbl = _grid(rows, [table_w - 26 * mm, 13 * mm, 13 * mm])
    prof = profile_for(t, anatomy, volume)
    plot_w = CONTENT_W - table_w - 4 * mm
    if prof is not None:
        depth, clear, what = prof
        bone_depth = float(np.linalg.norm(t.bone_entry_lps - t.skin_entry_lps))
        lim = _limit_for("canal", t.checks) or plan.request.canal_margin_mm
        plot = clearance_plot(depth, clear, limit_mm=lim, bone_entry_depth_mm=bone_depth, width=plot_w,
                              height=max(40 * mm, (len(rows) + 1) * 5.2 * mm), what=what)
    else:
        plot = _p("No clearance profile available.", "muted")
    mid = Table([[clear_tbl, plot]], colWidths=[table_w + 4 * mm, plot_w])
    mid.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                             ("RIGHTPADDING", (0, 0), (-1, -1), 0), ("TOPPADDING", (0, 0), (-1, -1), 0)]))
    story.append(mid)
    story.append(Spacer(1, 2 * mm))

    checks = [_head("Check", "Value", "Limit", "Result", "Note")]
    for c in t.checks:
        res = _check_result(c)
        unit = "" if c.unit in ("", "fraction", "bool") else c.unit
        nd = 2 if c.unit in ("fraction", "") else 1
        checks.append([_p(esc(_human(c.name))), _p(_f(c.value, nd, unit)), _p(_f(c.limit, nd, unit)),
                       _status_cell(res, {"PASS": "ok", "WARN": "warning", "FAIL": "unsafe"}[res]),
                       _p(esc(c.message), "small")])
    if len(checks) > 1:
        story.append(_grid(checks, [40 * mm, 18 * mm, 18 * mm, 13 * mm, None],
                           extra=[("TOPPADDING", (0, 0), (-1, -1), 1.4), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.8)]))
    if t.notes:
        story.append(Spacer(1, 1.5 * mm))
        story.append(Paragraph("Notes: " + esc("; ".join(t.notes)), STYLES["small"]))
    return story


def _fit_one_page(flowables: list) -> list:
    """``flowables`` shrunk onto one page when they overflow it slightly, else unchanged.

    Tall check tables (15+ checks) push the last rows of a trajectory onto an otherwise
    empty page; scaling the section by >= :data:`MIN_FIT_SCALE` keeps it on one page.
    """
    need = 0.0
    for i, f in enumerate(flowables):
        need += f.wrap(CONTENT_W, CONTENT_H)[1] + f.getSpaceAfter() + (f.getSpaceBefore() if i else 0.0)
    if need <= CONTENT_H or need * MIN_FIT_SCALE > CONTENT_H:
        return flowables
    return [KeepInFrame(CONTENT_W, CONTENT_H, flowables, mode="shrink")]


def _checklist_section(plan, anatomy) -> list:
    story = [Paragraph("Pre-procedure checklist", STYLES["h1"]),
             Paragraph("Tick each item before the procedure. The plan does not replace this review.", STYLES["muted"]),
             Spacer(1, 2 * mm)]
    findings = level_findings(plan, anatomy)
    story.append(Paragraph("Level findings", STYLES["h2"]))
    if findings:
        data = [_head("", "Level", "Finding", "What to do")]
        for lvl, text, advice, sev in findings:
            data.append([_p("☐"), _p(f"<b>{esc(lvl)}</b>", "cellb"), _status_cell(text, sev),
                         _p(esc(advice), "small")])
        story.append(_grid(data, [7 * mm, 12 * mm, 48 * mm, None], zebra=False))
    else:
        story.append(Paragraph("No level was flagged (posterior wall intact, no height loss found).", STYLES["body"]))
    for title, intro, items in CHECKLIST:
        block = [Paragraph(title, STYLES["h2"])]
        if intro:
            block.append(Paragraph(esc(intro), STYLES["muted"]))
        data = [[_p("☐"), _p(esc(item), "body")] for item in items]
        t = Table(data, colWidths=[7 * mm, CONTENT_W - 7 * mm])
        t.setStyle(TableStyle([("LINEBELOW", (0, 0), (-1, -1), 0.3, RULE), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                               ("TOPPADDING", (0, 0), (-1, -1), 1.8), ("BOTTOMPADDING", (0, 0), (-1, -1), 2.2)]))
        block.append(t)
        story.append(KeepTogether(block))
    story.append(Spacer(1, 6 * mm))
    sig = Table([[_p("Planned by"), _p("Reviewed and approved by"), _p("Date")],
                 [_p(""), _p(""), _p("")]], colWidths=[CONTENT_W * 0.4, CONTENT_W * 0.4, CONTENT_W * 0.2],
                rowHeights=[None, 12 * mm])
    sig.setStyle(TableStyle([("BOX", (0, 0), (-1, -1), 0.5, RULE), ("INNERGRID", (0, 0), (-1, -1), 0.5, RULE),
                             ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f5f7fa"))]))
    story.append(KeepTogether([Paragraph("Sign-off", STYLES["h2"]), sig]))
    return story


class _Bookmark(Flowable):
    """Zero-size flowable: a PDF outline entry (bookmark) at its position."""

    def __init__(self, key: str, title: str):
        super().__init__()
        self.key, self.title = key.replace(" ", "_"), title
        self.width = self.height = 0

    def wrap(self, *args):
        return 0, 0

    def draw(self):
        self.canv.bookmarkPage(self.key)
        self.canv.addOutlineEntry(self.title, self.key, level=0)


# ----------------------------------------------------------------------------- public
def build_report_pdf(plan, volume, anatomy, path, *, anonymize: bool = False, images: dict | None = None) -> None:
    """Lay out and write the report to ``path`` (not atomic; see :func:`write_report_pdf`)."""
    fonts()
    phi = getattr(volume, "phi", {}) if volume is not None else {}
    if anonymize:
        who = "Patient: anonymised"
    else:
        ident = dict(_privacy.patient_identity(phi, anonymize=False))
        who = f"{ident.get('Name', '')} · ID {ident.get('Patient ID', '')}"
    levels = ", ".join(dict.fromkeys([lv.level for lv in plan.levels] + [t.level for t in plan.trajectories])) \
        or "none"
    created = _created(plan)
    footer = (f"needleplan {plan.software_version or _version()} · plan created "
              f"{created.strftime('%Y-%m-%d %H:%M UTC') if plan.created else 'undated'} · LPS mm")
    canvas_cls = _make_canvas_class(created, "needleplan · Vertebroplasty needle plan", who, footer)
    doc = SimpleDocTemplate(
        str(path), pagesize=A4, leftMargin=MARGIN_X, rightMargin=MARGIN_X, topMargin=MARGIN_TOP,
        bottomMargin=MARGIN_BOTTOM, title=f"Vertebroplasty needle plan ({levels})", author="needleplan",
        subject="Needle trajectory plan for clinical review",
        creator=f"needleplan {plan.software_version or _version()}",
        producer="needleplan (reportlab)", invariant=1, lang="en")

    recommended = [t for t in plan.trajectories if getattr(t, "role", "recommended") == "recommended"]
    story = [Paragraph("Vertebroplasty needle plan", STYLES["h1"]),
             Paragraph(f"Levels planned: {esc(levels)}", STYLES["muted"]), Spacer(1, 3 * mm)]
    story += _identity_section(plan, volume, anatomy, anonymize=anonymize)
    story += _summary_section(plan, anatomy)
    for t in recommended:
        story += [PageBreak(), _Bookmark(f"traj-{t.name}", t.name)]
        story += _fit_one_page(_trajectory_section(t, volume, anatomy, plan, images or {}))
    story += [PageBreak(), _Bookmark("checklist", "Pre-procedure checklist")]
    story += _checklist_section(plan, anatomy)
    doc.build(story, canvasmaker=canvas_cls)


def write_report_pdf(plan, volume, anatomy, path, *, anonymize: bool = False, images: dict | None = None) -> Path:
    """Write the plan report as a PDF, atomically.

    Parameters
    ----------
    plan : needleplan.planner.Plan
    volume : needleplan.io.Volume or None
        The CT the plan was made on (slices, fluoroscopy, identity).  Without it the
        report has no images.
    anatomy : needleplan.segmentation.Anatomy or None
        Pedicle and canal outlines; clearance profile fallback.
    path : str or os.PathLike
        Output file; its folder must exist.
    anonymize : bool
        Leave out every identifying field (name, ID, birth date, dates, institution,
        a source path that contains them).  Without it the header names the patient.
    images : dict, optional
        Pictures already rendered by the caller (e.g. the GUI's views):
        ``{trajectory.name: {'bullseye'|'progression'|'axial'|'sagittal': RGB uint8}}``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    needleplan.errors.OutputError
        The folder is missing or not writable.
    """
    from needleplan.io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            build_report_pdf(plan, volume, anatomy, tmp, anonymize=anonymize, images=images)
        except OSError as exc:
            raise OutputError(f"cannot write '{path}': {exc.strerror or exc}", path=path) from exc
    log.debug("wrote %s", path)
    return path
