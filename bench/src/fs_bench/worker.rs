//! A worker process: one phase's system calls, each timed.
//!
//! The protocol with the coordinator ([`crate::spawn`]), one line each on stdout and stdin:
//! the worker prints `ready`, waits for `go`, runs, then prints its [`Outcome`] as one JSON
//! line and exits 0. On an error it prints the error on stderr and exits 1.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

/// What one worker does. Names are `<dir>/<prefix><i>` for i in `0..count`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Op {
    /// Creates each file: open(O_CREAT | O_EXCL | O_WRONLY), close.
    Create {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        prefix: String,
        #[arg(long)]
        count: usize,
    },
    /// stat() of each file.
    Stat {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        prefix: String,
        #[arg(long)]
        count: usize,
    },
    /// Lists `dir` (opendir, readdir to the end) `reps` times; each listing must find
    /// `expect` entries. One op is one entry; one latency sample is one whole listing.
    Readdir {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        expect: usize,
        #[arg(long)]
        reps: usize,
    },
    /// rename() of `<from><i>` to `<to><i>` in `dir`.
    Rename {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        count: usize,
    },
    /// unlink() of each file.
    Unlink {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        prefix: String,
        #[arg(long)]
        count: usize,
    },
    /// Writes `size` bytes to a new `file` in `block`-byte write() calls, then fsync().
    Write {
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        size: u64,
        #[arg(long)]
        block: u64,
    },
    /// Reads `file` from start to end in `block`-byte read() calls, checking each block's
    /// stamp (so a hole or a wrong block fails the run).
    Read {
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        size: u64,
        #[arg(long)]
        block: u64,
    },
}

/// What a worker reports.
#[derive(Debug, Serialize, Deserialize)]
pub struct Outcome {
    /// Operations done (entries listed for readdir, bytes for write and read).
    pub ops: u64,
    /// Latency of each call (each listing for readdir, each write()/read() for data), in µs.
    pub lat_us: Vec<f64>,
}

impl Op {
    /// The command line that makes a worker do this: `worker <op> --flag value …`.
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["worker".into()];
        let mut flag = |name: &str, v: OsString| {
            a.push(format!("--{name}").into());
            a.push(v);
        };
        let name = match self {
            Op::Create { dir, prefix, count }
            | Op::Stat { dir, prefix, count }
            | Op::Unlink { dir, prefix, count } => {
                flag("dir", dir.into());
                flag("prefix", prefix.into());
                flag("count", count.to_string().into());
                self.name()
            }
            Op::Readdir { dir, expect, reps } => {
                flag("dir", dir.into());
                flag("expect", expect.to_string().into());
                flag("reps", reps.to_string().into());
                "readdir"
            }
            Op::Rename { dir, from, to, count } => {
                flag("dir", dir.into());
                flag("from", from.into());
                flag("to", to.into());
                flag("count", count.to_string().into());
                "rename"
            }
            Op::Write { file, size, block } | Op::Read { file, size, block } => {
                flag("file", file.into());
                flag("size", size.to_string().into());
                flag("block", block.to_string().into());
                self.name()
            }
        };
        a.insert(1, name.into());
        a
    }

    /// The operation's name in the results.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Create { .. } => "create",
            Op::Stat { .. } => "stat",
            Op::Readdir { .. } => "readdir",
            Op::Rename { .. } => "rename",
            Op::Unlink { .. } => "unlink",
            Op::Write { .. } => "write",
            Op::Read { .. } => "read",
        }
    }
}

/// Runs `op` under the ready/go protocol.
pub fn serve(op: Op) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() != "go" {
        bail!("expected `go` from the coordinator, got {line:?}");
    }
    let outcome = run(&op).with_context(|| format!("worker {}", op.name()))?;
    serde_json::to_writer(&mut out, &outcome)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Times `f` once per name.
fn each(
    dir: &Path,
    prefix: &str,
    count: usize,
    mut f: impl FnMut(&Path) -> std::io::Result<()>,
) -> anyhow::Result<Outcome> {
    let mut lat_us = Vec::with_capacity(count);
    for i in 0..count {
        let path = dir.join(format!("{prefix}{i}"));
        let t = Instant::now();
        f(&path).with_context(|| path.display().to_string())?;
        lat_us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(Outcome {
        ops: count as u64,
        lat_us,
    })
}

fn run(op: &Op) -> anyhow::Result<Outcome> {
    match op {
        Op::Create { dir, prefix, count } => each(dir, prefix, *count, |p| {
            OpenOptions::new().write(true).create_new(true).open(p)?;
            Ok(())
        }),
        Op::Stat { dir, prefix, count } => each(dir, prefix, *count, |p| {
            fs::metadata(p)?;
            Ok(())
        }),
        Op::Unlink { dir, prefix, count } => each(dir, prefix, *count, |p| fs::remove_file(p)),
        Op::Rename { dir, from, to, count } => each(dir, from, *count, |p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            let target = dir.join(format!("{to}{}", &name[from.len()..]));
            fs::rename(p, target)
        }),
        Op::Readdir { dir, expect, reps } => {
            let mut lat_us = Vec::with_capacity(*reps);
            for _ in 0..*reps {
                let t = Instant::now();
                let mut n = 0;
                for e in fs::read_dir(dir).with_context(|| format!("opendir {}", dir.display()))? {
                    e.with_context(|| format!("readdir {}", dir.display()))?;
                    n += 1;
                }
                lat_us.push(t.elapsed().as_secs_f64() * 1e6);
                if n != *expect {
                    bail!("{} lists {n} entries, expected {expect}", dir.display());
                }
            }
            Ok(Outcome {
                ops: (*expect * *reps) as u64,
                lat_us,
            })
        }
        Op::Write { file, size, block } => write(file, *size, *block),
        Op::Read { file, size, block } => read(file, *size, *block),
    }
}

