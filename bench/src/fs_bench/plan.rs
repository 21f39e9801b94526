//! The phases run against one target.
//!
//! Everything happens under `<target>/fs-bench.<pid>/`, removed at the end. The targets take
//! turns: each round (one process count, or the data) runs against every target before the
//! next round starts. For each process count P, in `p<P>/`:
//!
//! 1. *(not measured)* the workers create the stat set: `files` names in one directory
//!    `big/`, `s<w>-<i>`;
//! 2. **create**: worker w creates `w<w>/f<i>`;
//! 3. caches dropped; **stat**: worker w stats the stat set of worker w+1 (names neither
//!    this process nor, with P > 1, any process of its kind touched lately; the kernel's
//!    dentries and inodes are gone);
//! 4. caches dropped; **readdir**: every worker lists `big/` (`files` entries) in full,
//!    `readdir_reps` times;
//! 5. **rename**: `w<w>/f<i>` to `w<w>/g<i>`; 6. **unlink**: `w<w>/g<i>`;
//! 7. *(not measured)* the stat set is unlinked and the directories removed.
//!
//! Then the data phases, one process: **write** `data` (`data_size` bytes, then fsync,
//! counted), caches dropped (page cache too), **read** it back; unlinked.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::Target;
use crate::caches::{self, Level};
use crate::spawn::{self, Measured};
use crate::units::{Percentiles, percentiles};
use crate::worker::Op;

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub files: usize,
    pub procs: Vec<usize>,
    pub data_size: u64,
    pub block_size: u64,
    pub readdir_reps: usize,
    pub drop_caches: bool,
    pub timeout: Duration,
    /// This binary, started as the workers.
    pub exe: PathBuf,
}

/// One measured phase of one target.
#[derive(Debug, Clone)]
pub struct Row {
    pub op: &'static str,
    pub procs: usize,
    /// Operations (entries for readdir, bytes for write and read).
    pub ops: u64,
    pub secs: f64,
    /// Operations per second; for write and read, MB/s (10^6 bytes).
    pub rate: f64,
    pub lat: Percentiles,
}

impl Row {
    fn new(op: &'static str, procs: usize, m: Measured) -> Row {
        let per_sec = m.ops as f64 / m.secs.max(1e-9);
        let rate = if matches!(op, "write" | "read") {
            per_sec / 1e6
        } else {
            per_sec
        };
        Row {
            op,
            procs,
            ops: m.ops,
            secs: m.secs,
            rate,
            lat: percentiles(m.lat_us),
        }
    }
}

/// A target's results: the rows measured, and the error that stopped it, if one did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub rows: Vec<Row>,
    pub error: Option<String>,
}

/// A unit of the plan run against every target in turn before the next one starts: the
/// metadata phases at one process count, or the data phases. Interleaving the targets this
/// way spreads any drift of the machine (other load, a warming disk) over all of them.
#[derive(Debug, Clone, Copy)]
enum Round {
    Metadata(usize),
    Data,
}

/// Runs every round against every target. A failure stops that target only; what was
/// measured before it is kept.
pub fn run(targets: &[Target], cfg: &Config) -> Vec<Outcome> {
    let roots: Vec<PathBuf> = targets
        .iter()
        .map(|t| t.path.join(format!("fs-bench.{}", std::process::id())))
        .collect();
    let mut outcomes: Vec<Outcome> = targets.iter().map(|_| Outcome::default()).collect();
    for (root, out) in roots.iter().zip(&mut outcomes) {
        if let Err(e) = std::fs::create_dir(root) {
            out.error = Some(format!("mkdir {}: {e}", root.display()));
        }
    }
    let rounds = cfg
        .procs
        .iter()
        .map(|&p| Round::Metadata(p))
        .chain((cfg.data_size > 0).then_some(Round::Data));
    for round in rounds {
        for ((t, root), out) in targets.iter().zip(&roots).zip(&mut outcomes) {
            if out.error.is_some() {
                continue;
            }
            eprintln!("fs-bench: {} ({}) at {}", t.name, t.fstype, t.path.display());
            let r = drop_caches(cfg, Level::All).and_then(|()| match round {
                Round::Metadata(p) => metadata(&root.join(format!("p{p}")), p, cfg, &mut out.rows),
                Round::Data => data(root, cfg, &mut out.rows),
            });
            if let Err(e) = r {
                eprintln!("fs-bench: {}: {e:#}", t.name);
                out.error = Some(format!("{e:#}"));
            }
        }
    }
    for (root, out) in roots.iter().zip(&mut outcomes) {
        if let Err(e) = std::fs::remove_dir_all(root)
            && root.exists()
        {
            eprintln!("fs-bench: could not remove {}: {e}", root.display());
            out.error
                .get_or_insert_with(|| format!("remove {}: {e}", root.display()));
        }
    }
    outcomes
}

