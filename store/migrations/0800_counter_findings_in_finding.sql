-- One findings table (docs/accounting.md "One path"): what the rollup finds turning a counter
-- point's readings into interval energy (0410's counter_finding: counter_rollover,
-- meter_replacement, counter_outlier, counter_drop_unexplained, counter_*_provisional, spike, …)
-- joins the collector's and the data-quality findings in `finding`, as origin 'rollup': an event at
-- the reading it concerns (opened_at = closed_at = ts), on the point and its device, its sentence in
-- data.text. The rollup replaces a point's rollup findings for the range it recomputes
-- (store/bundle.py write_counter_findings).
ALTER TABLE finding DROP CONSTRAINT finding_origin_check;
ALTER TABLE finding ADD CONSTRAINT finding_origin_check CHECK (origin IN ('collector', 'quality', 'rollup'));
ALTER TABLE finding DROP CONSTRAINT finding_check1;
ALTER TABLE finding ADD CONSTRAINT finding_collector_source CHECK (origin <> 'collector' OR source IS NOT NULL);
ALTER TABLE finding ADD CONSTRAINT finding_rollup_point CHECK (origin <> 'rollup' OR point_id IS NOT NULL);
CREATE INDEX finding_rollup_point_ts ON finding (point_id, opened_at) WHERE origin = 'rollup';

INSERT INTO finding (origin, kind, device_id, point_id, opened_at, closed_at, last_seen, data, detected_at)
SELECT 'rollup', c.kind, p.device_id, c.point_id, c.ts, c.ts, c.ts, jsonb_build_object('text', c.detail),
       c.computed_at
FROM counter_finding c JOIN point p USING (point_id);

-- the old name and columns stay, as a view, for readers of 0410's table (tenancy makes its reader
-- view by the same rule as for every view of schema public: scoped by point_id)
DELETE FROM tenancy_table WHERE relname = 'counter_finding';
DROP TABLE counter_finding CASCADE;
CREATE VIEW counter_finding AS
SELECT point_id, opened_at AS ts, kind, data->>'text' AS detail, detected_at AS computed_at
FROM finding WHERE origin = 'rollup';
