//! One chunk file (see [`super::format`]): checked reads, read-verify-modify writes,
//! truncation and whole-file verification, with positional I/O on an open [`File`].
//!
//! Every operation writes data first, then CRC table entries, then the header. A crash may
//! leave any prefix of those writes on disk, in any order the kernel chose to flush them; each
//! block is checked against its own CRC, so a block whose data and CRC disagree reads as
//! corrupt instead of as wrong data. Bytes past the chunk's length are never read: they count
//! as zeros, and an operation that extends the chunk first cuts the file back to the length so
//! stale bytes from an interrupted write cannot reappear.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use proto::data::BLOCK_SIZE;

use super::format::{
    DATA_OFFSET, FormatError, HEADER_LEN, Header, block_crc, block_of, block_start, blocks_for, crc_pos,
    data_pos, decode_crcs, encode_crcs, zero_block_crc,
};

const BS: usize = BLOCK_SIZE as usize;
/// Blocks read at once by [`ChunkFile::verify`].
const VERIFY_BATCH: u32 = 128;

/// Why an operation on a chunk file failed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A block failed its checksum.
    #[error("block {block} failed its checksum")]
    Corrupt {
        /// The block.
        block: u32,
    },
    /// The file system failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// An open chunk file and its header.
#[derive(Debug)]
pub struct ChunkFile {
    file: File,
    header: Header,
}

