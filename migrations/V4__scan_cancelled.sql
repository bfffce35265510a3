-- Scans stopped on request (their task was cancelled) are recorded as such.
ALTER TABLE scan DROP CONSTRAINT scan_state_check;
ALTER TABLE scan ADD CONSTRAINT scan_state_check
    CHECK (state IN ('running', 'completed', 'failed', 'cancelled'));
