"""GreenGauge: command line, settings and the site-configuration model that wires the parts together."""

__version__ = "0.1.0"
