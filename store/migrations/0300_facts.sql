-- Facts people record for the policy engine (metrics/policy): listings, certifications, grants,
-- and PV projects with their storage (nameplates, commissioning dates). Imported with
-- `greengauge facts import FILE.csv`; read by `greengauge report awards`.
-- Eligibility and award results are not stored here (that is the flows' concern).

CREATE TABLE enterprise_fact (
    fact_id        bigserial PRIMARY KEY,
    enterprise_id  bigint NOT NULL REFERENCES enterprise ON DELETE CASCADE,
    kind           text NOT NULL,              -- metrics.policy.inputs.FACT_KINDS and kinds the documents name
    fact_date      date NOT NULL,              -- listing / announcement / certification / grant date (local)
    level          text,                       -- national, provincial, jinjiang
    scope          text,                       -- e.g. the MIIT norm: 再生资源综合利用
    until          date,                       -- last day the status holds; NULL = still held
    first_time     boolean,                    -- certifications: the first one? NULL = not recorded
    amount         numeric(16, 2) CHECK (amount IS NULL OR amount >= 0),  -- grants received [yuan]
    reference      text NOT NULL DEFAULT '',   -- announcement or certificate number
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (until IS NULL OR until >= fact_date),
    UNIQUE NULLS NOT DISTINCT (enterprise_id, kind, level, scope, fact_date)
);
CREATE INDEX enterprise_fact_enterprise_idx ON enterprise_fact (enterprise_id, fact_date);

CREATE TABLE pv_project (
    project_id            bigserial PRIMARY KEY,
    enterprise_id         bigint NOT NULL REFERENCES enterprise ON DELETE CASCADE,
    code                  text NOT NULL,
    pv_w                  bigint NOT NULL CHECK (pv_w > 0),          -- installed capacity [W]
    commissioned          date NOT NULL,                             -- local day
    storage_power_w       bigint CHECK (storage_power_w > 0),        -- [W]
    storage_energy_wh     bigint CHECK (storage_energy_wh > 0),      -- [Wh]
    storage_commissioned  date,
    storage_electrochemical boolean NOT NULL DEFAULT true,
    recorded_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((storage_power_w IS NULL) = (storage_energy_wh IS NULL)),
    CHECK (storage_commissioned IS NULL OR storage_power_w IS NOT NULL),
    UNIQUE (enterprise_id, code)
);
