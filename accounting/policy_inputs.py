"""Read what the policy engine and the policy reports need from the store.

Thin by design: every function takes an enterprise-period bundle (:mod:`store.bundle`, read once)
or a connection (then it loads the bundle itself) and computes with the pure functions of
:mod:`metrics`. Used by ``greengauge report awards / intensity / carbon`` and by the metrics and
eligibility flows, on the same stored intervals.

- :func:`enterprise_year`: the engine's :class:`~metrics.policy.EnterpriseYear` for one enterprise
  and local calendar year (recycling electricity, green share, facts, PV projects with their
  telemetry checks, products), with the metering evidence.
- :func:`project_inputs`: every PV project with its nameplate (site file, facts, or the latest
  SunSpec nameplate readings of its linked devices) and the R3 telemetry checks computed from
  its own linked points.
- :func:`energy_year`, :func:`carbon_year`, :func:`intensity_year`: metered energy by carrier,
  carbon (location/market based), standard coal, unit-product energy and industry ranking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from accounting.site_energy import green_share_json
from metrics.bundle import EnterprisePeriod
from metrics.figures import green_share_figure, points_energy, role_columns, role_series, site_energy
from metrics.periods import local_end_day
from store.bundle import (PRE_COMMISSIONING_DAYS, load_enterprise_period, load_enterprise_year,  # noqa: F401
                          load_points, load_production_bundles)  # (re-exported)
from metrics.carbon import electricity_carbon
from metrics.coal import CoalResult, standard_coal
from metrics.intensity import IntensityRow, ReferenceValues, energy_per_10k_yuan, grade_unit_energy, rank_within_industry
from metrics.ledger import WH_PER_CERTIFICATE, ledger_green
from metrics.periods import local_bounds
from metrics.policy import EnterpriseYear, ProductYear, PvProject, Storage, telemetry_checks
from model import CODE_VERSION
from model.tables import load_coal_factors, load_factors
from store.projects import ProjectRecord

DEFAULT_REGION = "福建省/泉州市/晋江市"
#: metered carriers besides electricity: point quantity -> metrics.coal carrier
FUEL_CARRIERS = {"gas_volume": "natural_gas_m3", "diesel_mass": "diesel_kg", "heat_energy": "heat_mj"}


def _local_day_start(d: date, tz: str) -> datetime:
    return datetime.combine(d, time(), ZoneInfo(tz))


# ---- PV / storage projects (R3) -----------------------------------------------------------------

def _nameplate(data: EnterprisePeriod, given: int | None, origin: str, devices: list[tuple[int, str]],
               quantity: str) -> tuple[int | None, dict[str, Any]]:
    """A nameplate value and where it came from: the site file / facts, or SunSpec readings summed."""
    if given is not None:
        return given, {"source": "site file" if origin == "site" else "facts", "value": given}
    if not devices:
        return None, {"source": None, "detail": f"no value recorded and no device linked for SunSpec {quantity}"}
    readings = [r for d, _ in devices for r in data.nameplates.get((d, quantity), ())]
    have = {r.device for r in readings}
    missing = [name for _, name in devices if name not in have]
    ev: dict[str, Any] = {"source": f"sunspec {quantity}",
                          "readings": [{"device": r.device, "point": r.point, "ts": r.ts.isoformat(), "value": r.value}
                                       for r in readings]}
    if missing:
        ev["detail"] = f"no {quantity} reading from device(s) {', '.join(missing)}"
        return None, ev
    # exact: a float sum rounded to the nearest W could lift 499,999.5 W to the 500,000 W (0.5 MW) floor;
    # each reading's shortest repr as a Decimal, summed exactly, floored to whole W
    exact = sum((Decimal(repr(float(r.value))) for r in readings), Decimal(0))
    value = int(exact.to_integral_value(rounding="ROUND_FLOOR"))  # decimal.ROUND_FLOOR
    if value <= 0:
        ev["detail"] = f"SunSpec {quantity} reads {value}"
        return None, ev
    ev["value"] = value
    return value, ev


def _series(data: EnterprisePeriod, points: list, start: datetime, end: datetime) -> tuple[list | None, dict]:
    """Stored intervals of ``points`` in [start, end), summed (:func:`metrics.figures.role_series`)."""
    return role_series(data, [data.point(p.point_id) for p in points], start, end)


Source = psycopg.Connection | EnterprisePeriod


def _bundle(src: Source, enterprise: str, year: int, until: datetime | None) -> EnterprisePeriod:
    """The bundle given, or the enterprise's year (up to ``until``) loaded once from a connection."""
    if isinstance(src, EnterprisePeriod):
        return src
    return load_enterprise_year(src, enterprise, year, until=until)


