-- Eligibility decisions are history: 0402 refused UPDATE only; a DELETE, a TRUNCATE or deleting the
-- enterprise (ON DELETE CASCADE) could still erase what was decided and sent to a bureau.
--
-- - DELETE and TRUNCATE of eligibility_decision are refused;
-- - an enterprise that has decisions cannot be deleted (ON DELETE RESTRICT instead of CASCADE);
-- - a new row must extend the history of its (enterprise, year, document, clause, rule, subject):
--   version 1 with no supersedes when the key has no row yet, otherwise supersedes = the key's
--   current latest version and version = that version + 1 (no forks, no gaps, no rewriting).

CREATE FUNCTION eligibility_decision_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'eligibility decisions are history and are never deleted (% refused); insert a new version instead',
        TG_OP;
END
$$;

CREATE TRIGGER eligibility_decision_no_delete BEFORE DELETE ON eligibility_decision
    FOR EACH ROW EXECUTE FUNCTION eligibility_decision_no_delete();
CREATE TRIGGER eligibility_decision_no_truncate BEFORE TRUNCATE ON eligibility_decision
    FOR EACH STATEMENT EXECUTE FUNCTION eligibility_decision_no_delete();

ALTER TABLE eligibility_decision DROP CONSTRAINT eligibility_decision_enterprise_id_fkey;
ALTER TABLE eligibility_decision ADD CONSTRAINT eligibility_decision_enterprise_id_fkey
    FOREIGN KEY (enterprise_id) REFERENCES enterprise ON DELETE RESTRICT;

CREATE FUNCTION eligibility_decision_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    latest eligibility_decision%ROWTYPE;
BEGIN
    SELECT * INTO latest FROM eligibility_decision
     WHERE enterprise_id = NEW.enterprise_id AND year = NEW.year AND document = NEW.document
       AND clause = NEW.clause AND rule = NEW.rule AND subject = NEW.subject
     ORDER BY version DESC LIMIT 1;
    IF NOT FOUND THEN
        IF NEW.supersedes IS NOT NULL OR NEW.version <> 1 THEN
            RAISE EXCEPTION 'eligibility decision % / % / % / % (subject %): the first version is 1 and supersedes nothing '
                            '(got version %, supersedes %)', NEW.document, NEW.clause, NEW.rule, NEW.year,
                            NEW.subject, NEW.version, NEW.supersedes;
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.supersedes IS DISTINCT FROM latest.decision_id OR NEW.version <> latest.version + 1 THEN
        RAISE EXCEPTION 'eligibility decision % / % / % / % (subject %): a new version must supersede the latest, '
                        'decision % version %, as version % (got version %, supersedes %)',
                        NEW.document, NEW.clause, NEW.rule, NEW.year, NEW.subject, latest.decision_id,
                        latest.version, latest.version + 1, NEW.version, NEW.supersedes;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER eligibility_decision_chain BEFORE INSERT ON eligibility_decision
    FOR EACH ROW EXECUTE FUNCTION eligibility_decision_chain();