fn drop_caches(cfg: &Config, level: Level) -> anyhow::Result<()> {
    if cfg.drop_caches {
        caches::drop(level)?;
    }
    Ok(())
}

/// Runs one phase, printing a progress line; `measure` false runs it without a row.
fn step(
    cfg: &Config,
    ops: Vec<Op>,
    label: &'static str,
    procs: usize,
    rows: Option<&mut Vec<Row>>,
) -> anyhow::Result<()> {
    eprint!("  {label:<8} {procs} proc(s) ... ");
    let m = spawn::phase(&cfg.exe, &ops, cfg.timeout).inspect_err(|_| eprintln!("failed"))?;
    let row = Row::new(label, procs, m);
    let unit = if matches!(label, "write" | "read") {
        "MB/s"
    } else {
        "ops/s"
    };
    eprintln!(
        "{:.0} {unit}, p50 {:.0} us, p99 {:.0} us ({:.1} s)",
        row.rate, row.lat.p50, row.lat.p99, row.secs
    );
    if let Some(rows) = rows {
        rows.push(row);
    }
    Ok(())
}

fn metadata(base: &Path, p: usize, cfg: &Config, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let per = cfg.files / p;
    let big = base.join("big");
    std::fs::create_dir(base).with_context(|| format!("mkdir {}", base.display()))?;
    std::fs::create_dir(&big).with_context(|| format!("mkdir {}", big.display()))?;
    let own: Vec<PathBuf> = (0..p).map(|w| base.join(format!("w{w}"))).collect();
    for d in &own {
        std::fs::create_dir(d).with_context(|| format!("mkdir {}", d.display()))?;
    }
    let stat_set = |w: usize| (big.clone(), format!("s{w}-"), per);

    let prep = (0..p)
        .map(|w| {
            let (dir, prefix, count) = stat_set(w);
            Op::Create { dir, prefix, count }
        })
        .collect();
    step(cfg, prep, "(prepare)", p, None)?;

    let create = own
        .iter()
        .map(|d| Op::Create {
            dir: d.clone(),
            prefix: "f".into(),
            count: per,
        })
        .collect();
    step(cfg, create, "create", p, Some(rows))?;

    drop_caches(cfg, Level::Metadata)?;
    let stat = (0..p)
        .map(|w| {
            let (dir, prefix, count) = stat_set((w + 1) % p);
            Op::Stat { dir, prefix, count }
        })
        .collect();
    step(cfg, stat, "stat", p, Some(rows))?;

    drop_caches(cfg, Level::Metadata)?;
    let readdir = (0..p)
        .map(|_| Op::Readdir {
            dir: big.clone(),
            expect: per * p,
            reps: cfg.readdir_reps,
        })
        .collect();
    step(cfg, readdir, "readdir", p, Some(rows))?;

    let rename = own
        .iter()
        .map(|d| Op::Rename {
            dir: d.clone(),
            from: "f".into(),
            to: "g".into(),
            count: per,
        })
        .collect();
    step(cfg, rename, "rename", p, Some(rows))?;

    let unlink = own
        .iter()
        .map(|d| Op::Unlink {
            dir: d.clone(),
            prefix: "g".into(),
            count: per,
        })
        .collect();
    step(cfg, unlink, "unlink", p, Some(rows))?;

    let cleanup = (0..p)
        .map(|w| {
            let (dir, prefix, count) = stat_set(w);
            Op::Unlink { dir, prefix, count }
        })
        .collect();
    step(cfg, cleanup, "(clean)", p, None)?;
    for d in own.iter().chain([&big, &base.to_path_buf()]) {
        std::fs::remove_dir(d).with_context(|| format!("rmdir {}", d.display()))?;
    }
    Ok(())
}

fn data(root: &Path, cfg: &Config, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let file = root.join("data");
    let (size, block) = (cfg.data_size, cfg.block_size);
    let write = Op::Write {
        file: file.clone(),
        size,
        block,
    };
    step(cfg, vec![write], "write", 1, Some(rows))?;
    drop_caches(cfg, Level::All)?;
    let read = Op::Read {
        file: file.clone(),
        size,
        block,
    };
    step(cfg, vec![read], "read", 1, Some(rows))?;
    std::fs::remove_file(&file).with_context(|| format!("unlink {}", file.display()))?;
    Ok(())
}
