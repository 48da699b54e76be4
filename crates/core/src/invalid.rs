//! [`Invalid`]: the one error the pure core returns across the crate boundary, for a value
//! it refuses (a duration, an id, a port, a preset name, a retry rule, a budget).

/// A value that was refused: one sentence naming the value and what is wrong with it
/// (`"80" is not a port from 1024 to 65526`, `invalid duration "5x": unknown unit "x" …`).
/// Where the value came from (`--budget`, `git config ws.portBase`, a workstream field) is
/// the caller's to add; bad input stops a command before anything ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(String);

impl Invalid {
    /// The refusal, as one sentence.
    pub fn new(sentence: impl Into<String>) -> Self {
        Invalid(sentence.into())
    }

    /// The sentence.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Invalid> for String {
    fn from(e: Invalid) -> String {
        e.0
    }
}

impl PartialEq<str> for Invalid {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Invalid {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}
