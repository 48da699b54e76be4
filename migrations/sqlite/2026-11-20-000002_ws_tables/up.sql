-- git-ws's normalised tables beside the seed's, and the indexes its queries need.

CREATE TABLE ws_runs (
    run_id TEXT PRIMARY KEY NOT NULL REFERENCES consolidated_runs(run_id),
    state TEXT NOT NULL,            -- running | finished | interrupted
    started_at TEXT NOT NULL,       -- RFC 3339 UTC, microseconds, Z
    finished_at TEXT,
    agents INTEGER NOT NULL,
    base TEXT NOT NULL,             -- full SHA
    base_rev TEXT NOT NULL,         -- what the user passed as --base
    repo_root TEXT NOT NULL,
    rerun_of TEXT
);
CREATE INDEX ws_runs_state ON ws_runs(state);

-- One row per file per workstream per run (the diff base..branch).
CREATE TABLE ws_result_files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES consolidated_runs(run_id),
    workstream_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    path TEXT NOT NULL,
    old_path TEXT,
    change_kind TEXT NOT NULL,      -- added | modified | deleted | renamed
    additions INTEGER NOT NULL,
    deletions INTEGER NOT NULL
);
CREATE INDEX ws_result_files_run_id ON ws_result_files(run_id, workstream_id);
CREATE INDEX ws_result_files_path ON ws_result_files(path);

-- Commits base..branch, oldest first (position 0).
CREATE TABLE ws_commits (
    run_id TEXT NOT NULL REFERENCES consolidated_runs(run_id),
    workstream_id TEXT NOT NULL,
    sha TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (run_id, workstream_id, position)
);
CREATE INDEX ws_commits_sha ON ws_commits(sha);

-- The merge forecast: every pair of completed branches merged in memory.
CREATE TABLE ws_forecast_pairs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES consolidated_runs(run_id),
    ws_a TEXT NOT NULL,
    ws_b TEXT NOT NULL,
    clean INTEGER NOT NULL,         -- 1 = merges cleanly
    common_paths TEXT NOT NULL,     -- JSON array of paths
    conflict_paths TEXT NOT NULL,   -- JSON array of paths
    hunks TEXT NOT NULL,            -- JSON array of {"path","text"}
    UNIQUE (run_id, ws_a, ws_b)
);

-- The suggested merge order.
CREATE TABLE ws_merge_order (
    run_id TEXT NOT NULL REFERENCES consolidated_runs(run_id),
    position INTEGER NOT NULL,
    workstream_id TEXT NOT NULL,
    clean INTEGER NOT NULL,
    conflict_paths TEXT NOT NULL,   -- JSON array of paths
    PRIMARY KEY (run_id, position)
);

-- Branches the post-merge hook found merged into HEAD.
CREATE TABLE ws_merges (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES consolidated_runs(run_id),
    workstream_id TEXT NOT NULL,
    branch TEXT NOT NULL,
    tip TEXT NOT NULL,              -- branch tip (full SHA) when found merged
    merge_commit TEXT NOT NULL,     -- HEAD (full SHA) when found merged
    merged_at TEXT NOT NULL,        -- RFC 3339 UTC
    UNIQUE (run_id, workstream_id)
);

CREATE INDEX agent_results_run_id ON agent_results(run_id, workstream_id);
CREATE INDEX consolidated_errors_run_id ON consolidated_errors(run_id, workstream_id);
CREATE INDEX consolidated_runs_created_at ON consolidated_runs(created_at, timestamp);
