//! The atime update of a read (`Accessed`): relatime, ctime left alone, the read handle.

use crdt::model::Attr as RecAttr;
use proto::Errno;
use proto::fs::{FsOp, RELATIME_AGE_SECS};

use super::*;

fn accessed(fs: &mut Fs, cred: &Cred, ino: u64, handle: u64) -> Result<Attr, Errno> {
    attr(fs.exec(cred, FsOp::Accessed { ino, handle }))
}

/// Sets the times of `ino` directly, as a replica would (no ctime side effect).
fn set_times(fs: &mut Fs, ino: u64, atime: i64, mtime: i64, ctime: i64) {
    fs.raw(1, |edit| {
        edit.set_attrs(
            Ino(ino),
            vec![
                RecAttr::Atime(time(atime)),
                RecAttr::Mtime(time(mtime)),
                RecAttr::Ctime(time(ctime)),
            ],
        )
    });
}

#[test]
fn a_read_sets_atime_to_the_command_time_and_leaves_ctime_and_mtime_alone() {
    let mut fs = Fs::new();
    let f = fs.mknod(&root(), ROOT, "f", 0o644).unwrap();
    assert_eq!((f.atime, f.mtime), (f.ctime, f.ctime), "a new file's times agree");
    let alice = user(1000, 100, &[]);
    let h = fs.open(&alice, f.ino, true, false).unwrap();
    let read = accessed(&mut fs, &alice, f.ino, h).unwrap();
    assert_eq!(
        (read.atime, read.mtime, read.ctime),
        (fs.now(), f.mtime, f.ctime),
        "alice may neither write nor chmod the file, and still updates its atime"
    );
    assert!(read.atime > f.atime);
    assert_eq!(fs.getattr(f.ino).unwrap(), read);
}

#[test]
fn relatime_updates_only_after_a_change_or_once_a_day() {
    let mut fs = Fs::new();
    let f = fs.mknod(&root(), ROOT, "f", 0o644).unwrap();
    let h = fs.open(&root(), f.ino, true, false).unwrap();
    let first = accessed(&mut fs, &root(), f.ino, h).unwrap();
    let (effects, again) = fs.dry_run(
        &root(),
        FsOp::Accessed {
            ino: f.ino,
            handle: h,
        },
    );
    assert_eq!(
        attr(again).unwrap(),
        first,
        "atime after mtime and ctime: no update"
    );
    assert!(
        effects.records.is_empty() && effects.delta.is_none(),
        "nothing is written: {effects:?}"
    );
    let chmod = SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    };
    let changed = fs.setattr(&root(), f.ino, chmod).unwrap();
    let after = accessed(&mut fs, &root(), f.ino, h).unwrap();
    assert_eq!(
        (after.atime, after.ctime),
        (fs.now(), changed.ctime),
        "atime <= ctime: due"
    );

    let now = fs.now().secs();
    set_times(
        &mut fs,
        f.ino,
        now - RELATIME_AGE_SECS + 100,
        now - 2 * RELATIME_AGE_SECS,
        now - 2 * RELATIME_AGE_SECS,
    );
    let fresh = accessed(&mut fs, &root(), f.ino, h).unwrap();
    assert_eq!(
        fresh.atime,
        time(now - RELATIME_AGE_SECS + 100),
        "younger than a day: kept"
    );
    set_times(
        &mut fs,
        f.ino,
        now - RELATIME_AGE_SECS,
        now - 2 * RELATIME_AGE_SECS,
        now - 2 * RELATIME_AGE_SECS,
    );
    let old = accessed(&mut fs, &root(), f.ino, h).unwrap();
    assert_eq!(
        (old.atime, old.ctime),
        (fs.now(), time(now - 2 * RELATIME_AGE_SECS)),
        "a day old: updated"
    );
}

#[test]
fn accessed_needs_a_handle_this_client_opened_for_reading_on_that_inode() {
    let mut fs = Fs::new();
    let f = fs.mknod(&root(), ROOT, "f", 0o666).unwrap();
    let g = fs.mknod(&root(), ROOT, "g", 0o666).unwrap();
    let write_only = fs.open(&root(), f.ino, false, true).unwrap();
    let on_g = fs.open(&root(), g.ino, true, false).unwrap();
    let reader = fs.open(&root(), f.ino, true, false).unwrap();
    for handle in [write_only, on_g, reader + 100] {
        assert_eq!(
            accessed(&mut fs, &root(), f.ino, handle),
            Err(Errno::EBADF),
            "handle {handle}"
        );
    }
    fs.client = 8;
    assert_eq!(
        accessed(&mut fs, &root(), f.ino, reader),
        Err(Errno::EBADF),
        "another client's handle"
    );
    fs.client = 7;
    fs.release(f.ino, reader).unwrap();
    assert_eq!(
        accessed(&mut fs, &root(), f.ino, reader),
        Err(Errno::EBADF),
        "released"
    );
    assert_eq!(accessed(&mut fs, &root(), 0xdead_0001, on_g), Err(Errno::ENOENT));
    assert_eq!(accessed(&mut fs, &root(), foreign_ino(), on_g), Err(Errno::EXDEV));
    assert_eq!(
        fs.getattr(f.ino).unwrap().atime,
        f.atime,
        "no refusal changed atime"
    );
}
