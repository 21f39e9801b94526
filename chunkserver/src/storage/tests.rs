//! Tier: unit. The store on temporary directories: round trips, versions, holes, truncation,
//! corruption and torn writes, placement over several dirs, failed dirs, the format version.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use proto::chunk::HeldChunk;
use proto::data::{BLOCK_SIZE, DataError};
use tempfile::TempDir;

use super::format::DATA_OFFSET;
use super::{DirState, Space, SpaceProbe, Store, lock};

const BS: u32 = BLOCK_SIZE;
const GIB: u64 = 1 << 30;

/// Deterministic, position-dependent bytes, so misplaced data shows.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

/// Data dirs under one temp dir, with free space set by the test.
struct Dirs {
    _tmp: TempDir,
    paths: Vec<PathBuf>,
    available: Arc<Mutex<HashMap<PathBuf, u64>>>,
}

impl Dirs {
    fn new(n: usize) -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..n).map(|i| tmp.path().join(format!("d{i}"))).collect();
        let available = paths.iter().map(|p| (p.clone(), 100 * GIB)).collect();
        for p in &paths {
            fs::create_dir(p).unwrap();
        }
        Dirs {
            _tmp: tmp,
            paths,
            available: Arc::new(Mutex::new(available)),
        }
    }

    fn set_available(&self, dir: usize, bytes: u64) {
        lock(&self.available).insert(self.paths[dir].clone(), bytes);
    }

    fn probe(&self) -> SpaceProbe {
        let available = self.available.clone();
        Arc::new(move |path: &Path| {
            Ok(Space {
                total: 200 * GIB,
                available: lock(&available).get(path).copied().unwrap_or(0),
            })
        })
    }

    fn open(&self) -> Store {
        Store::open_with(&self.paths, self.probe()).unwrap()
    }

    /// The file of `chunk` in dir `dir`.
    fn chunk_file(&self, dir: usize, chunk: u64) -> PathBuf {
        self.paths[dir]
            .join("chunks")
            .join(format!("{:02x}", chunk & 0xff))
            .join(format!("{chunk:016x}.chunk"))
    }

    fn quarantined(&self, dir: usize) -> usize {
        fs::read_dir(self.paths[dir].join("quarantine")).unwrap().count()
    }
}

fn flip_byte(path: &Path, pos: u64) {
    let f = fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, pos).unwrap();
    b[0] ^= 0x40;
    f.write_all_at(&b, pos).unwrap();
}

#[test]
fn writes_read_back_across_block_boundaries() {
    let dirs = Dirs::new(1);
    let store = dirs.open();
    let data = pattern(1, 3 * BS as usize + 1234);
    let offset = BS - 100;
    store.write(7, 0, 1, offset, &data).unwrap();
    assert_eq!(store.read(7, 1, offset, data.len() as u32).unwrap(), data);
    // Sub-ranges starting and ending inside blocks.
    let (a, b) = (BS as usize + 5, 2 * BS as usize + 17);
    assert_eq!(
        store.read(7, 1, offset + a as u32, (b - a) as u32).unwrap(),
        &data[a..b]
    );
    assert_eq!(store.stat(7).unwrap(), (1, offset + data.len() as u32));
    // The data survives a restart.
    drop(store);
    let store = dirs.open();
    assert_eq!(store.read(7, 1, offset, data.len() as u32).unwrap(), data);
}

#[test]
fn partial_block_writes_keep_the_rest_of_the_block() {
    let dirs = Dirs::new(1);
    let store = dirs.open();
    let mut model = pattern(2, 2 * BS as usize);
    store.write(1, 0, 1, 0, &model).unwrap();
    // Inside one block, then straddling the boundary between two.
    for (offset, len, seed) in [(100usize, 10usize, 3u8), (BS as usize - 7, 20, 4)] {
        let patch = pattern(seed, len);
        store.write(1, 1, 1, offset as u32, &patch).unwrap();
        model[offset..offset + len].copy_from_slice(&patch);
    }
    assert_eq!(store.read(1, 1, 0, 2 * BS).unwrap(), model);
    drop(store);
    assert_eq!(dirs.open().read(1, 1, 0, 2 * BS).unwrap(), model);
}

