-- Test-only copy of the hub's outbox table (the hub's own migration owns it
-- in production). Times are Unix milliseconds.
-- +goose Up
CREATE TABLE hub_outbox (
    id           BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    waybill      VARCHAR(64) NOT NULL,
    payload      TEXT        NOT NULL,
    created_at   BIGINT      NOT NULL,
    published_at BIGINT      NULL,
    INDEX hub_outbox_published (published_at, id)
);

-- +goose Down
DROP TABLE hub_outbox;
