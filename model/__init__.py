"""The shared model every layer above metrics/ uses: the site schema, quantities and their units,
reading types, device profiles and SunSpec model definitions, YAML loading with line-numbered
errors, process settings, and the loading of the data files metrics/ computes from."""

CODE_VERSION = "0.1.0"  #: recorded in every figure's evidence; greengauge.__version__ is this
