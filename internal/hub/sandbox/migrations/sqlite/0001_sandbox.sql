-- The sandbox's downstream state: the seeded network's mutable parts
-- (stations, sort plan versions), the upstream's waybills with their tracks
-- and administrative flags, linehaul pre-alerts, and two change logs whose
-- revisions the Watch streams resume from. Times are Unix milliseconds so
-- every engine stores and compares them the same way.
-- +goose Up
CREATE TABLE sandbox_stations (
    code            VARCHAR(32)  NOT NULL PRIMARY KEY,
    name            VARCHAR(191) NOT NULL,
    kind            VARCHAR(32)  NOT NULL,
    market          VARCHAR(8)   NOT NULL,
    city            VARCHAR(191) NOT NULL,
    time_zone       VARCHAR(64)  NOT NULL,
    active          INTEGER      NOT NULL DEFAULT 1,
    exception_chute VARCHAR(32)  NOT NULL,
    updated_at      BIGINT       NOT NULL
);

CREATE TABLE sandbox_sort_plans (
    station         VARCHAR(32) NOT NULL,
    version         BIGINT      NOT NULL,
    exception_chute VARCHAR(32) NOT NULL,
    rules           TEXT          NOT NULL,
    published_at    BIGINT      NOT NULL,
    PRIMARY KEY (station, version)
);

CREATE TABLE sandbox_waybills (
    waybill_no          VARCHAR(32)  NOT NULL PRIMARY KEY,
    market              VARCHAR(8)   NOT NULL,
    origin_station      VARCHAR(32)  NOT NULL,
    destination_station VARCHAR(32)  NOT NULL,
    waybill_type        VARCHAR(32)  NOT NULL,
    service             VARCHAR(32)  NOT NULL,
    weight_grams        BIGINT       NOT NULL,
    cod_amount          BIGINT       NOT NULL,
    currency            VARCHAR(8)   NOT NULL,
    receiver_name       VARCHAR(191) NOT NULL,
    receiver_phone      VARCHAR(64)  NOT NULL,
    receiver_address    TEXT           NOT NULL,
    delivery_status     VARCHAR(32)  NOT NULL,
    status_reason       VARCHAR(191) NOT NULL DEFAULT '',
    billing_block       VARCHAR(191) NOT NULL DEFAULT '',
    created_at          BIGINT       NOT NULL,
    updated_at          BIGINT       NOT NULL
);

CREATE TABLE sandbox_track (
    waybill_no  VARCHAR(32)  NOT NULL,
    seq         BIGINT       NOT NULL,
    event_id    VARCHAR(191) NOT NULL,
    event_code  VARCHAR(32)  NOT NULL,
    station     VARCHAR(32)  NOT NULL,
    event_time  BIGINT       NOT NULL,
    operator    VARCHAR(191) NOT NULL,
    reason_code VARCHAR(191) NOT NULL,
    description TEXT           NOT NULL,
    recorded_at BIGINT       NOT NULL,
    PRIMARY KEY (waybill_no, seq),
    UNIQUE (event_id)
);

CREATE TABLE sandbox_waybill_changes (
    revision   INTEGER PRIMARY KEY AUTOINCREMENT,
    waybill_no VARCHAR(32) NOT NULL,
    kind       VARCHAR(32) NOT NULL,
    changed_at BIGINT      NOT NULL
);

CREATE TABLE sandbox_basic_changes (
    revision          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind              VARCHAR(32) NOT NULL,
    station           VARCHAR(32) NOT NULL,
    sort_plan_version BIGINT      NOT NULL,
    changed_at        BIGINT      NOT NULL
);

CREATE TABLE sandbox_pre_alerts (
    pre_alert_id        VARCHAR(64)  NOT NULL PRIMARY KEY,
    request_id          VARCHAR(191) NOT NULL,
    trip_id             VARCHAR(96)  NOT NULL,
    origin_station      VARCHAR(32)  NOT NULL,
    destination_station VARCHAR(32)  NOT NULL,
    seal_number         VARCHAR(64)  NOT NULL,
    containers          TEXT           NOT NULL,
    created_at          BIGINT       NOT NULL,
    UNIQUE (request_id)
);

CREATE INDEX sandbox_pre_alerts_trip ON sandbox_pre_alerts (trip_id);

-- +goose Down
DROP TABLE sandbox_pre_alerts;
DROP TABLE sandbox_basic_changes;
DROP TABLE sandbox_waybill_changes;
DROP TABLE sandbox_track;
DROP TABLE sandbox_waybills;
DROP TABLE sandbox_sort_plans;
DROP TABLE sandbox_stations;
