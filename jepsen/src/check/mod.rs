//! History checkers, free of I/O: each takes operations and answers a [`Verdict`].
//!
//! | module | checks |
//! |---|---|
//! | [`linear`] | linearizability of one key (Wing–Gong–Lowe search with a deadline) |
//! | [`set`] | set-full: lost, stale, unexpected and never-read elements |
//! | [`tree`] | tree invariants of a quiescent walk: nothing lost, nothing in two places |
//! | [`counter`] | counter bounds: every read between the acknowledged and the attempted increments |

pub mod counter;
pub mod linear;
pub mod set;
pub mod tree;

use serde::Serialize;

/// A checker's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "valid", content = "why", rename_all = "lowercase")]
pub enum Verdict {
    /// The history satisfies the property.
    #[serde(rename = "true")]
    Valid,
    /// It does not; why.
    #[serde(rename = "false")]
    Invalid(String),
    /// The checker could not decide (over its time budget, or missing data); why.
    Unknown(String),
}

impl Verdict {
    /// Combines the verdicts of independent parts: invalid if any is, else unknown if any is.
    pub fn all(parts: impl IntoIterator<Item = Verdict>) -> Verdict {
        let mut unknown = None;
        for v in parts {
            match v {
                Verdict::Invalid(_) => return v,
                Verdict::Unknown(_) if unknown.is_none() => unknown = Some(v),
                _ => {}
            }
        }
        unknown.unwrap_or(Verdict::Valid)
    }

    /// The same verdict with `what` (a key, a set) named in front of its reason.
    pub fn about(self, what: &str) -> Verdict {
        match self {
            Verdict::Invalid(why) => Verdict::Invalid(format!("{what}: {why}")),
            Verdict::Unknown(why) => Verdict::Unknown(format!("{what}: {why}")),
            Verdict::Valid => Verdict::Valid,
        }
    }

    /// A short word for tables: `valid`, `INVALID`, `unknown`.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid(_) => "INVALID",
            Verdict::Unknown(_) => "unknown",
        }
    }
}

/// One named check of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// The answer.
    pub verdict: Verdict,
    /// Counts and details for the report.
    pub details: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_wins_over_unknown_and_unknown_over_valid() {
        let inv = Verdict::Invalid("x".into());
        let unk = Verdict::Unknown("y".into());
        assert_eq!(Verdict::all([Verdict::Valid, unk.clone(), inv.clone()]), inv);
        assert_eq!(Verdict::all([Verdict::Valid, unk.clone()]), unk);
        assert_eq!(Verdict::all([Verdict::Valid, Verdict::Valid]), Verdict::Valid);
        assert_eq!(Verdict::all([]), Verdict::Valid);
    }

    #[test]
    fn verdicts_serialize_with_jepsen_style_valid_fields() {
        let s = serde_json::to_string(&Verdict::Invalid("lost 1".into())).unwrap();
        assert_eq!(s, r#"{"valid":"false","why":"lost 1"}"#);
    }
}
