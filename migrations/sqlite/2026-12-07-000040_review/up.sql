-- Issue 21: what reviewers did from `git ws-review`. Only new tables; nothing else changes.

-- Every review action, with who and when: leave-out | put-back | comments | dry-run.
CREATE TABLE ws_review_actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES consolidated_runs(run_id),
    workstream_id TEXT,             -- NULL for an action on the whole run (dry-run)
    action TEXT NOT NULL,
    who TEXT NOT NULL,              -- $USER, else git's user.name
    at TEXT NOT NULL,               -- RFC 3339 UTC
    detail TEXT NOT NULL            -- one sentence
);
CREATE INDEX ws_review_actions_run ON ws_review_actions(run_id);

-- Review comments, each on a line of a file of a workstream's branch, sent in one follow-up.
CREATE TABLE ws_review_comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES consolidated_runs(run_id),
    workstream_id TEXT NOT NULL,
    followup_id TEXT NOT NULL,      -- <workstream_id>~reviewN
    path TEXT NOT NULL,
    line INTEGER NOT NULL,          -- 1-based, on the branch
    body TEXT NOT NULL,
    who TEXT NOT NULL,
    at TEXT NOT NULL
);

-- Follow-up workstreams a review created: `git ws-run --resume RUN` runs the ones without a
-- result, each on a branch started from `start_branch`.
CREATE TABLE ws_review_followups (
    run_id TEXT NOT NULL REFERENCES consolidated_runs(run_id),
    followup_id TEXT NOT NULL,      -- <workstream_id>~reviewN
    workstream_id TEXT NOT NULL,    -- the workstream reviewed
    start_branch TEXT NOT NULL,     -- its branch: where the follow-up starts
    prompt TEXT NOT NULL,
    who TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (run_id, followup_id)
);
