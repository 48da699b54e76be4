//! The size cap of command logs (`ws.maxLogBytes`): when one command's output passes the
//! limit, its log keeps the first and the last half of the limit, with a line in between
//! saying how much was cut. The cap holds while the command runs: its output reaches the
//! log through a pipe and [`Capped`] (on a thread of its own, [`stream`]), so the file never
//! grows past the cap plus the note, however much the command prints. The limit is one per
//! process, set once from git config.

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Default cap of one command's output in its log (`ws.maxLogBytes`): 10 MiB.
pub const DEFAULT_MAX_LOG_BYTES: u64 = 10 * 1024 * 1024;
/// The smallest cap accepted, so the head and the tail still say something.
pub const MIN_MAX_LOG_BYTES: u64 = 4096;

static LIMIT: AtomicU64 = AtomicU64::new(DEFAULT_MAX_LOG_BYTES);

/// Set this process's cap (from `ws.maxLogBytes`).
pub fn set_limit(bytes: u64) {
    LIMIT.store(bytes.max(MIN_MAX_LOG_BYTES), Ordering::Relaxed);
}

/// This process's cap.
pub fn limit() -> u64 {
    LIMIT.load(Ordering::Relaxed)
}

/// Whether the filesystem holding `path` has (nearly) no space left for an unprivileged
/// writer, under [`NEARLY_FULL`]: a command that wrote its log there may have had its output
/// cut (it writes the log itself, so git-ws never sees the write fail).
pub fn disk_full(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a plain struct statvfs fills.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    rc == 0 && (st.f_bavail as u64).saturating_mul(st.f_frsize as u64) < NEARLY_FULL
}

/// Free space under which [`disk_full`] says a log may have been cut: a failed write can
/// leave a few blocks free (a larger write refused whole, a file removed since).
pub const NEARLY_FULL: u64 = 64 * 1024;

/// Read `ws.maxLogBytes`: a byte count with an optional `k`, `m` or `g` suffix (1024s, as
/// git's own integer settings), at least [`MIN_MAX_LOG_BYTES`]. Pure.
pub fn parse_limit(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_lowercase()),
        _ => (t, ' '),
    };
    let factor: u64 = match unit {
        ' ' => 1,
        'k' => 1 << 10,
        'm' => 1 << 20,
        'g' => 1 << 30,
        _ => return Err(format!("unknown unit in {t:?} (use k, m or g)")),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("{t:?} is not a byte count (e.g. 10m)"))?;
    let bytes = n
        .checked_mul(factor)
        .ok_or_else(|| format!("{t:?} is too large"))?;
    if bytes < MIN_MAX_LOG_BYTES {
        return Err(format!(
            "{t:?} is below the minimum of {MIN_MAX_LOG_BYTES} bytes"
        ));
    }
    Ok(bytes)
}

/// Cap what was written to `path` from byte `from` on (one command's output, appended) to
/// about `max` bytes: its first and last `max / 2` bytes, with a line in between saying how
/// many bytes were cut. Does nothing when it is within the cap or the file cannot be read.
pub fn cap(path: &Path, from: u64, max: u64) {
    let _ = try_cap(path, from, max);
}

fn try_cap(path: &Path, from: u64, max: u64) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let len = f.metadata()?.len();
    let written = len.saturating_sub(from);
    if written <= max {
        return Ok(());
    }
    let half = max / 2;
    let mut tail = Vec::with_capacity(half as usize);
    f.seek(SeekFrom::Start(len - half))?;
    (&mut f).take(half).read_to_end(&mut tail)?;
    let cut = written - 2 * half;
    let note = cut_note(cut, half, max);
    f.seek(SeekFrom::Start(from + half))?;
    f.write_all(note.as_bytes())?;
    f.write_all(&tail)?;
    f.set_len(from + half + note.len() as u64 + tail.len() as u64)?;
    Ok(())
}

/// How long the kept tail may lag behind the output in the file while a command runs.
pub const TAIL_EVERY: Duration = Duration::from_millis(500);

