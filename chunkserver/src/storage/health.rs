//! The health of data dirs: measuring them, marking them full or failed, and drawing those
//! consequences from I/O errors once no copy is locked.

use std::io;

use proto::data::DataError;

use super::chunk_file::FileError;
use super::{DirState, FULL_RELEASE, Fault, Store, lock};

impl Store {
    /// Measures every dir again, fails the ones whose chunk tree is gone and lets `full`
    /// dirs with room for a whole chunk take new copies again.
    pub fn refresh(&self) {
        for (i, dir) in self.dirs.iter().enumerate() {
            let state = dir.state();
            if matches!(state, DirState::Failed(_)) {
                continue;
            }
            if !dir.present() {
                self.fail_dir(i, "its chunk tree is gone".into());
                continue;
            }
            match (self.probe)(&dir.root) {
                Ok(space) => {
                    dir.set_space(space);
                    if state == DirState::Full && space.available >= FULL_RELEASE {
                        dir.set_state(DirState::Ok);
                        tracing::info!(dir = %dir.root.display(), "data dir has space again");
                    }
                }
                Err(e) => self.fail_dir(i, format!("measure space: {e}")),
            }
        }
    }

    /// Marks dir `i` full (unless it failed): it takes no new copies.
    pub(crate) fn mark_full(&self, i: usize) {
        let dir = &self.dirs[i];
        if dir.state() == DirState::Ok {
            dir.set_state(DirState::Full);
            tracing::warn!(dir = %dir.root.display(), "data dir is full; new chunks go elsewhere");
        }
    }

    /// Marks dir `i` failed and drops its copies (reported lost). Must not be called while a
    /// slot is locked.
    pub(super) fn fail_dir(&self, i: usize, reason: String) {
        let dir = &self.dirs[i];
        if matches!(dir.state(), DirState::Failed(_)) {
            return;
        }
        tracing::error!(dir = %dir.root.display(), reason, "data dir failed; its copies are reported lost");
        dir.set_state(DirState::Failed(reason));
        let chunks: Vec<u64> = lock(&self.index).keys().copied().collect();
        for chunk in chunks {
            self.with_slot(chunk, false, |meta| {
                if meta.is_some_and(|m| m.dir == i) {
                    self.drop_copy(chunk, meta);
                }
            });
        }
    }

    /// Draws the dir-level consequences of a fault, now that no slot is locked.
    pub(super) fn settle<T>(&self, r: Result<T, Fault>) -> Result<T, DataError> {
        r.map_err(|fault| match fault {
            Fault::Data(e) => e,
            Fault::Io { dir, chunk, err } => self.io_fault(dir, chunk, err),
        })
    }

    pub(super) fn file_fault(&self, dir: usize, chunk: u64, e: FileError) -> DataError {
        match e {
            FileError::Corrupt { block } => DataError::Corrupt { chunk, block },
            FileError::Io(err) => self.io_fault(dir, chunk, err),
        }
    }

    /// Classifies an I/O error of dir `dir`: no space marks it full, a vanished file fails
    /// it if its chunk tree is gone, resource exhaustion is passed on, anything else fails it.
    pub(super) fn io_fault(&self, dir: usize, chunk: u64, err: io::Error) -> DataError {
        use io::ErrorKind as K;
        const ENFILE: i32 = 23;
        const EMFILE: i32 = 24;
        match err.kind() {
            K::StorageFull | K::QuotaExceeded => {
                self.mark_full(dir);
                DataError::NoSpace
            }
            K::NotFound => {
                if !self.dirs[dir].present() {
                    self.fail_dir(dir, "its chunk tree is gone".into());
                }
                DataError::NoChunk(chunk)
            }
            K::Interrupted | K::OutOfMemory | K::WouldBlock | K::TimedOut => DataError::Io(err.to_string()),
            _ if matches!(err.raw_os_error(), Some(ENFILE | EMFILE)) => DataError::Io(err.to_string()),
            _ => {
                self.fail_dir(dir, format!("I/O error: {err}"));
                DataError::Io(err.to_string())
            }
        }
    }
}
