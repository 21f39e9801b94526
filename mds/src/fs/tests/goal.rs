use proto::fs::FsOp;
use proto::{Errno, FsReply};

use super::*;

fn goal(fs: &Fs, ino: u64) -> u8 {
    match fs.read(&root(), FsOp::GetGoal { ino }).unwrap() {
        FsReply::Goal(g) => g,
        other => panic!("expected a goal, got {other:?}"),
    }
}

fn set_goal(fs: &mut Fs, cred: &Cred, ino: u64, goal: u8) -> Result<FsReply, Errno> {
    fs.exec(cred, FsOp::SetGoal { ino, goal })
}

#[test]
fn files_keep_two_copies_unless_a_goal_is_set() {
    let mut fs = Fs::new();
    let (f, h) = fs.create(&root(), ROOT, "f", 0o644).unwrap();
    assert_eq!(goal(&fs, f.ino), 2);
    let c = fs
        .exec(
            &root(),
            FsOp::ChunkForWrite {
                ino: f.ino,
                index: 0,
                handle: h,
            },
        )
        .unwrap();
    let FsReply::Chunk(c) = c else { panic!() };
    assert_eq!(c.servers.len(), 2);
}

#[test]
fn new_entries_inherit_their_directorys_goal() {
    let mut fs = Fs::new();
    let d = fs.mkdir(&root(), ROOT, "d", 0o777).unwrap();
    assert_eq!(set_goal(&mut fs, &root(), d.ino, 3), Ok(FsReply::Goal(3)));
    assert_eq!(
        fs.getattr(d.ino).unwrap().ctime,
        fs.now(),
        "a goal change is a metadata change"
    );
    let sub = fs.mkdir(&root(), d.ino, "sub", 0o777).unwrap();
    let (f, h) = fs.create(&root(), sub.ino, "f", 0o644).unwrap();
    assert_eq!((goal(&fs, sub.ino), goal(&fs, f.ino)), (3, 3));
    let FsReply::Chunk(c) = fs
        .exec(
            &root(),
            FsOp::ChunkForWrite {
                ino: f.ino,
                index: 0,
                handle: h,
            },
        )
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        c.servers.len(),
        3,
        "a new chunk is placed on as many servers as the goal"
    );
    let (old, _) = fs.create(&root(), ROOT, "old", 0o644).unwrap();
    assert_eq!(
        goal(&fs, old.ino),
        2,
        "setting a goal does not reach existing entries elsewhere"
    );
}

#[test]
fn goals_are_bounded_and_set_by_the_owner_or_root() {
    let mut fs = Fs::new();
    let alice = user(1000, 100, &[]);
    let bob = user(1001, 100, &[]);
    let d = fs.mkdir(&root(), ROOT, "d", 0o777).unwrap();
    let f = fs.mknod(&alice, d.ino, "f", 0o666).unwrap();
    assert_eq!(set_goal(&mut fs, &alice, f.ino, 0), Err(Errno::EINVAL));
    assert_eq!(set_goal(&mut fs, &alice, f.ino, 10), Err(Errno::EINVAL));
    assert_eq!(set_goal(&mut fs, &bob, f.ino, 3), Err(Errno::EPERM));
    assert_eq!(set_goal(&mut fs, &alice, f.ino, 9), Ok(FsReply::Goal(9)));
    assert_eq!(set_goal(&mut fs, &root(), f.ino, 1), Ok(FsReply::Goal(1)));
    assert_eq!(goal(&fs, f.ino), 1);
}
