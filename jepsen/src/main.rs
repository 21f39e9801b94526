//! `jepsen`: MooseNG's Jepsen-style harness (see the crate docs and jepsen/README.md).
//!
//! Exit status: 0 valid, 1 a checker found a violation, 2 a checker could not decide,
//! 3 the harness itself failed (setup, permissions, missing tools).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use jepsen::check::Verdict;
use jepsen::nemesis::{Family, PartitionMode};
use jepsen::netns::Topology;
use jepsen::run::Options;
use jepsen::workload::Name;

/// Set in the copy of the harness that runs inside the clients' namespace: the topology prefix.
const INNER: &str = "JEPSEN_INNER";
/// The output directory the outer process chose, passed to the inner one.
const OUT: &str = "JEPSEN_OUT";
/// The seed the outer process chose, passed to the inner one.
const SEED: &str = "JEPSEN_SEED";

#[derive(Debug, Parser)]
#[command(
    name = "jepsen",
    about = "Fault-injection runs against real MooseNG processes, checked from their history"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run a test (needs root: network namespaces, nftables).
    Run(RunArgs),
    /// The WAN-latency delayer of `--nemesis delay` (started by the harness inside a server's
    /// namespace; not for direct use).
    #[command(hide = true)]
    Delayer {
        /// The NFQUEUE number.
        #[arg(long)]
        queue: u16,
        /// How long every packet is held, milliseconds.
        #[arg(long)]
        ms: u64,
    },
    /// Check a recorded history again.
    Check {
        /// The workload that produced it.
        #[arg(long, value_enum)]
        workload: Name,
        /// history.jsonl of a run.
        history: PathBuf,
        /// Time the linearizability search may take, seconds.
        #[arg(long, default_value_t = 60)]
        check_budget: u64,
        /// The run's --keys (rename-tree needs it).
        #[arg(long, default_value_t = 8)]
        keys: usize,
    },
}

#[derive(Debug, Clone, Args)]
struct RunArgs {
    /// What the clients do.
    #[arg(long, value_enum, default_value = "register")]
    workload: Name,
    /// Fault families, comma-separated (none if omitted).
    #[arg(long, value_enum, value_delimiter = ',')]
    nemesis: Vec<Family>,
    /// How long the clients run, seconds.
    #[arg(long, default_value_t = 30)]
    time_limit: u64,
    /// Seed of every random choice (printed; a random one if omitted).
    #[arg(long)]
    seed: Option<u64>,
    /// Metadata servers (the replicas of one shard).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Target operations per second over all clients.
    #[arg(long, default_value_t = 40.0)]
    rate: f64,
    /// Logical client processes at once.
    #[arg(long, default_value_t = 5)]
    concurrency: usize,
    /// Registers or directories.
    #[arg(long, default_value_t = 8)]
    keys: usize,
    /// Seconds a fault lasts, and the quiet time after it.
    #[arg(long, default_value_t = 3.0)]
    interval: f64,
    /// Bound of clock offsets for `--nemesis skew`, seconds.
    #[arg(long, default_value_t = 30)]
    skew: i64,
    /// Timeout of one client operation, milliseconds.
    #[arg(long, default_value_t = 2000)]
    op_timeout_ms: u64,
    /// Time the linearizability search may take, seconds (over it: unknown).
    #[arg(long, default_value_t = 60)]
    check_budget: u64,
    /// Output directory (default: target/jepsen/<time>-<workload>-<nemesis>-s<seed>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The `mooseng` binary (default: beside this one, else on PATH).
    #[arg(long)]
    mooseng: Option<PathBuf>,
    /// Partition shapes for `--nemesis partition`, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    partition_mode: Vec<PartitionMode>,
    /// Switch a deliberate bug on in the servers (ack-before-fsync, stale-follower-reads):
    /// for testing the harness itself; needs a mooseng built with the deliberate-bugs feature.
    #[arg(long)]
    bug: Option<String>,
}

fn main() {
    let code = match Cli::parse().cmd {
        Cmd::Run(args) => match std::env::var(INNER) {
            Ok(prefix) => inner(args, prefix),
            Err(_) => outer(args),
        },
        Cmd::Delayer { queue, ms } => jepsen::delayer::run(queue, Duration::from_millis(ms)).map(|()| 0),
        Cmd::Check {
            workload,
            history,
            check_budget,
            keys,
        } => recheck(workload, &history, check_budget, keys),
    };
    std::process::exit(code.unwrap_or_else(|e| {
        eprintln!("jepsen: error: {e:#}");
        3
    }));
}

fn exit_code(v: &Verdict) -> i32 {
    match v {
        Verdict::Valid => 0,
        Verdict::Invalid(_) => 1,
        Verdict::Unknown(_) => 2,
    }
}

