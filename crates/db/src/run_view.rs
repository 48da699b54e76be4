//! A run's [`RunView`] built from what the database recorded: the one place the rows of a
//! run become the view every output renders.

use super::{ConsolidationDatabase, DbError, RunState};
use ws_core::consolidate;
use ws_core::view::{Input, RunView};

impl ConsolidationDatabase {
    /// Everything recorded about one run, consolidated afresh from its rows (so an
    /// unfinished run shows what it has so far), with its merges, state, run-level warnings
    /// and latest integration.
    pub fn run_view(&mut self, run_id: &str) -> Result<RunView, DbError> {
        let info = self.run_info(run_id)?.ok_or_else(|| DbError::NoSuchRun {
            run: run_id.to_string(),
            db: None,
            closest: Vec::new(),
        })?;
        let results = self.results(run_id)?;
        let forecast = self.forecast(run_id)?;
        let merged = self.merged(run_id)?;
        let summary = self.get_run_summary(run_id)?;
        let state = summary.as_ref().map_or(RunState::Running, |s| s.state);
        let mut consolidated = consolidate::consolidate(&info, &results, forecast);
        // The run's own warnings were kept with its totals.
        consolidated.notes = summary
            .and_then(|s| s.execution_summary.get("notes").cloned())
            .and_then(|n| serde_json::from_value(n).ok())
            .unwrap_or_default();
        let mut view = RunView::build(Input {
            consolidated: &consolidated,
            results: &results,
            merges: Some(&merged),
            state: state.as_str(),
        });
        view.set_integration(self.latest_integration(run_id)?);
        let statuses = results
            .iter()
            .map(|r| (r.workstream_id.clone(), r.status))
            .collect();
        view.fixups =
            ws_core::fixup::chains(&self.fixups(run_id)?, &statuses, view.integration.as_ref());
        Ok(view)
    }
}