impl ChunkFile {
    /// Creates an empty chunk file, replacing whatever is at `path` (the caller knows no
    /// copy lives there: anything found is a leftover).
    pub fn create(path: &Path, header: Header) -> io::Result<ChunkFile> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        let header = Header { len: 0, ..header };
        file.set_len(DATA_OFFSET)?;
        file.write_all_at(&header.encode(), 0)?;
        Ok(ChunkFile { file, header })
    }

    /// Opens an existing chunk file whose header is known.
    pub fn open(path: &Path, header: Header) -> io::Result<ChunkFile> {
        let file = File::options().read(true).write(true).open(path)?;
        Ok(ChunkFile { file, header })
    }

    /// The header as last written.
    pub fn header(&self) -> Header {
        self.header
    }

    /// Reads `len` bytes at `offset`, verifying every block touched; bytes past the length
    /// read as zeros.
    pub fn read(&self, offset: u32, len: u32) -> Result<Vec<u8>, FileError> {
        let mut out = vec![0u8; len as usize];
        let valid_end = offset.saturating_add(len).min(self.header.len);
        if offset < valid_end {
            let first = block_of(offset);
            let blocks = self.read_checked(first, block_of(valid_end - 1) - first + 1)?;
            let skip = (offset - block_start(first)) as usize;
            let n = (valid_end - offset) as usize;
            out[..n].copy_from_slice(&blocks[skip..skip + n]);
        }
        Ok(out)
    }

    /// Writes `data` at `offset` (which the caller checked against the chunk size) and sets
    /// the version: data, then CRCs, then the header. Blocks only partly overwritten are read
    /// and verified first.
    pub fn write(&mut self, version: u32, offset: u32, data: &[u8]) -> Result<(), FileError> {
        let old = self.header.len;
        let end = offset + data.len() as u32;
        let len = old.max(end);
        if !data.is_empty() {
            if end > old {
                self.file.set_len(data_pos(old))?;
            }
            let first = block_of(offset);
            let last = block_of(end - 1);
            let mut blocks = vec![0u8; (last - first + 1) as usize * BS];
            let head_partial = !offset.is_multiple_of(BLOCK_SIZE) && block_start(first) < old;
            let tail_partial = !end.is_multiple_of(BLOCK_SIZE) && end < old;
            if head_partial {
                blocks[..BS].copy_from_slice(&self.read_checked(first, 1)?);
            }
            if tail_partial && (last != first || !head_partial) {
                let at = (last - first) as usize * BS;
                blocks[at..].copy_from_slice(&self.read_checked(last, 1)?);
            }
            let at = (offset - block_start(first)) as usize;
            blocks[at..at + data.len()].copy_from_slice(data);
            self.file.write_all_at(data, data_pos(offset))?;

            // Blocks between the old end and this write are holes: zeros.
            let gap = blocks_for(old).min(first);
            let mut crcs = vec![zero_block_crc(); (first - gap) as usize];
            crcs.extend(blocks.chunks_exact(BS).map(block_crc));
            self.file.write_all_at(&encode_crcs(&crcs), crc_pos(gap))?;
        }
        self.set_header(version, len)
    }

    /// Cuts or extends the chunk to `len` bytes (new bytes are zeros) and sets the version.
    pub fn truncate(&mut self, version: u32, len: u32) -> Result<(), FileError> {
        let old = self.header.len;
        if len > old {
            self.file.set_len(data_pos(old))?;
            self.file.set_len(data_pos(len))?;
            let (from, to) = (blocks_for(old), blocks_for(len));
            if from < to {
                let crcs = vec![zero_block_crc(); (to - from) as usize];
                self.file.write_all_at(&encode_crcs(&crcs), crc_pos(from))?;
            }
        } else if len < old {
            let cut = (len % BLOCK_SIZE) as usize;
            let last = (cut != 0)
                .then(|| self.read_checked(block_of(len), 1))
                .transpose()?;
            self.file.set_len(data_pos(len))?;
            if let Some(mut block) = last {
                block[cut..].fill(0);
                self.file
                    .write_all_at(&block_crc(&block).to_le_bytes(), crc_pos(block_of(len)))?;
            }
        }
        self.set_header(version, len)
    }

    /// Reads and checks every block of the chunk.
    pub fn verify(&self) -> Result<(), FileError> {
        let blocks = blocks_for(self.header.len);
        let mut first = 0;
        while first < blocks {
            let count = VERIFY_BATCH.min(blocks - first);
            self.read_checked(first, count)?;
            first += count;
        }
        Ok(())
    }

    /// Makes the data durable (fdatasync).
    pub fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Makes the data and the file's metadata durable (fsync).
    pub fn sync_all(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    fn set_header(&mut self, version: u32, len: u32) -> Result<(), FileError> {
        let header = Header {
            version,
            len,
            ..self.header
        };
        if header != self.header {
            self.file.write_all_at(&header.encode(), 0)?;
            self.header = header;
        }
        Ok(())
    }

    /// Reads `count` whole blocks from `first` (zeros past the length) and checks each
    /// against its CRC.
    fn read_checked(&self, first: u32, count: u32) -> Result<Vec<u8>, FileError> {
        let mut blocks = vec![0u8; count as usize * BS];
        let start = block_start(first);
        let valid = self
            .header
            .len
            .min(block_start(first + count))
            .saturating_sub(start) as usize;
        read_up_to(&self.file, &mut blocks[..valid], data_pos(start))?;
        let mut crcs = vec![0u8; count as usize * 4];
        read_up_to(&self.file, &mut crcs, crc_pos(first))?;
        for (i, (block, crc)) in blocks.chunks_exact(BS).zip(decode_crcs(&crcs)).enumerate() {
            if block_crc(block) != crc {
                return Err(FileError::Corrupt {
                    block: first + i as u32,
                });
            }
        }
        Ok(blocks)
    }
}

/// Reads the header of the chunk file at `path`: the outer error is I/O, the inner one says
/// why the header is unusable.
pub fn read_header(path: &Path) -> io::Result<Result<Header, FormatError>> {
    let file = File::open(path)?;
    let mut b = [0u8; HEADER_LEN];
    let n = read_up_to(&file, &mut b, 0)?;
    Ok(Header::decode(&b[..n]))
}

/// Fills `buf` from `pos` until it is full or the file ends; returns the bytes read (the rest
/// of `buf` is left as it was).
fn read_up_to(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], pos + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
