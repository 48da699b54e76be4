//! Recording: the run's database connection lives on a thread of its own ([`Db`]), which
//! every async part of a run calls without blocking the runtime; and results reach it as a
//! consumer of the run's events ([`Recorder`]), beside the progress display, instead of the
//! dispatch loop writing them itself. A connection that fails is checked and, if it is gone
//! (a PostgreSQL server restarted, the network cut), opened again on the next call.

use super::events::{Event, Observer};
use super::spool;
use crate::db::{ConsolidationDatabase, DbError, DbLocation};
use crate::layout::Layout;
use crate::model::{RunInfo, WorkstreamResult};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

type Job = Box<dyn FnOnce(&mut Conn) + Send>;

/// The connection as the database thread holds it: `None` after it was found gone. For an
/// SQLite file, which file it is (device and inode): a file removed or replaced under a
/// running run is noticed before the next write, and the database is made again at its path
/// ([`Conn::check_file`]) instead of writing into a file nobody can open any more.
struct Conn {
    db: Option<ConsolidationDatabase>,
    location: DbLocation,
    file: Option<(u64, u64)>,
    /// Set when the database was made again; taken by [`Db::recreated`].
    recreated: bool,
}

/// The device and inode of `path`, if it exists.
fn file_identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl Conn {
    fn with<T>(
        &mut self,
        f: impl FnOnce(&mut ConsolidationDatabase) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.check_file();
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

    /// If the SQLite file was removed or replaced since it was opened: close the old
    /// connection, remove the old file's leftovers (`-wal`, `-shm`) when the file is gone,
    /// and create the database again at its path. What was written to the removed file is
    /// written again by the recorder ([`Db::recreated`]).
    fn check_file(&mut self) {
        let (Some(path), Some(known)) = (self.location.sqlite_path(), self.file) else {
            return;
        };
        let now = file_identity(path);
        if now == Some(known) {
            return;
        }
        self.db = None;
        if now.is_none() {
            for suffix in ["-wal", "-shm", "-journal"] {
                let mut p = path.as_os_str().to_owned();
                p.push(suffix);
                let _ = std::fs::remove_file(std::path::PathBuf::from(p));
            }
        }
        if let Ok(db) = ConsolidationDatabase::open(path.to_path_buf()) {
            self.db = Some(db);
            self.file = file_identity(path);
            self.recreated = true;
        }
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
            file: location.sqlite_path().and_then(file_identity),
            location: location.clone(),
            recreated: false,
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

    /// Whether the SQLite file was removed or replaced and made again since the last call
    /// (then everything written before is gone from it).
    pub async fn recreated(&self) -> bool {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn: &mut Conn| {
            conn.check_file();
            let _ = reply.send(std::mem::take(&mut conn.recreated));
        });
        if self.tx.send(job).is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }
}

/// Writes each final result of a local run to the database, as a consumer of the run's
/// events: the dispatch loop never waits for the database. A result the database refuses
/// is kept in memory and in the run's spool file ([`spool`]), said on stderr (even with
/// `-q`) and tried again with a growing pause; [`Recorder::finish`] tries a last few times,
/// then gives back what is still unrecorded.
pub struct Recorder {
    tx: mpsc::UnboundedSender<WorkstreamResult>,
    writer: JoinHandle<Written>,
    results: Vec<WorkstreamResult>,
}

/// What the recorder could not do, at the end.
#[derive(Debug, Default)]
pub struct Written {
    /// One line per problem met (retries, a database made again, the spool).
    pub notes: Vec<String>,
    /// Results the database never took.
    pub unrecorded: Vec<WorkstreamResult>,
    /// The spool file that holds them, if it could be written.
    pub spool: Option<PathBuf>,
}

/// Pauses between tries while the run goes on: from the first to the cap, doubling.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(2);
/// After the last result: the pauses before the last tries.
const FINAL_PAUSES: [Duration; 4] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_millis(1000),
    Duration::from_millis(2000),
];

/// Where the recorder keeps what the database refuses.
pub struct SpoolTo {
    pub layout: Layout,
    pub run: RunInfo,
    /// Results of an earlier attempt, written again if the database is made again.
    pub kept: Vec<WorkstreamResult>,
}

impl Recorder {
    pub fn start(db: Db, spool: SpoolTo) -> Recorder {
        let (tx, rx) = mpsc::unbounded_channel::<WorkstreamResult>();
        let writer = tokio::spawn(write_all(db, spool, rx));
        Recorder {
            tx,
            writer,
            results: Vec::new(),
        }
    }

    /// Record `res` without counting it as this attempt's (a result a resume adopted).
    pub fn adopt(&self, res: WorkstreamResult) {
        let _ = self.tx.send(res);
    }

