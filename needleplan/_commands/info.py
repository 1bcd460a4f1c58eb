"""``needleplan info PATH [--json] [--series UID]``: what is in a CT input, from headers only."""

from __future__ import annotations

import json
import sys

from needleplan.errors import DicomSeriesError, InputError

__all__ = ["add_parser", "run", "format_info"]


def add_parser(sub):
    p = sub.add_parser(
        "info",
        help="list the series in a DICOM folder/file or NIfTI/NRRD/MHA image and their geometry",
        description="Show the series found under PATH, the size, spacing, orientation and "
                    "patient position of the one that would be loaded, and any problems. "
                    "Reads headers only.")
    p.add_argument("path", metavar="PATH", help="DICOM folder or file, or .nii/.nii.gz/.nrrd/.mha")
    p.add_argument("--series", metavar="UID", default=None,
                   help="SeriesInstanceUID to describe (default: the CT series with most slices)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)
    return p


def _fmt_list(values, fmt="{:.4g}", sep=" x ") -> str:
    return sep.join(fmt.format(v) for v in values)


def format_info(d: dict) -> str:
    """Human-readable text of :func:`needleplan.io._describe.describe_path`'s dict."""
    lines = [f"path: {d['path']}", f"format: {d['format']}"]
    if d["series"]:
        lines.append(f"series found: {len(d['series'])}")
        for s in d["series"]:
            mark = "*" if s["selected"] else " "
            desc = f" '{s['description']}'" if s["description"] else ""
            lines.append(f" {mark} {s['modality'] or '?'} {s['series_uid'] or '(no UID)'}{desc}: "
                         f"{s['n_files']} files, {s['cols']}x{s['rows']}")
            for prob in s["problems"]:
                lines.append(f"      problem: {prob}")
    if d["skipped_files"]:
        lines.append(f"skipped {len(d['skipped_files'])} non-DICOM/unreadable file(s), e.g. "
                     f"{d['skipped_files'][0][1]}")
    sel = d.get("selected") or {}
    if "size" in sel:
        lines.append(f"size: {_fmt_list(sel['size'], '{}')} voxels (i columns, j rows, k slices)")
        lines.append(f"spacing: {_fmt_list(sel['spacing_mm'])} mm")
        lines.append(f"orientation: {sel['axis_codes']} (array axes i, j, k point to "
                     f"{', '.join(sel['axis_codes'])})")
        lines.append(f"origin (LPS mm): {_fmt_list(sel['origin_lps'], '{:.2f}', ', ')}")
        lines.append(f"extent: {_fmt_list(sel['extent_mm'], '{:.1f}')} mm")
    if sel.get("patient_position"):
        lines.append(f"patient position: {sel['patient_position']}")
    if sel.get("slice_thickness_mm"):
        lines.append(f"slice thickness (header): {sel['slice_thickness_mm']:g} mm")
    if sel.get("gantry_tilt_deg"):
        lines.append(f"gantry tilt: {sel['gantry_tilt_deg']:.1f} deg")
    for w in sel.get("warnings", []):
        lines.append(f"warning: {w}")
    if sel.get("error"):
        lines.append(f"cannot load: {sel['error']}")
    return "\n".join(lines)


def run(args) -> int:
    from needleplan.io._describe import describe_path

    d = describe_path(args.path, series_uid=args.series)
    if args.json:
        print(json.dumps(d, indent=2))
    else:
        print(format_info(d))
    sys.stdout.flush()
    err = (d.get("selected") or {}).get("error")
    if err:
        cls = InputError if "does not exist" in err else DicomSeriesError
        raise cls(err, path=args.path)
    return 0
