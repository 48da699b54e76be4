//! Git's own three-way text merge: xdiff's `xdl_merge`, compiled into the vendored libgit2,
//! called with the options `git merge` uses (histogram diff, "zealous" conflict
//! simplification, binary files never merged line by line).
//!
//! libgit2's public `git_merge_file` always diffs with Myers (it has no histogram flag),
//! while git's merge-ort diffs with histogram; the two disagree on some inputs about
//! whether a file conflicts. Calling the same xdiff routine git calls, with git's flags,
//! gives git's answer. The symbol is part of the static libgit2 that `libgit2-sys` links
//! (`vendored-libgit2`); the struct layouts below are those of its `deps/xdiff/xdiff.h`.

use std::os::raw::{c_char, c_int, c_long, c_ulong};

/// `XDF_HISTOGRAM_DIFF`: the diff algorithm merge-ort hard-codes.
const XDF_HISTOGRAM_DIFF: c_ulong = 1 << 15;
/// `XDL_MERGE_ZEALOUS`: the level `ll_merge` asks for.
const XDL_MERGE_ZEALOUS: c_int = 2;
/// `XDL_MERGE_FAVOR_UNION`: `merge=union`.
const XDL_MERGE_FAVOR_UNION: c_int = 3;
/// git's `buffer_is_binary` looks for a NUL in this many leading bytes.
const FIRST_FEW_BYTES: usize = 8000;
/// git refuses to xdiff files larger than this (`MAX_XDIFF_SIZE`, 1 GiB minus a little).
const MAX_XDIFF_SIZE: usize = (1 << 30) - 1;

#[repr(C)]
struct MmFile {
    ptr: *const c_char,
    size: c_long,
}

#[repr(C)]
struct MmBuffer {
    ptr: *mut c_char,
    size: c_long,
}

#[repr(C)]
struct XpParam {
    flags: c_ulong,
    ignore_regex: *mut std::ffi::c_void,
    ignore_regex_nr: usize,
    anchors: *mut *mut c_char,
    anchors_nr: usize,
}

#[repr(C)]
struct XmParam {
    xpp: XpParam,
    marker_size: c_int,
    level: c_int,
    favor: c_int,
    style: c_int,
    ancestor: *const c_char,
    file1: *const c_char,
    file2: *const c_char,
}

extern "C" {
    fn xdl_merge(
        orig: *const MmFile,
        mf1: *const MmFile,
        mf2: *const MmFile,
        xmp: *const XmParam,
        result: *mut MmBuffer,
    ) -> c_int;
}

/// The outcome of merging one file's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TextMerge {
    /// Merged without conflict: the merged content.
    Clean(Vec<u8>),
    /// Conflicting line changes (the merged content with conflict markers is not kept).
    Conflict,
    /// One of the three versions is binary: git does not merge those line by line.
    Binary,
}

/// xdiff allocates through libgit2's allocator, which libgit2 sets up in its global init;
/// git2 runs that init lazily from its own entry points (parsing an object id is one).
fn init_libgit2() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = git2::Oid::from_str("0");
    });
}

/// git's `buffer_is_binary`: a NUL byte among the first 8,000.
pub(crate) fn is_binary(data: &[u8]) -> bool {
    data[..data.len().min(FIRST_FEW_BYTES)].contains(&0)
}

/// Merge `ours` and `theirs` against `base` as git's `ll_merge` does by default.
#[cfg(test)]
pub(crate) fn merge(base: &[u8], ours: &[u8], theirs: &[u8]) -> TextMerge {
    xdiff_merge(base, ours, theirs, false, 7)
}

