//! Execution is a function of the state and the command: replicas agree.

use crdt::model::{Changes, FileKind};
use proto::fs::rename_flags::EXCHANGE;
use proto::fs::{FsOp, TimeSet};

use super::*;

/// A workload touching every mutation, with failures mixed in. Returns the replies.
fn workload(fs: &mut Fs) -> Vec<Result<FsReply, Errno>> {
    let alice = user(1000, 100, &[200]);
    let mut replies = Vec::new();
    let mut run = |fs: &mut Fs, cred: &Cred, op: FsOp| {
        let reply = fs.exec(cred, op);
        replies.push(reply.clone());
        reply
    };
    let d = attr(run(
        fs,
        &root(),
        FsOp::MkDir {
            parent: ROOT,
            name: b"d".to_vec(),
            mode: 0o777,
        },
    ))
    .unwrap();
    for i in 0..20 {
        let name = format!("f{i}").into_bytes();
        run(
            fs,
            &alice,
            FsOp::Create {
                parent: d.ino,
                name,
                mode: 0o644,
                exclusive: true,
                read: false,
                write: true,
            },
        )
        .unwrap();
    }
    let sub = attr(run(
        fs,
        &alice,
        FsOp::MkDir {
            parent: d.ino,
            name: b"sub".to_vec(),
            mode: 0o755,
        },
    ))
    .unwrap();
    let kind = FileKind::Fifo;
    run(
        fs,
        &alice,
        FsOp::MkNod {
            parent: sub.ino,
            name: b"p".to_vec(),
            kind,
            mode: 0o600,
            rdev: 0,
        },
    )
    .unwrap();
    run(
        fs,
        &alice,
        FsOp::Symlink {
            parent: d.ino,
            name: b"l".to_vec(),
            target: b"f1".to_vec(),
        },
    )
    .unwrap();
    let f1 = attr(fs.read(
        &root(),
        FsOp::Lookup {
            parent: d.ino,
            name: b"f1".to_vec(),
        },
    ))
    .unwrap();
    run(
        fs,
        &alice,
        FsOp::Link {
            ino: f1.ino,
            parent: sub.ino,
            name: b"f1".to_vec(),
        },
    )
    .unwrap();
    let rename = |name: &[u8], new_name: &[u8], flags| FsOp::Rename {
        parent: d.ino,
        name: name.to_vec(),
        new_parent: sub.ino,
        new_name: new_name.to_vec(),
        flags,
    };
    run(fs, &alice, rename(b"f2", b"g", 0)).unwrap();
    run(fs, &alice, rename(b"f3", b"g", EXCHANGE)).unwrap();
    run(fs, &alice, rename(b"f4", b"f1", 0)).unwrap();
    let _ = run(fs, &alice, rename(b"nope", b"x", 0));
    run(
        fs,
        &alice,
        FsOp::Unlink {
            parent: d.ino,
            name: b"f5".to_vec(),
        },
    )
    .unwrap();
    let _ = run(
        fs,
        &alice,
        FsOp::RmDir {
            parent: d.ino,
            name: b"sub".to_vec(),
        },
    );
    let set = SetAttr {
        mode: Some(0o600),
        atime: Some(TimeSet::Now),
        size: Some(3),
        ..SetAttr::default()
    };
    run(fs, &alice, FsOp::SetAttr { ino: f1.ino, set }).unwrap();
    let xattr = FsOp::SetXattr {
        ino: f1.ino,
        name: b"user.k".to_vec(),
        value: b"v".to_vec(),
        flags: 0,
    };
    run(fs, &alice, xattr).unwrap();
    run(
        fs,
        &alice,
        FsOp::RemoveXattr {
            ino: f1.ino,
            name: b"user.k".to_vec(),
        },
    )
    .unwrap();
    let Ok(FsReply::Opened { handle, .. }) = run(
        fs,
        &alice,
        FsOp::Open {
            ino: f1.ino,
            read: true,
            write: true,
            truncate: true,
        },
    ) else {
        panic!()
    };
    run(
        fs,
        &alice,
        FsOp::ChunkForWrite {
            ino: f1.ino,
            index: 2,
            handle,
        },
    )
    .unwrap();
    run(
        fs,
        &alice,
        FsOp::WriteDone {
            ino: f1.ino,
            handle,
            end: 77,
            written: Vec::new(),
        },
    )
    .unwrap();
    run(fs, &alice, FsOp::Accessed { ino: f1.ino, handle }).unwrap();
    run(fs, &alice, FsOp::Release { ino: f1.ino, handle }).unwrap();
    replies
}

#[test]
fn two_replicas_running_the_same_commands_end_identical() {
    let (mut a, mut b) = (Fs::new(), Fs::new());
    let replies = workload(&mut a);
    assert_eq!(replies, workload(&mut b));
    assert!(
        replies.iter().filter(|r| r.is_err()).count() >= 2,
        "failures are part of the workload"
    );
    assert_eq!(a.deltas, b.deltas);
    assert_eq!(a.state, b.state);
}

#[test]
fn executing_a_command_twice_on_one_state_gives_the_same_effects() {
    let mut fs = Fs::new();
    workload(&mut fs);
    let d = fs.lookup(&root(), ROOT, "d").unwrap();
    let op = FsOp::Rename {
        parent: d.ino,
        name: b"f6".to_vec(),
        new_parent: ROOT,
        new_name: b"f".to_vec(),
        flags: 0,
    };
    let cmd = fs.command(&root(), op);
    let run = || execute(&fs.state, fs.ctx(), &cmd).unwrap();
    let ((first, r1), (second, r2)) = (run(), run());
    assert_eq!(r1, r2);
    assert!(first.delta.is_some());
    assert_eq!(
        (&first.delta, &first.meta, &first.handles),
        (&second.delta, &second.meta, &second.handles)
    );
    assert_eq!(sorted(first.records), sorted(second.records));
}

/// Changes in a canonical order (stores write them by key, so their order does not matter).
fn sorted(c: Changes) -> String {
    let Changes {
        mut inodes,
        mut dropped_dirs,
        mut entries,
        mut contexts,
        mut quotas,
    } = c;
    inodes.sort_by_key(|(i, _)| *i);
    dropped_dirs.sort();
    entries.sort();
    contexts.sort_by_key(|(i, _)| *i);
    quotas.sort_by_key(|(i, _)| *i);
    format!("{inodes:?} {dropped_dirs:?} {entries:?} {contexts:?} {quotas:?}")
}