#[test]
fn versions_move_forward_from_the_expected_range_only() {
    let dirs = Dirs::new(1);
    let store = dirs.open();
    let wrong = |have, want| DataError::WrongVersion { chunk: 5, have, want };
    // No copy yet: only version 0 creates it.
    assert_eq!(store.write(5, 3, 4, 0, b"x"), Err(DataError::NoChunk(5)));
    store.write(5, 0, 1, 0, b"one").unwrap();
    // The same session continues at its version; a new session moves 1 → 2.
    store.write(5, 0, 1, 3, b"-more").unwrap();
    store.write(5, 1, 2, 0, b"two").unwrap();
    store.write(5, 1, 2, 3, b"!").unwrap();
    assert_eq!(store.read(5, 1, 0, 3), Err(wrong(2, 1)));
    assert_eq!(store.read(5, 2, 0, 8).unwrap(), b"two!more");
    // A copy past the writer's version, or behind its previous version, is refused.
    assert_eq!(store.write(5, 0, 1, 0, b"old"), Err(wrong(2, 0)));
    assert_eq!(store.write(5, 3, 4, 0, b"ahead"), Err(wrong(2, 3)));
    // A copy left at 2 by a write that failed elsewhere moves on with the next writer, who
    // was told the copies hold 1.
    store.write(5, 1, 3, 0, b"TWO").unwrap();
    assert_eq!(store.read(5, 3, 0, 8).unwrap(), b"TWO!more");
    assert!(matches!(
        store.write(5, 3, 0, 0, b"z"),
        Err(DataError::BadRequest(_))
    ));
    assert!(matches!(
        store.write(5, 3, 2, 0, b"back"),
        Err(DataError::BadRequest(_))
    ));
    let (held, lost) = store.take_changes().report();
    assert_eq!(held, vec![HeldChunk { chunk: 5, version: 3 }]);
    assert!(lost.is_empty());
}

#[test]
fn holes_and_bytes_past_the_end_read_as_zeros() {
    let dirs = Dirs::new(1);
    let store = dirs.open();
    let offset = 5 * BS + 17;
    store.write(2, 0, 1, offset, b"data").unwrap();
    let all = store.read(2, 1, 0, offset + 4 + 100).unwrap();
    assert!(all[..offset as usize].iter().all(|b| *b == 0));
    assert_eq!(&all[offset as usize..offset as usize + 4], b"data");
    assert!(all[offset as usize + 4..].iter().all(|b| *b == 0));
    // A read wholly past the end.
    assert_eq!(store.read(2, 1, 40 * BS, 10).unwrap(), vec![0; 10]);
    // Reads beyond the chunk size are refused.
    assert!(matches!(
        store.read(2, 1, 1024 * BS - 1, 2),
        Err(DataError::BadRequest(_))
    ));
}

#[test]
fn truncate_cuts_and_extends_with_zeros() {
    let dirs = Dirs::new(1);
    let store = dirs.open();
    let data = pattern(5, 3 * BS as usize);
    store.write(3, 0, 1, 0, &data).unwrap();
    let cut = BS + 1000;
    store.truncate(3, 1, 2, cut).unwrap();
    assert_eq!(store.stat(3).unwrap(), (2, cut));
    let read = store.read(3, 2, 0, 3 * BS).unwrap();
    assert_eq!(&read[..cut as usize], &data[..cut as usize]);
    assert!(
        read[cut as usize..].iter().all(|b| *b == 0),
        "cut bytes must not come back"
    );
    // Writing past the new end leaves zeros between, not the old bytes.
    store.write(3, 2, 2, 2 * BS + 10, b"tail").unwrap();
    let read = store.read(3, 2, cut, 2 * BS + 14 - cut).unwrap();
    assert!(read[..read.len() - 4].iter().all(|b| *b == 0));
    assert_eq!(&read[read.len() - 4..], b"tail");
    // Growing by truncation.
    store.truncate(3, 2, 3, 10 * BS).unwrap();
    assert_eq!(store.stat(3).unwrap(), (3, 10 * BS));
    assert_eq!(store.read(3, 3, 9 * BS, BS).unwrap(), vec![0; BS as usize]);
    // Truncate creates a chunk from version 0.
    store.truncate(4, 0, 1, 100).unwrap();
    assert_eq!(store.read(4, 1, 0, 100).unwrap(), vec![0; 100]);
    drop(store);
    assert_eq!(dirs.open().read(3, 3, 2 * BS + 10, 4).unwrap(), b"tail");
}

