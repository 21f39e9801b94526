//! A full LMDB map: mutations fail with ENOSPC at the client and nothing is corrupted; after
//! the map is grown (restart with a larger --lmdb-map-size), writes succeed again. A nearly
//! full disk: mutations fail with ENOSPC while the server keeps serving, and succeed again
//! once space is freed.
//!
//! Tier: integration (a real `mooseng mds` process on loopback; the disk test mounts a small
//! tmpfs, so it needs root, and says it skipped otherwise).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use client::{ClientError, ReadFrom};
use common::{list, mkdir, root};
use proto::Errno;
use proto::fs::FsOp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_map_gives_enospc_and_growing_it_recovers() {
    let small = [
        "--lmdb-map-size",
        "2097152",
        "--lmdb-reserve",
        "524288",
        "--log-keep",
        "64",
    ];
    let mut cluster = common::start(1, 1, &small);
    let client = cluster.client();
    cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
    let dir = mkdir(&client, 1, "fill").await.ino;
    let long = "x".repeat(200);
    let mut created = Vec::new();
    let mut enospc = false;
    for i in 0..20_000 {
        let name = format!("{long}-{i}");
        let op = FsOp::MkNod {
            parent: dir,
            name: name.clone().into(),
            kind: crdt::model::FileKind::File,
            mode: 0o644,
            rdev: 0,
        };
        match client.fs(&root(), op, ReadFrom::Leader).await {
            Ok(_) => created.push(name),
            Err(ClientError::Fs(Errno::ENOSPC)) => {
                enospc = true;
                break;
            }
            Err(e) => panic!("create {i}: {e}"),
        }
    }
    assert!(
        enospc,
        "the 2 MiB map never filled after {} creates",
        created.len()
    );
    eprintln!("map full after {} creates", created.len());
    // Reads still work and see every acknowledged create.
    assert_eq!(list(&client, dir).await.len(), created.len());
    client.close().await;

    // Grow the map: restart with a larger one.
    cluster.stop(1);
    let node = cluster.nodes.iter_mut().find(|n| n.id == 1).unwrap();
    node.flags = vec![
        "--lmdb-map-size".into(),
        "67108864".into(),
        "--log-keep".into(),
        "64".into(),
    ];
    cluster.spawn(1);
    let client = cluster.client();
    cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
    let names = list(&client, dir).await;
    assert_eq!(names.len(), created.len(), "nothing lost or corrupted");
    for name in created.iter().step_by(97) {
        assert!(names.contains(name), "{name} survived");
    }
    let op = FsOp::MkNod {
        parent: dir,
        name: b"after-growth".to_vec(),
        kind: crdt::model::FileKind::File,
        mode: 0o644,
        rdev: 0,
    };
    client
        .fs(&root(), op, ReadFrom::Leader)
        .await
        .expect("writes succeed after the map grew");
    client.close().await;
}

/// A small tmpfs mounted over a directory, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mknod(dir: u64, name: &str) -> FsOp {
    FsOp::MkNod {
        parent: dir,
        name: name.as_bytes().to_vec(),
        kind: crdt::model::FileKind::File,
        mode: 0o644,
        rdev: 0,
    }
}

/// Bytes available on the file system holding `path`.
fn available(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(path)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df prints the available bytes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nearly_full_disk_gives_enospc_and_freeing_space_recovers() {
    let mut cluster = common::start(1, 1, &[]);
    let client = cluster.client();
    cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
    let dir = mkdir(&client, 1, "d").await.ino;
    client.close().await;

    // Move the server's data onto a 96 MiB file system.
    cluster.stop(1);
    let data = cluster.node(1).data.clone();
    let saved = data.with_extension("saved");
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(&data)
            .arg(&saved)
            .status()
            .unwrap()
            .success()
    );
    let Some(_disk) = Tmpfs::mount(&data, "96m") else {
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    };
    let copy = Command::new("sh")
        .arg("-c")
        .arg(format!("cp -a {}/. {}/", saved.display(), data.display()))
        .status()
        .unwrap();
    assert!(copy.success());
    cluster.spawn(1);
    let client = cluster.client();
    cluster.wait_leader(&client, 0, Duration::from_secs(10)).await;
    client
        .fs(&root(), mknod(dir, "before"), ReadFrom::Leader)
        .await
        .expect("room on the disk");

    // Leave 8 MiB: below the 32 MiB the server keeps in reserve.
    let ballast = data.join("ballast");
    let fill = available(&data).saturating_sub(8 << 20);
    assert!(
        Command::new("fallocate")
            .args(["-l", &fill.to_string()])
            .arg(&ballast)
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    match client
        .fs(&root(), mknod(dir, "while-full"), ReadFrom::Leader)
        .await
    {
        Err(ClientError::Fs(Errno::ENOSPC)) => {}
        other => panic!("a create on a nearly full disk: {other:?}"),
    }
    assert_eq!(
        list(&client, dir).await,
        vec!["before".to_string()],
        "reads are served; the refused create left nothing"
    );

    std::fs::remove_file(&ballast).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    client
        .fs(&root(), mknod(dir, "after"), ReadFrom::Leader)
        .await
        .expect("creates succeed once space is freed");
    assert_eq!(list(&client, dir).await.len(), 2);
    client.close().await;
    cluster.stop(1);
}
