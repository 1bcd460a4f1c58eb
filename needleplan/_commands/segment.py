"""`needleplan segment` (not implemented yet)."""

from needleplan.errors import NeedlePlanError


def add_parser(sub):
    p = sub.add_parser("segment", help="(not implemented yet)")
    p.set_defaults(func=run)
    return p


def run(args):
    raise NeedlePlanError("'segment' is not implemented yet")