#[test]
fn stale_bytes_past_the_end_never_reappear() {
    let dirs = Dirs::new(1);
    let store = dirs.open();
    store.write(5, 0, 1, 0, &pattern(13, 100)).unwrap();
    // An extending write that was interrupted before its CRCs and header: bytes on disk past
    // the chunk's length.
    let path = dirs.chunk_file(0, 5);
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&vec![0xff; 2 * BS as usize], DATA_OFFSET + 100)
        .unwrap();
    assert_eq!(store.read(5, 1, 0, 200).unwrap()[100..], vec![0; 100]);
    // Extending past them, by a write and by truncation, shows zeros.
    store.write(5, 1, 1, 3 * BS, b"end").unwrap();
    let read = store.read(5, 1, 100, 3 * BS - 100).unwrap();
    assert!(read.iter().all(|b| *b == 0), "stale bytes came back");
    store.write(6, 0, 1, 0, b"six").unwrap();
    let path = dirs.chunk_file(0, 6);
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&[0xff; 100], DATA_OFFSET + 3).unwrap();
    store.truncate(6, 1, 1, 1000).unwrap();
    assert_eq!(store.read(6, 1, 3, 997).unwrap(), vec![0; 997]);
}

#[test]
fn a_flipped_byte_is_corrupt_set_aside_and_reported_lost() {
    let dirs = Dirs::new(1);
    let store = dirs.open();
    let data = pattern(6, 4 * BS as usize);
    store.write(9, 0, 1, 0, &data).unwrap();
    store.take_changes();
    flip_byte(&dirs.chunk_file(0, 9), DATA_OFFSET + 2 * u64::from(BS) + 123);
    // A read that does not touch the bad block still works.
    assert_eq!(store.read(9, 1, 0, BS).unwrap(), &data[..BS as usize]);
    assert_eq!(
        store.read(9, 1, BS, 2 * BS),
        Err(DataError::Corrupt { chunk: 9, block: 2 })
    );
    // Never served again, moved aside, reported lost.
    assert_eq!(store.read(9, 1, 0, BS), Err(DataError::NoChunk(9)));
    assert!(!dirs.chunk_file(0, 9).exists());
    assert_eq!(dirs.quarantined(0), 1);
    let (held, lost) = store.take_changes().report();
    assert!(held.is_empty());
    assert_eq!(lost, vec![9]);
    assert_eq!(store.usage().chunks, 0);
    assert!(store.full_report().is_empty());
}

#[test]
fn a_partial_write_over_a_corrupt_block_fails_instead_of_blessing_it() {
    let dirs = Dirs::new(1);
    let store = dirs.open();
    store.write(4, 0, 1, 0, &pattern(7, BS as usize)).unwrap();
    flip_byte(&dirs.chunk_file(0, 4), DATA_OFFSET + 5);
    assert_eq!(
        store.write(4, 1, 2, 100, b"patch"),
        Err(DataError::Corrupt { chunk: 4, block: 0 })
    );
    assert_eq!(store.stat(4), Err(DataError::NoChunk(4)));
}

#[test]
fn a_torn_write_is_a_checksum_failure() {
    let dirs = Dirs::new(1);
    let store = dirs.open();
    store.write(8, 0, 1, 0, &pattern(8, 2 * BS as usize)).unwrap();
    let path = dirs.chunk_file(0, 8);
    let before = fs::read(&path).unwrap();
    store.write(8, 1, 2, 10, &pattern(9, 100)).unwrap();
    let after = fs::read(&path).unwrap();
    drop(store);
    // The crash image: the new data reached the disk, the CRC table and header did not.
    let data_start = DATA_OFFSET as usize;
    let mut torn = before[..data_start].to_vec();
    torn.extend_from_slice(&after[data_start..]);
    fs::write(&path, &torn).unwrap();
    let store = dirs.open();
    assert_eq!(store.stat(8).unwrap().0, 1);
    assert_eq!(
        store.read(8, 1, 0, 50),
        Err(DataError::Corrupt { chunk: 8, block: 0 })
    );

    // And the other way round: CRCs and header written, data not.
    store.write(6, 0, 1, 0, &pattern(10, BS as usize)).unwrap();
    let path = dirs.chunk_file(0, 6);
    let before = fs::read(&path).unwrap();
    store.write(6, 1, 1, 0, &pattern(11, BS as usize)).unwrap();
    let after = fs::read(&path).unwrap();
    drop(store);
    let mut torn = after[..data_start].to_vec();
    torn.extend_from_slice(&before[data_start..]);
    fs::write(&path, &torn).unwrap();
    assert_eq!(
        dirs.open().read(6, 1, 0, 1),
        Err(DataError::Corrupt { chunk: 6, block: 0 })
    );
}

