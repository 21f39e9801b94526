//! Faults under a real mount (issue 4): the metadata leader killed during a `cp -r`, a
//! chunkserver lost while files are read and written, a corrupted block of one copy.
//!
//! Tier: fuse (real `mooseng` processes and real FUSE mounts; needs `/dev/fuse`).
//!
//! `MOOSENG_TEST_LOG` sets `RUST_LOG` of every process (see `testkit`).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use client::{MdsClient, ReadFrom};
use proto::fs::{ChunkLocation, FsOp, FsReply};
use testkit::{Cluster, SplitMix, fuse_or_skip, http_get, read_copy, root};

/// How long a lost copy may stay lost (docs/design/003-data-path.md, "Bound"): dead-after
/// (5 s) + one scan pass (1 s) + the order's heartbeat (1 s) + the copy of a few MiB + one
/// report (0.5 s) is about 8 s; the rest is room for a loaded 2-core CI machine (the same
/// bound as `data_replication.rs`).
const REPAIR_BOUND: Duration = Duration::from_secs(20);

/// How much longer than before a read through the mount may take while a copy's server has
/// just died (before the metadata servers call it dead): the mount must fall over to another
/// copy after the data client's sign-of-life wait (0.5 s, once per chunk and open file), not
/// wait out its request timeout (10 s) or its connect timeout (3 s).
const FALL_OVER_BOUND: Duration = Duration::from_millis(1500);

/// Writes a tree of `files` files of 0 B – 3 MiB (most small, one in twenty large) in nested
/// directories under `root`; returns the total bytes.
fn build_tree(root: &Path, files: usize, seed: u64) -> u64 {
    let mut rng = SplitMix(seed);
    let mut dirs = vec![root.to_path_buf()];
    for d in 0..24 {
        let parent = dirs[rng.below(dirs.len() as u64) as usize].clone();
        let dir = parent.join(format!("dir{d}"));
        fs::create_dir_all(&dir).unwrap();
        dirs.push(dir);
    }
    let mut total = 0;
    for f in 0..files {
        let size = match f % 20 {
            _ if f % 50 == 0 => 0,
            _ if f % 50 == 1 => 3 << 20,
            0..=9 => rng.below(4096),
            10..=18 => rng.below(256 << 10),
            _ => (256 << 10) + rng.below((3 << 20) - (256 << 10)),
        } as usize;
        let dir = &dirs[rng.below(dirs.len() as u64) as usize];
        fs::write(dir.join(format!("file{f}.bin")), rng.bytes(size)).unwrap();
        total += size as u64;
    }
    total
}

/// Every entry under `root` by relative path: `None` for a directory, the contents for a
/// file.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display())) {
            let e = e.unwrap();
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if e.file_type().unwrap().is_dir() {
                stack.push(path);
                out.insert(rel, None);
            } else {
                let data = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                assert_eq!(
                    data.len() as u64,
                    fs::metadata(&path).unwrap().len(),
                    "{}: size",
                    rel.display()
                );
                out.insert(rel, Some(data));
            }
        }
    }
    out
}

/// Asserts that `copy` holds exactly the tree at `source`: names, kinds, sizes and contents.
fn assert_same_tree(source: &Path, copy: &Path, what: &str) {
    let (want, got) = (snapshot(source), snapshot(copy));
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: missing {missing:?}, extra {extra:?}"
    );
    for (path, data) in &want {
        let other = &got[path];
        match (data, other) {
            (Some(a), Some(b)) if a != b => {
                let at = a.iter().zip(b).position(|(x, y)| x != y);
                panic!(
                    "{what}: {} differs: {} bytes expected, {} read, first difference at {at:?}",
                    path.display(),
                    a.len(),
                    b.len()
                );
            }
            (Some(_), None) | (None, Some(_)) => panic!("{what}: {} is of another kind", path.display()),
            _ => {}
        }
    }
    eprintln!("{what}: {} entries identical", want.len());
}

