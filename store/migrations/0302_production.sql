-- Production volumes and output value per enterprise, product and period, and the reference values
-- of each product's national/industry energy-consumption limit standard (单位产品能源消耗限额:
-- 限定值 limit, 准入值 access, 先进值 advanced). Imported with `greengauge production import`;
-- read by `greengauge report intensity` and by the unit-energy rule (福建 002 第七条 3).

CREATE TABLE product_reference (
    product           text PRIMARY KEY,
    unit              text NOT NULL CHECK (unit <> ''),        -- unit of product, e.g. t, 万双
    limit_kgce        numeric CHECK (limit_kgce > 0),          -- 限定值 [kgce/unit]
    access_kgce       numeric CHECK (access_kgce > 0),         -- 准入值 [kgce/unit]
    advanced_kgce     numeric CHECK (advanced_kgce > 0),       -- 先进值 [kgce/unit]
    industry_average_kgce numeric CHECK (industry_average_kgce > 0),  -- where no standard exists
    standard          text NOT NULL DEFAULT '',                -- e.g. GB 30252-2013 表1
    recorded_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE production (
    production_id     bigserial PRIMARY KEY,
    enterprise_id     bigint NOT NULL REFERENCES enterprise ON DELETE CASCADE,
    product           text NOT NULL,
    period_start      date NOT NULL,                           -- local day, inclusive
    period_end        date NOT NULL,                           -- local day, inclusive
    quantity          numeric NOT NULL CHECK (quantity >= 0),  -- [unit]
    unit              text NOT NULL CHECK (unit <> ''),
    output_value_yuan numeric(18, 2) CHECK (output_value_yuan >= 0),  -- 工业总产值 [yuan]
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (period_end >= period_start),
    UNIQUE (enterprise_id, product, period_start, period_end)
);
CREATE INDEX production_period_idx ON production (enterprise_id, period_start);
