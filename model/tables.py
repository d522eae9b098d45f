"""The data files the pure metrics read, loaded here and passed in: policy documents
(``metrics/policies/*.yaml``), grid CO2 factors and standard-coal factors (``metrics/factors/``).

:mod:`metrics` holds their schemas and the functions over them and reads no file itself.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from metrics.carbon import FactorTable
from metrics.coal import CoalFactors
from metrics.policy.documents import PolicyDocument
from model.yamlfile import ConfigError, load_model

_METRICS = Path(__file__).resolve().parent.parent / "metrics"
POLICY_DIR = _METRICS / "policies"
FACTOR_FILE = _METRICS / "factors" / "grid_co2.yaml"
COAL_FILE = _METRICS / "factors" / "standard_coal.yaml"


@lru_cache(maxsize=4)
def load_factors(path: str | None = None) -> FactorTable:
    """The grid CO2 factor table (default: the packaged ``metrics/factors/grid_co2.yaml``)."""
    return load_model(path or FACTOR_FILE, FactorTable)


@lru_cache(maxsize=4)
def load_coal_factors(path: str | None = None) -> CoalFactors:
    """The standard-coal factors (default: the packaged ``metrics/factors/standard_coal.yaml``)."""
    return load_model(path or COAL_FILE, CoalFactors)


@lru_cache(maxsize=1)
def factors_digest() -> str:
    """sha256 of the packaged factor files (grid CO2, standard coal): part of the version a stored
    carbon figure was computed at."""
    h = hashlib.sha256()
    for f in (FACTOR_FILE, COAL_FILE):
        h.update(f.read_bytes())
    return h.hexdigest()


def load_document(path: Path | str) -> PolicyDocument:
    """Load and validate one policy data file.

    Raises
    ------
    ConfigError (a ValueError)
        naming the file, the line and the field, e.g.
        ``jinjiang_2024_2.yaml line 40: rules[1].cap: write 500000.0 as a quoted string``.
    """
    doc = load_model(path, PolicyDocument)
    return doc.model_copy(update={"digest": hashlib.sha256(Path(path).read_bytes()).hexdigest()})


@lru_cache(maxsize=4)
def _load_dir(directory: str) -> tuple[PolicyDocument, ...]:
    docs = [load_document(p) for p in sorted(Path(directory).glob("*.yaml"))]
    numbers = [d.number for d in docs]
    dup = sorted({n for n in numbers if numbers.count(n) > 1})
    if dup:
        raise ConfigError(f"{directory}: document numbers repeat: {', '.join(dup)}")
    return tuple(docs)


def load_documents(directory: Path | str | None = None) -> tuple[PolicyDocument, ...]:
    """Every policy document in ``directory`` (default: the packaged ``metrics/policies``)."""
    return _load_dir(str(directory or POLICY_DIR))
