-- Issue 10: the merge forecast with clusters and an explained order, how the post-merge
-- hook saw each merge, and `git ws-merge`'s integration attempts with their steps and test
-- runs. Columns are only added to existing tables; the seed's tables are untouched.

-- The merge order, explained (see model::ForecastStep).
ALTER TABLE ws_merge_order ADD COLUMN partners TEXT NOT NULL DEFAULT '[]';    -- JSON array of ids
ALTER TABLE ws_merge_order ADD COLUMN clusters TEXT NOT NULL DEFAULT '[]';    -- JSON array of cluster ids
ALTER TABLE ws_merge_order ADD COLUMN overlapping INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ws_merge_order ADD COLUMN change_size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ws_merge_order ADD COLUMN reason TEXT NOT NULL DEFAULT '';

-- Where workstreams may conflict (see model::ForecastCluster): stored instead of every pair.
CREATE TABLE ws_forecast_clusters (
    run_id TEXT NOT NULL REFERENCES consolidated_runs(run_id),
    cluster_id INTEGER NOT NULL,    -- 1, 2, … in order of path, then line
    path TEXT NOT NULL,
    kind TEXT NOT NULL,             -- lines | file | file/directory | directory rename
    first_line INTEGER,             -- for kind lines: 1-based base lines
    last_line INTEGER,
    workstreams TEXT NOT NULL,      -- JSON array of ids
    all_pairs INTEGER NOT NULL,     -- 1 = every pair of members was merged
    conflicting_pairs INTEGER NOT NULL,
    PRIMARY KEY (run_id, cluster_id)
);

-- How the post-merge hook recognised a landed branch: ancestor | tree | patch-id
-- (NULL for rows recorded before this column existed).
ALTER TABLE ws_merges ADD COLUMN detected_by TEXT;

-- One row per `git ws-merge` (dry runs are not recorded).
CREATE TABLE ws_integrations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES consolidated_runs(run_id),
    branch TEXT NOT NULL,           -- ws/<run-id>/integration or --into
    onto_rev TEXT NOT NULL,         -- what --onto said
    onto TEXT NOT NULL,             -- full SHA
    tip TEXT NOT NULL,              -- full SHA the branch was set to
    test_command TEXT,
    test_runs INTEGER NOT NULL,
    merged_count INTEGER NOT NULL,
    excluded_count INTEGER NOT NULL,
    fast_forwarded TEXT,            -- the branch --ff moved to tip
    integrated_at TEXT NOT NULL     -- RFC 3339 UTC
);
CREATE INDEX ws_integrations_run_id ON ws_integrations(run_id, id);

-- Each workstream's step: merged (in merge order) or excluded, with why.
CREATE TABLE ws_integration_steps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id INTEGER NOT NULL REFERENCES ws_integrations(id),
    position INTEGER NOT NULL,
    workstream_id TEXT NOT NULL,
    outcome TEXT NOT NULL,          -- merged | excluded
    tip TEXT,                       -- merged: the branch tip merged (full SHA)
    merge_commit TEXT,              -- merged: the integration's tip after this step
    reason TEXT,                    -- conflict | breaks-tests | missing-branch | not-completed
    paths TEXT NOT NULL,            -- JSON array
    detail TEXT NOT NULL,
    broke_with TEXT NOT NULL,       -- JSON array of ids
    output_tail TEXT,
    UNIQUE (integration_id, position)
);

-- Each run of the test command.
CREATE TABLE ws_integration_tests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id INTEGER NOT NULL REFERENCES ws_integrations(id),
    position INTEGER NOT NULL,
    commit_sha TEXT NOT NULL,
    workstreams TEXT NOT NULL,      -- JSON array of the ids merged into commit_sha
    passed INTEGER NOT NULL,
    exit_code INTEGER,
    duration_seconds REAL NOT NULL,
    ending TEXT,                    -- timeout, when it did not exit on its own
    log_path TEXT,
    UNIQUE (integration_id, position)
);
