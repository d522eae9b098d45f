"""Interval energy and readings as streamed CSV and XLSX: exactly the stored rows, paged with a
Link header, bounded (real uvicorn, the simulated plant's day in PostgreSQL)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import psycopg
import pytest
from openpyxl import load_workbook

pytestmark = pytest.mark.slow
DAY = "from=2025-06-21T00:00:00%2B08:00&to=2025-06-22T00:00:00%2B08:00"


@pytest.fixture(scope="module")
def grid_point(plant_api):
    with psycopg.connect(plant_api.db_url) as conn:
        return conn.execute("SELECT name FROM point WHERE role = 'grid_import' ORDER BY point_id LIMIT 1").fetchone()[0]


def _stored(api, sql, name):
    with psycopg.connect(api.db_url) as conn:
        return conn.execute(sql, (name,)).fetchall()


def test_intervals_csv_are_the_stored_intervals(plant_api, grid_point):
    with plant_api.client("plant") as c:
        r = c.get(f"/v1/points/{grid_point}/intervals.csv?{DAY}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "link" not in r.headers  # one page holds the day
    rows = list(csv.DictReader(io.StringIO(r.text)))
    stored = _stored(plant_api, """SELECT bucket_start, energy_wh, estimated FROM interval_energy JOIN point USING (point_id)
                                   WHERE name = %s AND bucket_start >= '2025-06-20 16:00+00'
                                     AND bucket_start < '2025-06-21 16:00+00' ORDER BY bucket_start""", grid_point)
    assert len(rows) == len(stored) == 96  # 24 h of 15-minute intervals
    assert [(datetime.fromisoformat(x["bucket_start"]), int(x["energy_wh"]), x["estimated"] == "true") for x in rows] \
        == [tuple(s) for s in stored]


def test_readings_page_by_link_and_add_up_to_the_whole(plant_api, grid_point):
    url = f"/v1/points/{grid_point}/readings.csv?{DAY}&limit=500"
    seen = []
    pages = 0
    with plant_api.client("plant") as c:
        while url:
            r = c.get(url)
            assert r.status_code == 200, r.text
            rows = list(csv.DictReader(io.StringIO(r.text)))
            assert len(rows) <= 500
            seen += [x["ts"] for x in rows]
            pages += 1
            url = r.links.get("next", {}).get("url")
    stored = _stored(plant_api, """SELECT count(*) FROM reading JOIN point USING (point_id) WHERE name = %s
                                   AND ts >= '2025-06-20 16:00+00' AND ts < '2025-06-21 16:00+00'""", grid_point)[0][0]
    assert len(seen) == len(set(seen)) == stored == 1440  # one reading a minute, none twice, none lost
    assert pages == 3


def test_xlsx_export(plant_api, grid_point):
    with plant_api.client("plant") as c:
        r = c.get(f"/v1/points/{grid_point}/intervals.xlsx?{DAY}&limit=10")
    assert r.status_code == 200 and 'rel="next"' in r.headers["link"]
    ws = load_workbook(io.BytesIO(r.content)).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == ("point", "bucket_start", "energy_wh", "estimated", "suspect")
    assert len(rows) == 11 and rows[1][0] == grid_point and isinstance(rows[1][2], int)


@pytest.mark.parametrize("query, field", [
    ("from=2025-06-21T00:00:00&to=2025-06-22T00:00:00%2B08:00", "from"),       # no offset
    ("from=2025-06-22T00:00:00%2B08:00&to=2025-06-21T00:00:00%2B08:00", "to"),  # backwards
    ("from=2024-01-01T00:00:00Z&to=2025-06-01T00:00:00Z", "to"),               # longer than 366 days
    ("to=2025-06-22T00:00:00Z", "from"),                                       # missing
])
def test_bad_ranges_are_problems_naming_the_field(plant_api, grid_point, query, field):
    with plant_api.client("plant") as c:
        r = c.get(f"/v1/points/{grid_point}/readings.csv?{query}")
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["field"].endswith(field)
