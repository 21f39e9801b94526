use proto::fs::{FsOp, Lock, LockKind};
use proto::{Errno, FsReply};

use super::*;
use crate::fs::state::FsState;

fn lock(owner: u64, kind: LockKind) -> Lock {
    Lock {
        owner,
        pid: 1,
        kind,
        start: 0,
        end: 99,
    }
}

#[test]
fn ending_a_session_closes_its_handles_drops_its_locks_and_deletes_what_only_it_kept() {
    let mut fs = Fs::new();
    let (f, _) = fs.create(&root(), ROOT, "f", 0o666).unwrap();
    let (g, gh) = fs.create(&root(), ROOT, "g", 0o666).unwrap();
    let set = FsOp::SetLk {
        ino: g.ino,
        handle: gh,
        lock: lock(1, LockKind::Write),
        flock: false,
    };
    fs.exec(&root(), set).unwrap();
    fs.unlink(&root(), ROOT, "f").unwrap();
    fs.client = 8;
    let other = fs.open(&root(), g.ino, true, true).unwrap();
    let blocked = FsOp::SetLk {
        ino: g.ino,
        handle: other,
        lock: lock(1, LockKind::Write),
        flock: false,
    };
    assert_eq!(fs.exec(&root(), blocked.clone()), Err(Errno::EAGAIN));

    fs.client = 7;
    assert_eq!(fs.exec(&root(), FsOp::EndSession), Ok(FsReply::Done));
    assert_eq!(fs.state.client_handles(7).unwrap(), vec![]);
    assert_eq!(
        fs.getattr(f.ino),
        Err(Errno::ENOENT),
        "the unlinked file only its handle kept is gone"
    );
    assert_eq!(fs.live_inodes(), 2, "root and g");
    fs.client = 8;
    assert_eq!(
        fs.exec(&root(), blocked),
        Ok(FsReply::Done),
        "its lock is released"
    );
    assert_eq!(
        fs.state.client_handles(8).unwrap().len(),
        1,
        "other clients keep theirs"
    );
}

#[test]
fn an_unlinked_file_another_client_has_open_survives_the_end_of_a_session() {
    let mut fs = Fs::new();
    let (f, _) = fs.create(&root(), ROOT, "f", 0o666).unwrap();
    fs.client = 8;
    let kept = fs.open(&root(), f.ino, true, false).unwrap();
    fs.unlink(&root(), ROOT, "f").unwrap();
    fs.client = 7;
    fs.exec(&root(), FsOp::EndSession).unwrap();
    assert_eq!(fs.getattr(f.ino).unwrap().nlink, 0);
    fs.client = 8;
    fs.release(f.ino, kept).unwrap();
    assert_eq!(fs.getattr(f.ino), Err(Errno::ENOENT));
}

#[test]
fn ending_a_session_of_a_client_without_anything_changes_nothing() {
    let mut fs = Fs::new();
    fs.create(&root(), ROOT, "f", 0o666).unwrap();
    fs.client = 9;
    let (effects, reply) = fs.dry_run(&root(), FsOp::EndSession);
    assert_eq!(reply, Ok(FsReply::Done));
    assert!(effects.records.is_empty() && effects.handles.is_empty() && effects.locks.is_empty());
}
