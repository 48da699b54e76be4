DROP INDEX ws_integration_tests_commit;
ALTER TABLE ws_integration_tests DROP COLUMN started_at;
ALTER TABLE ws_integration_steps DROP COLUMN at;
ALTER TABLE ws_integrations DROP COLUMN reused_tests;
ALTER TABLE ws_integrations DROP COLUMN made_by;
