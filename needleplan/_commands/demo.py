"""`needleplan demo` (not implemented yet)."""

from needleplan.errors import NeedlePlanError


def add_parser(sub):
    p = sub.add_parser("demo", help="(not implemented yet)")
    p.set_defaults(func=run)
    return p


def run(args):
    raise NeedlePlanError("'demo' is not implemented yet")
