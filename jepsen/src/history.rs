//! The history: every invocation and completion of every logical process, and every nemesis
//! action, as Jepsen-style operations written one JSON object per line.
//!
//! A completion is `ok` (it happened), `fail` (it definitely did not happen) or `info` (it
//! may or may not have happened: a timeout, a lost connection). A process whose operation
//! ended `info` is never used again; a fresh process id takes its place.

use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kind of an operation record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A client began an operation.
    Invoke,
    /// It happened.
    Ok,
    /// It definitely did not happen.
    Fail,
    /// Unknown whether it happened (also every nemesis record).
    Info,
}

/// Who performed an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Process {
    /// A logical client process.
    Client(u64),
    /// The nemesis (serialized as the string `"nemesis"`).
    Nemesis(NemesisTag),
}

/// The unit tag that serializes as `"nemesis"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NemesisTag {
    /// The only value.
    #[serde(rename = "nemesis")]
    Nemesis,
}

impl Process {
    /// The nemesis.
    pub const NEMESIS: Process = Process::Nemesis(NemesisTag::Nemesis);
}

/// One record of the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the history.
    pub index: u64,
    /// Nanoseconds since the start of the run (one monotonic clock, the harness's).
    pub time: u64,
    /// Who.
    pub process: Process,
    /// Invoke or a completion.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// The function: `read`, `write`, `add`, or a nemesis action such as `start-partition`.
    pub f: String,
    /// The key (register name, set directory), if the workload has keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The argument or the result.
    #[serde(default)]
    pub value: Value,
    /// Why it failed or is unknown, for completions that did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether this is a read of the final phase (after every fault is healed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub last: bool,
    /// The server a final read was served by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<usize>,
}

impl Op {
    /// A client record for hand-made histories in tests: at `index` × 100 ns, not final.
    #[cfg(test)]
    pub(crate) fn client(index: u64, process: u64, kind: Kind, f: &str, key: &str, value: Value) -> Op {
        Op {
            index,
            time: index * 100,
            process: Process::Client(process),
            kind,
            f: f.into(),
            key: Some(key.into()),
            value,
            error: None,
            last: false,
            node: None,
        }
    }
}

/// An invocation paired with its completion (`None` while it never completed).
#[derive(Debug, Clone, Copy)]
pub struct Pair<'a> {
    /// The invocation.
    pub invoke: &'a Op,
    /// Its completion.
    pub complete: Option<&'a Op>,
}

impl Pair<'_> {
    /// The completion's kind, `info` when there is none.
    pub fn outcome(&self) -> Kind {
        self.complete.map_or(Kind::Info, |c| c.kind)
    }
}

/// Pairs every client invocation with the next record of the same process.
pub fn pairs(history: &[Op]) -> Vec<Pair<'_>> {
    let mut open: std::collections::HashMap<Process, usize> = std::collections::HashMap::new();
    let mut out: Vec<Pair<'_>> = Vec::new();
    for op in history.iter().filter(|o| o.process != Process::NEMESIS) {
        if op.kind == Kind::Invoke {
            open.insert(op.process, out.len());
            out.push(Pair {
                invoke: op,
                complete: None,
            });
        } else if let Some(i) = open.remove(&op.process) {
            out[i].complete = Some(op);
        }
    }
    out
}

/// Writes `history` as JSON lines.
pub fn write_jsonl(path: &Path, history: &[Op]) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    for op in history {
        serde_json::to_writer(&mut w, op)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// Reads a history written by [`write_jsonl`]; the error names the bad line.
pub fn read_jsonl(path: &Path) -> anyhow::Result<Vec<Op>> {
    let file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut ops = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let op =
            serde_json::from_str(&line).map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), n + 1))?;
        ops.push(op);
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(index: u64, process: Process, kind: Kind) -> Op {
        Op {
            index,
            time: index * 10,
            process,
            kind,
            f: "read".into(),
            key: None,
            value: Value::Null,
            error: None,
            last: false,
            node: None,
        }
    }

    #[test]
    fn the_nemesis_round_trips_as_a_string_and_clients_as_numbers() {
        let n = serde_json::to_string(&op(0, Process::NEMESIS, Kind::Info)).unwrap();
        assert!(n.contains(r#""process":"nemesis""#), "{n}");
        let c = serde_json::to_string(&op(1, Process::Client(7), Kind::Ok)).unwrap();
        assert!(
            c.contains(r#""process":7"#) && c.contains(r#""type":"ok""#),
            "{c}"
        );
        let back: Op = serde_json::from_str(&n).unwrap();
        assert_eq!(back.process, Process::NEMESIS);
    }

    #[test]
    fn pairs_match_each_invocation_with_its_own_process_completion() {
        let h = vec![
            op(0, Process::Client(1), Kind::Invoke),
            op(1, Process::Client(2), Kind::Invoke),
            op(2, Process::NEMESIS, Kind::Info),
            op(3, Process::Client(2), Kind::Ok),
            op(4, Process::Client(3), Kind::Invoke),
            op(5, Process::Client(3), Kind::Fail),
        ];
        let p = pairs(&h);
        assert_eq!(p.len(), 3);
        assert!(p[0].complete.is_none());
        assert_eq!(p[0].outcome(), Kind::Info);
        assert_eq!(p[1].complete.unwrap().index, 3);
        assert_eq!(p[2].outcome(), Kind::Fail);
    }

    #[test]
    fn a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        write_jsonl(&path, &[op(0, Process::Client(1), Kind::Invoke)]).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{not json\n")
            .unwrap();
        let err = read_jsonl(&path).unwrap_err().to_string();
        assert!(err.contains("h.jsonl:2"), "{err}");
    }
}
