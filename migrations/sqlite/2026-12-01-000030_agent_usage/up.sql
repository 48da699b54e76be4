-- What coding agents spent and how many attempts each workstream took (issue 12). The same
-- numbers are in agent_results.metadata ("agent", "usage", "attempts"); these tables make them
-- queryable: SELECT agent, SUM(cost_usd) FROM ws_usage WHERE run_id = ? GROUP BY agent.

-- One row per workstream result that reported usage, all attempts together.
CREATE TABLE ws_usage (
    run_id TEXT NOT NULL REFERENCES consolidated_runs(run_id),
    workstream_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,         -- the slot: agent-1, …
    agent TEXT,                     -- the coding agent: claude | codex | aider | gemini | agent-cmd | command
    cost_usd REAL,                  -- NULL when the agent reported no cost
    input_tokens INTEGER,
    output_tokens INTEGER,
    cached_input_tokens INTEGER,
    turns INTEGER,
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
    attempt INTEGER NOT NULL,       -- 1, 2, …
    agent_id TEXT NOT NULL,
    agent TEXT,
    started_at TEXT,                -- RFC 3339 UTC
    duration_seconds REAL NOT NULL,
    outcome TEXT NOT NULL,          -- completed, or the error type that ended it
    exit_code INTEGER,
    retry_reason TEXT,              -- why it was retried; NULL for the last attempt
    backoff_seconds REAL,           -- the wait before the next attempt
    cost_usd REAL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    PRIMARY KEY (run_id, workstream_id, attempt)
);
