//! One run inside the clients' namespace: start the servers, run the clients and the nemesis
//! until the time limit, heal everything, wait for the replicas to converge, read everything
//! once more, and check the history.
//!
//! | module | what it holds |
//! |---|---|
//! | `recorder` | the history being recorded by every task |
//! | `work` | the workload of a run and the client sessions |
//! | `faults` | the nemesis loop and the final heal |
//! | `converge` | the replica-convergence check of the final phase |

mod converge;
mod faults;
mod recorder;
mod work;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use client::MdsClient;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::check::{Check, Verdict};
use crate::history::{Kind, Op, Process, write_jsonl};
use crate::mount::Mount;
use crate::nemesis::netns::NetnsFaults;
use crate::nemesis::{Family, PartitionMode};
use crate::netns::Topology;
use crate::nodes::Nodes;
use crate::workload::{Invocation, Name, Outcome, Route};

use recorder::Recorder;
use work::{Clients, Work};

/// What a run does.
#[derive(Debug, Clone)]
pub struct Options {
    /// The workload.
    pub workload: Name,
    /// Fault families (none: no faults).
    pub nemesis: Vec<Family>,
    /// How long clients run.
    pub time_limit: Duration,
    /// Seed of every random choice.
    pub seed: u64,
    /// Metadata servers (all replicas of one shard).
    pub nodes: usize,
    /// Target operations per second over all clients.
    pub rate: f64,
    /// Logical client processes at once.
    pub concurrency: usize,
    /// Registers or directories.
    pub keys: usize,
    /// How long a fault lasts, and the quiet time after it.
    pub interval: Duration,
    /// Bound of clock offsets, seconds.
    pub skew: i64,
    /// Timeout of one client operation.
    pub op_timeout: Duration,
    /// Time the linearizability search may take in all.
    pub check_budget: Duration,
    /// The output directory.
    pub out: PathBuf,
    /// The `mooseng` binary.
    pub mooseng: PathBuf,
    /// Partition shapes to choose from (all if empty).
    pub partition_modes: Vec<PartitionMode>,
    /// A deliberate bug for the servers to switch on (harness self-tests only).
    pub bug: Option<String>,
    /// Chunkservers started (the `files` workload needs them).
    pub chunkservers: usize,
}

/// What a run found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Every check combined.
    pub valid: Verdict,
    /// The checks.
    pub checks: Vec<Check>,
    /// Client operations by outcome.
    pub ops: Value,
    /// Nemesis operations performed.
    pub faults: usize,
    /// The run's settings.
    pub settings: Value,
}

/// Runs the test in `topology` (already created) and writes its output.
pub async fn run(opts: Options, topology: Topology) -> anyhow::Result<Summary> {
    std::fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;
    let mut nodes = Nodes::init(
        &opts.mooseng,
        &opts.out.join("cluster-run"),
        &topology,
        opts.bug.clone(),
    )?;
    if opts.nemesis.contains(&Family::Skew) && !nodes.can_skew() {
        anyhow::bail!("--nemesis skew needs libfaketime: apt-get install libfaketime");
    }
    if opts.nemesis.contains(&Family::ChunkserverKill) && opts.chunkservers == 0 {
        anyhow::bail!("--nemesis chunkserver-kill needs chunkservers: use --workload files");
    }
    for i in 1..=nodes.len() {
        nodes.start(i)?;
    }
    for i in 1..=opts.chunkservers {
        nodes.start_chunkserver(i)?;
    }
    let cluster_dir = nodes.cluster_dir();
    let mount_at = |name: &'static str| {
        let (bin, cluster, out) = (opts.mooseng.clone(), cluster_dir.clone(), opts.out.clone());
        tokio::task::spawn_blocking(move || {
            let log = out.join("cluster-run").join("logs").join(format!("{name}.log"));
            Mount::start(&bin, &cluster, &out.join(name), &log)
        })
    };
    // The file workload goes through a mount; a second one, made after the heal, reads what
    // the servers kept.
    let live = match opts.workload {
        Name::Files => Some(mount_at("mnt-live").await??),
        _ => None,
    };
    net::install_crypto_provider();
    let clients = Arc::new(Clients {
        seeds: nodes.client_addrs(),
        tls: net::TlsFiles::load(&nodes.cluster_dir().join("tls"), "client-admin")?,
        op_timeout: opts.op_timeout,
    });
    let faults = Arc::new(Mutex::new(NetnsFaults::new(topology, nodes)));
    let work =
        Arc::new(Work::setup(opts.workload, opts.keys, &clients, live.as_ref().map(Mount::path)).await?);
    eprintln!(
        "jepsen: cluster up, workload ready; running for {:?}",
        opts.time_limit
    );

    let recorder = Arc::new(Recorder::new());
    let deadline = Instant::now() + opts.time_limit;
    let mut workers = Vec::new();
    for w in 0..opts.concurrency {
        let (work, recorder, clients) = (work.clone(), recorder.clone(), clients.clone());
        let opts = opts.clone();
        workers.push(tokio::spawn(async move {
            worker(w, &opts, &work, &recorder, &clients, deadline).await
        }));
    }
    let nemesis = {
        let (faults, recorder, clients, opts) =
            (faults.clone(), recorder.clone(), clients.clone(), opts.clone());
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            faults::nemesis_loop(&opts, &faults, &recorder, &clients, &handle, deadline)
        })
    };
    for w in workers {
        w.await??;
    }
    let fault_count = nemesis.await??;

    // Final phase: heal, restart, converge, read everything.
    {
        let faults = faults.clone();
        let recorder = recorder.clone();
        tokio::task::spawn_blocking(move || {
            faults::heal_all(&mut faults.lock().expect("faults lock"), &recorder)
        })
        .await??;
    }
    let n = faults.lock().expect("faults lock").nodes.len();
    let convergence = converge::converge(&clients, &faults, n, Duration::from_secs(30)).await;
    // Final reads: each through the leader (which also raises the session's token to the
    // leader's state), then on every server, each once it has applied that token.
    // Files are read through a fresh mount instead, once.
    let fresh = match &*work {
        Work::Files(files) => {
            let fresh = mount_at("mnt-final").await??;
            files.read_through(fresh.path());
            Some(fresh)
        }
        _ => None,
    };
    let session = clients.session()?;
    let reads_until = Instant::now() + Duration::from_secs(30);
    for inv in work.final_reads() {
        final_read(&work, &session, &recorder, &inv, None, reads_until).await;
        for i in (1..=n).filter(|_| fresh.is_none()) {
            final_read(&work, &session, &recorder, &inv, Some(i), reads_until).await;
        }
    }
    tokio::task::spawn_blocking(move || drop((fresh, live))).await?;
    let history = recorder.take();
    write_jsonl(&opts.out.join("history.jsonl"), &history)?;
    let mut checks = vec![crate::workload::check(
        opts.workload,
        &history,
        opts.keys,
        opts.check_budget,
    )];
    checks.push(convergence);
    let summary = summarize(&opts, &history, checks, fault_count);
    std::fs::write(
        opts.out.join("summary.json"),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    std::fs::write(
        opts.out.join("report.html"),
        crate::report::html(&summary, &history),
    )?;
    drop(faults);
    Ok(summary)
}

