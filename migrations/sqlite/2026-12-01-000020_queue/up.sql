-- The shared queue of a run several machines work on (`git ws-run --remote`, `--join`).
-- Times the workers compare (leases) are milliseconds since the epoch on the database's own
-- clock, so the machines' clocks never matter.

-- One row per shared run: where its branches go, its settings, and the one consolidation.
CREATE TABLE ws_queue_runs (
    run_id TEXT PRIMARY KEY NOT NULL REFERENCES consolidated_runs(run_id),
    remote TEXT NOT NULL,                 -- the remote's URL, as the coordinator knew it
    base TEXT NOT NULL,                   -- full SHA, pushed to refs/ws/<run>/base
    settings TEXT NOT NULL,               -- JSON: timeout_secs, fail_fast, lease_ms
    created_at TEXT NOT NULL,             -- RFC 3339 UTC
    consolidator TEXT,                    -- the worker consolidating (or that did)
    consolidation_token INTEGER NOT NULL DEFAULT 0,  -- bumped at every take-over
    consolidation_expires INTEGER,        -- its lease (ms since the epoch)
    consolidated_at TEXT,                 -- set once, by the one consolidation
    consolidations INTEGER NOT NULL DEFAULT 0
);

-- One row per workstream of a shared run, with its definition as the coordinator read it.
CREATE TABLE ws_queue (
    run_id TEXT NOT NULL REFERENCES consolidated_runs(run_id),
    workstream_id TEXT NOT NULL,
    seq INTEGER NOT NULL,                 -- order of the files (ties of priority)
    file TEXT NOT NULL,
    definition TEXT NOT NULL,             -- the workstream file's JSON
    priority REAL NOT NULL,               -- expected critical path, seconds (history)
    expected_secs REAL,
    blocked INTEGER NOT NULL,             -- dependencies not completed yet
    state TEXT NOT NULL,                  -- queued | claimed | done
    attempt INTEGER NOT NULL DEFAULT 0,   -- the fencing token: bumped by every claim
    worker TEXT,
    agent_id TEXT,
    lease_expires INTEGER,                -- ms since the epoch
    status TEXT,                          -- when done: completed | failed | skipped
    PRIMARY KEY (run_id, workstream_id)
);
CREATE INDEX ws_queue_ready ON ws_queue(run_id, priority DESC, seq)
    WHERE state = 'queued' AND blocked = 0;
CREATE INDEX ws_queue_leases ON ws_queue(run_id, lease_expires) WHERE state = 'claimed';

-- The dependency edges of a shared run.
CREATE TABLE ws_queue_deps (
    run_id TEXT NOT NULL REFERENCES consolidated_runs(run_id),
    workstream_id TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    PRIMARY KEY (run_id, workstream_id, depends_on)
);
CREATE INDEX ws_queue_deps_on ON ws_queue_deps(run_id, depends_on);

-- Every claim and how it ended.
CREATE TABLE ws_queue_attempts (
    run_id TEXT NOT NULL REFERENCES consolidated_runs(run_id),
    workstream_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    worker TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    ended_at TEXT,
    outcome TEXT,                         -- completed | failed | expired | released | rejected
    PRIMARY KEY (run_id, workstream_id, attempt)
);

-- The workers (processes) that worked on a shared run.
CREATE TABLE ws_queue_workers (
    run_id TEXT NOT NULL REFERENCES consolidated_runs(run_id),
    worker TEXT NOT NULL,
    agents INTEGER NOT NULL,
    joined_at TEXT NOT NULL,
    left_at TEXT,
    PRIMARY KEY (run_id, worker)
);