#[test]
fn a_file_with_a_bad_header_is_set_aside_at_start() {
    let dirs = Dirs::new(1);
    let store = dirs.open();
    store.write(3, 0, 1, 0, b"abc").unwrap();
    drop(store);
    flip_byte(&dirs.chunk_file(0, 3), 21);
    let store = dirs.open();
    assert_eq!(store.stat(3), Err(DataError::NoChunk(3)));
    assert_eq!(dirs.quarantined(0), 1);
}

#[test]
fn unknown_format_versions_fail_the_dir_and_leave_the_file_alone() {
    let dirs = Dirs::new(2);
    let store = dirs.open();
    dirs.set_available(1, 0);
    store.write(1, 0, 1, 0, b"future").unwrap();
    drop(store);
    let path = dirs.chunk_file(0, 1);
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&2u32.to_le_bytes(), 8).unwrap();
    let image = fs::read(&path).unwrap();

    let store = dirs.open();
    match &store.dirs()[0].state {
        DirState::Failed(reason) => assert!(reason.contains("format version 2"), "{reason}"),
        other => panic!("dir should have failed, is {other:?}"),
    }
    assert_eq!(store.stat(1), Err(DataError::NoChunk(1)));
    assert_eq!(fs::read(&path).unwrap(), image);

    // With no other dir the store refuses to open at all.
    drop(store);
    let only = Store::open_with(&dirs.paths[..1], dirs.probe()).unwrap_err();
    assert!(only.to_string().contains("format version 2"), "{only}");
}

#[test]
fn new_chunks_go_to_the_emptiest_dir_and_skip_full_ones() {
    let dirs = Dirs::new(3);
    dirs.set_available(0, 10 * GIB);
    dirs.set_available(1, 30 * GIB);
    dirs.set_available(2, 20 * GIB);
    let store = dirs.open();
    store.write(1, 0, 1, 0, b"a").unwrap();
    assert!(dirs.chunk_file(1, 1).exists());
    dirs.set_available(1, GIB);
    store.write(2, 0, 1, 0, b"b").unwrap();
    assert!(dirs.chunk_file(2, 2).exists());

    store.mark_full(2);
    store.write(3, 0, 1, 0, b"c").unwrap();
    assert!(dirs.chunk_file(0, 3).exists(), "the full dir is skipped");
    // A chunk already on the full dir can still be written where space allows.
    store.write(2, 1, 2, 1, b"b").unwrap();
    assert_eq!(store.read(2, 2, 0, 2).unwrap(), b"bb");

    store.mark_full(0);
    store.mark_full(1);
    assert_eq!(store.write(4, 0, 1, 0, b"d"), Err(DataError::NoSpace));
    assert_eq!(store.stat(4), Err(DataError::NoChunk(4)));
    // Space comes back for dir 0 only.
    dirs.set_available(0, 10 * GIB);
    dirs.set_available(1, 1 << 20);
    dirs.set_available(2, 1 << 20);
    store.refresh();
    let states: Vec<DirState> = store.dirs().into_iter().map(|d| d.state).collect();
    assert_eq!(states, vec![DirState::Ok, DirState::Full, DirState::Full]);
    store.write(4, 0, 1, 0, b"d").unwrap();
    assert!(dirs.chunk_file(0, 4).exists());
}

