"""What of the patient's identity each output may carry.

Identifying DICOM fields live only in :attr:`needleplan.io.Volume.phi`.  The PDF header
shows them unless the output is anonymised; ``plan.json``, markups and label maps never
carry them, and with ``anonymize=True`` neither does the source path when it contains
any of them (a folder named after the patient, say).
"""

from __future__ import annotations

import re

__all__ = ["ANONYMISED", "phi_tokens", "contains_phi", "scrub_input", "patient_identity"]

ANONYMISED = "anonymised"

# Fields of Volume.meta that can identify a patient or a visit; dropped when anonymising.
_META_IDENTIFYING = ("series_uid", "study_uid", "frame_of_reference_uid", "study_date", "study_time",
                     "acquisition_date",
                     "institution", "station_name", "accession_number", "study_id")

_SPLIT = re.compile(r"[\^\s,._/\\-]+")


def phi_tokens(phi: dict | None) -> list[str]:
    """The identifying strings of ``phi`` and their parts (name components, IDs, dates).

    Parts shorter than 3 characters are dropped (initials would match everywhere).
    """
    out: set[str] = set()
    for value in (phi or {}).values():
        if value is None:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            s = str(v).strip()
            if len(s) >= 3:
                out.add(s)
            out.update(p for p in _SPLIT.split(s) if len(p) >= 3)
    return sorted(out, key=lambda t: (-len(t), t))


def contains_phi(text: str, phi: dict | None) -> bool:
    """True when ``text`` contains any identifying token of ``phi`` (case-insensitive)."""
    low = str(text).lower()
    return any(tok.lower() in low for tok in phi_tokens(phi))


def scrub_input(input_info: dict, phi: dict | None, *, anonymize: bool) -> dict:
    """A copy of ``Plan.input`` fit for an output file.

    PHI keys are always removed; when anonymising, fields that identify a visit (series
    and study UIDs, dates, institution) are dropped and the source path is replaced by
    ``"anonymised"`` (folder names often carry a patient's name or ID).
    """
    from needleplan.io.volume import PHI_KEYS

    out = {k: v for k, v in dict(input_info or {}).items() if k not in PHI_KEYS}
    if anonymize:
        for key in _META_IDENTIFYING:
            out.pop(key, None)
        for key in ("source", "path", "source_path"):  # folder names often hold a name or an ID
            if key in out:
                out[key] = ANONYMISED
        out["anonymized"] = True
        for key, value in list(out.items()):  # belt and braces: any other string field
            if isinstance(value, str) and contains_phi(value, phi):
                out[key] = ANONYMISED
    return out


def _fmt_date(value) -> str:
    s = str(value or "").strip()
    if re.fullmatch(r"\d{8}", s):
        return f"{s[:4]}-{s[4:6]}-{s[6:]}"
    return s


def _fmt_name(value) -> str:
    s = str(value or "").strip()
    parts = [p for p in s.split("^") if p]
    if len(parts) >= 2:
        return f"{parts[0].upper()}, {' '.join(parts[1:])}"
    return s


def patient_identity(phi: dict | None, *, anonymize: bool) -> list[tuple[str, str]]:
    """Rows ``(label, value)`` for the report header's patient block."""
    phi = phi or {}
    if anonymize:
        return [("Name", ANONYMISED), ("Patient ID", ANONYMISED)]
    rows = [
        ("Name", _fmt_name(phi.get("PatientName")) or "not recorded"),
        ("Patient ID", str(phi.get("PatientID") or "not recorded")),
        ("Birth date", _fmt_date(phi.get("PatientBirthDate")) or "not recorded"),
    ]
    sex = str(phi.get("PatientSex") or "").strip()
    if sex:
        rows.append(("Sex", sex))
    if phi.get("StudyDate"):
        rows.append(("Study date", _fmt_date(phi.get("StudyDate"))))
    if phi.get("AccessionNumber"):
        rows.append(("Accession", str(phi.get("AccessionNumber"))))
    if phi.get("InstitutionName"):
        rows.append(("Institution", str(phi.get("InstitutionName"))))
    return rows
