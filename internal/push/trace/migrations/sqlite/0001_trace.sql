-- The minimal trace store: one row per anchor, event_id unique so a
-- redelivered anchor is stored once. at is Unix microseconds.
-- +goose Up
CREATE TABLE trace_anchors (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    VARCHAR(191) NOT NULL UNIQUE,
    message_id  VARCHAR(64)  NOT NULL,
    business_id VARCHAR(32)  NOT NULL,
    receiver    VARCHAR(191) NOT NULL,
    state       VARCHAR(32)  NOT NULL,
    at          BIGINT       NOT NULL,
    detail      VARCHAR(1000) NOT NULL DEFAULT ''
);
CREATE INDEX trace_anchors_message ON trace_anchors (message_id, at);
CREATE INDEX trace_anchors_receiver ON trace_anchors (receiver, at);
CREATE INDEX trace_anchors_business ON trace_anchors (business_id, state);

-- +goose Down
DROP TABLE trace_anchors;
