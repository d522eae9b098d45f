-- Carbon and standard coal of the year to date, per enterprise and local calendar year, kept
-- current by the metrics flow (flows/metrics.py) in the same transaction as green_share_ytd.
-- Figures are flows.policy_inputs.carbon_year(..., until=data_through): CO2 of purchased (grid)
-- electricity, location- and market-based, with the factor used and its source; standard coal per
-- GB/T 2589-2020. A plain table in both plain PostgreSQL and TimescaleDB mode.
--
-- When no factor fits the year, the row has status 'no_factor', the reason in note and no CO2
-- figure (never a guessed factor); standard coal does not need a factor and is still given.

CREATE TABLE carbon_ytd (
    enterprise_id              bigint NOT NULL REFERENCES enterprise ON DELETE CASCADE,
    year                       int NOT NULL,                 -- local calendar year
    data_through               timestamptz NOT NULL,         -- period end: end of the last interval counted
    status                     text NOT NULL CHECK (status IN ('ok', 'factor_fallback', 'no_factor', 'no_grid_import')),
    note                       text,                         -- why fallback / no factor / no grid meter
    region                     text NOT NULL,                -- region asked for the location-based factor
    factor_year_offset         int NOT NULL,                 -- factor year asked = year + offset
    grid_import_wh             bigint,                       -- NULL when no grid import point is metered
    -- location-based: all grid import x the average grid factor
    location_co2_kg            numeric,
    location_factor            numeric,                      -- kgCO2/kWh
    location_factor_region     text,
    location_factor_year       int,
    location_factor_source     text,
    -- market-based: grid import not covered by trades/certificates x the national market factor
    market_co2_kg              numeric,
    market_factor              numeric,                      -- kgCO2/kWh
    market_factor_region       text,
    market_factor_year         int,
    market_factor_source       text,
    market_covered_wh          bigint,                       -- grid import covered by green instruments
    green_trade_wh             bigint,                       -- ledger: settled trades counted
    certificates               int,                          -- ledger: unbundled certificates counted (1 MWh each)
    -- standard coal of purchased electricity and metered fuels (GB/T 2589-2020)
    coal_equivalent_kgce       numeric,                      -- electricity at 当量值 0.1229 kgce/kWh
    coal_equal_value_kgce      numeric,                      -- electricity at 等价值, when configured
    equal_value_kgce_per_kwh   numeric,                      -- the configured equal value, else NULL
    computed_at                timestamptz NOT NULL DEFAULT now(),  -- moves only when a figure changed
    PRIMARY KEY (enterprise_id, year),
    -- CO2 figures exactly when a factor was found; the reason whenever none or a fallback was used
    CHECK ((status IN ('ok', 'factor_fallback')) = (location_co2_kg IS NOT NULL AND market_co2_kg IS NOT NULL
                                                    AND location_factor IS NOT NULL AND market_factor IS NOT NULL)),
    CHECK (status = 'ok' OR note IS NOT NULL),
    CHECK ((coal_equal_value_kgce IS NULL) = (equal_value_kgce_per_kwh IS NULL) OR status = 'no_grid_import')
);
