//! `mooseng demo`: a whole cluster on this machine (metadata servers and chunkservers, each
//! its own process, on loopback) mounted at a directory, torn down on Ctrl-C or SIGTERM.
//!
//! | module | what it holds |
//! |---|---|
//! | [`procs`] | the child processes |
//!
//! Ports follow the deployment convention with a per-node offset: metadata server `i` listens
//! on `base + 10(i-1) + 1/2/3` (client, raft, HTTP), chunkserver `i` on `base + 10(i-1)` (data)
//! and `+ 5` (HTTP). With the default base 9420, server 1 has 9421–9423 and chunkserver 1 has
//! 9420 and 9425.

pub mod procs;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use proto::admin::{AdminReply, AdminRequest, Role as RaftRole};
use serde::Serialize;

use self::procs::{Proc, Role};
use crate::cmd::ClusterArgs;
use crate::cmd::init::{self, InitArgs};
use crate::cmd::mds::shutdown_signal;

/// How long each start-up step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Arguments of `mooseng demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to mount the file system (default: `<data-dir>/mnt`).
    #[arg(long)]
    pub mount: Option<PathBuf>,
    /// Where the cluster keeps everything. Default: a new temporary directory, removed at
    /// exit. A directory from an earlier demo is started again with its data.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Metadata servers.
    #[arg(long, default_value_t = 3)]
    pub mds: u64,
    /// Chunkservers.
    #[arg(long, default_value_t = 3)]
    pub chunkservers: u64,
    /// Data dirs (simulated disks) per chunkserver.
    #[arg(long, default_value_t = 2)]
    pub disks: usize,
    /// First port; see the port plan in `mooseng demo --help`.
    #[arg(long, default_value_t = 9420)]
    pub base_port: u16,
}

/// What `<data-dir>/cluster.json` says.
#[derive(Debug, Serialize)]
struct Manifest<'a> {
    data_dir: &'a Path,
    cluster_dir: PathBuf,
    mountpoint: &'a Path,
    processes: &'a [Proc],
}

/// The running demo.
struct Demo {
    procs: Vec<Proc>,
    mountpoint: PathBuf,
    temp: Option<tempfile::TempDir>,
}

/// Runs the demo until Ctrl-C or SIGTERM.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    if args.mds == 0 || args.chunkservers == 0 || args.disks == 0 {
        bail!("the demo needs at least one metadata server, one chunkserver and one disk each");
    }
    let (temp, data_dir) = match &args.data_dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
            (None, std::fs::canonicalize(d)?)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("mooseng-demo-")
                .tempdir()
                .context("create a temporary directory")?;
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    let mountpoint = args.mount.clone().unwrap_or_else(|| data_dir.join("mnt"));
    let mut demo = Demo {
        procs: Vec::new(),
        mountpoint,
        temp,
    };
    let started = start(&args, &data_dir, &mut demo).await;
    if let Err(e) = started {
        demo.stop().await;
        return Err(e);
    }
    let manifest = Manifest {
        data_dir: &data_dir,
        cluster_dir: data_dir.join("cluster"),
        mountpoint: &demo.mountpoint,
        processes: &demo.procs,
    };
    let json_path = data_dir.join("cluster.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&manifest)? + "\n")
        .with_context(|| format!("write {}", json_path.display()))?;
    print_summary(&demo, &data_dir, &json_path);
    supervise(&mut demo).await;
    eprintln!("stopping…");
    demo.stop().await;
    Ok(())
}

