DROP TABLE ws_attempts;
DROP INDEX ws_usage_agent;
DROP TABLE ws_usage;
