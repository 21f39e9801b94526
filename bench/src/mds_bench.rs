//! `mds-bench`: the metadata benchmark over the client RPC (no FUSE).
//!
//! Starts a 3-node metadata cluster of real `mooseng mds` processes on this machine, measures
//! the disk's fdatasync latency in the same directory, then runs create, stat, rename and unlink
//! at each concurrency (default 1 and 64 clients) and prints ops/s, p50 and p99 beside the
//! targets. Finally it fills the cluster to `--memory-files` files and prints the metadata
//! servers' resident memory per file. See `bench/README.md`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use client::{MdsClient, ReadFrom};
use proto::fs::{Cred, FsOp};
use testkit::Cluster;

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "MooseNG metadata benchmark over the client RPC")]
struct Args {
    /// The `mooseng` binary (build it with `cargo build --release -p mooseng`).
    #[arg(long, default_value = "target/release/mooseng")]
    mooseng: PathBuf,
    /// Concurrent clients per run (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    clients: Vec<usize>,
    /// Operations of each kind per run.
    #[arg(long, default_value_t = 4000)]
    ops: usize,
    /// Files to create for the memory-per-file figure (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    memory_files: u64,
    /// Where the cluster's data goes (the disk whose fdatasync is measured).
    #[arg(long, default_value = "target/bench")]
    dir: PathBuf,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// An extra flag for every metadata server, e.g. `--mds-flag=--lmdb-idle-commit-ms=10`
    /// (repeatable): to compare settings.
    #[arg(long = "mds-flag", allow_hyphen_values = true)]
    mds_flags: Vec<String>,
}

/// Latency percentiles of one sample set, in microseconds.
struct Stats {
    p50: f64,
    p99: f64,
}

fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| {
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Stats {
        p50: at(0.5),
        p99: at(0.99),
    }
}

/// The disk's fdatasync latency: 4 KiB written and `fdatasync`ed, `n` times, in `dir`.
fn fdatasync(dir: &std::path::Path, n: usize) -> anyhow::Result<Stats> {
    use std::io::{Seek, Write};
    let path = dir.join("fdatasync.probe");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    let block = [0x5au8; 4096];
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        f.seek(std::io::SeekFrom::Start((i % 256 * 4096) as u64))?;
        let t = Instant::now();
        f.write_all(&block)?;
        f.sync_data()?;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    std::fs::remove_file(&path)?;
    Ok(stats(samples))
}

/// The loopback UDP round trip between two threads: 64 bytes sent, echoed and received, `n`
/// times. A strict create needs two such trips between processes (client to leader, leader
/// to follower) around one fdatasync, so they set the floor under its latency here.
fn loopback_rtt(n: usize) -> anyhow::Result<Stats> {
    let echo = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let me = std::net::UdpSocket::bind("127.0.0.1:0")?;
    me.set_read_timeout(Some(Duration::from_secs(5)))?;
    me.connect(echo.local_addr()?)?;
    let echoer = std::thread::spawn(move || -> std::io::Result<()> {
        let mut buf = [0u8; 64];
        for _ in 0..n {
            let (len, from) = echo.recv_from(&mut buf)?;
            echo.send_to(&buf[..len], from)?;
        }
        Ok(())
    });
    let mut buf = [0u8; 64];
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        me.send(&buf)?;
        me.recv(&mut buf)?;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    echoer
        .join()
        .map_err(|_| anyhow::anyhow!("the echo thread panicked"))??;
    Ok(stats(samples))
}

/// One measured run: `ops` operations made by `clients` concurrent tasks.
struct Run {
    op: &'static str,
    clients: usize,
    ops_per_sec: f64,
    lat: Stats,
}

