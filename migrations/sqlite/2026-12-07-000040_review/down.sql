DROP TABLE ws_review_followups;
DROP TABLE ws_review_comments;
DROP INDEX ws_review_actions_run;
DROP TABLE ws_review_actions;