def _year_end(data: EnterprisePeriod, year: int, until: datetime | None) -> tuple[datetime, datetime]:
    start, end = local_bounds("year", date(year, 1, 1), data.timezone)
    end = max(start, min(end, until)) if until is not None else end  # a year not begun by then: empty
    return start, min(end, max(start, data.end))


def project_inputs(src: Source, enterprise: str, year: int, tz: str, *,
                   tolerance: Decimal = Decimal("0.05"), until: datetime | None = None
                   ) -> tuple[tuple[PvProject, ...], dict[str, Any]]:
    """Every PV project of the enterprise, with nameplates resolved and R3 telemetry checks.

    For a project commissioned in ``year`` the checks (PV produced after commissioning, one
    discharge ≥ 2 h × rated power within ``tolerance``, measured storage/PV power ratio) run on the
    interval energy of that project's own linked points, from 7 days before commissioning to the
    end of the year. A project with no linked points (imported from facts) gets checks only when
    it is the enterprise's only project: then the site's points with roles ``pv_generation`` /
    ``storage_discharge`` stand for it.

    Returns
    -------
    the projects and, per project code, the evidence: nameplate sources and the metering behind
    each check.

    References
    ----------
    晋政规〔2024〕2号 §三(一).
    """
    data = _bundle(src, enterprise, year, until)
    records = data.projects
    ystart, end = _year_end(data, year, until)
    out: list[PvProject] = []
    evidence: dict[str, Any] = {}
    site_pts = None
    for rec in records:
        pv_w, pv_ev = _nameplate(data, rec.pv_w, rec.origin, rec.devices.get("pv", []), "capacity_w")
        ev: dict[str, Any] = {"origin": rec.origin, "pv_w": pv_ev}
        storage = None
        if rec.has_storage:
            sp, sp_ev = _nameplate(data, rec.storage_power_w, rec.origin, rec.devices.get("storage", []), "capacity_w")
            se, se_ev = _nameplate(data, rec.storage_energy_wh, rec.origin, rec.devices.get("storage", []),
                                   "storage_capacity_wh")
            ev["storage_power_w"], ev["storage_energy_wh"] = sp_ev, se_ev
            storage = Storage(sp, se, rec.storage_commissioned or rec.commissioned, rec.storage_electrochemical)
        checks: tuple = ()
        if rec.commissioned.year == year:
            gen, dis = rec.points.get("generation", []), rec.points.get("discharge", [])
            if not any(rec.points.values()) and len(records) == 1:
                site_pts = list(data.points)
                gen = [p for p in site_pts if p.role == "pv_generation"]
                dis = [p for p in site_pts if p.role == "storage_discharge"]
                ev["points_from"] = "site roles (the enterprise's only project has no linked points)"
            else:
                ev["points_from"] = "project links"
            lo = _local_day_start(rec.commissioned, tz) - timedelta(days=PRE_COMMISSIONING_DAYS)
            if lo >= end:  # commissioning still ahead of the period read: nothing to check yet
                ev["checks"] = f"not run yet: commissioning {rec.commissioned} is after {end.isoformat()}"
                out.append(PvProject(rec.code, pv_w, rec.commissioned, storage, ()))
                evidence[rec.code] = ev
                continue
            pv_series, ev["generation"] = _series(data, gen, lo, end)
            dis_series, ev["discharge"] = _series(data, dis, lo, end)
            if rec.points.get("charge"):
                _, ev["charge"] = _series(data, rec.points["charge"], lo, end)
            if pv_w is not None:
                checks = telemetry_checks(pv_w, rec.commissioned, pv_intervals=pv_series, discharge_intervals=dis_series,
                                          storage_power_w=storage.power_w if storage else None, tz=tz,
                                          tolerance=tolerance)
        else:
            ev["checks"] = f"not run: commissioned {rec.commissioned}, not in {year}"
        out.append(PvProject(rec.code, pv_w, rec.commissioned, storage, checks))
        evidence[rec.code] = ev
    return tuple(out), evidence


