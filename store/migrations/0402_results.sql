-- Results the flows keep current, for dashboards and the API (flows/metrics.py, flows/eligibility.py,
-- flows/quality.py). Energy in integer Wh; shares as exact numerator/denominator plus a numeric
-- for display; every row says when it was computed and from data through when.

CREATE TABLE daily_balance (
    enterprise_id        bigint NOT NULL REFERENCES enterprise ON DELETE CASCADE,
    day                  date NOT NULL,                -- local calendar day of the enterprise
    import_wh            bigint NOT NULL,
    export_wh            bigint NOT NULL,
    pv_wh                bigint NOT NULL,
    charge_wh            bigint NOT NULL,
    discharge_wh         bigint NOT NULL,
    consumption_wh       bigint NOT NULL,
    pv_self_consumed_wh  bigint NOT NULL,
    green_wh             bigint NOT NULL,
    intervals            int NOT NULL,
    estimated_intervals  int NOT NULL,
    source_changed_at    timestamptz,                  -- newest interval_energy.computed_at it was built from
    computed_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (enterprise_id, day)
);

-- Year to date, local calendar year; one current row per enterprise and year.
CREATE TABLE green_share_ytd (
    enterprise_id        bigint NOT NULL REFERENCES enterprise ON DELETE CASCADE,
    year                 int NOT NULL,
    data_through         timestamptz NOT NULL,         -- end of the last interval counted
    green_wh             bigint NOT NULL,
    consumption_wh       bigint NOT NULL,
    share                numeric,                      -- green / consumption, display only
    qualifies            boolean,                      -- exact integer compare with 30 %, inclusive
    intervals            int NOT NULL,
    estimated_intervals  int NOT NULL,
    computed_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (enterprise_id, year)
);

-- Year-end projection and the gap to 30 %: green Wh still needed (0 when reached).
CREATE TABLE green_share_projection (
    enterprise_id              bigint NOT NULL REFERENCES enterprise ON DELETE CASCADE,
    year                       int NOT NULL,
    data_through               timestamptz NOT NULL,
    basis_days                 int NOT NULL,          -- trailing days whose rate is extended
    projected_green_wh         bigint NOT NULL,
    projected_consumption_wh   bigint NOT NULL,
    projected_share            numeric,
    projected_qualifies        boolean,
    gap_now_wh                 bigint NOT NULL,        -- more green needed today to stand at 30 %
    gap_year_end_wh            bigint NOT NULL,        -- more green needed by year end, on the projection
    computed_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (enterprise_id, year)
);

-- Eligibility decisions: never overwritten in place. A changed figure is a new version with the
-- reason; old versions stay. "What changed since I last pulled" = rows with decision_id > N.
CREATE TABLE eligibility_decision (
    decision_id    bigserial PRIMARY KEY,
    enterprise_id  bigint NOT NULL REFERENCES enterprise ON DELETE CASCADE,
    year           int NOT NULL,
    document       text NOT NULL,
    clause         text NOT NULL,
    rule           text NOT NULL,
    subject        text NOT NULL DEFAULT '',           -- what the rule was applied to when a rule has
                                                       -- several (a PV project, a listing); '' for the year
    version        int NOT NULL CHECK (version >= 1),
    status         text NOT NULL,
    amount         numeric,                            -- yuan, where the rule pays money
    evidence       jsonb NOT NULL,
    evidence_hash  text NOT NULL,                      -- sha256 of the canonical evidence JSON
    reason         text NOT NULL CHECK (reason IN ('first', 'new_data', 'late_data', 'ledger_change', 'rule_change')),
    supersedes     bigint REFERENCES eligibility_decision,
    decided_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (enterprise_id, year, document, clause, rule, subject, version)
);

-- What the last evaluation of an enterprise and year saw; an hourly run whose inputs have the same
-- fingerprint skips the (expensive) evaluation.
CREATE TABLE eligibility_input (
    enterprise_id  bigint NOT NULL REFERENCES enterprise ON DELETE CASCADE,
    year           int NOT NULL,
    fingerprint    text NOT NULL,
    evaluated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (enterprise_id, year)
);

CREATE FUNCTION eligibility_decision_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'eligibility decisions are never changed in place; insert a new version';
END
$$;
CREATE TRIGGER eligibility_decision_no_update BEFORE UPDATE ON eligibility_decision
    FOR EACH ROW EXECUTE FUNCTION eligibility_decision_immutable();

CREATE VIEW eligibility_current AS
SELECT DISTINCT ON (enterprise_id, year, document, clause, rule, subject) *
FROM eligibility_decision
ORDER BY enterprise_id, year, document, clause, rule, subject, version DESC;

-- Each version beside the one it replaced.
CREATE VIEW eligibility_change AS
SELECT n.decision_id, n.enterprise_id, n.year, n.document, n.clause, n.rule, n.subject, n.version, n.reason,
       o.status AS old_status, n.status AS new_status, o.amount AS old_amount, n.amount AS new_amount,
       o.evidence AS old_evidence, n.evidence AS new_evidence, n.decided_at
FROM eligibility_decision n LEFT JOIN eligibility_decision o ON o.decision_id = n.supersedes;

-- Data-quality findings, opened and closed with times, for dashboards and alerts.
CREATE TABLE dq_finding (
    finding_id   bigserial PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('stale_device', 'gap', 'counter_drop', 'spike',
                                               'clock_skew', 'low_completeness')),
    device_id    bigint NOT NULL REFERENCES device ON DELETE CASCADE,
    point_id     bigint REFERENCES point ON DELETE CASCADE,   -- NULL for device-wide findings
    opened_at    timestamptz NOT NULL,                        -- when the condition began (data time)
    closed_at    timestamptz,                                 -- NULL while it lasts
    detail       text NOT NULL,
    detected_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (closed_at IS NULL OR closed_at >= opened_at)
);
-- one finding per condition: the same (kind, device, point, start) is never recorded twice
CREATE UNIQUE INDEX dq_finding_once ON dq_finding (kind, device_id, coalesce(point_id, 0), opened_at);
-- at most one open finding of a kind per device/point
CREATE UNIQUE INDEX dq_finding_open ON dq_finding (kind, device_id, coalesce(point_id, 0)) WHERE closed_at IS NULL;
CREATE INDEX dq_finding_open_idx ON dq_finding (closed_at) WHERE closed_at IS NULL;
