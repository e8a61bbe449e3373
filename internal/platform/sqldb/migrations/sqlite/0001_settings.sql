-- Live configuration: one JSON document per setting name. version is bumped
-- on every change so instances can tell whether their copy is current.
-- +goose Up
CREATE TABLE settings (
    name       VARCHAR(191) NOT NULL PRIMARY KEY,
    value      TEXT         NOT NULL CHECK (json_valid(value)),
    version    BIGINT       NOT NULL DEFAULT 1,
    updated_at DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_by VARCHAR(191) NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE settings;
