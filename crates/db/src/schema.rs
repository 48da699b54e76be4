//! Diesel table definitions, written by hand to match `migrations/` (SQLite `INTEGER` is
//! 64-bit, so every integer column is `BigInt`; `TIMESTAMP` is `Timestamp`).

diesel::table! {
    consolidated_runs (run_id) {
        run_id -> Text,
        timestamp -> Text,
        total_workstreams -> Nullable<BigInt>,
        completed_count -> Nullable<BigInt>,
        failed_count -> Nullable<BigInt>,
        skipped_count -> Nullable<BigInt>,
        total_files_modified -> Nullable<BigInt>,
        total_commits -> Nullable<BigInt>,
        total_errors -> Nullable<BigInt>,
        total_warnings -> Nullable<BigInt>,
        execution_summary -> Nullable<Text>,
        recommendations -> Nullable<Text>,
        created_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    agent_results (id) {
        id -> BigInt,
        run_id -> Text,
        agent_id -> Text,
        workstream_id -> Text,
        status -> Text,
        start_time -> Nullable<Text>,
        end_time -> Nullable<Text>,
        duration_seconds -> Nullable<Double>,
        files_modified -> Nullable<Text>,
        commits_created -> Nullable<Text>,
        errors -> Nullable<Text>,
        warnings -> Nullable<Text>,
        test_results -> Nullable<Text>,
        metadata -> Nullable<Text>,
    }
}

diesel::table! {
    consolidated_errors (id) {
        id -> BigInt,
        run_id -> Text,
        error_type -> Nullable<Text>,
        error_message -> Nullable<Text>,
        workstream_id -> Nullable<Text>,
        agent_id -> Nullable<Text>,
        timestamp -> Nullable<Text>,
        stack_trace -> Nullable<Text>,
    }
}

diesel::table! {
    ws_runs (run_id) {
        run_id -> Text,
        state -> Text,
        started_at -> Text,
        finished_at -> Nullable<Text>,
        agents -> BigInt,
        base -> Text,
        base_rev -> Text,
        repo_root -> Text,
        rerun_of -> Nullable<Text>,
    }
}

diesel::table! {
    ws_result_files (id) {
        id -> BigInt,
        run_id -> Text,
        workstream_id -> Text,
        agent_id -> Text,
        path -> Text,
        old_path -> Nullable<Text>,
        change_kind -> Text,
        additions -> BigInt,
        deletions -> BigInt,
    }
}

diesel::table! {
    ws_commits (run_id, workstream_id, position) {
        run_id -> Text,
        workstream_id -> Text,
        sha -> Text,
        position -> BigInt,
    }
}

diesel::table! {
    ws_forecast_pairs (id) {
        id -> BigInt,
        run_id -> Text,
        ws_a -> Text,
        ws_b -> Text,
        clean -> BigInt,
        common_paths -> Text,
        conflict_paths -> Text,
        hunks -> Text,
    }
}

diesel::table! {
    ws_merge_order (run_id, position) {
        run_id -> Text,
        position -> BigInt,
        workstream_id -> Text,
        clean -> BigInt,
        conflict_paths -> Text,
        partners -> Text,
        clusters -> Text,
        overlapping -> BigInt,
        change_size -> BigInt,
        reason -> Text,
    }
}

diesel::table! {
    ws_merges (id) {
        id -> BigInt,
        run_id -> Text,
        workstream_id -> Text,
        branch -> Text,
        tip -> Text,
        merge_commit -> Text,
        merged_at -> Text,
        detected_by -> Nullable<Text>,
    }
}

// Issue 10 (migrations 2026-12-01-000010): forecast clusters and `git ws-merge`'s
// integrations.

diesel::table! {
    ws_forecast_clusters (run_id, cluster_id) {
        run_id -> Text,
        cluster_id -> BigInt,
        path -> Text,
        kind -> Text,
        first_line -> Nullable<BigInt>,
        last_line -> Nullable<BigInt>,
        workstreams -> Text,
        all_pairs -> BigInt,
        conflicting_pairs -> BigInt,
    }
}

diesel::table! {
    ws_integrations (id) {
        id -> BigInt,
        run_id -> Text,
        branch -> Text,
        onto_rev -> Text,
        onto -> Text,
        tip -> Text,
        test_command -> Nullable<Text>,
        test_runs -> BigInt,
        merged_count -> BigInt,
        excluded_count -> BigInt,
        fast_forwarded -> Nullable<Text>,
        integrated_at -> Text,
    }
}

diesel::table! {
    ws_integration_steps (id) {
        id -> BigInt,
        integration_id -> BigInt,
        position -> BigInt,
        workstream_id -> Text,
        outcome -> Text,
        tip -> Nullable<Text>,
        merge_commit -> Nullable<Text>,
        reason -> Nullable<Text>,
        paths -> Text,
        detail -> Text,
        broke_with -> Text,
        output_tail -> Nullable<Text>,
    }
}

diesel::table! {
    ws_integration_tests (id) {
        id -> BigInt,
        integration_id -> BigInt,
        position -> BigInt,
        commit_sha -> Text,
        workstreams -> Text,
        passed -> BigInt,
        exit_code -> Nullable<BigInt>,
        duration_seconds -> Double,
        ending -> Nullable<Text>,
        log_path -> Nullable<Text>,
    }
}

diesel::table! {
    ws_usage (run_id, workstream_id) {
        run_id -> Text,
        workstream_id -> Text,
        agent_id -> Text,
        agent -> Nullable<Text>,
        cost_usd -> Nullable<Double>,
        input_tokens -> Nullable<BigInt>,
        output_tokens -> Nullable<BigInt>,
        cached_input_tokens -> Nullable<BigInt>,
        turns -> Nullable<BigInt>,
        model -> Nullable<Text>,
        session_id -> Nullable<Text>,
        source -> Text,
    }
}

diesel::table! {
    ws_attempts (run_id, workstream_id, attempt) {
        run_id -> Text,
        workstream_id -> Text,
        attempt -> BigInt,
        agent_id -> Text,
        agent -> Nullable<Text>,
        started_at -> Nullable<Text>,
        duration_seconds -> Double,
        outcome -> Text,
        exit_code -> Nullable<BigInt>,
        retry_reason -> Nullable<Text>,
        backoff_seconds -> Nullable<Double>,
        cost_usd -> Nullable<Double>,
        input_tokens -> Nullable<BigInt>,
        output_tokens -> Nullable<BigInt>,
    }
}

// The shared queue (migration 2026-12-01-000020_queue).

diesel::table! {
    ws_queue_runs (run_id) {
        run_id -> Text,
        remote -> Text,
        base -> Text,
        settings -> Text,
        created_at -> Text,
        consolidator -> Nullable<Text>,
        consolidation_token -> BigInt,
        consolidation_expires -> Nullable<BigInt>,
        consolidated_at -> Nullable<Text>,
        consolidations -> BigInt,
    }
}

diesel::table! {
    ws_queue (run_id, workstream_id) {
        run_id -> Text,
        workstream_id -> Text,
        seq -> BigInt,
        file -> Text,
        definition -> Text,
        priority -> Double,
        expected_secs -> Nullable<Double>,
        blocked -> BigInt,
        state -> Text,
        attempt -> BigInt,
        worker -> Nullable<Text>,
        agent_id -> Nullable<Text>,
        lease_expires -> Nullable<BigInt>,
        status -> Nullable<Text>,
    }
}

diesel::table! {
    ws_queue_deps (run_id, workstream_id, depends_on) {
        run_id -> Text,
        workstream_id -> Text,
        depends_on -> Text,
    }
}

diesel::table! {
    ws_queue_attempts (run_id, workstream_id, attempt) {
        run_id -> Text,
        workstream_id -> Text,
        attempt -> BigInt,
        worker -> Text,
        agent_id -> Text,
        claimed_at -> Text,
        ended_at -> Nullable<Text>,
        outcome -> Nullable<Text>,
    }
}

diesel::table! {
    ws_queue_workers (run_id, worker) {
        run_id -> Text,
        worker -> Text,
        agents -> BigInt,
        joined_at -> Text,
        left_at -> Nullable<Text>,
    }
}

diesel::joinable!(ws_runs -> consolidated_runs (run_id));

diesel::allow_tables_to_appear_in_same_query!(
    consolidated_runs,
    agent_results,
    consolidated_errors,
    ws_runs,
    ws_result_files,
    ws_commits,
    ws_forecast_pairs,
    ws_merge_order,
    ws_merges,
    ws_usage,
    ws_attempts,
    ws_forecast_clusters,
    ws_integrations,
    ws_integration_steps,
    ws_integration_tests,
    ws_queue_runs,
    ws_queue,
    ws_queue_deps,
    ws_queue_attempts,
    ws_queue_workers,
);

diesel::table! {
    ws_review_actions (id) {
        id -> BigInt,
        run_id -> Text,
        workstream_id -> Nullable<Text>,
        action -> Text,
        who -> Text,
        at -> Text,
        detail -> Text,
    }
}

diesel::table! {
    ws_review_comments (id) {
        id -> BigInt,
        run_id -> Text,
        workstream_id -> Text,
        followup_id -> Text,
        path -> Text,
        line -> BigInt,
        body -> Text,
        who -> Text,
        at -> Text,
    }
}

diesel::table! {
    ws_review_followups (run_id, followup_id) {
        run_id -> Text,
        followup_id -> Text,
        workstream_id -> Text,
        start_branch -> Text,
        prompt -> Text,
        who -> Text,
        at -> Text,
        kind -> Text,
        attempt -> Nullable<BigInt>,
        max_attempts -> Nullable<BigInt>,
        reason -> Nullable<Text>,
        detail -> Nullable<Text>,
        integration_tip -> Nullable<Text>,
    }
}

diesel::table! {
    ws_fixup_settings (run_id) {
        run_id -> Text,
        max_attempts -> BigInt,
    }
}