    /// Wait until every result is written or given up on; the results, and what could not
    /// be written.
    pub async fn finish(self) -> (Vec<WorkstreamResult>, Written) {
        let Recorder {
            tx,
            writer,
            results,
        } = self;
        drop(tx);
        let written = writer.await.unwrap_or_else(|e| Written {
            notes: vec![format!("the database writer failed: {e}")],
            unrecorded: results.clone(),
            spool: None,
        });
        (results, written)
    }
}

/// The writer: results in order, each kept until the database took it.
async fn write_all(
    db: Db,
    to: SpoolTo,
    mut rx: mpsc::UnboundedReceiver<WorkstreamResult>,
) -> Written {
    let mut w = Writer {
        db,
        pending: Vec::new(),
        all: to.kept.clone(),
        warned: HashSet::new(),
        spooled: false,
        out: Written::default(),
        to,
    };
    let mut open = true;
    let mut pause = FIRST_PAUSE;
    let mut last_tries = FINAL_PAUSES.iter();
    loop {
        if open && w.pending.is_empty() {
            match rx.recv().await {
                Some(r) => w.push(r),
                None => open = false,
            }
        } else if open {
            tokio::select! {
                got = rx.recv() => match got {
                    Some(r) => w.push(r),
                    None => open = false,
                },
                _ = tokio::time::sleep(pause) => pause = (pause * 2).min(MAX_PAUSE),
            }
        } else if w.pending.is_empty() {
            break;
        } else {
            let Some(p) = last_tries.next() else { break };
            tokio::time::sleep(*p).await;
        }
        if w.flush().await {
            pause = FIRST_PAUSE;
        }
    }
    w.out.unrecorded = std::mem::take(&mut w.pending);
    w.out
}

struct Writer {
    db: Db,
    to: SpoolTo,
    /// Not yet in the database, in arrival order.
    pending: Vec<WorkstreamResult>,
    /// Everything the database should hold for this run (written again if it is made again).
    all: Vec<WorkstreamResult>,
    /// Workstreams already said on stderr.
    warned: HashSet<String>,
    /// Whether a spool file exists.
    spooled: bool,
    out: Written,
}

impl Writer {
    fn push(&mut self, r: WorkstreamResult) {
        self.all.retain(|x| x.workstream_id != r.workstream_id);
        self.all.push(r.clone());
        self.pending.retain(|x| x.workstream_id != r.workstream_id);
        self.pending.push(r);
    }

    /// Try every pending result once; keep the spool file in step. Whether everything
    /// pending was written.
    async fn flush(&mut self) -> bool {
        if self.db.recreated().await {
            let note = format!(
                "the database {} was removed or replaced during the run: made it again and writing the run's {} result(s) again",
                self.db.location().display(),
                self.all.len()
            );
            say(&note);
            self.out.notes.push(note);
            self.pending = self.all.clone();
        }
        let mut left = Vec::new();
        for r in std::mem::take(&mut self.pending) {
            let entry = self.entry(&r);
            match self.db.call(move |db| spool::record(db, &entry)).await {
                Ok(()) => {
                    if self.warned.remove(&r.workstream_id) {
                        let note =
                            format!("recorded {} in the database after all", r.workstream_id);
                        say(&note);
                    }
                }
                Err(e) => {
                    if self.warned.insert(r.workstream_id.clone()) {
                        let note = format!(
                            "failed to record {} in the database ({e}); kept in memory and, if it can be written, in {}; retrying",
                            r.workstream_id,
                            self.to.layout.spool(&self.to.run.run_id).display()
                        );
                        say(&note);
                        self.out.notes.push(note);
                    }
                    left.push(r);
                }
            }
        }
        self.pending = left;
        self.write_spool();
        self.pending.is_empty()
    }

    fn entry(&self, r: &WorkstreamResult) -> spool::Entry {
        spool::Entry {
            db: self.db.location().display().to_string(),
            run: self.to.run.clone(),
            result: r.clone(),
            attempt: None,
        }
    }

    /// The spool file holds exactly the pending results (removed when there are none).
    fn write_spool(&mut self) {
        if self.pending.is_empty() && !self.spooled {
            return;
        }
        let entries: Vec<spool::Entry> = self.pending.iter().map(|r| self.entry(r)).collect();
        match spool::save(&self.to.layout, &self.to.run.run_id, &entries) {
            Ok(path) => {
                self.spooled = !entries.is_empty();
                self.out.spool = self.spooled.then_some(path);
            }
            Err(e) => {
                let note = format!(
                    "failed to write the spool file {} ({e}): the unrecorded results are kept in memory only",
                    self.to.layout.spool(&self.to.run.run_id).display()
                );
                if !self.out.notes.contains(&note) {
                    say(&note);
                    self.out.notes.push(note);
                }
            }
        }
    }
}

