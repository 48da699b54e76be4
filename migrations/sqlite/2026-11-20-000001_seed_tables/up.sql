-- The seed document's three tables, column for column, so its SQL queries run verbatim.
-- IF NOT EXISTS adopts a database written by the seed's Python prototype.

CREATE TABLE IF NOT EXISTS consolidated_runs (
    run_id TEXT PRIMARY KEY,
    timestamp TEXT NOT NULL,
    total_workstreams INTEGER,
    completed_count INTEGER,
    failed_count INTEGER,
    skipped_count INTEGER,
    total_files_modified INTEGER,
    total_commits INTEGER,
    total_errors INTEGER,
    total_warnings INTEGER,
    execution_summary TEXT,  -- JSON
    recommendations TEXT,     -- JSON array
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE IF NOT EXISTS agent_results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    workstream_id TEXT NOT NULL,
    status TEXT NOT NULL,
    start_time TEXT,
    end_time TEXT,
    duration_seconds REAL,
    files_modified TEXT,      -- JSON array
    commits_created TEXT,     -- JSON array
    errors TEXT,              -- JSON array
    warnings TEXT,            -- JSON array
    test_results TEXT,        -- JSON object
    metadata TEXT,            -- JSON object
    FOREIGN KEY (run_id) REFERENCES consolidated_runs(run_id)
);

CREATE TABLE IF NOT EXISTS consolidated_errors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    error_type TEXT,
    error_message TEXT,
    workstream_id TEXT,
    agent_id TEXT,
    timestamp TEXT,
    stack_trace TEXT,
    FOREIGN KEY (run_id) REFERENCES consolidated_runs(run_id)
);
