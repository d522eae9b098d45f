"""Two parks × two enterprises of data in every table, for the tenancy tests (and the dashboards').

Every text a tenant owns carries ``secret-<enterprise code>`` so an output can be searched for
another tenant's rows. ``seed(conn)`` returns {enterprise code: enterprise_id} and {park code: park_id}.
"""

from __future__ import annotations

import psycopg

PARKS = {"PA": ("EA1", "EA2"), "PB": ("EB1", "EB2")}


def seed(conn: psycopg.Connection) -> tuple[dict[str, int], dict[str, int]]:
    ents: dict[str, int] = {}
    parks: dict[str, int] = {}
    plain = conn.execute("SELECT relkind FROM pg_class WHERE oid = 'energy_hourly'::regclass").fetchone()[0] == "r"
    with conn.transaction():
        conn.execute("INSERT INTO product_reference (product, unit, limit_kgce, standard) "
                     "VALUES ('shoes', '万双', 10, 'GB 0000-shared')")
        for pcode, ecodes in PARKS.items():
            parks[pcode] = conn.execute("INSERT INTO park (code, name) VALUES (%s, %s) RETURNING park_id",
                                        (pcode, f"park {pcode}")).fetchone()[0]
            for n, code in enumerate(ecodes):
                s = f"secret-{code}"
                e = conn.execute("INSERT INTO enterprise (code, name, park_id) VALUES (%s, %s, %s) RETURNING enterprise_id",
                                 (code, s, parks[pcode])).fetchone()[0]
                ents[code] = e
                site = conn.execute("INSERT INTO site (enterprise_id, code, name) VALUES (%s, 'main', %s) RETURNING site_id",
                                    (e, s)).fetchone()[0]
                dev = conn.execute(
                    """INSERT INTO device (site_id, name, profile, transport, poll_interval_s)
                       VALUES (%s, %s, 'generic-meter', %s, 60) RETURNING device_id""",
                    (site, f"meter-{code}", psycopg.types.json.Jsonb({"host": s, "port": 502}))).fetchone()[0]
                pt = conn.execute(
                    """INSERT INTO point (device_id, name, quantity, kind, unit, role)
                       VALUES (%s, %s, 'energy_import_wh', 'counter', 'Wh', 'grid_import') RETURNING point_id""",
                    (dev, f"{code}.main.grid")).fetchone()[0]
                base = 1000.0 * (e + 1)
                conn.execute("""INSERT INTO reading (point_id, ts, value, quality)
                                SELECT %s, '2025-03-01 00:00+00'::timestamptz + i * interval '15 minutes', %s + i, 0
                                FROM generate_series(0, 7) i""", (pt, base))
                conn.execute("""INSERT INTO device_health (device_id, status, since, last_attempt, last_success, last_error)
                                VALUES (%s, 'ok', now(), now(), now(), %s)""", (dev, s))
                conn.execute("""INSERT INTO collector_finding (kind, source, device_id, first_seen, last_seen, count, detail)
                                VALUES ('device_error', %s, %s, now(), now(), 1, %s)""", (f"meter-{code}", dev, s))
                trade = conn.execute(
                    """INSERT INTO green_trade (enterprise_id, reference, settled_on, settled_wh)
                       VALUES (%s, %s, '2025-02-01', 5000000) RETURNING trade_id""", (e, f"T-{s}")).fetchone()[0]
                conn.execute(
                    """INSERT INTO certificate (enterprise_id, serial_prefix, serial_first, serial_last, serial_digits,
                                                production_month, used_on, trade_id, reference)
                       VALUES (%s, %s, 1, 10, 5, '2025-01-01', '2025-03-01', %s, %s)""", (e, f"GEC{code}", trade, s))
                conn.execute("""INSERT INTO meter_replacement (point_id, ts, old_final_wh, new_initial_wh, reason)
                                VALUES (%s, '2025-03-01 12:00+00', 100, 0, %s)""", (pt, s))
                conn.execute("""INSERT INTO enterprise_fact (enterprise_id, kind, fact_date, reference)
                                VALUES (%s, 'green_factory_listing', '2024-12-01', %s)""", (e, s))
                proj = conn.execute("""INSERT INTO pv_project (enterprise_id, code, pv_w, commissioned)
                                       VALUES (%s, %s, 1000000, '2024-06-01') RETURNING project_id""",
                                    (e, f"pv-{code}")).fetchone()[0]
                conn.execute("INSERT INTO pv_project_point (project_id, point_id, link) VALUES (%s, %s, 'generation')",
                             (proj, pt))
                conn.execute("INSERT INTO pv_project_device (project_id, device_id, part) VALUES (%s, %s, 'pv')",
                             (proj, dev))
                conn.execute("""INSERT INTO production (enterprise_id, product, period_start, period_end, quantity, unit)
                                VALUES (%s, 'shoes', '2025-01-01', '2025-01-31', %s, '万双')""", (e, 10 + n))
                conn.execute("""INSERT INTO interval_energy (point_id, bucket_start, energy_wh, estimated)
                                VALUES (%s, '2025-03-01 00:00+00', %s, false)""", (pt, e))
                # an interval the rollup removed (migration 0830: the trigger records it)
                conn.execute("""INSERT INTO interval_energy (point_id, bucket_start, energy_wh, estimated)
                                VALUES (%s, '2025-03-01 00:15+00', 1, false)""", (pt,))
                conn.execute("DELETE FROM interval_energy WHERE point_id = %s AND bucket_start = '2025-03-01 00:15+00'",
                             (pt,))
                conn.execute("INSERT INTO rollup_watermark (point_id, last_reading_ts) VALUES (%s, '2025-03-01 01:45+00')",
                             (pt,))
                conn.execute("INSERT INTO rollup_dirty (point_id, since) VALUES (%s, '2025-03-01 01:30+00')", (pt,))
                conn.execute("""INSERT INTO reading_resolution (point_id, since, until, interval_s, source)
                                VALUES (%s, '2025-01-01 00:00+00', '2025-01-31 00:00+00', 3600, %s)""", (pt, s))
                if plain:  # TimescaleDB: a continuous aggregate and a view over it, filled from interval_energy
                    conn.execute("""INSERT INTO energy_hourly (point_id, bucket_start, energy_wh, intervals,
                                                               estimated_intervals, suspect_intervals)
                                    VALUES (%s, '2025-03-01 00:00+00', %s, 4, 0, 0)""", (pt, e))
                    conn.execute("""INSERT INTO energy_daily (point_id, bucket_start, day, energy_wh, intervals,
                                                              estimated_intervals, suspect_intervals)
                                    VALUES (%s, '2025-02-28 16:00+00', '2025-03-01', %s, 8, 0, 0)""", (pt, e))
                conn.execute("""INSERT INTO daily_balance (enterprise_id, day, import_wh, export_wh, pv_wh, charge_wh,
                                    discharge_wh, consumption_wh, pv_self_consumed_wh, green_wh, intervals, estimated_intervals)
                                VALUES (%s, '2025-03-01', %s, 0, 0, 0, 0, %s, 0, 0, 96, 0)""", (e, e, e))
                conn.execute("""INSERT INTO green_share_ytd (enterprise_id, year, data_through, green_wh, consumption_wh,
                                                             intervals, estimated_intervals)
                                VALUES (%s, 2025, '2025-03-02 00:00+00', 1, %s, 96, 0)""", (e, e))
                conn.execute("""INSERT INTO green_share_projection (enterprise_id, year, data_through, basis_days,
                                    projected_green_wh, projected_consumption_wh, gap_now_wh, gap_year_end_wh)
                                VALUES (%s, 2025, '2025-03-02 00:00+00', 1, 1, %s, 0, 0)""", (e, e))
                conn.execute("""INSERT INTO eligibility_decision (enterprise_id, year, document, clause, rule, version,
                                    status, evidence, evidence_hash, reason)
                                VALUES (%s, 2025, '2024-2', '§三(一)', 'R1', 1, 'unknown', %s, 'h', 'first')""",
                             (e, psycopg.types.json.Jsonb({"note": s})))
                conn.execute("INSERT INTO eligibility_input (enterprise_id, year, fingerprint) VALUES (%s, 2025, %s)",
                             (e, s))
                conn.execute("""INSERT INTO dq_finding (kind, device_id, point_id, opened_at, closed_at, detail)
                                VALUES ('gap', %s, %s, '2025-03-01 00:00+00', '2025-03-01 01:00+00', %s)""", (dev, pt, s))
                conn.execute("""INSERT INTO finding (origin, kind, device_id, point_id, opened_at, closed_at, last_seen, data)
                                VALUES ('rollup', 'counter_outlier', %s, %s, '2025-03-01 00:00+00',
                                        '2025-03-01 00:00+00', '2025-03-01 00:00+00', %s)""",
                             (dev, pt, psycopg.types.json.Jsonb({"text": s})))
                conn.execute("INSERT INTO metrics_watermark (enterprise_id, seen_through) VALUES (%s, '2025-03-02 00:00+00')",
                             (e,))
                conn.execute("INSERT INTO eligibility_watermark (enterprise_id, seen_through) "
                             "VALUES (%s, '2025-03-02 00:00+00')", (e,))
                conn.execute("""INSERT INTO metrics_prefix (enterprise_id, year, through, state)
                                VALUES (%s, 2025, '2025-03-01 16:00+00', %s)""", (e, psycopg.types.json.Jsonb({"s": s})))
                conn.execute("""INSERT INTO carbon_ytd (enterprise_id, year, data_through, status, note, region,
                                                        factor_year_offset)
                                VALUES (%s, 2025, '2025-03-02 00:00+00', 'no_grid_import', %s, 'fujian', 0)""", (e, s))
                conn.execute("""INSERT INTO intensity_ytd (enterprise_id, year, industry, status, not_ranked,
                                                           electricity_method, rows_without_output_value)
                                VALUES (%s, 2025, 'footwear', 'unknown', %s, 'equivalent', 0)""", (e, s))
                if conn.execute("SELECT to_regclass('public.statement')").fetchone()[0]:  # the API's (0600)
                    conn.execute("""INSERT INTO statement (statement_id, enterprise_id, year, kid, jws, payload_sha256)
                                    VALUES (gen_random_uuid(), %s, 2025, 'kid', %s, 'h')""", (e, f"x.{s}.y"))
        # a finding tied to no device (an unknown MQTT topic): no tenant's, the bureau's only
        conn.execute("""INSERT INTO collector_finding (kind, source, device_id, first_seen, last_seen, count, detail)
                        VALUES ('unknown_topic', 'site/unknown', NULL, now(), now(), 1, 'secret-ORPHAN')""")
    return ents, parks
