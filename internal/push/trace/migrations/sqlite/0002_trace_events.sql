-- The detail store: one row per event, identified by (message_id, event_id)
-- (an event id is unique within its message), so a redelivered anchor is
-- stored once and the message lookup needs no index of its own. at is Unix
-- microseconds; id is the order of arrival. The receiver index serves the
-- receiver query, the business index the template counts, the at index the
-- pruning by age. The table of 0001 is copied over.
-- +goose Up
CREATE TABLE trace_events (
    id          INTEGER PRIMARY KEY,
    event_id    VARCHAR(191)  NOT NULL,
    message_id  VARCHAR(64)   NOT NULL,
    business_id VARCHAR(32)   NOT NULL,
    receiver    VARCHAR(191)  NOT NULL,
    state       VARCHAR(32)   NOT NULL,
    at          BIGINT        NOT NULL,
    detail      VARCHAR(1000) NOT NULL DEFAULT ''
);
INSERT INTO trace_events (event_id, message_id, business_id, receiver, state, at, detail)
    SELECT event_id, message_id, business_id, receiver, state, at, detail FROM trace_anchors ORDER BY id;
DROP TABLE trace_anchors;
CREATE UNIQUE INDEX trace_events_message ON trace_events (message_id, event_id);
CREATE INDEX trace_events_receiver ON trace_events (receiver, at);
CREATE INDEX trace_events_business ON trace_events (business_id, state);
CREATE INDEX trace_events_at ON trace_events (at);

-- +goose Down
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
INSERT INTO trace_anchors (event_id, message_id, business_id, receiver, state, at, detail)
    SELECT event_id, message_id, business_id, receiver, state, at, detail FROM trace_events ORDER BY id;
DROP TABLE trace_events;
CREATE INDEX trace_anchors_message ON trace_anchors (message_id, at);
CREATE INDEX trace_anchors_receiver ON trace_anchors (receiver, at);
CREATE INDEX trace_anchors_business ON trace_anchors (business_id, state);
