//! Segment files: naming, creating zero-filled segments, and reading one back.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::wal::memlog::MemLog;
use crate::wal::record::{self, FRAME_HEAD, HEADER_LEN, Record};

/// The file name of segment `seq`.
pub fn name(seq: u64) -> String {
    format!("{seq:016x}.wal")
}

/// Every segment in `dir`, oldest first. Leftover spares being prepared (`*.tmp`) are removed.
pub fn list(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let path = e?.path();
        let Some(file) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if file.ends_with(".tmp") {
            std::fs::remove_file(&path)?;
        } else if let Some(seq) = file
            .strip_suffix(".wal")
            .and_then(|s| u64::from_str_radix(s, 16).ok())
        {
            out.push((seq, path));
        }
    }
    out.sort();
    Ok(out)
}

/// `fsync`s a directory, so that a rename or a new file in it survives a crash.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates segment `seq` at `path`: `size` zero bytes with the header, synced, then renamed
/// into place (so a half-prepared segment never carries a segment's name).
pub fn create(path: &Path, seq: u64, size: u64) -> std::io::Result<File> {
    let tmp = path.with_extension("wal.tmp");
    let result = (|| {
        let mut f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        let zeros = vec![0u8; 1 << 20];
        let mut left = size.max(HEADER_LEN as u64);
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            f.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        f.write_all_at(&record::header(seq), 0)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(f)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// What a segment holds.
#[derive(Debug)]
pub enum Replay {
    /// No intact base: the crash came while the segment was being started.
    Torn,
    /// The logs as of the last intact frame, and where the next frame goes.
    Log {
        /// Every group's log.
        logs: BTreeMap<u32, MemLog>,
        /// Offset of the end of the last intact frame.
        end: u64,
    },
}

/// Whether the damaged frame at `at` can be a torn last write: its length fits and only
/// zeros follow it. (A write is one frame, so a crash can tear only the last one.)
fn torn_at(buf: &[u8], at: usize) -> bool {
    let rest = &buf[at..];
    if rest.len() < FRAME_HEAD {
        return true;
    }
    let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
    FRAME_HEAD + len <= rest.len() && rest[FRAME_HEAD + len..].iter().all(|b| *b == 0)
}

/// Reads segment `seq` at `path`. A torn last frame is zeroed on disk so that appends can
/// continue over it; damage followed by more frames is an error.
pub fn replay(path: &Path, seq: u64) -> Result<Replay, String> {
    let buf = std::fs::read(path).map_err(|e| e.to_string())?;
    let found = record::parse_header(&buf).map_err(|e| e.to_string())?;
    if found != seq {
        return Err(format!("header says segment {found}, the name says {seq}"));
    }
    let mut logs: BTreeMap<u32, MemLog> = BTreeMap::new();
    let mut at = HEADER_LEN;
    loop {
        match record::next_frame(seq, &buf[at..]) {
            Ok(Some((rec, n))) => {
                if at == HEADER_LEN && !rec.base {
                    return Err("the first frame is not a base".into());
                }
                apply(&mut logs, &rec).map_err(|e| format!("frame at offset {at}: {e}"))?;
                at += n;
            }
            Ok(None) if at == HEADER_LEN => return Ok(Replay::Torn),
            Ok(None) => return Ok(Replay::Log { logs, end: at as u64 }),
            Err(e) if torn_at(&buf, at) => {
                if at == HEADER_LEN {
                    return Ok(Replay::Torn);
                }
                tracing::warn!(segment = %path.display(), offset = at, "dropping a torn last frame: {e}");
                let f = File::options()
                    .write(true)
                    .open(path)
                    .map_err(|e| e.to_string())?;
                f.write_all_at(&vec![0u8; buf.len() - at], at as u64)
                    .and_then(|()| f.sync_data())
                    .map_err(|e| e.to_string())?;
                return Ok(Replay::Log { logs, end: at as u64 });
            }
            Err(e) => {
                return Err(format!(
                    "damaged at offset {at} with frames after the damage ({e}); \
                     refusing to drop them"
                ));
            }
        }
    }
}

fn apply(logs: &mut BTreeMap<u32, MemLog>, rec: &Record) -> Result<(), String> {
    if rec.base {
        logs.clear();
    }
    for delta in &rec.groups {
        logs.entry(delta.shard)
            .or_default()
            .apply(delta)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
