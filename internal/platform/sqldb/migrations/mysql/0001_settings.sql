-- Live configuration: one JSON document per setting name. version is bumped
-- on every change so instances can tell whether their copy is current.
-- name is VARCHAR(191) so the utf8mb4 primary key fits InnoDB's 767-byte
-- index limit on older row formats. value is LONGTEXT checked as JSON rather
-- than MySQL's JSON type, which would rewrite the document's text.
-- +goose Up
CREATE TABLE settings (
    name       VARCHAR(191) NOT NULL PRIMARY KEY,
    value      LONGTEXT     NOT NULL CHECK (JSON_VALID(value)),
    version    BIGINT       NOT NULL DEFAULT 1,
    updated_at DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_by VARCHAR(191) NOT NULL DEFAULT ''
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE settings;
