//! Tier: integration (real processes in network namespaces; root only).
//!
//! The CI matrix on strict mode — register × {partition, kill, pause}, set × {kill, clock
//! skew}, counter × {partition + kill}, rename-tree × {WAN delay + leader transfer}, set ×
//! membership changes, files through a FUSE mount × {server kill + partition + chunkserver
//! kill} — must come out valid, and runs with a deliberate bug switched on in the servers must
//! come out invalid with the matching anomaly: the harness can catch what it claims to.
//!
//! The `mooseng` binary beside `jepsen` is the one this test build made (`cargo nextest run
//! --workspace` builds it, with the `deliberate-bugs` feature this crate's dev-dependency asks
//! for).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

fn jepsen() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_jepsen"))
}

/// Why this machine cannot run the harness, if it cannot.
fn unable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        == Some("0");
    if !root {
        return Some("not root".into());
    }
    for tool in ["ip", "nft"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

struct Run {
    code: i32,
    summary: Value,
    history: String,
}

/// Runs `jepsen run ARGS` with 3 servers at 40 ops/s for 15 s, a fault every 2.5 s.
fn run(args: &[&str]) -> Option<Run> {
    run_for(args, "15", "2.5")
}

fn run_for(args: &[&str], time_limit: &str, interval: &str) -> Option<Run> {
    if let Some(why) = unable() {
        eprintln!("SKIPPED: the Jepsen harness needs root, ip and nft ({why})");
        return None;
    }
    let mooseng = jepsen().with_file_name("mooseng");
    assert!(
        mooseng.exists(),
        "{} is missing: build it in the same target dir (cargo build -p mooseng --features deliberate-bugs)",
        mooseng.display()
    );
    let out = tempfile::Builder::new()
        .prefix("jepsen-run-")
        .tempdir()
        .expect("temp dir");
    let output = Command::new(jepsen())
        .arg("run")
        .args(args)
        .args([
            "--nodes",
            "3",
            "--rate",
            "40",
            "--time-limit",
            time_limit,
            "--interval",
            interval,
        ])
        .arg("--out")
        .arg(out.path())
        .arg("--mooseng")
        .arg(&mooseng)
        .output()
        .expect("run jepsen");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}\n{stderr}");
    let summary = std::fs::read_to_string(out.path().join("summary.json"))
        .unwrap_or_else(|e| panic!("no summary.json ({e}); the run failed before its checks"));
    let history = std::fs::read_to_string(out.path().join("history.jsonl")).expect("history.jsonl");
    assert!(out.path().join("report.html").exists(), "report.html");
    let code = output.status.code().unwrap_or(-1);
    if code == 1 || code == 2 {
        // Keep the evidence of an unexpected failure; expected failures are asserted below.
        let kept = out.keep();
        eprintln!("run output kept in {}", kept.display());
    }
    Some(Run {
        code,
        summary: serde_json::from_str(&summary).expect("summary.json parses"),
        history,
    })
}

fn faults(r: &Run, name: &str) -> usize {
    r.history
        .lines()
        .filter(|l| l.contains("\"process\":\"nemesis\"") && l.contains(&format!("\"f\":\"start-{name}\"")))
        .count()
}

fn assert_valid(r: &Run, fault: &str) {
    assert_valid_after(r, fault, 2);
}

/// Valid, with at least `min` faults of kind `fault` injected and 100 operations done.
fn assert_valid_after(r: &Run, fault: &str, min: usize) {
    assert_eq!(r.summary["valid"]["valid"], "true", "{:#}", r.summary);
    assert_eq!(r.code, 0);
    assert!(
        faults(r, fault) >= min,
        "fewer than {min} {fault} faults were injected"
    );
    let oks: u64 = r.summary["ops"]
        .as_object()
        .expect("ops")
        .iter()
        .filter(|(k, _)| k.ends_with(":ok"))
        .map(|(_, v)| v.as_u64().unwrap_or(0))
        .sum();
    assert!(
        oks >= 100,
        "only {oks} operations succeeded: {:#}",
        r.summary["ops"]
    );
}

#[test]
fn register_under_partitions_is_linearizable() {
    if let Some(r) = run(&["--workload", "register", "--nemesis", "partition", "--seed", "11"]) {
        assert_valid(&r, "partition");
    }
}

