-- Live configuration: one JSON document per setting name. version is bumped
-- on every change so instances can tell whether their copy is current.
-- value is json rather than jsonb: it is validated on write and read back as
-- the exact text written, the same on every engine.
-- +goose Up
CREATE TABLE settings (
    name       VARCHAR(191) NOT NULL PRIMARY KEY,
    value      JSON         NOT NULL,
    version    BIGINT       NOT NULL DEFAULT 1,
    updated_at TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_by VARCHAR(191) NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE settings;
