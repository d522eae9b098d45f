-- PV/storage projects from the site file (`projects:`), linked to the points that meter them and to
-- the devices whose SunSpec nameplate gives a capacity the site file leaves out (rule R3,
-- 晋政规〔2024〕2号 §三(一)). A project written by `site apply` may leave pv_w / storage_power_w /
-- storage_energy_wh empty: the report then takes the latest SunSpec nameplate reading
-- (capacity_w: models 120/702; storage_capacity_wh: models 713/802) of the linked devices.

ALTER TABLE pv_project ADD COLUMN origin text NOT NULL DEFAULT 'facts' CHECK (origin IN ('facts', 'site'));
ALTER TABLE pv_project ALTER COLUMN pv_w DROP NOT NULL;
ALTER TABLE pv_project ADD CONSTRAINT pv_project_pv_w_known CHECK (pv_w IS NOT NULL OR origin = 'site');

-- 0300 asked for storage power and energy together; from a site file either may come from SunSpec.
-- Storage is present when storage_commissioned is set.
DO $$
DECLARE c record;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
             WHERE conrelid = 'pv_project'::regclass AND contype = 'c'
               AND (pg_get_constraintdef(oid) LIKE '%storage_power_w IS NULL) = (storage_energy_wh IS NULL)%'
                    OR pg_get_constraintdef(oid) LIKE '%storage_commissioned IS NULL) OR (storage_power_w IS NOT NULL)%')
    LOOP
        EXECUTE format('ALTER TABLE pv_project DROP CONSTRAINT %I', c.conname);
    END LOOP;
END $$;
UPDATE pv_project SET storage_commissioned = commissioned
    WHERE storage_power_w IS NOT NULL AND storage_commissioned IS NULL;
ALTER TABLE pv_project ADD CONSTRAINT pv_project_storage_dated
    CHECK ((storage_power_w IS NULL AND storage_energy_wh IS NULL) OR storage_commissioned IS NOT NULL);
ALTER TABLE pv_project ADD CONSTRAINT pv_project_storage_known
    CHECK (origin = 'site' OR (storage_power_w IS NULL) = (storage_energy_wh IS NULL));

-- which counters meter the project: its PV generation, storage charge and discharge
CREATE TABLE pv_project_point (
    project_id  bigint NOT NULL REFERENCES pv_project ON DELETE CASCADE,
    point_id    bigint NOT NULL REFERENCES point ON DELETE CASCADE,
    link        text NOT NULL CHECK (link IN ('generation', 'charge', 'discharge')),
    PRIMARY KEY (project_id, point_id, link),
    UNIQUE (point_id, link)                   -- a point meters one project, never two
);

-- whose SunSpec nameplate stands for the project's PV or storage when the site file gives none
CREATE TABLE pv_project_device (
    project_id  bigint NOT NULL REFERENCES pv_project ON DELETE CASCADE,
    device_id   bigint NOT NULL REFERENCES device ON DELETE CASCADE,
    part        text NOT NULL CHECK (part IN ('pv', 'storage')),
    PRIMARY KEY (project_id, device_id, part)
);