# ---- energy by carrier --------------------------------------------------------------------------

@dataclass(frozen=True)
class EnergyYear:
    """Metered energy of an enterprise in a local calendar year, by carrier."""

    enterprise: str
    year: int
    tz: str
    grid_import_wh: int | None  #: None when no grid import point is metered [Wh]
    grid_export_wh: int
    consumption_wh: int
    green_wh: int
    pv_wh: int
    fuels: dict[str, int] = field(default_factory=dict)  #: metrics.coal carrier -> [m3 / kg / MJ]
    evidence: dict[str, Any] = field(default_factory=dict)

    def coal_quantities(self) -> dict[str, int]:
        """What :func:`metrics.coal.standard_coal` converts: purchased electricity and the fuels."""
        q = {"electricity_wh": self.grid_import_wh or 0}
        q.update(self.fuels)
        return q


def energy_year(src: Source, enterprise: str, year: int, *, until: datetime | None = None
                ) -> EnergyYear:
    """Grid import/export, consumption and green electricity from the site balance, plus every
    natural-gas, diesel and heat counter of the enterprise, summed over the local calendar year
    (up to ``until`` when given: the year to date)."""
    data = _bundle(src, enterprise, year, until)
    enterprise, tz = data.enterprise, data.timezone
    start, end = _year_end(data, year, until)
    se = site_energy(data, start, end)
    t = se.totals
    has_import = any(p.role == "grid_import" for p in se.points)
    ev: dict[str, Any] = {
        "timezone": tz, "period_utc": [start.isoformat(), end.isoformat()],
        "balance": {"points": [p.name for p in se.points], "intervals": t.intervals,
                    "estimated_intervals": t.estimated_intervals,
                    "findings": [f"{f.kind} {f.ts.isoformat()} {f.detail}" for f in se.findings]},
    }
    fuels: dict[str, int] = {}
    pts = data.points
    for quantity, carrier in FUEL_CARRIERS.items():
        fp = [p for p in pts if p.quantity == quantity]
        if not fp:
            continue
        if data.prefix is not None and start < data.start:  # the metrics flow's carried days
            fev = {"points": [p.name for p in fp], "carried_through": data.start.isoformat()}
        else:
            _, fev = _series(data, fp, start, end)
            fev.pop("energy_wh", None)
        fuels[carrier] = points_energy(data, list(fp), start, end)  # the counter's own unit, not Wh
        fev["total"] = fuels[carrier]
        ev[carrier] = fev
    return EnergyYear(enterprise, year, tz, t.import_wh if has_import else None, t.export_wh, t.consumption_wh,
                      t.green_wh, t.pv_wh, fuels, ev)


def coal_of(energy: EnergyYear, equal_value_kgce_per_kwh: Decimal | None = None) -> dict[str, CoalResult]:
    """Standard coal of the purchased electricity and fuels: equivalent value, and equal value when
    a factor is given (GB/T 2589-2020)."""
    q = energy.coal_quantities()
    out = {"equivalent": standard_coal(q, factors=load_coal_factors())}
    if equal_value_kgce_per_kwh is not None:
        out["equal_value"] = standard_coal(q, electricity_method="equal_value", factors=load_coal_factors(),
                                           equal_value_kgce_per_kwh=equal_value_kgce_per_kwh)
    return out


# ---- green instruments (the accounting ledger) --------------------------------------------------