#[test]
fn a_failed_dir_loses_its_chunks_and_the_others_carry_on() {
    let dirs = Dirs::new(2);
    dirs.set_available(1, GIB);
    let store = dirs.open();
    store.write(1, 0, 1, 0, b"on d0").unwrap();
    store.write(3, 0, 1, 0, b"also on d0").unwrap();
    dirs.set_available(0, 0);
    dirs.set_available(1, 100 * GIB);
    store.write(2, 0, 1, 0, b"on d1").unwrap();
    store.take_changes();

    fs::remove_dir_all(&dirs.paths[0]).unwrap();
    // Found by an operation on it, before any refresh.
    assert_eq!(store.read(1, 1, 0, 5), Err(DataError::NoChunk(1)));
    assert!(matches!(store.dirs()[0].state, DirState::Failed(_)));
    let (held, lost) = store.take_changes().report();
    assert!(held.is_empty());
    assert_eq!(lost, vec![1, 3]);
    assert_eq!(store.read(3, 1, 0, 3), Err(DataError::NoChunk(3)));
    assert_eq!(store.read(2, 1, 0, 5).unwrap(), b"on d1");
    assert_eq!(store.full_report(), vec![HeldChunk { chunk: 2, version: 1 }]);
    assert_eq!(store.usage().chunks, 1);
    assert_eq!(
        store.usage().capacity,
        200 * GIB,
        "the failed dir no longer counts"
    );
    // New chunks avoid it even if it claims the most space.
    dirs.set_available(0, 1000 * GIB);
    store.write(4, 0, 1, 0, b"new").unwrap();
    assert!(dirs.chunk_file(1, 4).exists());
}

#[test]
fn a_vanished_dir_is_found_by_refresh() {
    let dirs = Dirs::new(2);
    dirs.set_available(1, GIB);
    let store = dirs.open();
    store.write(1, 0, 1, 0, b"x").unwrap();
    store.take_changes();
    fs::remove_dir_all(&dirs.paths[0]).unwrap();
    store.refresh();
    assert!(matches!(store.dirs()[0].state, DirState::Failed(_)));
    assert_eq!(store.take_changes().report().1, vec![1]);
}

#[test]
fn delete_drops_the_copy_and_reports_it() {
    let dirs = Dirs::new(1);
    let store = dirs.open();
    store.write(1, 0, 3, 0, b"x").unwrap();
    store.take_changes();
    assert_eq!(
        store.delete(1, Some(2)),
        Err(DataError::WrongVersion {
            chunk: 1,
            have: 3,
            want: 2
        })
    );
    store.delete(1, Some(3)).unwrap();
    assert!(!dirs.chunk_file(0, 1).exists());
    assert_eq!(store.stat(1), Err(DataError::NoChunk(1)));
    store.delete(1, None).unwrap();
    assert_eq!(store.take_changes().report().1, vec![1]);
}

#[test]
fn imports_replace_older_copies_only_when_finished() {
    let dirs = Dirs::new(1);
    let store = dirs.open();
    store.write(1, 0, 1, 0, b"old").unwrap();
    let data = pattern(12, BS as usize + 10);
    let mut import = store.begin_import(1, 4).unwrap();
    store.import_write(&mut import, 0, &data).unwrap();
    // Not visible before it is finished.
    assert_eq!(store.stat(1).unwrap(), (1, 3));
    store.finish_import(import).unwrap();
    assert_eq!(store.read(1, 4, 0, data.len() as u32).unwrap(), data);
    assert_eq!(store.usage().chunks, 1);
    assert_eq!(fs::read_dir(dirs.paths[0].join("tmp")).unwrap().count(), 0);

    // An abandoned import leaves nothing behind.
    let mut import = store.begin_import(2, 1).unwrap();
    store.import_write(&mut import, 0, b"partial").unwrap();
    drop(import);
    assert_eq!(fs::read_dir(dirs.paths[0].join("tmp")).unwrap().count(), 0);
    assert_eq!(store.stat(2), Err(DataError::NoChunk(2)));
    let (held, _) = store.take_changes().report();
    assert_eq!(held, vec![HeldChunk { chunk: 1, version: 4 }]);
}

#[test]
fn sync_needs_the_current_version() {
    let dirs = Dirs::new(1);
    let store = dirs.open();
    store.write(1, 0, 2, 0, b"x").unwrap();
    store.sync(1, 2).unwrap();
    assert_eq!(
        store.sync(1, 1),
        Err(DataError::WrongVersion {
            chunk: 1,
            have: 2,
            want: 1
        })
    );
    assert_eq!(store.sync(7, 1), Err(DataError::NoChunk(7)));
}
