-- In-app inbox messages. id orders a receiver's messages and is the SSE
-- event id; (receiver, message_id) is unique so a redelivered send is a
-- no-op. Times are Unix microseconds.
-- +goose Up
CREATE TABLE inbox_messages (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    receiver    VARCHAR(191) NOT NULL,
    message_id  VARCHAR(64)  NOT NULL,
    business_id VARCHAR(32)  NOT NULL DEFAULT '',
    template_id BIGINT       NOT NULL DEFAULT 0,
    subject     TEXT         NOT NULL,
    text        LONGTEXT     NOT NULL,
    read_at     BIGINT       NULL,
    created_at  BIGINT       NOT NULL,
    UNIQUE KEY inbox_messages_receiver_message (receiver, message_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX inbox_messages_receiver ON inbox_messages (receiver, id);
CREATE INDEX inbox_messages_created ON inbox_messages (created_at);

-- +goose Down
DROP TABLE inbox_messages;
