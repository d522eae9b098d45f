-- The year-to-date green share as rule R1 decides it (the same as `greengauge report green-share`):
-- on-site green + green-power trades settled + certificates retired in the period, capped at the
-- consumption, and `unknown` below the completeness threshold. green_wh is the counted green.
ALTER TABLE green_share_ytd
    ADD COLUMN onsite_green_wh  bigint,
    ADD COLUMN trade_wh         bigint NOT NULL DEFAULT 0,
    ADD COLUMN certificate_wh   bigint NOT NULL DEFAULT 0,
    ADD COLUMN completeness     numeric,               -- measured intervals / intervals elapsed, display only
    ADD COLUMN status           text CHECK (status IN ('qualifies', 'does_not_qualify', 'unknown')),
    ADD COLUMN missing_wh       bigint,                -- green still missing to reach 30 % now
    ADD COLUMN certificates_to_buy int;

COMMENT ON COLUMN green_share_projection.basis_days IS
    'days of the year to date whose metered energy is scaled to the whole year';