async fn worker(
    w: usize,
    opts: &Options,
    work: &Work,
    recorder: &Recorder,
    clients: &Clients,
    deadline: Instant,
) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(opts.seed ^ (w as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut process = w as u64;
    let mut client = clients.session()?;
    let mean_gap = opts.concurrency as f64 / opts.rate.max(0.001);
    loop {
        let gap = Duration::from_secs_f64(rng.gen_range(0.0..2.0 * mean_gap));
        if Instant::now() + gap >= deadline {
            return Ok(());
        }
        tokio::time::sleep(gap).await;
        let inv = work.generate(&mut rng);
        let mutation = work.is_mutation(&inv);
        recorder.record(Process::Client(process), Kind::Invoke, &inv, None, false, None);
        let home = Route::Home(Nodes::client_addr(process as usize % opts.nodes + 1));
        let out = match tokio::time::timeout(opts.op_timeout, work.invoke(&client, &inv, home)).await {
            Ok(o) => o,
            Err(_) => Outcome::timed_out(&inv, opts.op_timeout, mutation),
        };
        recorder.record(Process::Client(process), out.kind, &inv, Some(&out), false, None);
        if out.kind == Kind::Info {
            // This process may still have an operation in flight: it is never reused.
            process += opts.concurrency as u64;
            client = clients.session()?;
        }
    }
}

/// Reads `inv` through the leader, or at server `node`, until it succeeds or `until` passes
/// (the final phase's budget for all reads).
async fn final_read(
    work: &Work,
    client: &MdsClient,
    recorder: &Recorder,
    inv: &Invocation,
    node: Option<usize>,
    until: Instant,
) {
    let process = Process::Client(u64::MAX / 2);
    let route = node.map_or(Route::Leader, |i| Route::At(Nodes::client_addr(i)));
    loop {
        recorder.record(process, Kind::Invoke, inv, None, true, node);
        let out = work.invoke(client, inv, route).await;
        recorder.record(process, out.kind, inv, Some(&out), true, node);
        if out.kind == Kind::Ok || Instant::now() > until {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn summarize(opts: &Options, history: &[Op], checks: Vec<Check>, faults: usize) -> Summary {
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for op in history
        .iter()
        .filter(|o| o.process != Process::NEMESIS && o.kind != Kind::Invoke)
    {
        *counts
            .entry(format!("{}:{}", op.f, json!(op.kind).as_str().unwrap_or("?")))
            .or_default() += 1;
    }
    Summary {
        valid: Verdict::all(checks.iter().map(|c| c.verdict.clone())),
        checks,
        ops: json!(counts),
        faults,
        settings: json!({
            "workload": opts.workload, "nemesis": opts.nemesis, "seed": opts.seed,
            "nodes": opts.nodes, "time_limit_s": opts.time_limit.as_secs_f64(), "rate": opts.rate,
            "concurrency": opts.concurrency, "keys": opts.keys, "interval_s": opts.interval.as_secs_f64(),
            "partition_modes": opts.partition_modes, "bug": opts.bug,
        }),
    }
}
