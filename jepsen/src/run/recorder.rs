//! The history being recorded: every client task and the nemesis append to one vector under
//! a lock, stamped with one monotonic clock.

use std::sync::Mutex;
use std::time::Instant;

use serde_json::Value;

use crate::history::{Kind, Op, Process};
use crate::workload::{Invocation, Outcome};

/// The history being recorded.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    ops: Mutex<Vec<Op>>,
}

impl Recorder {
    pub(super) fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            ops: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn record(
        &self,
        process: Process,
        kind: Kind,
        inv: &Invocation,
        out: Option<&Outcome>,
        last: bool,
        node: Option<usize>,
    ) {
        let mut ops = self.ops.lock().expect("history lock");
        let index = ops.len() as u64;
        ops.push(Op {
            index,
            time: self.start.elapsed().as_nanos() as u64,
            process,
            kind,
            f: inv.f.to_string(),
            key: inv.key.clone(),
            value: out.map_or_else(|| inv.value.clone(), |o| o.value.clone()),
            error: out.and_then(|o| o.error.clone()),
            last,
            node,
        });
    }

    pub(super) fn nemesis(&self, f: String, value: Value) {
        let mut ops = self.ops.lock().expect("history lock");
        let index = ops.len() as u64;
        ops.push(Op {
            index,
            time: self.start.elapsed().as_nanos() as u64,
            process: Process::NEMESIS,
            kind: Kind::Info,
            f,
            key: None,
            value,
            error: None,
            last: false,
            node: None,
        });
    }

    pub(super) fn take(&self) -> Vec<Op> {
        std::mem::take(&mut *self.ops.lock().expect("history lock"))
    }
}
