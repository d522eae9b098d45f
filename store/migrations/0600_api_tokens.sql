-- The bureau API (api/): bearer tokens, idempotent writes and signed statements.
--
-- A token is random; only sha256(token) is stored. Each token names the tenant login role
-- (store.tenancy.add_reader) its requests run as: the API looks the hash up as its service role,
-- then runs the request in one transaction under SET LOCAL ROLE <db_role>, so the database's
-- reader views decide what the request sees. Expired or revoked tokens are refused (401).

CREATE TABLE api_token (
    token_id     bigserial PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,35}$'),
    token_hash   text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),  -- sha256 hex of the token
    kind         text NOT NULL CHECK (kind IN ('enterprise', 'park', 'bureau')),
    scope_code   text,                                    -- enterprise or park code; NULL for the bureau
    db_role      text NOT NULL,                           -- tenant role the requests run as
    can_write    boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    CHECK ((kind = 'bureau') = (scope_code IS NULL)),
    CHECK (expires_at > created_at)
);

-- A POST with an Idempotency-Key header is answered once: a retry with the same key and body gets
-- the stored answer, with another body a 422; nothing is entered twice. Written in the same
-- transaction as the entry itself.
CREATE TABLE api_idempotency (
    token_id      bigint NOT NULL REFERENCES api_token ON DELETE CASCADE,
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    method        text NOT NULL,
    path          text NOT NULL,
    request_hash  text NOT NULL,                          -- sha256 of the request body
    status        int NOT NULL,
    response      jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_id, key)
);

-- Signed statements (JWS compact, EdDSA over Ed25519): one enterprise-year frozen with every figure,
-- status, evidence and input digest. Never changed or deleted: a new statement is a new row.
CREATE TABLE statement (
    statement_id    uuid PRIMARY KEY,
    enterprise_id   bigint NOT NULL REFERENCES enterprise ON DELETE RESTRICT,
    year            int NOT NULL,
    kid             text NOT NULL,                        -- RFC 7638 thumbprint of the signing key
    jws             text NOT NULL,                        -- compact serialisation: header.payload.signature
    payload_sha256  text NOT NULL,
    data_through    timestamptz,
    issued_at       timestamptz NOT NULL DEFAULT now(),
    issued_by       bigint REFERENCES api_token ON DELETE SET NULL
);
-- tenancy (0500): tokens and idempotency records are the API's own bookkeeping, no reader view;
-- statements get a reader view scoped by enterprise_id (tenancy_refresh), read by GET /v1/statements/{id}
INSERT INTO tenancy_table VALUES ('api_token', 'private'), ('api_idempotency', 'private');

CREATE INDEX statement_enterprise_idx ON statement (enterprise_id, year);

CREATE FUNCTION statement_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'signed statements are never changed or deleted (% refused); issue a new one', TG_OP;
END
$$;
REVOKE EXECUTE ON FUNCTION statement_immutable() FROM PUBLIC;
CREATE TRIGGER statement_no_change BEFORE UPDATE OR DELETE ON statement
    FOR EACH ROW EXECUTE FUNCTION statement_immutable();

-- A recorded meter replacement moves the point's rollup watermark back to the swap (as
-- store.rollups.lower_watermark does), so the next rollup recomputes the intervals from it. In the
-- database, so that a tenant writer (the API's data entry), who may insert the replacement through
-- its scoped view but holds nothing on rollup state, gets the same effect as the owner's command line.
CREATE FUNCTION meter_replacement_lowers_watermark() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE rollup_watermark SET last_reading_ts = NEW.ts, rolled_at = now()
     WHERE point_id = NEW.point_id AND last_reading_ts > NEW.ts;
    RETURN NEW;
END
$$;
REVOKE EXECUTE ON FUNCTION meter_replacement_lowers_watermark() FROM PUBLIC;
CREATE TRIGGER meter_replacement_lowers_watermark AFTER INSERT ON meter_replacement
    FOR EACH ROW EXECUTE FUNCTION meter_replacement_lowers_watermark();