/// The note between the head and the tail of a cut log.
fn cut_note(cut: u64, half: u64, max: u64) -> String {
    format!(
        "\n[git-ws: {cut} bytes of output cut here; the log keeps the first and the last {half} bytes (ws.maxLogBytes = {max})]\n"
    )
}

/// One command's output written to its log as it comes, capped at every instant: the first
/// `max / 2` bytes go straight to the file; past them, the last `max / 2` bytes are kept in
/// memory and written after the head with the note (at most every [`TAIL_EVERY`], and at
/// the end). The file holds at most `from + max +` the note's length. A write the disk
/// refuses is given up on (the output is still read, so the command never blocks).
pub struct Capped {
    file: std::fs::File,
    from: u64,
    max: u64,
    head: u64,
    tail: VecDeque<u8>,
    cut: u64,
    dirty: bool,
    flushed: Instant,
    /// The first write error met, if any.
    pub failed: Option<std::io::Error>,
}

impl Capped {
    /// Append to `path` (created if missing), capped at `max` bytes.
    pub fn open(path: &Path, max: u64) -> std::io::Result<Capped> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(path)?;
        let from = file.seek(SeekFrom::End(0))?;
        Ok(Capped {
            file,
            from,
            max: max.max(2),
            head: 0,
            tail: VecDeque::new(),
            cut: 0,
            dirty: false,
            flushed: Instant::now(),
            failed: None,
        })
    }

    fn half(&self) -> u64 {
        self.max / 2
    }

    /// Take `bytes` of output.
    pub fn write(&mut self, mut bytes: &[u8]) {
        let half = self.half();
        if self.head < half {
            let n = ((half - self.head) as usize).min(bytes.len());
            let res = self
                .file
                .seek(SeekFrom::Start(self.from + self.head))
                .and_then(|_| self.file.write_all(&bytes[..n]));
            self.note_err(res);
            self.head += n as u64;
            bytes = &bytes[n..];
        }
        if bytes.is_empty() {
            return;
        }
        self.tail.extend(bytes);
        let over = self.tail.len().saturating_sub(half as usize);
        if over > 0 {
            self.tail.drain(..over);
            self.cut += over as u64;
        }
        self.dirty = true;
        if self.flushed.elapsed() >= TAIL_EVERY {
            self.flush_tail();
        }
    }

    /// Write the kept tail (and the note, once something was cut) after the head.
    pub fn flush_tail(&mut self) {
        self.flushed = Instant::now();
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let note = if self.cut > 0 {
            cut_note(self.cut, self.half(), self.max)
        } else {
            String::new()
        };
        let (a, b) = self.tail.as_slices();
        let end = self.from + self.head + note.len() as u64 + self.tail.len() as u64;
        let res = (|| {
            self.file.seek(SeekFrom::Start(self.from + self.head))?;
            self.file.write_all(note.as_bytes())?;
            self.file.write_all(a)?;
            self.file.write_all(b)?;
            self.file.set_len(end)
        })();
        self.note_err(res);
    }

    fn note_err(&mut self, res: std::io::Result<()>) {
        if let Err(e) = res {
            self.failed.get_or_insert(e);
        }
    }
}

/// A command's output pipe drained into its log by a thread ([`Capped`]): [`Streaming::end`]
/// waits for the thread to write the rest.
pub struct Streaming {
    stop: Arc<AtomicBool>,
    done: tokio::sync::oneshot::Receiver<()>,
}

/// Start draining a new pipe into `path`, capped at `max`; the pipe's write end goes to
/// the command (stdout and stderr).
pub fn stream(path: &Path, max: u64) -> std::io::Result<(Streaming, std::io::PipeWriter)> {
    let mut log = Capped::open(path, max)?;
    let (mut reader, writer) = std::io::pipe()?;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, done) = tokio::sync::oneshot::channel();
    let stop2 = stop.clone();
    std::thread::Builder::new()
        .name("git-ws-log".into())
        .spawn(move || {
            use std::os::fd::AsRawFd;
            let fd = reader.as_raw_fd();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd for the pipe's read end, which `reader` owns.
                let ready = unsafe { libc::poll(&mut p, 1, 100) };
                if ready == 0 {
                    log.flush_tail();
                    if stop2.load(Ordering::Relaxed) {
                        break;
                    }
                    continue;
                }
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => log.write(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
            }
            log.flush_tail();
            let _ = tx.send(());
        })?;
    Ok((Streaming { stop, done }, writer))
}

