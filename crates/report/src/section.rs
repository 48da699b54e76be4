//! The sections of a run report (its H2s), which every renderer can show alone.

/// A section of the report (an H2), usable on its own by `git ws-report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    /// Executive summary: totals, rates, times, speed-up, base, agents.
    Summary,
    /// Per-agent breakdown and each agent's workstreams.
    Agents,
    /// One row per workstream.
    Workstreams,
    /// Error counts by type, each error with its output tail, warnings.
    Errors,
    /// Files modified, with the workstreams that touched each and overlaps flagged.
    Files,
    /// Every commit created.
    Commits,
    /// Test totals and per-workstream test results.
    Tests,
    /// Merge forecast: clusters, conflicts with hunks, clean overlaps, the explained merge
    /// order.
    Forecast,
    /// What `git ws-merge` merged onto the integration branch and what it left out.
    Integration,
    /// The recommendations.
    Recommendations,
    /// Mermaid gantt chart and timeline table.
    Timeline,
}

impl Section {
    /// Every section, in report order.
    pub const ALL: [Section; 11] = [
        Section::Summary,
        Section::Agents,
        Section::Workstreams,
        Section::Errors,
        Section::Files,
        Section::Commits,
        Section::Tests,
        Section::Forecast,
        Section::Integration,
        Section::Recommendations,
        Section::Timeline,
    ];

    /// The section's H2 heading text.
    pub fn title(self) -> &'static str {
        match self {
            Section::Summary => "Executive summary",
            Section::Agents => "Per-agent breakdown",
            Section::Workstreams => "Workstreams",
            Section::Errors => "Error analysis",
            Section::Files => "Files modified",
            Section::Commits => "Commits",
            Section::Tests => "Test results",
            Section::Forecast => "Merge forecast",
            Section::Integration => "Integration",
            Section::Recommendations => "Recommendations",
            Section::Timeline => "Execution timeline",
        }
    }
}