/// A warning on stderr, whatever the display (`-q` included): losing a result is never
/// quiet. Through [`warn`]: above the progress bars while they are drawn.
pub(super) fn say(note: &str) {
    warn(&format!(
        "git ws-run: warning: {}",
        crate::text::clean(note)
    ));
}

/// Where [`warn`] sends a line instead of stderr: the progress display's, while its bars
/// are drawn (set by `progress::Bars`).
pub type WarningSink = Box<dyn Fn(&str) + Send>;

static WARNINGS: std::sync::Mutex<Option<WarningSink>> = std::sync::Mutex::new(None);

/// Send the warnings of [`warn`] to `sink` from now on (`None`: straight to stderr again).
pub fn route_warnings(sink: Option<WarningSink>) {
    *WARNINGS.lock().unwrap_or_else(|p| p.into_inner()) = sink;
}

/// One whole line of warning on stderr, printed above the progress bars when they are
/// drawn (never in the middle of one), else straight to stderr. Whether a sink took it.
pub fn warn(line: &str) -> bool {
    let sink = WARNINGS.lock().unwrap_or_else(|p| p.into_inner());
    match sink.as_ref() {
        Some(f) => {
            f(line);
            true
        }
        None => {
            eprintln!("{line}");
            false
        }
    }
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
    use crate::model::Status;

    fn info() -> RunInfo {
        RunInfo {
            run_id: "ma-run-1".into(),
            started_at: chrono::Utc::now(),
            finished_at: None,
            agents: 1,
            base: "a".repeat(40),
            base_rev: "HEAD".into(),
            repo_root: "/r".into(),
            rerun_of: None,
        }
    }

    fn spool_to(dir: &std::path::Path) -> SpoolTo {
        SpoolTo {
            layout: Layout::new(&crate::git::RepoPaths::new(
                dir.to_path_buf(),
                dir.join(".git"),
            )),
            run: info(),
            kept: Vec::new(),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn results_are_written_by_the_recorder_as_events_arrive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let mut db = ConsolidationDatabase::open(&path).unwrap();
        db.begin_run(&info()).unwrap();
        let db = Db::spawn(db);
        let mut rec = Recorder::start(db.clone(), spool_to(dir.path()));
        for id in ["a", "b", "c"] {
            let r = WorkstreamResult::new("ma-run-1", "agent-1", id, Status::Completed);
            rec.event(Event::WorkstreamFinished { result: &r });
        }
        rec.event(Event::Note("ignored"));
        let (results, written) = rec.finish().await;
        assert_eq!(results.len(), 3);
        assert!(written.notes.is_empty(), "{:?}", written.notes);
        assert!(written.unrecorded.is_empty());
        let stored = db.call(|db| db.results("ma-run-1")).await.unwrap();
        let ids: Vec<&str> = stored.iter().map(|r| r.workstream_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_result_the_database_refuses_is_spooled_and_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let db = Db::spawn(ConsolidationDatabase::open(&path).unwrap());
        // Another connection breaks the table: every write is refused.
        std::process::Command::new("sqlite3")
            .arg(&path)
            .arg("DROP TABLE agent_results;")
            .status()
            .unwrap();
        let mut rec = Recorder::start(db, spool_to(dir.path()));
        let r = WorkstreamResult::new("ma-run-1", "agent-1", "a", Status::Completed);
        rec.event(Event::WorkstreamFinished { result: &r });
        let (results, written) = rec.finish().await;
        assert_eq!(results.len(), 1);
        let ids: Vec<&str> = written
            .unrecorded
            .iter()
            .map(|r| r.workstream_id.as_str())
            .collect();
        assert_eq!(ids, ["a"]);
        assert!(
            written.notes[0].starts_with("failed to record a in the database"),
            "{:?}",
            written.notes
        );
        let spool = written.spool.expect("spooled");
        assert_eq!(spool::read(&spool).len(), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_database_file_removed_mid_run_is_made_again_with_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let mut db = ConsolidationDatabase::open(&path).unwrap();
        db.begin_run(&info()).unwrap();
        let db = Db::spawn(db);
        let mut rec = Recorder::start(db.clone(), spool_to(dir.path()));
        let a = WorkstreamResult::new("ma-run-1", "agent-1", "a", Status::Completed);
        rec.event(Event::WorkstreamFinished { result: &a });
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::remove_file(&path).unwrap();
        let b = WorkstreamResult::new("ma-run-1", "agent-1", "b", Status::Completed);
        rec.event(Event::WorkstreamFinished { result: &b });
        let (_, written) = rec.finish().await;
        assert!(written.unrecorded.is_empty(), "{:?}", written.notes);
        drop(db);
        let mut again = ConsolidationDatabase::open_existing(&path).unwrap();
        let ids: Vec<String> = again
            .results("ma-run-1")
            .unwrap()
            .into_iter()
            .map(|r| r.workstream_id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
    }
}