#[test]
fn register_under_kills_is_linearizable() {
    if let Some(r) = run(&["--workload", "register", "--nemesis", "kill", "--seed", "12"]) {
        assert_valid(&r, "kill");
    }
}

#[test]
fn register_under_pauses_is_linearizable() {
    if let Some(r) = run(&["--workload", "register", "--nemesis", "pause", "--seed", "13"]) {
        assert_valid(&r, "pause");
    }
}

#[test]
fn set_under_kills_loses_no_acknowledged_create() {
    if let Some(r) = run(&["--workload", "set", "--nemesis", "kill", "--seed", "14"]) {
        assert_valid(&r, "kill");
    }
}

#[test]
fn set_under_clock_skew_loses_no_acknowledged_create() {
    if !std::path::Path::new(jepsen::nodes::FAKETIME_LIB).exists() {
        eprintln!("SKIPPED: clock skew needs libfaketime (apt-get install libfaketime)");
        return;
    }
    if let Some(r) = run(&["--workload", "set", "--nemesis", "skew", "--seed", "15"]) {
        assert_valid(&r, "skew");
    }
}

#[test]
fn counter_under_partitions_and_kills_stays_within_its_bounds() {
    if let Some(r) = run(&[
        "--workload",
        "counter",
        "--nemesis",
        "partition,kill",
        "--seed",
        "16",
    ]) {
        assert_eq!(r.summary["valid"]["valid"], "true", "{:#}", r.summary);
        assert!(faults(&r, "partition") + faults(&r, "kill") >= 2);
        assert!(
            r.summary["ops"]["add:ok"].as_u64() > Some(10),
            "quota usage was incremented: {:#}",
            r.summary["ops"]
        );
    }
}

#[test]
fn rename_tree_under_wan_delay_and_leader_transfers_stays_a_tree() {
    if let Some(r) = run(&[
        "--workload",
        "rename-tree",
        "--nemesis",
        "delay,transfer",
        "--seed",
        "17",
    ]) {
        assert_eq!(r.summary["valid"]["valid"], "true", "{:#}", r.summary);
        assert!(
            faults(&r, "delay") >= 1 && faults(&r, "transfer") >= 1,
            "this seed plans both"
        );
        // The delayer really held packets: operations begun while a delay (20 ms or more
        // each way) was on took longer than that, at the median.
        let ops: Vec<jepsen::history::Op> = r
            .history
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut windows = Vec::new();
        let mut open = None;
        for o in ops
            .iter()
            .filter(|o| o.process == jepsen::history::Process::NEMESIS)
        {
            match o.f.as_str() {
                "start-delay" => open = Some(o.time),
                "stop-delay" => windows.extend(open.take().map(|from| (from, o.time))),
                _ => {}
            }
        }
        let mut delayed: Vec<u64> = jepsen::history::pairs(&ops)
            .iter()
            .filter(|p| windows.iter().any(|(a, b)| (*a..*b).contains(&p.invoke.time)))
            .filter_map(|p| p.complete.map(|c| c.time - p.invoke.time))
            .collect();
        delayed.sort_unstable();
        assert!(!delayed.is_empty(), "no operation ran during a delay");
        let median = delayed[delayed.len() / 2];
        assert!(
            median > 20_000_000,
            "median {median} ns during a delay: packets were not held"
        );
    }
}

#[test]
fn set_under_membership_changes_loses_no_acknowledged_create() {
    if let Some(r) = run(&["--workload", "set", "--nemesis", "membership", "--seed", "18"]) {
        // Adding a server back waits until it has caught up, so fewer cycles fit in 15 s.
        assert_valid_after(&r, "membership", 1);
    }
}

