"""GreenGauge: the command line and the demo; the shared model is in :mod:`model`."""

from model import CODE_VERSION as __version__  # noqa: F401
