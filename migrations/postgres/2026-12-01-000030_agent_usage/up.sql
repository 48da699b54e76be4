-- The same tables and columns as migrations/sqlite (INTEGER there is BIGINT here, REAL is
-- DOUBLE PRECISION).
-- What coding agents spent and how many attempts each workstream took (issue 12). The same
-- numbers are in agent_results.metadata ("agent", "usage", "attempts"); these tables make them
-- queryable: SELECT agent, SUM(cost_usd) FROM ws_usage WHERE run_id = ? GROUP BY agent.

-- One row per workstream result that reported usage, all attempts together.
CREATE TABLE ws_usage (
    run_id TEXT NOT NULL REFERENCES consolidated_runs(run_id),
    workstream_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,         -- the slot: agent-1, …
    agent TEXT,                     -- the coding agent: claude | codex | aider | gemini | agent-cmd | command
    cost_usd DOUBLE PRECISION,                  -- NULL when the agent reported no cost
    input_tokens BIGINT,
    output_tokens BIGINT,
    cached_input_tokens BIGINT,
    turns BIGINT,
    model TEXT,
    session_id TEXT,
    source TEXT NOT NULL,           -- who reported it: a preset, metrics (the WS_METRICS file), or both
    PRIMARY KEY (run_id, workstream_id)
);
CREATE INDEX ws_usage_agent ON ws_usage(agent);

-- One row per attempt at a workstream's command (more than one when it was retried).
CREATE TABLE ws_attempts (
    run_id TEXT NOT NULL REFERENCES consolidated_runs(run_id),
    workstream_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,       -- 1, 2, …
    agent_id TEXT NOT NULL,
    agent TEXT,
    started_at TEXT,                -- RFC 3339 UTC
    duration_seconds DOUBLE PRECISION NOT NULL,
    outcome TEXT NOT NULL,          -- completed, or the error type that ended it
    exit_code BIGINT,
    retry_reason TEXT,              -- why it was retried; NULL for the last attempt
    backoff_seconds DOUBLE PRECISION,           -- the wait before the next attempt
    cost_usd DOUBLE PRECISION,
    input_tokens BIGINT,
    output_tokens BIGINT,
    PRIMARY KEY (run_id, workstream_id, attempt)
);