/// git's `ll_xdl_merge` (the text driver, and the union driver with `union`): a binary
/// or huge file is not merged (conflict, ours kept).
pub(crate) fn xdiff_merge(
    base: &[u8],
    ours: &[u8],
    theirs: &[u8],
    union: bool,
    marker_size: usize,
) -> TextMerge {
    if [base, ours, theirs]
        .iter()
        .any(|b| b.len() > MAX_XDIFF_SIZE || is_binary(b))
    {
        return TextMerge::Binary;
    }
    let file = |b: &[u8]| MmFile {
        // xdiff reads `size` bytes from `ptr`; an empty slice's dangling pointer is never read.
        ptr: if b.is_empty() {
            c"".as_ptr()
        } else {
            b.as_ptr().cast()
        },
        size: b.len() as c_long,
    };
    init_libgit2();
    let (o, a, b) = (file(base), file(ours), file(theirs));
    let xmp = XmParam {
        xpp: XpParam {
            flags: XDF_HISTOGRAM_DIFF,
            ignore_regex: std::ptr::null_mut(),
            ignore_regex_nr: 0,
            anchors: std::ptr::null_mut(),
            anchors_nr: 0,
        },
        marker_size: marker_size.min(c_int::MAX as usize) as c_int,
        level: XDL_MERGE_ZEALOUS,
        favor: if union { XDL_MERGE_FAVOR_UNION } else { 0 },
        style: 0,
        ancestor: c"base".as_ptr(),
        file1: c"ours".as_ptr(),
        file2: c"theirs".as_ptr(),
    };
    let mut out = MmBuffer {
        ptr: std::ptr::null_mut(),
        size: 0,
    };
    // SAFETY: every pointer is valid for the length given and outlives the call; xdl_merge
    // only reads its inputs and fills `out` with a buffer from libgit2's allocator (the
    // default one, malloc), which is freed below with free.
    let status = unsafe { xdl_merge(&o, &a, &b, &xmp, &mut out) };
    let merged = if out.ptr.is_null() || out.size <= 0 {
        Vec::new()
    } else {
        // SAFETY: xdl_merge wrote `size` bytes at `ptr`.
        unsafe { std::slice::from_raw_parts(out.ptr as *const u8, out.size as usize).to_vec() }
    };
    if !out.ptr.is_null() {
        // SAFETY: allocated by libgit2's default allocator (malloc), not freed elsewhere.
        unsafe { libc::free(out.ptr.cast()) };
    }
    match status {
        0 => TextMerge::Clean(merged),
        // xdl_merge returns the number of conflicts, or a negative value when it ran out of
        // memory; both leave the file unmerged.
        _ => TextMerge::Conflict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: usize) -> String {
        (1..=n).map(|i| format!("line {i}\n")).collect()
    }

    #[test]
    fn separate_changes_merge_and_adjacent_ones_conflict() {
        let base = lines(10);
        let a = base.replace("line 2\n", "A\n");
        let b = base.replace("line 8\n", "B\n");
        assert_eq!(
            merge(base.as_bytes(), a.as_bytes(), b.as_bytes()),
            TextMerge::Clean(
                base.replace("line 2\n", "A\n")
                    .replace("line 8\n", "B\n")
                    .into_bytes()
            )
        );
        // git treats changes to adjacent lines as a conflict.
        let c = base.replace("line 3\n", "C\n");
        assert_eq!(
            merge(base.as_bytes(), a.as_bytes(), c.as_bytes()),
            TextMerge::Conflict
        );
        // Both appending at the end conflicts; the same change on both sides does not.
        let x = format!("{base}x\n");
        let y = format!("{base}y\n");
        assert_eq!(
            merge(base.as_bytes(), x.as_bytes(), y.as_bytes()),
            TextMerge::Conflict
        );
        assert_eq!(
            merge(base.as_bytes(), x.as_bytes(), x.as_bytes()),
            TextMerge::Clean(x.into_bytes())
        );
    }

    #[test]
    fn empty_inputs_and_binary() {
        assert_eq!(
            merge(b"", b"", b"new\n"),
            TextMerge::Clean(b"new\n".to_vec())
        );
        assert_eq!(merge(b"", b"a\n", b"b\n"), TextMerge::Conflict);
        assert_eq!(merge(b"x", b"\0y", b"z"), TextMerge::Binary);
        assert!(is_binary(b"a\0b") && !is_binary(b"abc"));
    }
}
