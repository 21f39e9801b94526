//! One run inside the clients' namespace: start the servers, run the clients and the nemesis
//! until the time limit, heal everything, wait for the replicas to converge, read everything
//! once more, and check the history.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use client::MdsClient;
use proto::admin::{AdminReply, AdminRequest, Role};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::check::{Check, Verdict};
use crate::history::{Kind, Op, Process, write_jsonl};
use crate::nemesis::netns::NetnsFaults;
use crate::nemesis::{Family, Fault, Faults, PartitionMode, plan};
use crate::netns::Topology;
use crate::nodes::Nodes;
use crate::workload::counter::Counters;
use crate::workload::register::Registers;
use crate::workload::set::Sets;
use crate::workload::tree::Tree;
use crate::workload::{Invocation, Name, Outcome};

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

/// The history being recorded.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    ops: Mutex<Vec<Op>>,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            ops: Mutex::new(Vec::new()),
        }
    }

    fn record(&self, process: Process, kind: Kind, inv: &Invocation, out: Option<&Outcome>, last: bool) {
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
        });
    }

    fn nemesis(&self, f: String, value: Value) {
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
        });
    }

    fn take(&self) -> Vec<Op> {
        std::mem::take(&mut *self.ops.lock().expect("history lock"))
    }
}

#[derive(Debug)]
enum Work {
    Register(Registers),
    Set(Sets),
    Counter(Counters),
    Tree(Tree),
}

impl Work {
    fn generate(&self, rng: &mut StdRng) -> Invocation {
        match self {
            Work::Register(w) => w.generate(rng),
            Work::Set(w) => w.generate(rng),
            Work::Counter(w) => w.generate(rng),
            Work::Tree(w) => w.generate(rng),
        }
    }

    fn final_reads(&self) -> Vec<Invocation> {
        match self {
            Work::Register(w) => w.final_reads(),
            Work::Set(w) => w.final_reads(),
            Work::Counter(w) => w.final_reads(),
            Work::Tree(w) => w.final_reads(),
        }
    }

    fn is_mutation(&self, inv: &Invocation) -> bool {
        match self {
            Work::Register(_) => Registers::is_mutation(inv),
            Work::Set(_) => Sets::is_mutation(inv),
            Work::Counter(_) => Counters::is_mutation(inv),
            Work::Tree(_) => Tree::is_mutation(inv),
        }
    }

    async fn invoke(&self, client: &MdsClient, inv: &Invocation, home: Option<SocketAddr>) -> Outcome {
        match self {
            Work::Register(w) => w.invoke(client, inv, home).await,
            Work::Set(w) => w.invoke(client, inv, home).await,
            Work::Counter(w) => w.invoke(client, inv, home).await,
            Work::Tree(w) => w.invoke(client, inv, home).await,
        }
    }
}

struct Clients {
    seeds: Vec<std::net::SocketAddr>,
    tls: net::TlsFiles,
    op_timeout: Duration,
}

impl Clients {
    fn session(&self) -> anyhow::Result<MdsClient> {
        let mut c = MdsClient::new(self.seeds.clone(), &self.tls)?;
        c.deadline = self.op_timeout;
        c.attempt_timeout = self.op_timeout.min(Duration::from_millis(500));
        Ok(c)
    }
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
    for i in 1..=nodes.len() {
        nodes.start(i)?;
    }
    net::install_crypto_provider();
    let clients = Arc::new(Clients {
        seeds: nodes.client_addrs(),
        tls: net::TlsFiles::load(&nodes.cluster_dir().join("tls"), "client-admin")?,
        op_timeout: opts.op_timeout,
    });
    let faults = Arc::new(Mutex::new(NetnsFaults::new(topology, nodes)));
    let work = Arc::new(setup(&opts, &clients).await?);
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
            nemesis_loop(&opts, &faults, &recorder, &clients, &handle, deadline)
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
        tokio::task::spawn_blocking(move || heal_all(&mut faults.lock().expect("faults lock"), &recorder))
            .await??;
    }
    let n = faults.lock().expect("faults lock").nodes.len();
    let convergence = converge(&clients, n, Duration::from_secs(30)).await;
    let session = clients.session()?;
    let reads_until = Instant::now() + Duration::from_secs(30);
    for inv in work.final_reads() {
        final_read(&work, &session, &recorder, inv, reads_until).await;
    }
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

async fn setup(opts: &Options, clients: &Clients) -> anyhow::Result<Work> {
    let client = clients.session()?;
    let started = Instant::now();
    loop {
        let made = match opts.workload {
            Name::Register => Registers::setup(&client, opts.keys).await.map(Work::Register),
            Name::Set => Sets::setup(&client, opts.keys).await.map(Work::Set),
            Name::Counter => Counters::setup(&client, opts.keys).await.map(Work::Counter),
            Name::RenameTree => Tree::setup(&client, opts.keys).await.map(Work::Tree),
        };
        match made {
            Ok(w) => return Ok(w),
            Err(e) if started.elapsed() < Duration::from_secs(30) => {
                verbose(&format!("setup not ready yet: {e}"));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e.context("setting up the workload (is the cluster up?)")),
        }
    }
}