/// Runs `make(task, i)` for every i of every task; returns throughput and latency.
async fn run<F>(
    op: &'static str,
    sessions: &[Arc<MdsClient>],
    clients: usize,
    per_task: usize,
    make: F,
) -> anyhow::Result<Run>
where
    F: Fn(usize, usize) -> FsOp + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..clients {
        let client = sessions[t % sessions.len()].clone();
        let make = make.clone();
        tasks.spawn(async move {
            let mut lat = Vec::with_capacity(per_task);
            for i in 0..per_task {
                let op = make(t, i);
                let from = if op.is_mutation() {
                    ReadFrom::Leader
                } else {
                    ReadFrom::AnyReplica
                };
                let t0 = Instant::now();
                client
                    .fs(&Cred::root(), op, from)
                    .await
                    .with_context(|| format!("task {t} op {i}"))?;
                lat.push(t0.elapsed().as_secs_f64() * 1e6);
            }
            anyhow::Ok(lat)
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r??);
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(Run {
        op,
        clients,
        ops_per_sec: all.len() as f64 / secs,
        lat: stats(all),
    })
}

fn file(dir: u64, name: String) -> FsOp {
    FsOp::MkNod {
        parent: dir,
        name: name.into_bytes(),
        kind: crdt::model::FileKind::File,
        mode: 0o644,
        rdev: 0,
    }
}

/// Resident memory of a process, in bytes: (anonymous, file-backed). File-backed pages of a
/// metadata server are its LMDB map: page cache the kernel can drop.
fn rss(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .with_context(|| format!("{name} missing"))?
            .parse()?;
        Ok(kb * 1024)
    };
    Ok((field("RssAnon:")?, field("RssFile:")?))
}

