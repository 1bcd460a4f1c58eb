"""Content of the pre-procedure checklist (vertebroplasty), and the per-level findings.

The items restate the contraindications and safeguards listed in the project's clinical
notes (``CLINICAL.md``) in the report's own words.  Each is something the operator
confirms before the procedure; the report prints them with tick boxes.
"""

from __future__ import annotations

__all__ = ["CHECKLIST", "level_findings"]

#: (section title, intro, items)
CHECKLIST: list[tuple[str, str, list[str]]] = [
    ("Absolute contraindications", "Confirm that none applies; any one of them stops the procedure.", [
        "No local or systemic infection (including at the puncture site)",
        "No coagulopathy that cannot be corrected before the procedure",
        "No symptomatic compression of the spinal cord at a treated level",
        "No severe cardiopulmonary disease that precludes the procedure",
        "Surgical back-up and patient monitoring are available",
    ]),
    ("Relative contraindications", "Weigh against the expected benefit; record the decision.", [
        "Patient can lie prone for the duration of the procedure",
        "No acute burst fracture at a treated level",
        "No vertebra plana (complete loss of vertebral height) at a treated level",
        "Posterior wall of each treated body reviewed on CT (defect: cement leakage risk)",
    ]),
    ("Coagulation and medication", "", [
        "Coagulation tests reviewed and within local limits (INR, platelet count)",
        "Anticoagulant / antiplatelet drugs paused or bridged according to local protocol",
        "Antibiotic prophylaxis decided according to local protocol",
    ]),
    ("Monitoring, anaesthesia and back-up", "", [
        "Continuous ECG, blood pressure and pulse oximetry throughout",
        "Sedation or anaesthesia plan agreed; anaesthesia team informed",
        "Spine surgeon informed and available for complications (canal leakage, cord compression)",
        "Informed consent obtained, including cement leakage and pulmonary cement embolism",
    ]),
    ("Equipment and imaging", "", [
        "Introducer needles of the planned gauge and length (see each trajectory page)",
        "Biplane or C-arm fluoroscopy; bull's-eye and progression angles set as planned",
        "PMMA cement; injection only under continuous fluoroscopy at low pressure",
        "Level of each target vertebra confirmed by counting on fluoroscopy",
        "Bone biopsy needle available if a coaxial biopsy is wanted",
    ]),
]


def level_findings(plan, anatomy=None) -> list[tuple[str, str, str, str]]:
    """Findings per level worth flagging before the procedure.

    Returns
    -------
    list of (level, finding, advice, severity)
        ``severity`` is ``'warning'`` or ``'unsafe'``.
    """
    out: list[tuple[str, str, str, str]] = []
    for lv in plan.levels:
        flags = [str(f).replace("_", " ") for f in lv.flags]
        low = " ".join(flags).lower()
        if lv.posterior_wall_intact is False and "posterior wall" not in low:
            flags.append("posterior wall defect")
        heights = {k: v for k, v in (lv.body_heights_mm or {}).items() if v is not None and v > 0}
        if heights and "height" not in low and "plana" not in low:
            ratio = min(heights.values()) / max(heights.values())
            if ratio < 0.8:
                flags.append(f"height loss (min/max {ratio:.2f})")
        for f in flags:
            fl = f.lower()
            if "posterior wall" in fl:
                advice = ("cement may leak into the spinal canal: inject slowly under continuous lateral "
                          "fluoroscopy, stop when cement reaches the posterior quarter of the body")
                sev = "unsafe"
            elif "plana" in fl:
                advice = "relative contraindication: decide whether a needle can be placed at all"
                sev = "unsafe"
            elif "unreliable" in fl:
                advice = "heights not graded (ragged body outline): judge the body height on the sagittal view"
                sev = "warning"
            elif "height" in fl:
                advice = "check for vertebra plana and for a burst component before treating"
                sev = "warning"
            else:
                advice = ""
                sev = "warning"
            out.append((lv.level, f, advice, sev))
        if lv.recommendation.lower().startswith("not advised"):
            why = "; ".join(lv.reasons) or "no safe trajectory found"
            out.append((lv.level, "not advised", why, "unsafe"))
    if anatomy is not None and getattr(anatomy, "naming_confidence", 1.0) < 0.8:
        out.append(("all", f"level names uncertain ({anatomy.naming_confidence:.0%})",
                    "confirm the level count on fluoroscopy", "warning"))
    return out
