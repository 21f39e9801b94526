//! Copies assembled by replication: written to the dir's `tmp/`, verified, made durable and
//! only then renamed into place, replacing any other copy of the chunk.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use proto::data::DataError;

use super::chunk_file::ChunkFile;
use super::format::Header;
use super::{Fault, Meta, Store, bad, check_range, check_version, lock, sync_parent};

/// A copy being assembled by replication; removed unless [`Store::finish_import`] installs it.
#[derive(Debug)]
pub struct Import {
    chunk: u64,
    version: u32,
    dir: usize,
    path: PathBuf,
    file: ChunkFile,
    finished: bool,
}

impl Drop for Import {
    fn drop(&mut self) {
        if !self.finished {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Store {
    /// Starts assembling a copy of `chunk` at `version` in the dir with the most space.
    pub fn begin_import(&self, chunk: u64, version: u32) -> Result<Import, DataError> {
        check_version(version)?;
        for d in self.placement() {
            let path = self.dirs[d].tmp_path(chunk, version);
            match ChunkFile::create(
                &path,
                Header {
                    chunk,
                    version,
                    len: 0,
                },
            ) {
                Ok(file) => {
                    return Ok(Import {
                        chunk,
                        version,
                        dir: d,
                        path,
                        file,
                        finished: false,
                    });
                }
                Err(err) => {
                    let _ = fs::remove_file(&path);
                    if err.kind() != io::ErrorKind::StorageFull {
                        return Err(self.io_fault(d, chunk, err));
                    }
                    self.mark_full(d);
                }
            }
        }
        Err(DataError::NoSpace)
    }

    /// Writes `data` at `offset` of a copy being imported.
    pub fn import_write(&self, import: &mut Import, offset: u32, data: &[u8]) -> Result<(), DataError> {
        let len = u32::try_from(data.len()).map_err(|_| bad("write larger than 4 GiB"))?;
        check_range(offset, len)?;
        let (chunk, version, dir) = (import.chunk, import.version, import.dir);
        import
            .file
            .write(version, offset, data)
            .map_err(|e| self.file_fault(dir, chunk, e))
    }

    /// Verifies an imported copy, makes it durable and installs it in place of any other copy
    /// of the chunk.
    pub fn finish_import(&self, mut import: Import) -> Result<(), DataError> {
        let (chunk, d) = (import.chunk, import.dir);
        import.file.verify().map_err(|e| self.file_fault(d, chunk, e))?;
        import
            .file
            .sync_all()
            .map_err(|err| self.io_fault(d, chunk, err))?;
        let r = self.with_slot(chunk, true, |meta| {
            let dir = &self.dirs[d];
            let path = dir.chunk_path(chunk);
            install(&import.path, &path).map_err(|err| Fault::Io { dir: d, chunk, err })?;
            import.finished = true;
            if let Some(old) = meta.take() {
                let old_dir = &self.dirs[old.dir];
                old_dir.remove_chunk();
                if old.dir != d {
                    let _ = fs::remove_file(old_dir.chunk_path(chunk));
                }
            }
            *meta = Some(Meta {
                dir: d,
                header: import.file.header(),
            });
            dir.add_chunk();
            lock(&self.changes).held(chunk, import.version);
            Ok(())
        });
        self.settle(r.unwrap_or(Err(Fault::Data(DataError::NoChunk(chunk)))))
    }
}

/// Renames a finished replica into place and makes the rename durable.
fn install(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::rename(from, to)?;
    sync_parent(to)
}
