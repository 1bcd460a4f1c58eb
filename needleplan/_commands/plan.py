"""`needleplan plan` (not implemented yet)."""

from needleplan.errors import NeedlePlanError


def add_parser(sub):
    p = sub.add_parser("plan", help="(not implemented yet)")
    p.set_defaults(func=run)
    return p


def run(args):
    raise NeedlePlanError("'plan' is not implemented yet")
