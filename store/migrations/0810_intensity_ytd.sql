-- Energy intensity per enterprise and local calendar year, as `greengauge report intensity` gives it
-- (accounting.policy_inputs.intensity_year, equivalent value for electricity, no bottom fraction):
-- written by the metrics flow (flows/metrics.py) in the same transaction as carbon_ytd, for every
-- enterprise of the industry of the enterprise it ran for (a rank depends on the whole industry).
-- The park dashboard's intensity ranking reads it (issue 11: dashboards show stored results).
-- 晋政规〔2024〕2号 §四(五) (分行业 ranking by energy per output).

CREATE TABLE intensity_ytd (
    enterprise_id              bigint NOT NULL REFERENCES enterprise ON DELETE CASCADE,
    year                       int NOT NULL,                 -- local calendar year
    industry                   text NOT NULL,                -- enterprise.industry when computed
    data_through               timestamptz,                  -- end of the enterprise's last stored interval read
    status                     text NOT NULL CHECK (status IN ('ranked', 'unknown')),
    not_ranked                 text,                         -- why unknown: no grid import / no output value
    electricity_method         text NOT NULL,                -- equivalent (当量值) or equal_value (等价值)
    energy_kgce                numeric,                      -- comprehensive energy, NULL without grid import
    output_value_yuan          numeric,                      -- output value of the year's production rows
    rows_without_output_value  int NOT NULL,
    kgce_per_10k_yuan          numeric,                      -- to 6 places, as the report prints it
    kgce_per_10k_yuan_exact    text,                         -- the exact value, 'num/den'
    rank_in_industry           int,
    ranked_of                  int,                          -- enterprises ranked in the industry
    computed_at                timestamptz NOT NULL DEFAULT now(),  -- moves only when a figure changed
    PRIMARY KEY (enterprise_id, year),
    CHECK ((status = 'ranked') = (rank_in_industry IS NOT NULL AND kgce_per_10k_yuan IS NOT NULL)),
    CHECK ((status = 'unknown') = (not_ranked IS NOT NULL))
);

INSERT INTO tenancy_table VALUES ('intensity_ytd', 'result') ON CONFLICT DO NOTHING;
