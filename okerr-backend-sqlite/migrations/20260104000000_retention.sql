-- Crash-safe claims and bounded growth.
-- A claim writes its lease end into lease_until as well as into due_at / available_at:
-- a row is leased while the two are equal. A commit, delivery or retry moves due_at /
-- available_at and so ends the lease without touching lease_until; release_claims (at
-- start, SQLite being one node) ends the leases still held and clears the markers.
ALTER TABLE indicators ADD COLUMN lease_until INTEGER;
CREATE INDEX indicators_leased ON indicators(lease_until) WHERE lease_until IS NOT NULL;
ALTER TABLE outbox ADD COLUMN lease_until INTEGER;
CREATE INDEX outbox_leased ON outbox(lease_until) WHERE lease_until IS NOT NULL;
-- A dead letter: okerr gave up on the notification at this time.
ALTER TABLE outbox ADD COLUMN dead_at INTEGER;
-- Purging finished notifications after their retention.
CREATE INDEX outbox_delivered ON outbox(delivered_at) WHERE delivered_at IS NOT NULL;
CREATE INDEX outbox_dead ON outbox(dead_at) WHERE dead_at IS NOT NULL;
