-- A certificate delivered with a trade belongs to the trade's enterprise. store/ledger.py checked it;
-- now the database does, so no writer (tenancy, docs/tenancy.md) can hang its certificate on another
-- enterprise's trade by id: that would count against the other's settled volume, and an id that
-- exists would answer differently from one that does not. With trade_id NULL nothing is checked.
CREATE UNIQUE INDEX green_trade_id_enterprise ON green_trade (trade_id, enterprise_id);
ALTER TABLE certificate ADD CONSTRAINT certificate_trade_same_enterprise
    FOREIGN KEY (trade_id, enterprise_id) REFERENCES green_trade (trade_id, enterprise_id) ON DELETE RESTRICT;
