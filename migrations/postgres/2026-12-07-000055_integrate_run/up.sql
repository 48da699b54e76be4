-- Issue 20: `git ws-run --integrate` records its integration as it goes. Who made an
-- integration, how many verdicts it reused, and when each step and test run happened.
-- Columns are only added; rows recorded before have them NULL (or 0).

ALTER TABLE ws_integrations ADD COLUMN made_by TEXT;                        -- ws-run; NULL: git ws-merge
ALTER TABLE ws_integrations ADD COLUMN reused_tests BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ws_integration_steps ADD COLUMN at TEXT;                        -- RFC 3339 UTC: merged or left out
ALTER TABLE ws_integration_tests ADD COLUMN started_at TEXT;                -- RFC 3339 UTC
CREATE INDEX ws_integration_tests_commit ON ws_integration_tests(commit_sha);