impl Streaming {
    /// Wait until the command's output is all in the log: the pipe closed, or `linger`
    /// passed with nothing more to read (a process that escaped the command's group may
    /// still hold the pipe: its later output is dropped).
    pub async fn end(self, linger: Duration) {
        let Streaming { stop, mut done } = self;
        if tokio::time::timeout(linger, &mut done).await.is_err() {
            stop.store(true, Ordering::Relaxed);
            let _ = done.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_big_output_keeps_its_head_and_tail_and_says_how_much_was_cut() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let before = b"earlier attempt\n".to_vec();
        let mut body = vec![b'h'; 5000];
        body.extend(vec![b'm'; 90_000]);
        body.extend(vec![b't'; 5000]);
        std::fs::write(&log, [before.clone(), body].concat()).unwrap();
        cap(&log, before.len() as u64, 10_000);
        let got = std::fs::read(&log).unwrap();
        assert!(got.starts_with(&before));
        let text = String::from_utf8(got[before.len()..].to_vec()).unwrap();
        assert!(text.starts_with(&"h".repeat(5000)), "head kept");
        assert!(text.ends_with(&"t".repeat(5000)), "tail kept");
        assert!(!text.contains("mm"));
        assert!(
            text.contains("[git-ws: 90000 bytes of output cut here;"),
            "{}",
            &text[5000..5200]
        );
        assert!(got.len() < 10_300);
        // Within the cap: untouched.
        let small = dir.path().join("s.log");
        std::fs::write(&small, "abc").unwrap();
        cap(&small, 0, 10_000);
        assert_eq!(std::fs::read(&small).unwrap(), b"abc");
    }

    #[test]
    fn limits_read_like_git_integers() {
        assert_eq!(parse_limit("10m"), Ok(10 << 20));
        assert_eq!(parse_limit("64k"), Ok(64 << 10));
        assert_eq!(parse_limit("1G"), Ok(1 << 30));
        assert_eq!(parse_limit("100000"), Ok(100_000));
        assert!(parse_limit("12").is_err());
        assert!(parse_limit("ten").is_err());
        assert!(parse_limit("5x").is_err());
    }

    #[test]
    fn a_streamed_log_never_passes_the_cap_and_keeps_head_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        std::fs::write(&log, "earlier\n").unwrap();
        let max = 64 * 1024;
        let mut c = Capped::open(&log, max).unwrap();
        let slack = 200;
        let mut written = 0u64;
        for i in 0..400u32 {
            let chunk = format!("{i:08}\n").repeat(1000);
            c.write(chunk.as_bytes());
            written += chunk.len() as u64;
            if i % 7 == 0 {
                c.flush_tail();
            }
            let len = std::fs::metadata(&log).unwrap().len();
            assert!(len <= 8 + max + slack, "{len} bytes after chunk {i}");
        }
        c.flush_tail();
        assert!(c.failed.is_none());
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.starts_with("earlier\n00000000\n"));
        assert!(text.ends_with("00000399\n"), "the tail is kept");
        let cut = written - max;
        assert!(
            text.contains(&format!("[git-ws: {cut} bytes of output cut here;")),
            "{}",
            &text[32_000..33_000]
        );
        assert!(text.len() as u64 <= 8 + max + slack);
    }

    #[test]
    fn a_short_streamed_log_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let mut c = Capped::open(&log, 4096).unwrap();
        c.write(b"hello ");
        c.write(&[b'x'; 3000]);
        c.flush_tail();
        let got = std::fs::read(&log).unwrap();
        assert_eq!(got.len(), 6 + 3000);
        assert!(!String::from_utf8_lossy(&got).contains("git-ws:"));
    }
}