def green_instruments(src: Source, enterprise: str, year: int, *, until: datetime | None = None
                      ) -> dict[str, Any]:
    """Settled green-power trades and retired certificates of the enterprise in the local year
    (with ``until``: the year to date, counting the local days up to and including the one
    ``until`` falls in, as :func:`accounting.site_energy.green_share_report` does for R1).

    The certificate ledger (store/ledger.py, migration 0201) decides what counts, by
    :func:`metrics.ledger.ledger_green`: trades by settlement date; certificates not bundled with a
    trade by retirement date, 1 MWh each; bundled ones are in the trade's volume and not counted
    again; one outside its validity or repeating a serial is rejected with the reason (README R1).
    """
    data = _bundle(src, enterprise, year, until)
    lend = date(year + 1, 1, 1)
    if until is not None:
        lend = max(date(year, 1, 1), min(lend, local_end_day(until, data.timezone)))
    led = ledger_green(list(data.trades), list(data.certificates), date(year, 1, 1), lend)
    return {
        "green_trade_wh": led.trade_wh, "trades": len(led.trades),
        "certificates": led.certificate_wh // WH_PER_CERTIFICATE,
        "bundled_certificates": sum(c.count for c in led.bundled),
        "rejected": [f"{c.label}: {why}" for c, why in led.rejected],
        "note": "trades by settlement date, unbundled certificates by retirement date, in the local year",
        "ledger_period": [date(year, 1, 1).isoformat(), lend.isoformat()],
    }


# ---- carbon ---------------------------------------------------------------------------------------

def carbon_year(src: Source, enterprise: str, year: int, *, region: str = "national",
                year_offset: int = 0, latest_available: bool = False,
                equal_value_kgce_per_kwh: Decimal | None = None, until: datetime | None = None) -> dict[str, Any]:
    """CO2 of purchased electricity (location- and market-based) and standard coal, with evidence.

    With ``until`` the year to date: energy read up to ``until`` (:func:`energy_year`) and green
    instruments of the local days up to the one ``until`` falls in (:func:`green_instruments`).

    Raises
    ------
    LookupError for an unknown enterprise; ValueError when no factor fits the year (the message
    names the known years) or no grid import point is metered.
    """
    data = _bundle(src, enterprise, year, until)
    enterprise = data.enterprise
    e = energy_year(data, enterprise, year, until=until)
    if e.grid_import_wh is None:
        raise ValueError(f"{enterprise} has no point with role grid_import: grid electricity is not metered")
    gi = green_instruments(data, enterprise, year, until=until)
    c = electricity_carbon(year, e.grid_import_wh, green_trade_wh=gi["green_trade_wh"],
                           certificates=gi["certificates"], region=region, year_offset=year_offset,
                           latest_available=latest_available, table=load_factors())
    coal = coal_of(e, equal_value_kgce_per_kwh)

    def factor(f):
        return {"value": f.value, "kind": f.kind, "region": f.region, "year": f.year, "source": f.source,
                "secondary": f.secondary}

    # a factor of another year or region than asked is said, in the report as in carbon_ytd
    want = year + year_offset
    notes = []
    for kind, f, asked in (("location", c.location_factor, region), ("market", c.market_factor, "national")):
        if f.year != want:
            notes.append(f"{kind} factor of {f.year}: none published for {want}, the latest earlier one taken")
        if f.region != asked:
            notes.append(f"{kind} factor of region {f.region}: none for {asked}")
    return {
        "enterprise": enterprise, "year": year, "timezone": e.tz,
        "status": "factor_fallback" if notes else "ok", "note": "; ".join(notes) or None,
        "grid_import_wh": e.grid_import_wh, "grid_export_wh": e.grid_export_wh, "pv_wh": e.pv_wh,
        "consumption_wh": e.consumption_wh,
        "location_based": {"co2_kg": c.location_kg, "factor": factor(c.location_factor)},
        "market_based": {"co2_kg": c.market_kg, "factor": factor(c.market_factor),
                         "covered_wh": c.market.covered_wh, "uncovered_wh": c.market.uncovered_wh,
                         "surplus_wh": c.market.surplus_wh, "instruments": gi},
        "factor_year_offset": year_offset,
        "standard_coal": {k: {"total_kgce": r.total_kgce, "by_carrier": r.by_carrier, "factors": r.factors,
                              "electricity_method": r.electricity_method, "source": r.source}
                          for k, r in coal.items()},
        "equal_value": None if equal_value_kgce_per_kwh is None else equal_value_kgce_per_kwh,
        "fuels": e.fuels,
        "metering": e.evidence,
    }


