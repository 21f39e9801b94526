//! The WAL against real files: replay after reopening, rotation, torn tails, damage.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;

use raft::eraftpb::{Entry, HardState};

use super::memlog::{MemLog, encode};
use super::record::{GroupDelta, Record};
use super::{Wal, segment};

fn entry(index: u64, term: u64, size: usize) -> Entry {
    Entry {
        index,
        term,
        data: vec![index as u8; size].into(),
        ..Default::default()
    }
}

/// Appends entries `from..=to` of shard 1 one record each, keeping `logs` as the host would.
fn append(wal: &mut Wal, logs: &mut BTreeMap<u32, MemLog>, from: u64, to: u64, size: usize) {
    for i in from..=to {
        let rec = Record {
            base: false,
            groups: vec![GroupDelta {
                shard: 1,
                reset: None,
                entries: vec![encode(&entry(i, 1, size))],
                hard_state: Some(encode(&HardState {
                    term: 1,
                    vote: 1,
                    commit: i,
                    ..Default::default()
                })),
            }],
        };
        let base = || Record::base(logs.iter().map(|(s, l)| l.base(*s)).collect());
        wal.append(&rec, false, base).unwrap();
        for d in &rec.groups {
            logs.entry(d.shard).or_default().apply(d).unwrap();
        }
    }
}

fn segments(dir: &std::path::Path) -> Vec<u64> {
    segment::list(dir).unwrap().into_iter().map(|(s, _)| s).collect()
}

#[test]
fn a_reopened_wal_holds_every_appended_entry_and_hard_state() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, logs) = Wal::open(dir.path(), 1 << 20).unwrap();
    assert!(logs.is_empty());
    let mut logs = logs;
    append(&mut wal, &mut logs, 1, 50, 100);
    drop(wal);
    let (_, back) = Wal::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(back, logs);
    assert_eq!(back[&1].last_index(), 50);
    assert_eq!(back[&1].hard_state().commit, 50);
}

#[test]
fn rotation_keeps_one_segment_whose_base_carries_the_whole_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, mut logs) = Wal::open(dir.path(), 64 << 10).unwrap();
    append(&mut wal, &mut logs, 1, 400, 1000);
    logs.get_mut(&1).unwrap().compact(300);
    append(&mut wal, &mut logs, 401, 500, 1000);
    let live = segments(dir.path());
    assert!(
        live[0] > 3,
        "400 KiB of entries in 64 KiB segments rotate: {live:?}"
    );
    assert!(
        live.len() <= 2,
        "old segments are removed (one spare may exist): {live:?}"
    );
    drop(wal);
    let (_, back) = Wal::open(dir.path(), 64 << 10).unwrap();
    assert_eq!(back[&1].last_index(), 500);
    assert!(back[&1].first_index() <= 301);
    assert_eq!(
        back[&1].entries(301, 501).unwrap(),
        logs[&1].entries(301, 501).unwrap()
    );
}

/// The offset just past the last non-zero byte of `path`.
fn written_end(path: &std::path::Path) -> usize {
    let buf = std::fs::read(path).unwrap();
    buf.iter().rposition(|b| *b != 0).unwrap() + 1
}

fn current_segment(dir: &std::path::Path) -> std::path::PathBuf {
    let list = segment::list(dir).unwrap();
    list.iter()
        .rev()
        .find(|(s, p)| matches!(segment::replay(p, *s), Ok(segment::Replay::Log { .. })))
        .map(|(_, p)| p.clone())
        .unwrap()
}

#[test]
fn a_torn_last_frame_is_dropped_and_appends_continue_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, mut logs) = Wal::open(dir.path(), 1 << 20).unwrap();
    append(&mut wal, &mut logs, 1, 10, 300);
    drop(wal);
    let seg = current_segment(dir.path());
    // Tear the last frame: zero its last 100 bytes, as a crash mid-write leaves it.
    let end = written_end(&seg);
    let f = std::fs::File::options().write(true).open(&seg).unwrap();
    f.write_all_at(&[0u8; 100], (end - 100) as u64).unwrap();
    drop(f);

    let (mut wal, back) = Wal::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(back[&1].last_index(), 9, "only the torn entry is gone");
    let mut logs = back;
    append(&mut wal, &mut logs, 10, 12, 50);
    drop(wal);
    let (_, again) = Wal::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(again[&1].last_index(), 12);
    assert_eq!(again, logs);
}

#[test]
fn damage_followed_by_frames_is_an_error_naming_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, mut logs) = Wal::open(dir.path(), 1 << 20).unwrap();
    append(&mut wal, &mut logs, 1, 10, 300);
    drop(wal);
    let seg = current_segment(dir.path());
    let f = std::fs::File::options()
        .read(true)
        .write(true)
        .open(&seg)
        .unwrap();
    // A flipped byte inside the third frame (each is about 330 bytes, after the base).
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, 1000).unwrap();
    f.write_all_at(&[b[0] ^ 0xff], 1000).unwrap();
    drop(f);
    let err = Wal::open(dir.path(), 1 << 20).unwrap_err().to_string();
    assert!(err.contains(&*seg.to_string_lossy()), "{err}");
    assert!(err.contains("refusing to drop them"), "{err}");
}

#[test]
fn a_segment_whose_base_never_completed_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, mut logs) = Wal::open(dir.path(), 1 << 20).unwrap();
    append(&mut wal, &mut logs, 1, 5, 100);
    drop(wal);
    // A crash while the next segment was being started: its header exists, its base does not.
    let next = dir.path().join(segment::name(9));
    segment::create(&next, 9, 1 << 16).unwrap();
    let (_, back) = Wal::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(back, logs);
    assert!(!next.exists());
}

/// Waits until the preparation of the next segment, if one runs, has ended.
#[allow(
    clippy::disallowed_methods,
    reason = "a synchronous test waits for the WAL's helper thread"
)]
fn spare_settled(wal: &Wal) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while wal.spare.as_ref().is_some_and(|h| !h.is_finished()) {
        assert!(std::time::Instant::now() < deadline, "the spare never finished");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "waits out the retry delay of a synchronous component"
)]
fn without_room_for_the_next_segment_the_log_turns_short_until_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, mut logs) = Wal::open(dir.path(), 64 << 10).unwrap();
    // The next segment cannot be made: a directory holds its name (as a full disk would
    // fail its creation).
    let blocker = dir.path().join(segment::name(2));
    std::fs::create_dir(&blocker).unwrap();
    append(&mut wal, &mut logs, 1, 34, 1000);
    spare_settled(&wal);
    append(&mut wal, &mut logs, 35, 40, 1000);
    assert!(
        !wal.is_short(),
        "a quarter of the segment is left while the failure is known"
    );
    append(&mut wal, &mut logs, 41, 50, 1000);
    assert!(wal.is_short(), "three quarters full and no next segment");

    std::fs::remove_dir(&blocker).unwrap();
    std::thread::sleep(super::SPARE_RETRY);
    // No append comes while writes are refused: the host's tick tends the log.
    wal.tend();
    spare_settled(&wal);
    wal.tend();
    assert!(
        !wal.is_short(),
        "the next segment was prepared once space returned"
    );
    append(&mut wal, &mut logs, 51, 120, 1000);
    assert!(segments(dir.path())[0] >= 2, "the log rotated");
    drop(wal);
    let (_, back) = Wal::open(dir.path(), 64 << 10).unwrap();
    assert_eq!(back[&1].last_index(), 120);
}
