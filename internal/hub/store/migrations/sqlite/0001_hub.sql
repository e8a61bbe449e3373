-- +goose Up
CREATE TABLE hub_parcels (
  waybill      VARCHAR(64) PRIMARY KEY,
  status       VARCHAR(32) NOT NULL,
  station      VARCHAR(32) NOT NULL,
  destination  VARCHAR(32) NOT NULL DEFAULT '',
  waybill_type VARCHAR(32) NOT NULL DEFAULT '',
  service      VARCHAR(32) NOT NULL DEFAULT '',
  next_hop     VARCHAR(32) NOT NULL DEFAULT '',
  chute        VARCHAR(32) NOT NULL DEFAULT '',
  container_id VARCHAR(64) NOT NULL DEFAULT '',
  updated_at   BIGINT NOT NULL
);
CREATE INDEX hub_parcels_container ON hub_parcels (container_id);

CREATE TABLE hub_work_orders (
  id              VARCHAR(64) PRIMARY KEY,
  idempotency_key VARCHAR(191) NOT NULL UNIQUE,
  kind            VARCHAR(32) NOT NULL,
  waybill         VARCHAR(64) NOT NULL DEFAULT '',
  container_id    VARCHAR(64) NOT NULL DEFAULT '',
  station         VARCHAR(32) NOT NULL,
  operator        VARCHAR(64) NOT NULL DEFAULT '',
  device          VARCHAR(64) NOT NULL DEFAULT '',
  at              BIGINT NOT NULL,
  result          VARCHAR(16) NOT NULL,
  reason          VARCHAR(64) NOT NULL DEFAULT '',
  message         TEXT NOT NULL,
  response        TEXT NOT NULL
);
CREATE INDEX hub_work_orders_waybill ON hub_work_orders (waybill, at);
CREATE INDEX hub_work_orders_container ON hub_work_orders (container_id, at);

CREATE TABLE hub_containers (
  id          VARCHAR(64) PRIMARY KEY,
  kind        VARCHAR(16) NOT NULL,
  station     VARCHAR(32) NOT NULL,
  destination VARCHAR(32) NOT NULL,
  parent_id   VARCHAR(64) NOT NULL DEFAULT '',
  state       VARCHAR(16) NOT NULL,
  seal_number VARCHAR(64) NOT NULL DEFAULT '',
  sealed_at   BIGINT NULL,
  handover_id VARCHAR(64) NOT NULL DEFAULT '',
  created_at  BIGINT NOT NULL,
  updated_at  BIGINT NOT NULL
);
CREATE INDEX hub_containers_parent ON hub_containers (parent_id);

CREATE TABLE hub_container_items (
  container_id VARCHAR(64) NOT NULL,
  item_kind    VARCHAR(16) NOT NULL,
  item_id      VARCHAR(64) NOT NULL,
  added_at     BIGINT NOT NULL,
  PRIMARY KEY (container_id, item_kind, item_id)
);

CREATE TABLE hub_handovers (
  id           VARCHAR(64) PRIMARY KEY,
  kind         VARCHAR(16) NOT NULL,
  station      VARCHAR(32) NOT NULL,
  trip_id      VARCHAR(64) NOT NULL DEFAULT '',
  seal_number  VARCHAR(64) NOT NULL DEFAULT '',
  counterparty VARCHAR(128) NOT NULL DEFAULT '',
  pre_alert_id VARCHAR(64) NOT NULL DEFAULT '',
  operator     VARCHAR(64) NOT NULL DEFAULT '',
  device       VARCHAR(64) NOT NULL DEFAULT '',
  created_at   BIGINT NOT NULL
);

CREATE TABLE hub_manifest_lines (
  handover_id VARCHAR(64) NOT NULL,
  line_no     INTEGER NOT NULL,
  item_kind   VARCHAR(16) NOT NULL,
  item_id     VARCHAR(64) NOT NULL,
  PRIMARY KEY (handover_id, line_no)
);

CREATE TABLE hub_parcel_history (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  waybill       VARCHAR(64) NOT NULL,
  work_order_id VARCHAR(64) NOT NULL,
  kind          VARCHAR(32) NOT NULL,
  station       VARCHAR(32) NOT NULL,
  at            BIGINT NOT NULL,
  operator      VARCHAR(64) NOT NULL DEFAULT '',
  device        VARCHAR(64) NOT NULL DEFAULT '',
  result        VARCHAR(16) NOT NULL,
  reason        VARCHAR(64) NOT NULL DEFAULT '',
  container_id  VARCHAR(64) NOT NULL DEFAULT ''
);
CREATE INDEX hub_parcel_history_waybill ON hub_parcel_history (waybill, id);

CREATE TABLE hub_outbox (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  waybill      VARCHAR(64) NOT NULL,
  payload      TEXT NOT NULL,
  created_at   BIGINT NOT NULL,
  published_at BIGINT NULL
);
CREATE INDEX hub_outbox_unpublished ON hub_outbox (published_at, id);

-- +goose Down
DROP TABLE hub_outbox;
DROP TABLE hub_parcel_history;
DROP TABLE hub_manifest_lines;
DROP TABLE hub_handovers;
DROP TABLE hub_container_items;
DROP TABLE hub_containers;
DROP TABLE hub_work_orders;
DROP TABLE hub_parcels;
