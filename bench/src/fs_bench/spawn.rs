//! Starting workers as child processes and timing a phase.
//!
//! Every worker is started and reports `ready` before any gets `go`, so process start-up is
//! outside the measured time. The phase's time runs from the first `go` to the last result.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::worker::{Op, Outcome};

/// A phase's combined result.
#[derive(Debug)]
pub struct Measured {
    /// Operations of every worker (entries for readdir, bytes for data).
    pub ops: u64,
    /// From the first `go` to the last worker's result.
    pub secs: f64,
    /// Every worker's latency samples, in µs.
    pub lat_us: Vec<f64>,
}

/// One line a worker printed, or how its stdout ended.
type Line = (usize, Result<String, String>);

/// The running workers; dropping it kills those still running (they are ours).
struct Workers {
    children: Vec<Child>,
}

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.children {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

/// Runs `ops`, one worker process each, all at once; fails if any worker fails or the phase
/// takes longer than `timeout`.
pub fn phase(exe: &Path, ops: &[Op], timeout: Duration) -> anyhow::Result<Measured> {
    let name = ops.first().map_or("nothing", Op::name);
    let (tx, rx) = mpsc::channel::<Line>();
    let mut workers = Workers { children: Vec::new() };
    let mut stdins: Vec<ChildStdin> = Vec::new();
    for (k, op) in ops.iter().enumerate() {
        let mut child = Command::new(exe)
            .args(op.args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("start a worker ({})", exe.display()))?;
        stdins.push(child.stdin.take().context("worker stdin")?);
        let stdout = child.stdout.take().context("worker stdout")?;
        workers.children.push(child);
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let end = line.is_err();
                if tx.send((k, line.map_err(|e| e.to_string()))).is_err() || end {
                    return;
                }
            }
            let _ = tx.send((k, Err("exited".into())));
        });
    }
    drop(tx);
    let deadline = Instant::now() + timeout;
    // The next line of a worker that still owes one; a worker's stdout ending after it has
    // said everything is not news.
    let mut said = vec![0usize; ops.len()];
    let mut next = |stage: usize, what: &str| -> anyhow::Result<(usize, String)> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((k, Ok(line))) => {
                    said[k] += 1;
                    return Ok((k, line));
                }
                Ok((k, Err(_))) if said[k] > stage => {}
                Ok((k, Err(e))) => {
                    bail!("{name} worker {k} stopped before {what} ({e}); its error is printed above")
                }
                Err(_) => bail!("{name}: no {what} within {timeout:?}; workers killed"),
            }
        }
    };
    for _ in ops {
        let (k, line) = next(0, "`ready`")?;
        if line != "ready" {
            bail!("{name} worker {k} said {line:?} instead of `ready`");
        }
    }
    let started = Instant::now();
    for (k, s) in stdins.iter_mut().enumerate() {
        s.write_all(b"go\n")
            .and_then(|()| s.flush())
            .with_context(|| format!("start {name} worker {k}"))?;
    }
    let mut ops_done = 0;
    let mut lat_us = Vec::new();
    for _ in ops {
        let (k, line) = next(1, "its result")?;
        let o: Outcome = serde_json::from_str(&line)
            .with_context(|| format!("{name} worker {k}: bad result line {line:?}"))?;
        ops_done += o.ops;
        lat_us.extend(o.lat_us);
    }
    let secs = started.elapsed().as_secs_f64();
    for (k, c) in workers.children.iter_mut().enumerate() {
        let status = c.wait()?;
        if !status.success() {
            bail!("{name} worker {k} exited with {status}");
        }
    }
    Ok(Measured {
        ops: ops_done,
        secs,
        lat_us,
    })
}
