"""Private building blocks of :mod:`needleplan.phantom`."""
