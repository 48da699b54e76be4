//! Recording: the run's database connection lives on a thread of its own ([`Db`]), which
//! every async part of a run calls without blocking the runtime; and results reach it as a
//! consumer of the run's events ([`Recorder`]), beside the progress display, instead of the
//! dispatch loop writing them itself. A connection that fails is checked and, if it is gone
//! (a PostgreSQL server restarted, the network cut), opened again on the next call.

use super::events::{Event, Observer};
use crate::db::{ConsolidationDatabase, DbError, DbLocation};
use crate::model::WorkstreamResult;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

type Job = Box<dyn FnOnce(&mut Conn) + Send>;

/// The connection as the database thread holds it: `None` after it was found gone.
struct Conn {
    db: Option<ConsolidationDatabase>,
    location: DbLocation,
}

impl Conn {
    fn with<T>(
        &mut self,
        f: impl FnOnce(&mut ConsolidationDatabase) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let db = match &mut self.db {
            Some(db) => db,
            None => self
                .db
                .insert(ConsolidationDatabase::open_existing(&self.location)?),
        };
        let res = f(db);
        if res.is_err() && db.ping().is_err() {
            self.db = None;
        }
        res
    }
}

/// A handle on the database thread: cheap to clone; the thread ends with the last handle.
#[derive(Clone)]
pub struct Db {
    tx: std::sync::mpsc::Sender<Job>,
    location: DbLocation,
}

impl Db {
    /// Move `db` to a thread of its own.
    pub fn spawn(db: ConsolidationDatabase) -> Db {
        let location = db.location().clone();
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let mut conn = Conn {
            db: Some(db),
            location: location.clone(),
        };
        std::thread::Builder::new()
            .name("git-ws-db".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
            })
            .expect("start the database thread");
        Db { tx, location }
    }

    pub fn location(&self) -> &DbLocation {
        &self.location
    }

    /// Run `f` on the database thread and wait for its answer without blocking the runtime.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut ConsolidationDatabase) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn: &mut Conn| {
            let _ = reply.send(conn.with(f));
        });
        let gone =
            || DbError::Other("failed to use the database: its thread has stopped".to_string());
        self.tx.send(job).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// Writes each final result of a local run to the database, as a consumer of the run's
/// events: the dispatch loop never waits for the database. Keeps the results in memory for
/// the consolidation; [`Recorder::finish`] waits for the last write.
pub struct Recorder {
    tx: mpsc::UnboundedSender<WorkstreamResult>,
    writer: JoinHandle<Vec<String>>,
    results: Vec<WorkstreamResult>,
}

/// How often a write is tried before it becomes a note (the result stays in the report).
const WRITE_ATTEMPTS: u32 = 3;

impl Recorder {
    pub fn start(db: Db) -> Recorder {
        let (tx, mut rx) = mpsc::unbounded_channel::<WorkstreamResult>();
        let writer = tokio::spawn(async move {
            let mut notes = Vec::new();
            while let Some(res) = rx.recv().await {
                if let Err(e) = write(&db, res.clone()).await {
                    notes.push(format!(
                        "failed to record {} in the database (kept in the report): {e}",
                        res.workstream_id
                    ));
                }
            }
            notes
        });
        Recorder {
            tx,
            writer,
            results: Vec::new(),
        }
    }

    /// Wait until every result is written; the results, and a note per result that could
    /// not be.
    pub async fn finish(self) -> (Vec<WorkstreamResult>, Vec<String>) {
        let Recorder {
            tx,
            writer,
            results,
        } = self;
        drop(tx);
        let notes = writer
            .await
            .unwrap_or_else(|e| vec![format!("the database writer failed: {e}")]);
        (results, notes)
    }
}

/// One result, retried with a growing pause while the database stays locked or away.
async fn write(db: &Db, res: WorkstreamResult) -> Result<(), DbError> {
    let mut last = None;
    for attempt in 0..WRITE_ATTEMPTS {
        let r = res.clone();
        match db.call(move |db| db.record_result(&r)).await {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt + 1))).await;
    }
    Err(last.expect("tried"))
}

impl Observer for Recorder {
    fn event(&mut self, event: Event<'_>) {
        if let Event::WorkstreamFinished { result } = event {
            self.results.push(result.clone());
            // The writer outlives every event: a send fails only after `finish`.
            let _ = self.tx.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RunInfo, Status};

    #[tokio::test(flavor = "current_thread")]
    async fn results_are_written_by_the_recorder_as_events_arrive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let mut db = ConsolidationDatabase::open(&path).unwrap();
        let info = RunInfo {
            run_id: "ma-run-1".into(),
            started_at: chrono::Utc::now(),
            finished_at: None,
            agents: 1,
            base: "a".repeat(40),
            base_rev: "HEAD".into(),
            repo_root: "/r".into(),
            rerun_of: None,
        };
        db.begin_run(&info).unwrap();
        let db = Db::spawn(db);
        let mut rec = Recorder::start(db.clone());
        for id in ["a", "b", "c"] {
            let r = WorkstreamResult::new("ma-run-1", "agent-1", id, Status::Completed);
            rec.event(Event::WorkstreamFinished { result: &r });
        }
        rec.event(Event::Note("ignored"));
        let (results, notes) = rec.finish().await;
        assert_eq!(results.len(), 3);
        assert!(notes.is_empty(), "{notes:?}");
        let stored = db.call(|db| db.results("ma-run-1")).await.unwrap();
        let ids: Vec<&str> = stored.iter().map(|r| r.workstream_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_result_that_cannot_be_written_becomes_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::spawn(ConsolidationDatabase::open(dir.path().join("r.db")).unwrap());
        let mut rec = Recorder::start(db);
        // No run row: the foreign key refuses the result, three times.
        let r = WorkstreamResult::new("no-such-run", "agent-1", "a", Status::Completed);
        rec.event(Event::WorkstreamFinished { result: &r });
        let (results, notes) = rec.finish().await;
        assert_eq!(results.len(), 1);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with("failed to record a in the database (kept in the report)"),
            "{notes:?}"
        );
    }
}
