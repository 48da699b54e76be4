DROP TABLE consolidated_errors;
DROP TABLE agent_results;
DROP TABLE consolidated_runs;