# ---- production, unit-product energy, intensity ---------------------------------------------------

def production_year(data: EnterprisePeriod, year: int) -> list[dict[str, Any]]:
    """Production rows of the enterprise whose period overlaps the local calendar year."""
    return [r for r in data.products if r["start"] <= date(year, 12, 31) and r["end"] >= date(year, 1, 1)]


def _covers_year(periods: list[tuple[date, date]], year: int) -> bool:
    day = date(year, 1, 1)
    for a, b in sorted(periods):
        if a > day:
            return False
        day = max(day, b + timedelta(days=1))
    return day > date(year, 12, 31)


def product_years(src: Source, enterprise: str, year: int, energy_kgce: Decimal | None
                  ) -> tuple[tuple[ProductYear, ...], dict[str, Any]]:
    """The year's products with their output, reference values and energy.

    A production period must lie inside the year (rows straddling it are listed, not counted). The
    enterprise's comprehensive energy is the product's energy when it makes one product and its
    recorded periods cover the whole year; with several products the split is not metered and the
    product's energy is None (the unit-energy rule then comes out ``unknown``).
    """
    data = _bundle(src, enterprise, year, None)
    rows = production_year(data, year)
    inside = [r for r in rows if r["start"].year == year and r["end"].year == year]
    straddling = [f"{r['product']} {r['start']}..{r['end']}" for r in rows if r not in inside]
    by_product: dict[str, list[dict]] = {}
    for r in inside:
        by_product.setdefault(r["product"], []).append(r)
    refs = data.references
    out, ev = [], {}
    for product, rs in sorted(by_product.items()):
        qty = sum((r["quantity"] for r in rs), Decimal(0))
        units = sorted({r["unit"] for r in rs})
        ref = refs.get(product)
        pev: dict[str, Any] = {"rows": len(rs), "quantity": qty, "unit": units[0] if len(units) == 1 else units,
                               "periods": [f"{r['start']}..{r['end']}" for r in rs]}
        if ref is not None and units != [ref.unit]:
            pev["reference"] = f"not used: production in {units}, reference values per {ref.unit}"
            ref = None
        elif ref is not None:
            pev["reference"] = {"unit": ref.unit, "limit": ref.limit, "access": ref.access, "advanced": ref.advanced,
                                "industry_average": ref.industry_average, "standard": ref.source}
        energy = None
        if energy_kgce is None:
            pev["energy"] = "the enterprise's comprehensive energy is not known (no grid import metered)"
        elif len(by_product) > 1:
            pev["energy"] = f"{len(by_product)} products: the split of the enterprise's energy is not metered"
        elif not _covers_year([(r["start"], r["end"]) for r in rs], year):
            pev["energy"] = f"production recorded for part of {year} only; the energy is for the whole year"
        else:
            energy = energy_kgce
            pev["energy"] = "the enterprise's comprehensive energy of the year (its only product)"
        out.append(ProductYear(product, energy, qty, ref))
        ev[product] = pev
    if straddling:
        ev["not_counted"] = {"straddle the year": straddling}
    return tuple(out), ev


def output_value(data: EnterprisePeriod, year: int) -> tuple[Decimal | None, int]:
    """Output value of the year's production rows (inside the year) and how many rows lacked one."""
    rows = [r for r in production_year(data, year) if r["start"].year == year and r["end"].year == year]
    vals = [r["output_value_yuan"] for r in rows if r["output_value_yuan"] is not None]
    return (sum(vals, Decimal(0)) if vals else None), len(rows) - len(vals)


def data_through(data: EnterprisePeriod) -> datetime | None:
    """End of the last stored interval read for the enterprise (None when none was)."""
    return data.last_interval_end()


