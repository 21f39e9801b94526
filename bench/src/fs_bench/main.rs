//! `fs-bench`: the same file-system workloads against several mounted directories, side by
//! side in one run (MooseNG, MooseFS, a FUSE passthrough), with the ratios beside the targets.
//!
//! | module | what it holds |
//! |---|---|
//! | [`worker`] | a worker process: one phase's system calls, timed, reported on stdout |
//! | [`spawn`] | starting workers as child processes, the start barrier, collecting results |
//! | [`plan`] | the phases run against one target: metadata at each process count, then data |
//! | [`caches`] | dropping the kernel's caches between phases |
//! | [`report`] | the table, the ratios, the targets and the JSON file |
//! | [`units`] | sizes (`256M`) and percentiles |
//!
//! The workers are processes, not threads (`fs-bench worker …`, spawned by this binary), so
//! that concurrency through FUSE looks like separate applications. See `bench/README.md`.

mod caches;
mod plan;
mod report;
mod spawn;
mod units;
mod worker;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

/// Command line.
#[derive(Debug, Parser)]
#[command(
    about = "File-system benchmark run side by side against several mounted directories",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    worker: Option<Worker>,
    #[command(flatten)]
    args: Args,
}

#[derive(Debug, Subcommand)]
enum Worker {
    /// One worker process (started by fs-bench itself).
    #[command(hide = true)]
    Worker {
        #[command(subcommand)]
        op: worker::Op,
    },
}

/// What the coordinator is asked to do.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A directory to benchmark, `NAME=PATH` (repeatable; run in this order). The names
    /// `mooseng`, `moosefs` and `passthrough` get the ratio columns and the targets.
    #[arg(long = "target", value_name = "NAME=PATH")]
    targets: Vec<String>,
    /// Files per metadata round (split between the processes).
    #[arg(long, default_value_t = 10_000)]
    files: usize,
    /// Worker processes per metadata round (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    procs: Vec<usize>,
    /// Bytes written then read sequentially by one process (`1G`, `256M`; 0 skips the data
    /// phases).
    #[arg(long, default_value = "1G", value_parser = client::units::parse_size)]
    data_size: u64,
    /// Size of each write() and read() of the data phases.
    #[arg(long, default_value = "1M", value_parser = client::units::parse_size)]
    block_size: u64,
    /// Full listings of the large directory per process.
    #[arg(long, default_value_t = 5)]
    readdir_reps: usize,
    /// The name whose ratios to the others are shown.
    #[arg(long, default_value = "mooseng")]
    subject: String,
    /// The name of the MooseFS target, for the targets of the brief.
    #[arg(long, default_value = "moosefs")]
    moosefs: String,
    /// Free-form `KEY=VALUE` recorded in the header and the JSON (versions, machine).
    #[arg(long = "note", value_name = "KEY=VALUE")]
    notes: Vec<String>,
    /// Give up on a phase (and that target) after this many seconds.
    #[arg(long, default_value_t = 1800)]
    phase_timeout: u64,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// One `NAME=PATH` of `--target`.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub path: PathBuf,
    /// The file-system type of the mount holding `path` (from /proc/self/mounts).
    pub fstype: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Worker::Worker { op }) = cli.worker {
        return worker::serve(op);
    }
    let args = cli.args;
    let targets = targets(&args.targets)?;
    if args.procs.is_empty() || args.procs.contains(&0) {
        bail!("--procs needs positive process counts");
    }
    if let Some(&p) = args.procs.iter().find(|&&p| p > args.files) {
        bail!("--files {} is fewer than --procs {p}", args.files);
    }
    if args.block_size == 0 || args.block_size > 64 << 20 {
        bail!("--block-size must be between 1 byte and 64 MiB");
    }
    let drop_caches = match caches::drop(caches::Level::Metadata) {
        Ok(()) => true,
        Err(e) => {
            eprintln!(
                "fs-bench: WARNING: cannot drop the kernel's caches ({e:#}); stat, readdir and \
                 read may be served from cache. Run as root for uncached numbers."
            );
            false
        }
    };
    let cfg = plan::Config {
        files: args.files,
        procs: args.procs.clone(),
        data_size: args.data_size,
        block_size: args.block_size,
        readdir_reps: args.readdir_reps.max(1),
        drop_caches,
        timeout: Duration::from_secs(args.phase_timeout),
        exe: std::env::current_exe().context("locate the fs-bench binary")?,
    };
    let header = report::Header::new(&args, &targets, &cfg);
    header.print();
    let results = plan::run(&targets, &cfg);
    let report = report::Report::new(header, &targets, results, &args.subject, &args.moosefs);
    report.print();
    if let Some(path) = &args.json {
        report.write_json(path)?;
        println!("results written to {}", path.display());
    }
    if report.any_failed() {
        eprintln!("fs-bench: some targets failed; see above");
        std::process::exit(1);
    }
    Ok(())
}

/// Parses and checks `--target NAME=PATH`.
fn targets(specs: &[String]) -> anyhow::Result<Vec<Target>> {
    if specs.is_empty() {
        bail!(
            "nothing to measure: pass --target NAME=PATH (e.g. --target mooseng=/mnt/mooseng \
             --target moosefs=/mnt/mfs --target passthrough=/mnt/bindfs)"
        );
    }
    let mut out: Vec<Target> = Vec::new();
    for s in specs {
        let Some((name, path)) = s.split_once('=') else {
            bail!("--target {s}: expected NAME=PATH");
        };
        if name.is_empty() || out.iter().any(|t| t.name == name) {
            bail!("--target {s}: the name must be non-empty and unique");
        }
        let path =
            std::fs::canonicalize(path).with_context(|| format!("--target {s}: {path} is not reachable"))?;
        if !path.is_dir() {
            bail!("--target {s}: {} is not a directory", path.display());
        }
        let fstype = caches::fstype(&path);
        out.push(Target {
            name: name.to_string(),
            path,
            fstype,
        });
    }
    Ok(out)
}
