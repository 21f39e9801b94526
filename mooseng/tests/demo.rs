//! `mooseng demo` as a user runs it: it comes up, mounts, writes `cluster.json` listing every
//! process, serves files, survives a metadata server being killed, and tears everything down
//! on SIGTERM, leaving no process and no mount behind.
//!
//! Tier: fuse (real processes and a real FUSE mount; needs `/dev/fuse`).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{free_ports, fuse_or_skip, is_mounted};

fn alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[test]
fn the_demo_comes_up_serves_files_survives_a_kill_and_cleans_up() {
    if !fuse_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("demo");
    // The demo's whole port plan (base .. base+30), reserved from other tests' clusters.
    let base = free_ports(30);
    let log = dir.path().join("demo.stderr");
    let mut demo = Command::new(common::bin())
        .args(["demo", "--base-port", &base.to_string(), "--data-dir"])
        .arg(&data_dir)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(demo.stdout.take().unwrap());
    let started = Instant::now();
    let mut line = String::new();
    while !line.contains("Ctrl-C stops everything") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the demo exited before it was up:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the demo did not come up"
        );
    }

    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data_dir.join("cluster.json")).unwrap()).unwrap();
    let mnt = PathBuf::from(manifest["mountpoint"].as_str().unwrap());
    assert!(is_mounted(&std::fs::canonicalize(&mnt).unwrap()));
    let procs = manifest["processes"].as_array().unwrap();
    let count = |role: &str| procs.iter().filter(|p| p["role"] == role).count();
    assert_eq!((count("mds"), count("chunkserver"), count("mount")), (3, 3, 1));
    for p in procs {
        assert!(alive(p["pid"].as_u64().unwrap()), "{p}");
        assert!(Path::new(p["log"].as_str().unwrap()).exists());
        if p["role"] != "mount" {
            let url = p["urls"]
                .as_array()
                .unwrap()
                .iter()
                .find(|u| u.as_str().unwrap().ends_with("/health"))
                .unwrap();
            let addr = url
                .as_str()
                .unwrap()
                .trim_start_matches("http://")
                .trim_end_matches("/health");
            assert_eq!(
                testkit::http_get(addr.parse().unwrap(), "/health").0,
                200,
                "{url}"
            );
        }
    }

    std::fs::write(mnt.join("before"), b"written before the kill").unwrap();
    let mds1 = procs.iter().find(|p| p["role"] == "mds" && p["id"] == 1).unwrap()["pid"]
        .as_u64()
        .unwrap();
    Command::new("kill")
        .args(["-9", &mds1.to_string()])
        .status()
        .unwrap();
    std::fs::write(mnt.join("after"), b"written after the kill").unwrap();
    assert_eq!(
        std::fs::read(mnt.join("before")).unwrap(),
        b"written before the kill"
    );
    assert_eq!(
        std::fs::read(mnt.join("after")).unwrap(),
        b"written after the kill"
    );

    Command::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status()
        .unwrap();
    let stopped = Instant::now();
    let status = loop {
        if let Some(s) = demo.try_wait().unwrap() {
            break s;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(60),
            "the demo did not stop on SIGTERM"
        );
        testkit::pause(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(
        !is_mounted(&std::fs::canonicalize(&mnt).unwrap_or(mnt.clone())),
        "unmounted"
    );
    for p in procs {
        assert!(!alive(p["pid"].as_u64().unwrap()), "{} left running", p["pid"]);
    }
}
