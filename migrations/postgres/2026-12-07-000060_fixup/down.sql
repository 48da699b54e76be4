DROP TABLE ws_fixup_settings;
ALTER TABLE ws_review_followups DROP COLUMN integration_tip;
ALTER TABLE ws_review_followups DROP COLUMN detail;
ALTER TABLE ws_review_followups DROP COLUMN reason;
ALTER TABLE ws_review_followups DROP COLUMN max_attempts;
ALTER TABLE ws_review_followups DROP COLUMN attempt;
ALTER TABLE ws_review_followups DROP COLUMN kind;