/// Average (anonymous, file-backed) resident memory of the cluster's servers.
fn cluster_rss(cluster: &Cluster) -> (u64, u64) {
    let all: Vec<(u64, u64)> = (1..=3)
        .filter_map(|id| cluster.pid(id))
        .filter_map(|p| rss(p).ok())
        .collect();
    let n = all.len().max(1) as u64;
    (
        all.iter().map(|r| r.0).sum::<u64>() / n,
        all.iter().map(|r| r.1).sum::<u64>() / n,
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.mooseng.exists(),
        "{} not found: run `cargo build --release -p mooseng` first or pass --mooseng",
        args.mooseng.display()
    );
    std::fs::create_dir_all(&args.dir)?;
    eprintln!("measuring fdatasync in {} ...", args.dir.display());
    let sync = fdatasync(&args.dir, 500)?;
    let rtt = loopback_rtt(2000)?;
    eprintln!("starting a 3-node metadata cluster ...");
    let flags: Vec<&str> = args.mds_flags.iter().map(String::as_str).collect();
    let mut cluster = Cluster::start(args.mooseng.clone(), Some(&args.dir), 3, 3, &flags);
    cluster.log_filter = "warn".into();
    let probe = cluster.client();
    cluster.wait_leader(&probe, 0, Duration::from_secs(15)).await;

    let mut runs = Vec::new();
    for &clients in &args.clients {
        let sessions: Vec<Arc<MdsClient>> = (0..clients.clamp(1, 16))
            .map(|_| Arc::new(cluster.client()))
            .collect();
        // Before the clock starts, every session opens its connections and learns the leader:
        // the runs measure operations, not TLS handshakes.
        for s in &sessions {
            for from in [ReadFrom::Leader, ReadFrom::AnyReplica, ReadFrom::AnyReplica] {
                s.fs(&Cred::root(), FsOp::GetAttr { ino: 1 }, from).await?;
            }
        }
        let per_task = (args.ops / clients).max(1);
        let mut dirs = Vec::new();
        for t in 0..clients {
            dirs.push(testkit::mkdir(&probe, 1, &format!("c{clients}-t{t}")).await.ino);
        }
        let dirs = Arc::new(dirs);
        eprintln!("{clients} client(s), {} ops of each kind ...", per_task * clients);
        let d = dirs.clone();
        runs.push(
            run("create", &sessions, clients, per_task, move |t, i| {
                file(d[t], format!("f{i}"))
            })
            .await?,
        );
        let d = dirs.clone();
        runs.push(
            run("stat", &sessions, clients, per_task, move |t, i| FsOp::Lookup {
                parent: d[t],
                name: format!("f{i}").into_bytes(),
            })
            .await?,
        );
        let d = dirs.clone();
        runs.push(
            run("rename", &sessions, clients, per_task, move |t, i| FsOp::Rename {
                parent: d[t],
                name: format!("f{i}").into_bytes(),
                new_parent: d[t],
                new_name: format!("g{i}").into_bytes(),
                flags: 0,
            })
            .await?,
        );
        let d = dirs.clone();
        runs.push(
            run("unlink", &sessions, clients, per_task, move |t, i| FsOp::Unlink {
                parent: d[t],
                name: format!("g{i}").into_bytes(),
            })
            .await?,
        );
        for s in sessions {
            s.close().await;
        }
    }

    let mut memory = None;
    if args.memory_files > 0 {
        let sessions: Vec<Arc<MdsClient>> = (0..16).map(|_| Arc::new(cluster.client())).collect();
        let per_task = (args.memory_files as usize).div_ceil(64);
        let mut dirs = Vec::new();
        for t in 0..64 {
            dirs.push(testkit::mkdir(&probe, 1, &format!("mem-t{t}")).await.ino);
        }
        let before = cluster_rss(&cluster);
        eprintln!("creating {} files for the memory figure ...", per_task * 64);
        let dirs = Arc::new(dirs);
        let started = Instant::now();
        let fill = run("fill", &sessions, 64, per_task, move |t, i| {
            file(dirs[t], format!("m{i}"))
        });
        let fill = fill.await?;
        let files = (per_task * 64) as u64;
        let after = cluster_rss(&cluster);
        eprintln!(
            "filled in {:.0} s ({:.0} creates/s)",
            started.elapsed().as_secs_f64(),
            fill.ops_per_sec
        );
        memory = Some((files, after, before));
        for s in sessions {
            s.close().await;
        }
    }
    probe.close().await;

    println!();
    println!("metadata benchmark: 3 metadata servers on one machine, strict mode, RPC (no FUSE)");
    println!(
        "disk fdatasync (4 KiB): p50 {:.0} us, p99 {:.0} us",
        sync.p50, sync.p99
    );
    println!(
        "loopback UDP round trip between two threads: p50 {:.0} us, p99 {:.0} us",
        rtt.p50, rtt.p99
    );
    println!(
        "{:<8} {:>7} {:>10} {:>10} {:>10}",
        "op", "clients", "ops/s", "p50 us", "p99 us"
    );
    for r in &runs {
        println!(
            "{:<8} {:>7} {:>10.0} {:>10.0} {:>10.0}",
            r.op, r.clients, r.ops_per_sec, r.lat.p50, r.lat.p99
        );
    }
    println!();
    println!("targets:");
    if let Some(c1) = runs.iter().find(|r| r.op == "create" && r.clients == 1) {
        let ratio = c1.lat.p50 / sync.p50;
        println!(
            "  create, 1 client: p50 {:.0} us = {ratio:.2} x fdatasync p50 (target <= 1.5 x)  {}",
            c1.lat.p50,
            verdict(ratio <= 1.5)
        );
        let floor = sync.p50 + 2.0 * rtt.p50;
        println!(
            "    (for information: no strict create here can beat fdatasync + 2 loopback round trips = {floor:.0} us = {:.2} x fdatasync)",
            floor / sync.p50
        );
    }
    if let Some(c64) = runs.iter().find(|r| r.op == "create" && r.clients == 64) {
        println!(
            "  create, 64 clients on one shard: {:.0} ops/s (target >= 20000)  {}",
            c64.ops_per_sec,
            verdict(c64.ops_per_sec >= 20_000.0)
        );
    }
    if let Some((files, after, before)) = memory {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        println!(
            "  memory at {files} files, per metadata server: heap {:.0} MiB (empty: {:.0}), LMDB pages mapped {:.0} MiB (empty: {:.0})",
            mib(after.0),
            mib(before.0),
            mib(after.1),
            mib(before.1)
        );
        println!(
            "    RSS / files = {:.0} B/file, of which heap {:.0} B/file (the rest is LMDB page cache, reclaimable)",
            (after.0 + after.1) as f64 / files as f64,
            after.0.saturating_sub(before.0) as f64 / files as f64
        );
    }
    if let Some(path) = &args.json {
        let j = serde_json::json!({
            "fdatasync_us": { "p50": sync.p50, "p99": sync.p99 },
            "loopback_rtt_us": { "p50": rtt.p50, "p99": rtt.p99 },
            "runs": runs.iter().map(|r| serde_json::json!({
                "op": r.op, "clients": r.clients, "ops_per_sec": r.ops_per_sec, "p50_us": r.lat.p50, "p99_us": r.lat.p99,
            })).collect::<Vec<_>>(),
            "memory": memory.map(|(files, after, before)| serde_json::json!({
                "files": files, "anon_bytes": after.0, "file_bytes": after.1,
                "empty_anon_bytes": before.0, "empty_file_bytes": before.1,
            })),
        });
        std::fs::write(path, format!("{j:#}\n")).with_context(|| format!("write {}", path.display()))?;
        println!("results written to {}", path.display());
    }
    drop(cluster);
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "OK" } else { "MISSED" }
}
