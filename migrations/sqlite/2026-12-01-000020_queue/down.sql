DROP TABLE ws_queue_workers;
DROP TABLE ws_queue_attempts;
DROP TABLE ws_queue_deps;
DROP TABLE ws_queue;
DROP TABLE ws_queue_runs;