#[test]
fn files_through_a_mount_under_kills_lose_nothing_fsynced() {
    if !std::path::Path::new("/dev/fuse").exists() {
        eprintln!("SKIPPED: the files workload needs /dev/fuse");
        return;
    }
    let args = [
        "--workload",
        "files",
        "--nemesis",
        "kill,partition,chunkserver-kill",
        "--seed",
        "20",
    ];
    if let Some(r) = run(&args) {
        // This seed plans a metadata-server kill, a chunkserver kill, and another server kill.
        assert_valid_after(&r, "kill", 2);
        assert!(faults(&r, "chunkserver-kill") >= 1, "no chunkserver was killed");
        // Every final listing went through the second mount, made after the heal.
        assert!(r.history.contains(r#""last":true"#));
    }
}

/// A run stopped from outside (SIGTERM to the harness, as a CI timeout would) still removes
/// its namespaces and every server it started.
#[test]
#[allow(clippy::disallowed_methods, reason = "a plain test thread, no async runtime")]
fn an_interrupted_run_leaves_no_namespace_or_server_behind() {
    if let Some(why) = unable() {
        eprintln!("SKIPPED: the Jepsen harness needs root, ip and nft ({why})");
        return;
    }
    let out = tempfile::Builder::new()
        .prefix("jepsen-run-")
        .tempdir()
        .expect("temp dir");
    let mut child = Command::new(jepsen())
        .args([
            "run",
            "--workload",
            "set",
            "--nemesis",
            "kill",
            "--time-limit",
            "60",
            "--seed",
            "19",
        ])
        .arg("--out")
        .arg(out.path())
        .arg("--mooseng")
        .arg(jepsen().with_file_name("mooseng"))
        .spawn()
        .expect("start jepsen");
    let prefix = format!("jp{}", child.id());
    let namespaces = || {
        let list = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip netns list");
        String::from_utf8_lossy(&list.stdout)
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .count()
    };
    let started = std::time::Instant::now();
    while !out.path().join("cluster-run/logs/mds3.log").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the servers never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(namespaces() >= 5, "the run's namespaces exist while it runs");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(status.is_ok_and(|s| s.success()));
    let status = child.wait().expect("wait for jepsen");
    assert!(!status.success(), "an interrupted run does not report success");
    assert_eq!(namespaces(), 0, "namespaces {prefix}* left behind");
    let servers = Command::new("pgrep")
        .args(["-f", &out.path().display().to_string()])
        .output()
        .expect("pgrep");
    assert!(
        servers.stdout.is_empty(),
        "processes of the run still alive: {}",
        String::from_utf8_lossy(&servers.stdout)
    );
}

fn check_named<'a>(r: &'a Run, name: &str) -> &'a Value {
    r.summary["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"].as_str().is_some_and(|n| n.contains(name)))
        .unwrap_or_else(|| panic!("no {name} check in {:#}", r.summary))
}

#[test]
fn stale_follower_reads_are_caught_by_the_linearizability_checker() {
    let args = [
        "--workload",
        "register",
        "--nemesis",
        "partition",
        "--seed",
        "21",
        "--bug",
        "stale-follower-reads",
    ];
    if let Some(r) = run(&args) {
        assert_eq!(r.code, 1, "the run must fail: {:#}", r.summary);
        let c = check_named(&r, "linearizable");
        assert_eq!(c["verdict"]["valid"], "false", "{c:#}");
    }
}

/// One partition only (3 s to 6 s of an 8 s run): the leader cut off keeps acknowledging
/// creates the others never see. Reads on the majority side miss them (stale) and so does the
/// final read (lost); after the heal raft-rs stops the old leader on the conflicting log, and
/// the two others still form a quorum for the final read. (With a second partition the
/// surviving leader could be cut off too, and the cluster left without a quorum.)
#[test]
fn acknowledging_before_a_quorum_fsync_is_caught_as_lost_creates() {
    let args = [
        "--workload",
        "set",
        "--nemesis",
        "partition",
        "--partition-mode",
        "isolate-leader",
        "--seed",
        "22",
        "--bug",
        "ack-before-fsync",
    ];
    if let Some(r) = run_for(&args, "8", "3") {
        assert_eq!(r.code, 1, "the run must fail: {:#}", r.summary);
        assert_eq!(faults(&r, "partition"), 1);
        let c = check_named(&r, "set-full");
        assert_eq!(c["verdict"]["valid"], "false", "{c:#}");
        assert!(
            c["verdict"]["why"]
                .as_str()
                .is_some_and(|w| w.contains("lost") || w.contains("stale")),
            "{c:#}"
        );
    }
}