/// Block `i` of the data file: its index in the first 8 bytes, then a non-zero pattern (a
/// file system that skips zeros, like MooseFS's chunkserver, must still store it).
fn stamp(buf: &mut [u8], i: u64) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = (k % 251) as u8 | 1;
    }
    let n = buf.len().min(8);
    buf[..n].copy_from_slice(&i.to_le_bytes()[..n]);
}

fn blocks(size: u64, block: u64) -> impl Iterator<Item = (u64, usize)> {
    (0..size.div_ceil(block)).map(move |i| (i, (size - i * block).min(block) as usize))
}

fn write(file: &Path, size: u64, block: u64) -> anyhow::Result<Outcome> {
    let mut buf = vec![0u8; block as usize];
    let mut lat_us = Vec::new();
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(file)
        .with_context(|| format!("create {}", file.display()))?;
    for (i, len) in blocks(size, block) {
        stamp(&mut buf[..len], i);
        let t = Instant::now();
        f.write_all(&buf[..len])
            .with_context(|| format!("write block {i} of {}", file.display()))?;
        lat_us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    f.sync_all()
        .with_context(|| format!("fsync {}", file.display()))?;
    drop(f);
    Ok(Outcome { ops: size, lat_us })
}

fn read(file: &Path, size: u64, block: u64) -> anyhow::Result<Outcome> {
    let mut buf = vec![0u8; block as usize];
    let mut want = vec![0u8; block as usize];
    let mut lat_us = Vec::new();
    let mut f = File::open(file).with_context(|| format!("open {}", file.display()))?;
    for (i, len) in blocks(size, block) {
        let t = Instant::now();
        f.read_exact(&mut buf[..len])
            .with_context(|| format!("read block {i} of {}", file.display()))?;
        lat_us.push(t.elapsed().as_secs_f64() * 1e6);
        stamp(&mut want[..len], i);
        if buf[..len] != want[..len] {
            bail!("block {i} of {} does not hold what was written", file.display());
        }
    }
    let mut rest = [0u8; 1];
    if f.read(&mut rest)? != 0 {
        bail!("{} is longer than the {size} bytes written", file.display());
    }
    Ok(Outcome { ops: size, lat_us })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct W {
        #[command(subcommand)]
        w: Top,
    }
    #[derive(Debug, clap::Subcommand)]
    enum Top {
        Worker {
            #[command(subcommand)]
            op: Op,
        },
    }

    /// `args()` gives back a command line that parses to the same op.
    #[test]
    fn args_round_trip() {
        let ops = [
            Op::Create {
                dir: "/m/a b".into(),
                prefix: "f".into(),
                count: 3,
            },
            Op::Rename {
                dir: "/m".into(),
                from: "f".into(),
                to: "g".into(),
                count: 2,
            },
            Op::Readdir {
                dir: "/m".into(),
                expect: 10,
                reps: 2,
            },
            Op::Read {
                file: "/m/d".into(),
                size: 5,
                block: 2,
            },
        ];
        for op in ops {
            let mut argv = vec![OsString::from("fs-bench")];
            argv.extend(op.args());
            let Top::Worker { op: back } = W::parse_from(argv).w;
            assert_eq!(format!("{op:?}"), format!("{back:?}"));
        }
    }

    #[test]
    fn data_round_trip_and_every_phase_in_a_temp_dir() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let file = d.join("data");
        let w = run(&Op::Write {
            file: file.clone(),
            size: 10_000,
            block: 4096,
        })
        .unwrap();
        assert_eq!(w.lat_us.len(), 3);
        run(&Op::Read {
            file: file.clone(),
            size: 10_000,
            block: 4096,
        })
        .unwrap();
        assert!(
            run(&Op::Read {
                file: file.clone(),
                size: 9_000,
                block: 4096,
            })
            .is_err(),
            "a longer file is an error"
        );
        fs::remove_file(&file).unwrap();
        let (dir_, prefix, count) = (d.clone(), "f".to_string(), 5);
        run(&Op::Create {
            dir: dir_.clone(),
            prefix: prefix.clone(),
            count,
        })
        .unwrap();
        run(&Op::Stat {
            dir: dir_.clone(),
            prefix: prefix.clone(),
            count,
        })
        .unwrap();
        let l = run(&Op::Readdir {
            dir: dir_.clone(),
            expect: 5,
            reps: 2,
        })
        .unwrap();
        assert_eq!(l.ops, 10);
        run(&Op::Rename {
            dir: dir_.clone(),
            from: "f".into(),
            to: "g".into(),
            count,
        })
        .unwrap();
        run(&Op::Unlink {
            dir: dir_.clone(),
            prefix: "g".into(),
            count,
        })
        .unwrap();
        assert_eq!(fs::read_dir(&d).unwrap().count(), 0);
    }
}