/// Brings up every process and waits until the cluster is healthy and mounted.
async fn start(args: &DemoArgs, data_dir: &Path, demo: &mut Demo) -> anyhow::Result<()> {
    let cluster_dir = data_dir.join("cluster");
    let logs = data_dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let mds_port = |id: u64, k: u64| port(args.base_port, id, k);
    if cluster_dir.join("cluster.toml").exists() {
        eprintln!("restarting the demo cluster in {}", data_dir.display());
    } else {
        for id in 1..=args.mds {
            for k in 1..=3 {
                check_free(mds_port(id, k)?)?;
            }
        }
        init::create(InitArgs {
            dir: cluster_dir.clone(),
            name: "mooseng-demo".into(),
            shards: 1,
            replicas: 3,
            nodes: Vec::new(),
            local: Some(args.mds),
            host: "127.0.0.1".into(),
            base_port: mds_port(1, 1)?,
            clients: Vec::new(),
            chunkservers: args.chunkservers,
        })?;
    }
    let cluster = ClusterArgs {
        cluster_dir: cluster_dir.clone(),
        identity: "client-admin".into(),
    };
    let (file, client) = cluster.client()?;
    let cd = cluster_dir.display().to_string();
    for n in &file.nodes {
        let data = data_dir.join(format!("mds{}", n.id)).display().to_string();
        let args: Vec<String> = [
            "mds",
            "--cluster-dir",
            &cd,
            "--node-id",
            &n.id.to_string(),
            "--data-dir",
            &data,
        ]
        .map(String::from)
        .to_vec();
        let ports = [
            ("client", &n.client_addr),
            ("raft", &n.raft_addr),
            ("http", &n.http_addr),
        ]
        .map(|(name, a)| {
            (
                name.to_string(),
                a.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0),
            )
        })
        .to_vec();
        let log = logs.join(format!("mds{}.log", n.id));
        demo.procs.push(Proc::spawn(Role::Mds, n.id, &args, &log, ports)?);
    }
    eprint!("waiting for the metadata servers to elect leaders");
    wait(demo, "the metadata servers to elect leaders", || async {
        leaders(&client, &file).await
    })
    .await?;
    for id in 1..=args.chunkservers {
        let root = data_dir.join(format!("cs{id}"));
        let mut dirs = Vec::new();
        for d in 1..=args.disks {
            let dir = root.join(format!("disk{d}"));
            std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
            dirs.push(dir.display().to_string());
        }
        let (data, http) = (port(args.base_port, id, 0)?, port(args.base_port, id, 5)?);
        let args: Vec<String> = [
            "chunkserver",
            "--cluster-dir",
            &cd,
            "--id",
            &id.to_string(),
            "--data-dir",
            &dirs.join(","),
            "--data-addr",
            &format!("127.0.0.1:{data}"),
            "--http-addr",
            &format!("127.0.0.1:{http}"),
        ]
        .map(String::from)
        .to_vec();
        let ports = vec![("data".into(), data), ("http".into(), http)];
        let log = logs.join(format!("cs{id}.log"));
        demo.procs
            .push(Proc::spawn(Role::Chunkserver, id, &args, &log, ports)?);
    }
    eprint!("waiting for the chunkservers to register");
    let https: Vec<SocketAddr> = file
        .nodes
        .iter()
        .filter_map(|n| n.http_addr.parse().ok())
        .collect();
    let want = args.chunkservers as usize;
    wait(demo, "the chunkservers to register", || async {
        alive_chunkservers(&https) >= want
    })
    .await?;
    std::fs::create_dir_all(&demo.mountpoint)
        .with_context(|| format!("create {}", demo.mountpoint.display()))?;
    let mnt = demo.mountpoint.display().to_string();
    let args: Vec<String> = ["mount", &mnt, "--cluster-dir", &cd].map(String::from).to_vec();
    demo.procs.push(Proc::spawn(
        Role::Mount,
        0,
        &args,
        &logs.join("mount.log"),
        Vec::new(),
    )?);
    eprint!("mounting at {mnt}");
    let mountpoint = std::fs::canonicalize(&demo.mountpoint)?;
    wait(demo, "the mount", || async { is_mounted(&mountpoint) }).await?;
    client.close().await;
    Ok(())
}

/// Port `k` of node `id`: `base + 10(id-1) + k`.
fn port(base: u16, id: u64, k: u64) -> anyhow::Result<u16> {
    u16::try_from(u64::from(base) + (id - 1) * 10 + k)
        .context("the port plan runs past 65535; lower --base-port")
}

fn check_free(port: u16) -> anyhow::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    if TcpListener::bind(addr).is_err() || UdpSocket::bind(addr).is_err() {
        bail!("port {port} is in use (is another demo running?); choose other ports with --base-port");
    }
    Ok(())
}

