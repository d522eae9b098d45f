-- The hourly-matched share (docs/accounting.md "What the result shows": each local hour's on-site
-- green counts only up to that hour's consumption, trades and certificates against the residual
-- of their month), stored beside R1's year to date as `report green-share` prints it — for
-- information, not the R1 figure. NULL where a row was written before this migration (the next
-- metrics pass fills it).
ALTER TABLE green_share_ytd
    ADD COLUMN hourly_hours                int,
    ADD COLUMN hourly_consumption_wh       bigint,
    ADD COLUMN hourly_onsite_matched_wh    bigint,
    ADD COLUMN hourly_ledger_matched_wh    bigint,
    ADD COLUMN hourly_ledger_unmatched_wh  bigint,
    ADD COLUMN hourly_share_exact          text;      -- matched / consumption as 'num/den', NULL without consumption
