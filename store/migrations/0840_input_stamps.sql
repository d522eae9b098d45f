-- What people record for an enterprise — its points and their metering settings, meter
-- replacements, the certificate ledger, facts, PV projects and their links, production and the
-- reference values of its products, its time zone — moves a per-enterprise stamp on every write.
-- The flows compare it with the stamp their last result was computed at: equal, and no interval
-- of the period changed, the result would come out the same and is not recomputed (an hourly
-- pass over a province stays a small fraction of a full pass: docs/accounting.md "What a pass
-- recomputes"). A stamp is conservative: a write that changes nothing still moves it.
CREATE SEQUENCE enterprise_input_seq;
CREATE TABLE enterprise_input (
    enterprise_id  bigint PRIMARY KEY REFERENCES enterprise ON DELETE CASCADE,
    stamp          bigint NOT NULL,
    changed_at     timestamptz NOT NULL DEFAULT now()
);

-- Each trigger names how its row leads to the enterprise: TG_ARGV[0] is the column, TG_ARGV[1]
-- what it keys. A row whose enterprise cannot be found any more (a cascade from a site or device
-- being deleted) is skipped: the deletion of the site or device itself moved the stamp.
CREATE FUNCTION enterprise_input_touch() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    r      jsonb;
    key    text;
    ids    bigint[];
BEGIN
    FOREACH r IN ARRAY ARRAY[CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
                             CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END] LOOP
        CONTINUE WHEN r IS NULL;
        key := r ->> TG_ARGV[0];
        CONTINUE WHEN key IS NULL;
        ids := CASE TG_ARGV[1]
            WHEN 'enterprise' THEN ARRAY[key::bigint]
            WHEN 'site' THEN ARRAY(SELECT s.enterprise_id FROM public.site s WHERE s.site_id = key::bigint)
            WHEN 'device' THEN ARRAY(SELECT s.enterprise_id FROM public.device d JOIN public.site s USING (site_id)
                                     WHERE d.device_id = key::bigint)
            WHEN 'point' THEN ARRAY(SELECT s.enterprise_id FROM public.point p JOIN public.device d USING (device_id)
                                    JOIN public.site s USING (site_id) WHERE p.point_id = key::bigint)
            WHEN 'project' THEN ARRAY(SELECT j.enterprise_id FROM public.pv_project j WHERE j.project_id = key::bigint)
            WHEN 'product' THEN ARRAY(SELECT DISTINCT p.enterprise_id FROM public.production p WHERE p.product = key)
        END;
        INSERT INTO public.enterprise_input AS t (enterprise_id, stamp)
        SELECT e.enterprise_id, nextval('public.enterprise_input_seq')
        FROM public.enterprise e WHERE e.enterprise_id = ANY(ids)
        ON CONFLICT (enterprise_id) DO UPDATE SET stamp = EXCLUDED.stamp, changed_at = now();
    END LOOP;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION enterprise_input_touch() FROM PUBLIC;

-- TRUNCATE has no rows to follow: every enterprise's stamp moves
CREATE FUNCTION enterprise_input_touch_all() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    UPDATE public.enterprise_input SET stamp = nextval('public.enterprise_input_seq'), changed_at = now();
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION enterprise_input_touch_all() FROM PUBLIC;

DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
            ('enterprise', 'enterprise_id', 'enterprise'), ('site', 'enterprise_id', 'enterprise'),
            ('device', 'site_id', 'site'), ('point', 'device_id', 'device'),
            ('meter_replacement', 'point_id', 'point'),
            ('green_trade', 'enterprise_id', 'enterprise'), ('certificate', 'enterprise_id', 'enterprise'),
            ('enterprise_fact', 'enterprise_id', 'enterprise'), ('pv_project', 'enterprise_id', 'enterprise'),
            ('pv_project_point', 'project_id', 'project'), ('pv_project_device', 'project_id', 'project'),
            ('production', 'enterprise_id', 'enterprise'), ('product_reference', 'product', 'product'))
        AS v(tab, col, kind)
    LOOP
        EXECUTE format('CREATE TRIGGER enterprise_input_touch AFTER INSERT OR UPDATE OR DELETE ON %I '
                       'FOR EACH ROW EXECUTE FUNCTION enterprise_input_touch(%L, %L)', t.tab, t.col, t.kind);
        EXECUTE format('CREATE TRIGGER enterprise_input_truncate AFTER TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION enterprise_input_touch_all()', t.tab);
    END LOOP;
END
$$;

-- every enterprise starts with a stamp, so a result computed before anything changes has one to keep
INSERT INTO enterprise_input (enterprise_id, stamp)
SELECT enterprise_id, nextval('enterprise_input_seq') FROM enterprise;

-- the stamp the metrics flow's carried year was computed at (NULL: before this migration: recompute)
ALTER TABLE metrics_prefix ADD COLUMN input_stamp bigint, ADD COLUMN versions text;

-- The eligibility pass keeps its own watermark of the intervals it has taken in, as the metrics
-- pass does (0410): the years to look at again are found from what changed since, through the
-- (point_id, computed_at) index, instead of from every interval changed since the oldest
-- evaluation (which, for a year evaluated long ago and unchanged since, was months of intervals
-- on every hourly pass).
CREATE TABLE eligibility_watermark (
    enterprise_id  bigint PRIMARY KEY REFERENCES enterprise ON DELETE CASCADE,
    seen_through   timestamptz NOT NULL,   -- newest interval_energy.computed_at taken in
    run_at         timestamptz NOT NULL DEFAULT now()
);

INSERT INTO tenancy_table VALUES ('enterprise_input', 'result'), ('eligibility_watermark', 'result')
ON CONFLICT DO NOTHING;
