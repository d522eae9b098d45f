"""The PostgreSQL datasource's query model for the foundation SDK.

grafana-foundation-sdk (11.6) has no builder for Grafana's core PostgreSQL datasource, so panels
carry this small dataquery variant; it is registered with the SDK's runtime so that generated JSON
loads back into :class:`SqlQuery` objects (``Dashboard.from_json``), not an untyped bag.
"""

from __future__ import annotations

import typing

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

DATASOURCE_TYPE = "grafana-postgresql-datasource"
DATASOURCE_UID = "greengauge-reader"  # the same uid in every organization; each points at its own reader role


def datasource_ref() -> dashboard.DataSourceRef:
    return dashboard.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


class SqlQuery(cogvariants.Dataquery):
    """A code-mode SQL query: ``rawSql`` with ``format`` ``table`` or ``time_series``."""

    def __init__(self, ref_id: str = "A", raw_sql: str = "", format: str = "table",
                 datasource: dashboard.DataSourceRef | None = None, hide: bool | None = None) -> None:
        if format not in ("table", "time_series"):
            raise ValueError(f"SQL query {ref_id}: format {format!r} is neither 'table' nor 'time_series'")
        self.ref_id, self.raw_sql, self.format, self.hide = ref_id, raw_sql, format, hide
        self.datasource = datasource or datasource_ref()

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"refId": self.ref_id, "datasource": self.datasource, "editorMode": "code",
                                  "rawQuery": True, "format": self.format, "rawSql": self.raw_sql}
        if self.hide is not None:
            out["hide"] = self.hide
        return out

    @classmethod
    def from_json(cls, data: dict[str, typing.Any]) -> typing.Self:
        ds = data.get("datasource")
        return cls(ref_id=data.get("refId", "A"), raw_sql=data.get("rawSql", ""), format=data.get("format", "table"),
                   datasource=dashboard.DataSourceRef.from_json(ds) if isinstance(ds, dict) else None,
                   hide=data.get("hide"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SqlQuery) and self.to_json() == other.to_json()


class SqlQueryBuilder(cogbuilder.Builder[SqlQuery]):
    def __init__(self, raw_sql: str, format: str = "table", ref_id: str = "A") -> None:
        self._internal = SqlQuery(ref_id=ref_id, raw_sql=raw_sql, format=format)

    def build(self) -> SqlQuery:
        return self._internal


cogruntime.register_dataquery_variant(cogruntime.DataqueryConfig(
    identifier=DATASOURCE_TYPE, from_json_hook=SqlQuery.from_json))
