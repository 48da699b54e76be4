//! The size cap of command logs (`ws.maxLogBytes`): when one command's output passes the
//! limit, its log keeps the first and the last half of the limit, with a line in between
//! saying how much was cut. The limit is one per process, set once from git config.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

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
    let note = format!(
        "\n[git-ws: {cut} bytes of output cut here; the log keeps the first and the last {half} bytes (ws.maxLogBytes = {max})]\n"
    );
    f.seek(SeekFrom::Start(from + half))?;
    f.write_all(note.as_bytes())?;
    f.write_all(&tail)?;
    f.set_len(from + half + note.len() as u64 + tail.len() as u64)?;
    Ok(())
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
}