/// Polls `ready` every 200 ms, printing a dot per second, until it holds; fails if a
/// process died meanwhile or after [`STEP_TIMEOUT`].
async fn wait<F: Future<Output = bool>>(
    demo: &mut Demo,
    what: &str,
    mut ready: impl FnMut() -> F,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut dots = 0;
    loop {
        if ready().await {
            eprintln!(" ok ({:.1} s)", started.elapsed().as_secs_f64());
            return Ok(());
        }
        for p in &mut demo.procs {
            if let Some(status) = p.exited() {
                eprintln!();
                bail!(
                    "{} exited ({status}) while waiting for {what}; its log ends with:\n{}",
                    p.name(),
                    p.log_tail()
                );
            }
        }
        if started.elapsed() > STEP_TIMEOUT {
            eprintln!();
            bail!(
                "{what}: not within {STEP_TIMEOUT:?}; see the logs in {}",
                demo.procs[0]
                    .log
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
        }
        if started.elapsed().as_secs() > dots {
            dots += 1;
            eprint!(".");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether every shard has a leader.
async fn leaders(client: &client::MdsClient, file: &mds::cluster::ClusterFile) -> bool {
    let mut led = std::collections::BTreeSet::new();
    for n in &file.nodes {
        let Ok(addr) = n.client_addr.parse() else { continue };
        if let Ok(AdminReply::Status(s)) = client.admin(addr, AdminRequest::Status).await {
            led.extend(
                s.shards
                    .iter()
                    .filter(|s| s.role == RaftRole::Leader)
                    .map(|s| s.shard),
            );
        }
    }
    led.len() as u32 >= file.shards
}

/// The fewest chunkservers any metadata server sees alive (every server places chunks for
/// the shards it leads).
fn alive_chunkservers(https: &[SocketAddr]) -> usize {
    https
        .iter()
        .map(|a| web::get(*a, "/status").unwrap_or_default())
        .map(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default())
        .map(|s| {
            s["chunkservers"]
                .as_array()
                .map_or(0, |a| a.iter().filter(|c| c["alive"] == true).count())
        })
        .min()
        .unwrap_or(0)
}

/// Whether `path` is a mount point of a MooseNG mount.
pub fn is_mounted(path: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mounts").is_ok_and(|m| {
        m.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 2 && Path::new(f[1]) == path && f[2].starts_with("fuse")
        })
    })
}

fn print_summary(demo: &Demo, data_dir: &Path, json: &Path) {
    println!();
    println!("MooseNG demo is up.");
    println!("  mountpoint    {}", demo.mountpoint.display());
    println!(
        "  data dir      {}{}",
        data_dir.display(),
        if demo.temp.is_some() {
            " (removed at exit)"
        } else {
            ""
        }
    );
    println!("  manifest      {}", json.display());
    for p in &demo.procs {
        let ports: Vec<String> = p.ports.iter().map(|(n, v)| format!("{n} {v}")).collect();
        println!("  {:<14} pid {:<7} {}", p.name(), p.pid, ports.join(", "));
        if let Some(url) = p.urls.iter().find(|u| u.ends_with("/status")) {
            println!("  {:<14} {url}", "");
        }
    }
    let cd = data_dir.join("cluster");
    println!();
    println!("Try:");
    println!(
        "  echo hello > {}/hello && cat {}/hello",
        demo.mountpoint.display(),
        demo.mountpoint.display()
    );
    println!("  mooseng admin status --cluster-dir {}", cd.display());
    println!("  mooseng admin goal set / fast --cluster-dir {}", cd.display());
    println!("  kill <an mds pid> and watch the cluster carry on");
    println!("Ctrl-C stops everything.");
}

/// Waits for Ctrl-C or SIGTERM, reporting processes that exit meanwhile.
async fn supervise(demo: &mut Demo) {
    let mut shutdown = std::pin::pin!(shutdown_signal());
    let mut reported = std::collections::HashSet::new();
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        for p in &mut demo.procs {
            if !reported.contains(&p.pid)
                && let Some(status) = p.exited()
            {
                reported.insert(p.pid);
                eprintln!(
                    "{} (pid {}) exited: {status}; the rest keeps running",
                    p.name(),
                    p.pid
                );
            }
        }
    }
}

impl Demo {
    /// Unmounts, then stops the chunkservers and the metadata servers (each with SIGTERM,
    /// killed after 10 s), then removes a temporary data dir.
    async fn stop(&mut self) {
        for role in [Role::Mount, Role::Chunkserver, Role::Mds] {
            let group: Vec<&mut Proc> = self.procs.iter_mut().filter(|p| p.role == role).collect();
            for p in &group {
                p.terminate();
            }
            for p in group {
                if !p.wait_or_kill(Duration::from_secs(10)).await {
                    eprintln!("{} did not stop within 10 s of SIGTERM and was killed", p.name());
                }
            }
            if role == Role::Mount
                && let Ok(m) = std::fs::canonicalize(&self.mountpoint)
                && is_mounted(&m)
            {
                let _ = std::process::Command::new("fusermount3")
                    .arg("-u")
                    .arg("-z")
                    .arg(&m)
                    .status();
            }
        }
        if let Some(t) = self.temp.take() {
            let path = t.path().to_path_buf();
            if let Err(e) = t.close() {
                eprintln!("could not remove {}: {e}", path.display());
            }
        }
    }
}