def intensity_year(conn: psycopg.Connection, industry: str, year: int, *,
                   bottom_fraction: Decimal = Decimal(0),
                   equal_value_kgce_per_kwh: Decimal | None = None,
                   energies: dict[str, tuple] | None = None) -> dict[str, Any]:
    """Unit-product energy graded against the reference values, energy per 10,000 yuan of output,
    and the ranking within the industry, for every enterprise of ``industry`` in a local year.

    Comprehensive energy is purchased electricity plus metered fuels in kgce (equivalent value for
    electricity, or equal value when a factor is given). Each enterprise's row says its ``status``
    (``ranked``, or ``unknown`` with the reason in ``not_ranked``) and ``data_through`` (the end of
    its last stored interval read); the metrics flow stores these rows in ``intensity_ytd``.

    ``energies`` (the metrics flow's): per enterprise code, ``(through, grid import Wh or None,
    fuels)`` — :func:`energy_year` of its year up to ``through``, computed by the flow's pass from
    the same stored intervals. It is taken instead of reading the year again only when no interval
    of the enterprise's year is stored at or after ``through`` (then the year to date is the whole
    year stored, which is what this function reads); otherwise the year is read.

    References
    ----------
    福建省绿色制造梯度培育管理实施细则（暂行） 第七条 3 (unit-product energy vs the advanced value);
    晋政规〔2024〕2号 §四(五) (分行业 ranking by energy per output).
    """
    codes = [r[0] for r in conn.execute("SELECT code FROM enterprise WHERE industry = %s ORDER BY code", (industry,))]
    if not codes:
        known = [r[0] for r in conn.execute("SELECT DISTINCT industry FROM enterprise WHERE industry IS NOT NULL "
                                            "ORDER BY 1")]
        raise LookupError(f"no enterprise in industry {industry!r} (known: {', '.join(known) or 'none'})")
    method = "equal_value" if equal_value_kgce_per_kwh is not None else "equivalent"
    enterprises: list[dict[str, Any]] = []
    rankable: list[IntensityRow] = []
    light = load_production_bundles(conn, [c for c in codes if c in energies], year) if energies else {}
    for code in codes:
        known = (energies or {}).get(code)
        data, last = light.get(code, (None, None))
        if known is not None and (last is None or last <= known[0]):
            # the flow's energy of the year to date is the whole year stored: only the production is read
            e = EnergyYear(code, year, data.timezone, known[1], 0, 0, 0, 0, dict(known[2]))
            through = last
        else:
            data = load_enterprise_year(conn, code, year)  # one read per enterprise
            e = energy_year(data, code, year)
            through = data_through(data)
        kgce = None
        if e.grid_import_wh is not None:
            kgce = coal_of(e, equal_value_kgce_per_kwh)[method].total_kgce
        products, pev = product_years(data, code, year, kgce)
        value, missing = output_value(data, year)
        row: dict[str, Any] = {"enterprise": code, "industry": industry, "data_through": through,
                               "energy_kgce": kgce, "electricity_method": method,
                               "grid_import_wh": e.grid_import_wh, "fuels": e.fuels, "output_value_yuan": value,
                               "rows_without_output_value": missing, "products": {}, "production": pev}
        for pr in products:
            g = None
            if pr.energy_kgce is not None and pr.reference is not None and pr.quantity > 0:
                g = grade_unit_energy(pr.energy_kgce, pr.quantity, pr.reference)
            row["products"][pr.product] = {
                "quantity": pr.quantity,
                "kgce_per_unit": None if g is None else g.value,
                "best_level": None if g is None else g.best_level,
                "reaches": None if g is None else g.reaches,
                "above_limit": None if g is None else g.above_limit,
            }
        if kgce is not None and value:
            row["kgce_per_10k_yuan"] = energy_per_10k_yuan(kgce, value)
            rankable.append(IntensityRow(code, industry, kgce, value))
        else:
            row["kgce_per_10k_yuan"] = None
            row["not_ranked"] = "no metered grid import" if kgce is None else "no output value recorded"
        enterprises.append(row)
    ranked = {r.enterprise: r for r in rank_within_industry(rankable, bottom_fraction)}
    for row in enterprises:
        r = ranked.get(row["enterprise"])
        row["rank"] = None if r is None else r.rank
        row["of"] = None if r is None else r.of
        row["bottom"] = None if r is None else r.bottom
        row["status"] = "unknown" if r is None else "ranked"
    enterprises.sort(key=lambda x: (x["rank"] is None, x["rank"] or 0, x["enterprise"]))
    return {"industry": industry, "year": year, "bottom_fraction": bottom_fraction, "electricity_method": method,
            "equal_value_kgce_per_kwh": equal_value_kgce_per_kwh, "enterprises": enterprises}