/// `cp -r` into the mount while the metadata leader is SIGKILLed twice (each restarted once
/// another leader serves): the copy exits 0 and the tree on the mount is identical, through
/// the same mount and through a fresh one.
#[test]
fn metadata_leader_killed_during_a_copy() {
    if !fuse_or_skip() {
        return;
    }
    let source = tempfile::tempdir().unwrap();
    let src = source.path().join("tree");
    let total = build_tree(&src, 300, 0x5EED_C0DE);
    let mut cluster = Cluster::start_fs(common::bin(), 3, 3, 2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _rt = rt.enter();
    let client = cluster.client();
    let mut mount = cluster.mount("");
    let dst = mount.join("copy");

    let started = Instant::now();
    let mut cp = Command::new("cp")
        .arg("-rv")
        .arg(&src)
        .arg(&dst)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cp");
    // cp -v prints one line per entry copied: the progress the kills are timed by.
    let copied = Arc::new(AtomicUsize::new(0));
    let out = cp.stdout.take().unwrap();
    let progress = {
        let copied = copied.clone();
        std::thread::spawn(move || {
            for _ in BufReader::new(out).lines() {
                copied.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let err = cp.stderr.take().unwrap();
    let errors = std::thread::spawn(move || std::io::read_to_string(err).unwrap_or_default());

    let mut errors = Some(errors);
    // Waits until `n` entries are copied; panics with cp's complaint if it exits first.
    let mut wait_copied = |cp: &mut std::process::Child, n: usize, what: &str| {
        let waited = Instant::now();
        while copied.load(Ordering::Relaxed) < n {
            if let Some(status) = cp.try_wait().unwrap() {
                let stderr = errors.take().map(|e| e.join().unwrap()).unwrap_or_default();
                panic!(
                    "cp exited ({status}) after {} entries, before {what}: {stderr}",
                    copied.load(Ordering::Relaxed)
                );
            }
            assert!(
                waited.elapsed() < Duration::from_secs(60),
                "{what}: no progress for 60 s"
            );
            std::thread::park_timeout(Duration::from_millis(50));
        }
    };
    let mut kills = Vec::new();
    for at in [60, 200] {
        wait_copied(&mut cp, at, &format!("the kill at {at} entries"));
        assert!(
            cp.try_wait().unwrap().is_none(),
            "the copy finished before the kill at {at} entries: make the tree larger"
        );
        let leader = rt.block_on(cluster.wait_leader(&client, 0, Duration::from_secs(10)));
        cluster.kill(leader);
        let killed = Instant::now();
        let next = rt.block_on(cluster.wait_leader(&client, 0, Duration::from_secs(10)));
        eprintln!(
            "killed leader {leader} after {} entries, {:?} into the copy; {next} leads {:?} later",
            copied.load(Ordering::Relaxed),
            started.elapsed(),
            killed.elapsed()
        );
        kills.push(leader);
        // The copy goes on under the new leader before the old one comes back.
        let seen = copied.load(Ordering::Relaxed);
        wait_copied(&mut cp, seen + 20, "progress under the new leader");
        eprintln!("20 more entries copied {:?} after the kill", killed.elapsed());
        cluster.spawn(leader);
    }
    let status = loop {
        if let Some(s) = cp.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "cp did not finish within 300 s"
        );
        std::thread::park_timeout(Duration::from_millis(50));
    };
    progress.join().unwrap();
    let stderr = errors.take().unwrap().join().unwrap();
    eprintln!(
        "cp of {} entries ({total} bytes) took {:?}, leaders killed: {kills:?}",
        copied.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert!(status.success(), "cp failed ({status}): {stderr}");
    assert!(stderr.is_empty(), "cp complained: {stderr}");

    assert_same_tree(&src, &dst, "through the same mount");
    let mut fresh = cluster.mount("");
    assert_same_tree(&src, &fresh.join("copy"), "through a fresh mount");
    assert!(mount.unmount() && fresh.unmount(), "the mounts unmount cleanly");
}

/// Bytes of file `n` of `len` bytes.
fn content(n: u64, len: usize) -> Vec<u8> {
    SplitMix(0xF11E ^ (n << 32)).bytes(len)
}

/// The chunk of file `ino` at `index`, as its shard's leader sees it.
async fn locate(client: &MdsClient, ino: u64, index: u64) -> ChunkLocation {
    match client
        .fs(&root(), FsOp::ChunkForRead { ino, index }, ReadFrom::Leader)
        .await
    {
        Ok(FsReply::Chunk(c)) => c,
        other => panic!("chunk {index} of {ino}: {other:?}"),
    }
}

/// Asserts `got == want`, describing the first difference otherwise.
fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: {} bytes read, {} expected, first difference at {at:?}",
            got.len(),
            want.len()
        );
    }
}

/// Reads `path` and times it.
fn timed_read(path: &Path) -> (Vec<u8>, Duration) {
    let t = Instant::now();
    let data = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    (data, t.elapsed())
}

/// A chunkserver holding copies is SIGKILLed: reads through the mount go on at once with the
/// right bytes, writes during the outage succeed, and the keeper restores two live copies of
/// every chunk within [`REPAIR_BOUND`]; when the server comes back its stale copies are not
/// served.
#[test]
fn chunkserver_lost_under_a_mount() {
    if !fuse_or_skip() {
        return;
    }
    let mut cluster = Cluster::start_fs(common::bin(), 3, 3, 2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _rt = rt.enter();
    let client = cluster.client();
    let data = cluster.data_client();
    let mut a = cluster.mount("");

    let mut files: Vec<(String, Vec<u8>)> = [(3 << 20) + 17, 1 << 20, (5 << 20) + 123, 70_000]
        .into_iter()
        .enumerate()
        .map(|(n, len)| (format!("f{n}"), content(n as u64, len)))
        .collect();
    for (name, bytes) in &files {
        fs::write(a.join(name), bytes).unwrap();
    }
    let ino = |name: &str| fs::metadata(a.join(name)).unwrap().ino();
    // Each open drops the kernel's cached pages: every read below reaches the chunkservers.
    let mut before = Vec::new();
    for (name, bytes) in &files {
        let (got, took) = timed_read(&a.join(name));
        assert_bytes(&got, bytes, &format!("{name} before the kill"));
        before.push(took);
    }
    let loc = rt.block_on(locate(&client, ino("f0"), 0));
    assert_eq!(loc.servers.len(), 2, "the default goal is 2 copies: {loc:?}");
    // The copy listed first is the one reads try first.
    let victim = loc.servers[0].0;

    cluster.kill_chunkserver(victim);
    let killed = Instant::now();
    for ((name, bytes), before) in files.iter().zip(&before) {
        let (got, took) = timed_read(&a.join(name));
        assert_bytes(&got, bytes, &format!("{name} right after the kill"));
        eprintln!(
            "read {name} ({} bytes) in {took:?} right after chunkserver {victim} was killed ({before:?} before)",
            got.len()
        );
        assert!(
            took < *before + FALL_OVER_BOUND,
            "reading {name} took {took:?} with a copy's server just killed, {before:?} before"
        );
    }

    // Writes during the outage: a new file, and an overwrite of part of an existing one.
    let new = content(9, (2 << 20) + 5);
    let t = Instant::now();
    fs::write(a.join("during"), &new).expect("a new file written during the outage");
    eprintln!("wrote a new file during the outage in {:?}", t.elapsed());
    files.push(("during".into(), new));
    let patch = content(10, 300_000);
    let t = Instant::now();
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = fs::OpenOptions::new().write(true).open(a.join("f1")).unwrap();
        f.seek(SeekFrom::Start(500_000)).unwrap();
        f.write_all(&patch).expect("an overwrite during the outage");
        f.sync_all().expect("fsync during the outage");
    }
    eprintln!("overwrote part of f1 during the outage in {:?}", t.elapsed());
    files[1].1[500_000..800_000].copy_from_slice(&patch);
    let mut b = cluster.mount("");
    for (name, bytes) in &files {
        assert_bytes(
            &fs::read(b.join(name)).unwrap(),
            bytes,
            &format!("{name} through a fresh mount during the outage"),
        );
    }

    // Re-replication: two copies on live servers, each byte-identical.
    let inos: Vec<u64> = files.iter().map(|(n, _)| ino(n)).collect();
    let repaired = loop {
        let mut short = Vec::new();
        for (i, (name, _)) in files.iter().enumerate() {
            let loc = rt.block_on(locate(&client, inos[i], 0));
            if loc.servers.iter().filter(|s| s.0 != victim).count() < 2 {
                short.push((name.clone(), loc.servers));
            }
        }
        if short.is_empty() {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < REPAIR_BOUND,
            "not back at 2 live copies within {REPAIR_BOUND:?} of the kill: {short:?}"
        );
        std::thread::park_timeout(Duration::from_millis(100));
    };
    eprintln!("every chunk back at 2 live copies {repaired:?} after the kill (bound {REPAIR_BOUND:?})");
    for (i, (name, bytes)) in files.iter().enumerate() {
        let loc = rt.block_on(locate(&client, inos[i], 0));
        for at in loc.servers.iter().filter(|s| s.0 != victim) {
            let copy = rt.block_on(read_copy(&data, at, &loc, bytes.len())).unwrap();
            assert_bytes(&copy, bytes, &format!("{name}: the copy on chunkserver {}", at.0));
        }
    }

    // The victim returns with stale copies (f1 moved on without it): never served.
    cluster.spawn_chunkserver(victim);
    cluster.wait_chunkservers_alive(3, Duration::from_secs(30));
    let c = cluster.mount("");
    for (name, bytes) in &files {
        let got = fs::read(c.join(name)).unwrap();
        assert_bytes(
            &got,
            bytes,
            &format!("{name} after chunkserver {victim} returned"),
        );
    }
    assert!(b.unmount() && a.unmount(), "the mounts unmount cleanly");
}

/// Bytes flipped inside a data block of one copy's chunk file: a read through the mount
/// returns the right bytes (from the other copy), the bad copy is quarantined and reported,
/// and the keeper makes a new good copy, which alone then serves a fresh mount.
#[test]
fn corrupt_copy_is_read_around_quarantined_and_replaced() {
    if !fuse_or_skip() {
        return;
    }
    let mut cluster = Cluster::start_fs(common::bin(), 3, 3, 2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _rt = rt.enter();
    let client = cluster.client();
    let data = cluster.data_client();
    let mut a = cluster.mount("");

    let bytes = content(1, (1 << 20) + 5000);
    fs::write(a.join("c"), &bytes).unwrap();
    let ino = fs::metadata(a.join("c")).unwrap().ino();
    let loc = rt.block_on(locate(&client, ino, 0));
    assert_eq!(loc.servers.len(), 2, "the default goal is 2 copies: {loc:?}");
    let chunk = loc.chunk.unwrap();
    // The copy listed first is the one a read tries first.
    let (bad, good) = (loc.servers[0].0, loc.servers[1].0);
    let path = cluster
        .chunk_file(bad, chunk.id)
        .expect("the chunk file of the first copy");

    // Chunk file v1: data from 8192, 64 KiB blocks; flip 16 bytes inside block 3.
    const DATA_OFFSET: usize = 8192;
    const BLOCK: usize = 64 << 10;
    let mut raw = fs::read(&path).unwrap();
    let at = DATA_OFFSET + 3 * BLOCK + 1000;
    for b in &mut raw[at..at + 16] {
        *b ^= 0xFF;
    }
    fs::write(&path, &raw).unwrap();
    let corrupted = Instant::now();

    let mut b = cluster.mount("");
    let (got, took) = timed_read(&b.join("c"));
    assert_bytes(&got, &bytes, "the read around the corrupt copy");
    eprintln!("read around the corrupt copy in {took:?}");

    // Quarantined: moved out of the chunk tree into <dir>/quarantine/.
    assert!(!path.exists(), "the corrupt file is still in the chunk tree");
    let prefix = format!("{:016x}.", chunk.id);
    let quarantined = cluster.chunkserver(bad).dirs.iter().any(|d| {
        fs::read_dir(d.join("quarantine"))
            .map(|entries| {
                entries
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            })
            .unwrap_or(false)
    });
    assert!(
        quarantined,
        "no quarantined copy of chunk {} on chunkserver {bad}",
        chunk.id
    );
    let metrics = http_get(cluster.chunkserver(bad).http, "/metrics").1;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("mooseng_chunkserver_errors_total{kind=\"corrupt\"}") && !l.ends_with(" 0")
        ),
        "the corruption is not counted in /metrics:\n{metrics}"
    );

    // Reported and replaced: the leader stops listing the bad copy, then lists two copies
    // whose servers hold the chunk file again.
    let mut dropped = None;
    let replaced = loop {
        let loc = rt.block_on(locate(&client, ino, 0));
        let listed: Vec<u64> = loc.servers.iter().map(|s| s.0).collect();
        if dropped.is_none() && !listed.contains(&bad) {
            dropped = Some(corrupted.elapsed());
        }
        let on_disk = listed.iter().all(|s| cluster.chunk_file(*s, chunk.id).is_some());
        if listed.len() >= 2
            && on_disk
            && (dropped.is_some() || listed.iter().any(|s| *s != bad && *s != good))
        {
            break (corrupted.elapsed(), loc);
        }
        assert!(
            corrupted.elapsed() < REPAIR_BOUND,
            "no new good copy within {REPAIR_BOUND:?}: {listed:?}, bad copy dropped: {dropped:?}"
        );
        std::thread::park_timeout(Duration::from_millis(20));
    };
    let (after, loc) = replaced;
    eprintln!(
        "bad copy unlisted {dropped:?} and a new copy made {after:?} after the corruption (bound {REPAIR_BOUND:?}); copies on {:?}",
        loc.servers
    );
    assert_eq!(loc.chunk, Some(chunk), "the chunk stays at its version");
    for at in &loc.servers {
        let copy = rt.block_on(read_copy(&data, at, &loc, bytes.len())).unwrap();
        assert_bytes(&copy, &bytes, &format!("the copy on chunkserver {}", at.0));
    }

    // The new copy alone serves a fresh mount.
    let fresh_copy = loc.servers.iter().map(|s| s.0).find(|s| *s != good).unwrap();
    cluster.kill_chunkserver(good);
    let c = cluster.mount("");
    let (got, took) = timed_read(&c.join("c"));
    assert_bytes(
        &got,
        &bytes,
        &format!("the new copy on chunkserver {fresh_copy} alone"),
    );
    eprintln!("read from the new copy alone in {took:?}");
    assert!(b.unmount() && a.unmount(), "the mounts unmount cleanly");
}