fn recheck(workload: Name, history: &Path, budget: u64, keys: usize) -> anyhow::Result<i32> {
    let ops = jepsen::history::read_jsonl(history)?;
    let check = jepsen::workload::check(workload, &ops, keys, Duration::from_secs(budget));
    println!("{}: {}", check.name, check.verdict.word());
    if let Verdict::Invalid(w) | Verdict::Unknown(w) = &check.verdict {
        println!("  {w}");
    }
    println!("{}", serde_json::to_string_pretty(&check.details)?);
    Ok(exit_code(&check.verdict))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn mooseng_binary(given: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return p
            .canonicalize()
            .with_context(|| format!("--mooseng {}", p.display()));
    }
    let beside = std::env::current_exe()?.with_file_name("mooseng");
    if beside.exists() {
        return Ok(beside);
    }
    let on_path = Command::new("sh").args(["-c", "command -v mooseng"]).output()?;
    if on_path.status.success() {
        return Ok(PathBuf::from(String::from_utf8_lossy(&on_path.stdout).trim()));
    }
    bail!(
        "no mooseng binary beside {} or on PATH: build it (cargo build -p mooseng) or pass --mooseng",
        beside.display()
    )
}

/// Outside the namespaces: make them, run the test inside, remove them however it ended.
fn outer(args: RunArgs) -> anyhow::Result<i32> {
    if !is_root() {
        bail!("jepsen run needs root (network namespaces, nftables, signals to the servers)");
    }
    mooseng_binary(args.mooseng.as_ref())?;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let out = match &args.out {
        Some(o) => o.clone(),
        None => {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let nemesis: Vec<String> = args
                .nemesis
                .iter()
                .map(|f| format!("{f:?}").to_lowercase())
                .collect();
            let nemesis = if nemesis.is_empty() {
                "none".into()
            } else {
                nemesis.join("+")
            };
            PathBuf::from(
                format!("target/jepsen/{secs}-{:?}-{nemesis}-s{seed}", args.workload).to_lowercase(),
            )
        }
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let out = out.canonicalize()?;
    Topology::sweep_stale();
    let topology = Topology::new(std::process::id(), args.nodes, chunkservers(&args));
    topology.create().context("creating the network namespaces")?;
    println!(
        "jepsen: {:?} with nemesis {:?}, seed {seed}, {} nodes, output in {}",
        args.workload,
        args.nemesis,
        args.nodes,
        out.display()
    );
    let status = run_inside(&topology, seed, &out);
    topology.teardown();
    status
}

fn run_inside(topology: &Topology, seed: u64, out: &Path) -> anyhow::Result<i32> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &topology.control()])
        .arg(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env(SEED, seed.to_string())
        .env(INNER, &topology.prefix)
        .env(OUT, out);
    let mut child = cmd
        .spawn()
        .context("starting the harness inside the clients' namespace")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let pid = child.id();
        let waited = tokio::task::spawn_blocking(move || child.wait());
        tokio::pin!(waited);
        loop {
            tokio::select! {
                status = &mut waited => {
                    let status = status??;
                    return Ok(status.code().unwrap_or(3));
                }
                _ = tokio::signal::ctrl_c() => eprintln!("jepsen: interrupted; stopping the run and removing its namespaces"),
                _ = term.recv() => {
                    eprintln!("jepsen: terminated; stopping the run and removing its namespaces");
                    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
                }
            }
        }
    })
}

/// Chunkservers the run needs: the file workload stores data, the others only metadata.
fn chunkservers(args: &RunArgs) -> usize {
    if args.workload == Name::Files { 3 } else { 0 }
}

/// Inside the clients' namespace: the test proper.
fn inner(args: RunArgs, prefix: String) -> anyhow::Result<i32> {
    let out = std::env::var_os(OUT)
        .map(PathBuf::from)
        .context("JEPSEN_OUT is not set")?;
    let topology = Topology {
        prefix,
        nodes: args.nodes,
        chunkservers: chunkservers(&args),
    };
    let opts = Options {
        workload: args.workload,
        nemesis: args.nemesis.clone(),
        time_limit: Duration::from_secs(args.time_limit),
        seed: std::env::var(SEED)
            .ok()
            .and_then(|s| s.parse().ok())
            .context("the outer run passes JEPSEN_SEED")?,
        nodes: args.nodes,
        rate: args.rate,
        concurrency: args.concurrency.max(1),
        keys: args.keys.max(1),
        interval: Duration::from_secs_f64(args.interval.max(0.1)),
        skew: args.skew.abs(),
        op_timeout: Duration::from_millis(args.op_timeout_ms.max(10)),
        check_budget: Duration::from_secs(args.check_budget),
        out,
        mooseng: mooseng_binary(args.mooseng.as_ref())?,
        partition_modes: args.partition_mode.clone(),
        bug: args.bug.clone(),
        chunkservers: chunkservers(&args),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let summary = runtime.block_on(async move {
        tokio::select! {
            s = jepsen::run::run(opts.clone(), topology) => s.map(Some),
            _ = tokio::signal::ctrl_c() => Ok(None),
        }
    })?;
    let Some(summary) = summary else {
        eprintln!("jepsen: interrupted before the checks ran");
        return Ok(3);
    };
    print!("{}", jepsen::report::text(&summary));
    Ok(exit_code(&summary.valid))
}
