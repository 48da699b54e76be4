-- Issue 20: fix-ups (`--fix-up N`). A fix-up is a follow-up workstream like a review's, run
-- by `git ws-run --resume` the same way, so it is stored in the same table with its kind;
-- existing rows are review follow-ups. The review-only columns (who) hold "git-ws" for a
-- fix-up; start_branch holds the ref its start commit is kept under.
ALTER TABLE ws_review_followups ADD COLUMN kind TEXT NOT NULL DEFAULT 'review';  -- review | fix-up
ALTER TABLE ws_review_followups ADD COLUMN attempt INTEGER;          -- fix-up: K of <id>~fixK
ALTER TABLE ws_review_followups ADD COLUMN max_attempts INTEGER;     -- fix-up: --fix-up N then
ALTER TABLE ws_review_followups ADD COLUMN reason TEXT;           -- fix-up: conflict | breaks-tests
ALTER TABLE ws_review_followups ADD COLUMN detail TEXT;           -- fix-up: one sentence
ALTER TABLE ws_review_followups ADD COLUMN integration_tip TEXT;  -- fix-up: the tip it starts from

-- The --fix-up N a run was started with (git ws-run --fix-up), for --resume and --integrate.
CREATE TABLE ws_fixup_settings (
    run_id TEXT PRIMARY KEY REFERENCES consolidated_runs(run_id),
    max_attempts INTEGER NOT NULL
);
