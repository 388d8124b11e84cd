-- Crash-safe claims and bounded growth.
-- A claim writes its lease end into lease_until as well as into due_at / available_at:
-- a row is leased while the two are equal. A commit, delivery or retry moves due_at /
-- available_at and so ends the lease without touching lease_until. On PostgreSQL leases
-- are short and renewed while work goes on, so a dead node's claims pass to another when
-- they end; the marker lets a renewal extend only a lease still held.
ALTER TABLE indicators ADD COLUMN lease_until BIGINT;
ALTER TABLE outbox ADD COLUMN lease_until BIGINT;
-- A dead letter: okerr gave up on the notification at this time.
ALTER TABLE outbox ADD COLUMN dead_at BIGINT;
-- Purging finished notifications after their retention.
CREATE INDEX outbox_delivered ON outbox(delivered_at) WHERE delivered_at IS NOT NULL;
CREATE INDEX outbox_dead ON outbox(dead_at) WHERE dead_at IS NOT NULL;
