//! Review comments as `git ws-review` takes them — `path:line: text` lines from a textarea —
//! and the prompt of the one follow-up workstream that carries them back to the agent. Pure.

use crate::Invalid;
use std::fmt::Write as _;

/// Most comments one review sends.
pub const MAX_COMMENTS: usize = 200;

/// One review comment on a line of a file of the reviewed branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub path: String,
    /// 1-based.
    pub line: usize,
    pub text: String,
}

/// Parse the comments: each starts on a line `path:line: text` (a path without spaces); a line that does not start
/// that way continues the comment above; blank lines are skipped. Errors name the line.
pub fn parse_comments(input: &str) -> Result<Vec<Comment>, Invalid> {
    let mut out: Vec<Comment> = Vec::new();
    for (i, raw) in input.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        match start(line) {
            Some(Ok(c)) => {
                if out.len() == MAX_COMMENTS {
                    return Err(Invalid::new(format!(
                        "more than {MAX_COMMENTS} comments: send them in parts"
                    )));
                }
                out.push(c);
            }
            Some(Err(why)) => {
                return Err(Invalid::new(format!("comment line {}: {why}", i + 1)))
            }
            None => match out.last_mut() {
                Some(c) => {
                    c.text.push('\n');
                    c.text.push_str(line.trim());
                }
                None => {
                    return Err(Invalid::new(format!(
                        "comment line {}: expected path:line: text (e.g. src/lib.rs:42: handle the empty case)",
                        i + 1
                    )))
                }
            },
        }
    }
    if out.is_empty() {
        return Err(Invalid::new(
            "no comment: write one per line as path:line: text",
        ));
    }
    Ok(out)
}

/// `Some` when `line` starts a comment (`path:NUMBER:`), with the comment or why it is bad.
fn start(line: &str) -> Option<Result<Comment, String>> {
    let mut parts = line.splitn(3, ':');
    let path = parts.next()?.trim();
    let number = parts.next()?.trim();
    let text = parts.next()?.trim();
    if path.is_empty() || path.contains(char::is_whitespace) {
        return None;
    }
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let Ok(n) = number.parse::<usize>() else {
        return Some(Err(format!("line number {number} is too large")));
    };
    if n == 0 {
        return Some(Err(format!("{path}:0: lines are numbered from 1")));
    }
    if text.is_empty() {
        return Some(Err(format!("{path}:{n}: the comment is empty")));
    }
    Some(Ok(Comment {
        path: path.to_string(),
        line: n,
        text: text.to_string(),
    }))
}

/// The follow-up's prompt: what it is, then each comment with its file, line and the lines
/// around it on `branch` (`context`: numbered lines; empty when the file has none there).
pub fn followup_prompt(
    workstream_id: &str,
    branch: &str,
    comments: &[(Comment, Vec<(usize, String)>)],
) -> String {
    let mut p = format!(
        "A reviewer read your work on workstream {workstream_id} (branch {branch}, checked out here) \
         and left {} comment{}. Address each one, changing only what it asks, then commit.\n",
        comments.len(),
        if comments.len() == 1 { "" } else { "s" }
    );
    for (i, (c, context)) in comments.iter().enumerate() {
        let _ = write!(
            p,
            "\n## Comment {} — {}:{}\n\n{}\n",
            i + 1,
            c.path,
            c.line,
            c.text
        );
        if context.is_empty() {
            let _ = writeln!(p, "\n(no line {} in {} on the branch)", c.line, c.path);
            continue;
        }
        p.push_str("\n```\n");
        for (n, text) in context {
            let mark = if *n == c.line { '>' } else { ' ' };
            let _ = writeln!(p, "{mark}{n:>5} | {text}");
        }
        p.push_str("```\n");
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_parse_with_continuations_and_errors_name_the_line() {
        let c = parse_comments("src/a.rs:3: rename x\n  and y too\n\nb.txt:10:tabs: no\n").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].path, "src/a.rs");
        assert_eq!(c[0].line, 3);
        assert_eq!(c[0].text, "rename x\nand y too");
        assert_eq!(
            c[1],
            Comment {
                path: "b.txt".into(),
                line: 10,
                text: "tabs: no".into()
            }
        );
        assert!(parse_comments("hello\na:1: x")
            .unwrap_err()
            .as_str()
            .starts_with("comment line 1: expected"));
        assert!(parse_comments("a:0: x")
            .unwrap_err()
            .as_str()
            .contains("numbered from 1"));
        assert!(parse_comments("a:2:   ")
            .unwrap_err()
            .as_str()
            .contains("empty"));
        assert!(parse_comments(" \n")
            .unwrap_err()
            .as_str()
            .starts_with("no comment"));
        assert!(parse_comments("a:99999999999999999999999: x")
            .unwrap_err()
            .as_str()
            .contains("too large"));
        let many = "a:1: x\n".repeat(MAX_COMMENTS + 1);
        assert!(parse_comments(&many)
            .unwrap_err()
            .as_str()
            .contains("more than"));
    }

    #[test]
    fn the_prompt_carries_each_comment_with_its_context() {
        let c = parse_comments("a.txt:2: use a constant\nnew.txt:9: gone?").unwrap();
        let p = followup_prompt(
            "ws-01",
            "ws/r/ws-01",
            &[
                (
                    c[0].clone(),
                    vec![(1, "one".into()), (2, "TWO".into()), (3, "three".into())],
                ),
                (c[1].clone(), vec![]),
            ],
        );
        assert!(p.starts_with("A reviewer read your work on workstream ws-01 (branch ws/r/ws-01"));
        assert!(p.contains("2 comments"));
        assert!(p.contains("## Comment 1 — a.txt:2\n\nuse a constant\n"));
        assert!(p.contains(">    2 | TWO\n"));
        assert!(p.contains("     1 | one\n"));
        assert!(
            p.contains("## Comment 2 — new.txt:9\n\ngone?\n\n(no line 9 in new.txt on the branch)")
        );
    }
}