fn verbose(msg: &str) {
    if std::env::var_os("JEPSEN_VERBOSE").is_some() {
        eprintln!("jepsen: {msg}");
    }
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
        recorder.record(Process::Client(process), Kind::Invoke, &inv, None, false);
        let home = Nodes::client_addr(process as usize % opts.nodes + 1);
        let out = match tokio::time::timeout(opts.op_timeout, work.invoke(&client, &inv, Some(home))).await {
            Ok(o) => o,
            Err(_) => Outcome::timed_out(&inv, opts.op_timeout, mutation),
        };
        recorder.record(Process::Client(process), out.kind, &inv, Some(&out), false);
        if out.kind == Kind::Info {
            // This process may still have an operation in flight: it is never reused.
            process += opts.concurrency as u64;
            client = clients.session()?;
        }
    }
}

/// Reads `inv` until it succeeds or `until` passes (the final phase's budget for all reads).
async fn final_read(work: &Work, client: &MdsClient, recorder: &Recorder, inv: Invocation, until: Instant) {
    let process = Process::Client(u64::MAX / 2);
    loop {
        recorder.record(process, Kind::Invoke, &inv, None, true);
        let out = work.invoke(client, &inv, None).await;
        recorder.record(process, out.kind, &inv, Some(&out), true);
        if out.kind == Kind::Ok || Instant::now() > until {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn leader(clients: &Clients, handle: &tokio::runtime::Handle, n: usize) -> Option<usize> {
    let client = clients.session().ok()?;
    handle.block_on(async {
        for i in 1..=n {
            let ask = client.admin(Nodes::client_addr(i), AdminRequest::Status);
            if let Ok(Ok(AdminReply::Status(s))) = tokio::time::timeout(Duration::from_millis(300), ask).await
                && s.shards.iter().any(|s| s.role == Role::Leader)
            {
                return Some(i);
            }
        }
        None
    })
}

fn nemesis_loop(
    opts: &Options,
    faults: &Mutex<NetnsFaults>,
    recorder: &Recorder,
    clients: &Clients,
    handle: &tokio::runtime::Handle,
    deadline: Instant,
) -> anyhow::Result<usize> {
    if opts.nemesis.is_empty() {
        return Ok(0);
    }
    let mut rng = StdRng::seed_from_u64(opts.seed.rotate_left(17) ^ 0xA5A5);
    let n = opts.nodes;
    let mut count = 0;
    // This loop runs on a blocking-pool thread of its own (spawn_blocking), so it may sleep.
    #[allow(clippy::disallowed_methods, reason = "runs on a spawn_blocking thread")]
    let sleep_until = |t: Instant| {
        while Instant::now() < t.min(deadline) {
            std::thread::sleep(Duration::from_millis(20).min(t.min(deadline) - Instant::now()));
        }
    };
    sleep_until(Instant::now() + opts.interval);
    while Instant::now() < deadline {
        let family = opts.nemesis[rng.gen_range(0..opts.nemesis.len())];
        let leader = leader(clients, handle, n);
        let fault: Fault = plan(family, &mut rng, n, leader, opts.skew, &opts.partition_modes);
        recorder.nemesis(format!("start-{}", fault.name()), serde_json::to_value(&fault)?);
        fault.start(&mut *faults.lock().expect("faults lock"))?;
        count += 1;
        sleep_until(Instant::now() + opts.interval);
        fault.stop(&mut *faults.lock().expect("faults lock"))?;
        recorder.nemesis(format!("stop-{}", fault.name()), serde_json::to_value(&fault)?);
        sleep_until(Instant::now() + opts.interval);
    }
    Ok(count)
}

fn heal_all(faults: &mut NetnsFaults, recorder: &Recorder) -> anyhow::Result<()> {
    faults.heal()?;
    for i in 1..=faults.nodes.len() {
        if faults.nodes.paused(i) {
            faults.resume(i)?;
        }
        if faults.nodes.can_skew() {
            faults.skew(i, 0)?;
        }
        faults.restart(i)?;
    }
    recorder.nemesis("final-heal".into(), json!({"healed": true}));
    Ok(())
}

/// Waits until every server reports the same applied index and state digest for the shard.
async fn converge(clients: &Clients, n: usize, within: Duration) -> Check {
    let started = Instant::now();
    let mut last = Vec::new();
    while started.elapsed() < within {
        let Ok(client) = clients.session() else { break };
        let mut seen = Vec::new();
        for i in 1..=n {
            let ask = client.admin(Nodes::client_addr(i), AdminRequest::Digest { shard: 0 });
            if let Ok(Ok(AdminReply::Digest { applied, digest, .. })) =
                tokio::time::timeout(Duration::from_secs(1), ask).await
            {
                seen.push((i, applied, digest));
            }
        }
        let agree = seen.len() == n && seen.iter().all(|s| s.1 == seen[0].1 && s.2 == seen[0].2);
        if agree {
            return Check {
                name: "replica convergence".into(),
                verdict: Verdict::Valid,
                details: json!({"applied": seen[0].1, "digest": seen[0].2, "after_ms": started.elapsed().as_millis() as u64}),
            };
        }
        last = seen;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let seen: Vec<Value> = last
        .iter()
        .map(|(i, a, d)| json!({"node": i, "applied": a, "digest": d}))
        .collect();
    let same_index = last.len() == n && last.iter().all(|s| s.1 == last[0].1);
    let verdict = if same_index {
        Verdict::Invalid(format!(
            "replicas at the same applied index hold different states: {seen:?}"
        ))
    } else {
        Verdict::Unknown(format!("replicas did not catch up within {within:?}: {seen:?}"))
    };
    Check {
        name: "replica convergence".into(),
        verdict,
        details: Value::Array(seen),
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
