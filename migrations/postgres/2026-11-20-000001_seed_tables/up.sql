-- The seed document's three tables, column for column, so its SQL queries run verbatim in
-- psql. Types are SQLite's, spelt the PostgreSQL way: INTEGER (64-bit in SQLite) is BIGINT,
-- REAL is DOUBLE PRECISION, INTEGER PRIMARY KEY AUTOINCREMENT is BIGSERIAL PRIMARY KEY.

CREATE TABLE consolidated_runs (
    run_id TEXT PRIMARY KEY,
    timestamp TEXT NOT NULL,
    total_workstreams BIGINT,
    completed_count BIGINT,
    failed_count BIGINT,
    skipped_count BIGINT,
    total_files_modified BIGINT,
    total_commits BIGINT,
    total_errors BIGINT,
    total_warnings BIGINT,
    execution_summary TEXT,  -- JSON
    recommendations TEXT,     -- JSON array
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP  -- UTC: git-ws sets TimeZone = UTC
);

CREATE TABLE agent_results (
    id BIGSERIAL PRIMARY KEY,
    run_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    workstream_id TEXT NOT NULL,
    status TEXT NOT NULL,
    start_time TEXT,
    end_time TEXT,
    duration_seconds DOUBLE PRECISION,
    files_modified TEXT,      -- JSON array
    commits_created TEXT,     -- JSON array
    errors TEXT,              -- JSON array
    warnings TEXT,            -- JSON array
    test_results TEXT,        -- JSON object
    metadata TEXT,            -- JSON object
    FOREIGN KEY (run_id) REFERENCES consolidated_runs(run_id)
);

CREATE TABLE consolidated_errors (
    id BIGSERIAL PRIMARY KEY,
    run_id TEXT NOT NULL,
    error_type TEXT,
    error_message TEXT,
    workstream_id TEXT,
    agent_id TEXT,
    timestamp TEXT,
    stack_trace TEXT,
    FOREIGN KEY (run_id) REFERENCES consolidated_runs(run_id)
);