# ---- the engine's input ---------------------------------------------------------------------------

def recycling_subproject(subprojects: list[str]) -> str | None:
    """Which sub-project is the recycling project (R2): the only one, or the only one whose name
    says so (recycl…, 再生, 回收); None when there is none. Raises ``ValueError`` when it is
    ambiguous, naming them."""
    if len(subprojects) <= 1:
        return subprojects[0] if subprojects else None
    named = [s for s in subprojects if any(w in s.lower() for w in ("recycl", "再生", "回收"))]
    if len(named) == 1:
        return named[0]
    raise ValueError(f"several sub-projects ({', '.join(subprojects)}): choose the recycling project with --subproject")


def enterprise_year(src: Source, enterprise: str, year: int, *, subproject: str | None = None,
                    region: str = DEFAULT_REGION, tolerance: Decimal = Decimal("0.05"),
                    until: datetime | None = None) -> tuple[EnterpriseYear, dict[str, Any]]:
    """Build the engine's input for one enterprise and local calendar year from the store.

    The recycling project's electricity is the sum of the points with role ``subproject`` and the
    given sub-project name (or the only sub-project the enterprise has). Green share comes from the
    site balance of the year. Every PV project gets its nameplates and telemetry checks from
    :func:`project_inputs`; products and reference values from :func:`product_years`.

    Raises
    ------
    LookupError
        for an unknown enterprise; ValueError for an ambiguous or unknown sub-project.
    """
    data = _bundle(src, enterprise, year, until)
    enterprise, tz = data.enterprise, data.timezone
    start, end = _year_end(data, year, until)
    points = data.points
    subs = sorted({p.subproject for p in points if p.role == "subproject"})
    if subproject is not None and subproject not in subs:
        raise ValueError(f"{enterprise} has no sub-project {subproject!r} (known: {', '.join(subs) or 'none'})")
    try:
        sub = subproject or recycling_subproject(subs)
    except ValueError as exc:
        raise ValueError(f"{enterprise}: {exc}") from None
    evidence: dict[str, Any] = {"timezone": tz, "period_utc": [start.isoformat(), end.isoformat()], "subproject": sub}
    recycling_wh = None
    if sub is not None:
        sub_points = [p for p in points if p.role == "subproject" and p.subproject == sub]
        col, evidence["recycling"] = role_columns(data, sub_points, start, end)
        if col is not None and len(col):
            recycling_wh = int(col.wh.sum())
        evidence["recycling"]["energy_wh"] = recycling_wh
    e = energy_year(data, enterprise, year, until=end)
    # R1 as the accounting decides it: on-site green + trades + certificates from the ledger, and
    # unknown below the completeness threshold (then the engine's candidate is unknown too)
    green_wh = consumption_wh = None
    if end > start:
        r1 = green_share_figure(data, year, end, code_version=CODE_VERSION)
        if r1.status != "unknown":
            green_wh, consumption_wh = r1.green_wh, r1.consumption_wh
        evidence["green_share"] = green_share_json(r1)
    projects, evidence["projects"] = project_inputs(data, enterprise, year, tz, tolerance=tolerance, until=end)
    kgce = standard_coal(e.coal_quantities(), factors=load_coal_factors()).total_kgce if e.grid_import_wh is not None else None
    products, evidence["products"] = product_years(data, enterprise, year, kgce)
    ey = EnterpriseYear(enterprise, year, region=region, recycling_wh=recycling_wh, green_wh=green_wh,
                        consumption_wh=consumption_wh, facts=data.facts, projects=projects,
                        products=products)
    return ey, evidence


__all__ = [
    "DEFAULT_REGION", "EnergyYear", "ProjectRecord", "carbon_year", "coal_of", "energy_year", "enterprise_year",
    "data_through", "green_instruments", "intensity_year", "output_value", "product_years", "production_year", "project_inputs",
]
