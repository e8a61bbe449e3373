-- The push component's admin data: apps and their API keys, channel
-- accounts and templates. Times are Unix microseconds in BIGINT columns so
-- the three engines store and compare them alike. Ids and names are
-- VARCHAR(191) at most so utf8mb4 indexes fit InnoDB's key limit.
-- +goose Up
CREATE TABLE push_apps (
    id         VARCHAR(64)  NOT NULL PRIMARY KEY,
    name       VARCHAR(191) NOT NULL,
    created_at BIGINT       NOT NULL
);

-- key_hash is the hex SHA-256 of the key; the plaintext is never stored.
-- scopes is a space-separated list.
CREATE TABLE push_api_keys (
    id         VARCHAR(64)  NOT NULL PRIMARY KEY,
    app_id     VARCHAR(64)  NOT NULL REFERENCES push_apps (id),
    name       VARCHAR(191) NOT NULL,
    key_hash   CHAR(64)     NOT NULL UNIQUE,
    scopes     VARCHAR(191) NOT NULL,
    created_at BIGINT       NOT NULL,
    revoked_at BIGINT       NULL
);

-- config is a JSON object whose secret fields hold AES-GCM ciphertext.
CREATE TABLE push_channel_accounts (
    id         VARCHAR(64)  NOT NULL PRIMARY KEY,
    channel    VARCHAR(32)  NOT NULL,
    name       VARCHAR(191) NOT NULL,
    config     TEXT         NOT NULL,
    created_at BIGINT       NOT NULL,
    updated_at BIGINT       NOT NULL
);
CREATE INDEX push_channel_accounts_created ON push_channel_accounts (created_at, id);

-- version grows with every change; updates are conditional on it.
CREATE TABLE push_templates (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          VARCHAR(191) NOT NULL,
    channel       VARCHAR(32)  NOT NULL,
    msg_type      VARCHAR(32)  NOT NULL,
    kind          VARCHAR(32)  NOT NULL,
    account_id    VARCHAR(64)  NOT NULL DEFAULT '',
    quiet         VARCHAR(16)  NOT NULL,
    timezone      VARCHAR(64)  NOT NULL,
    content       TEXT         NOT NULL,
    status        VARCHAR(16)  NOT NULL,
    version       BIGINT       NOT NULL,
    created_by    VARCHAR(64)  NOT NULL DEFAULT '',
    created_at    BIGINT       NOT NULL,
    updated_at    BIGINT       NOT NULL,
    submitted_by  VARCHAR(64)  NOT NULL DEFAULT '',
    submitted_at  BIGINT       NULL,
    reviewed_by   VARCHAR(64)  NOT NULL DEFAULT '',
    reviewed_at   BIGINT       NULL,
    reject_reason VARCHAR(1000) NOT NULL DEFAULT ''
);
CREATE INDEX push_templates_account ON push_templates (account_id, status);

-- +goose Down
DROP TABLE push_templates;
DROP TABLE push_channel_accounts;
DROP TABLE push_api_keys;
DROP TABLE push_apps;
