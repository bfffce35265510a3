-- Where each projection's change notifier stands: the event sequence up to
-- which every change has been published on <prefix>.changes.> (at least once).
-- Written after each page of notifications is acknowledged; read at start, so
-- the notifier resumes even when its last notification has aged out of the
-- changes stream.
CREATE TABLE change_notifier (
    projection  text PRIMARY KEY,
    last_seq    bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
