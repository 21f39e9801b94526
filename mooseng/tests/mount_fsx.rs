//! A random file exerciser in the style of fsx: a seeded PRNG drives operations on one file
//! of a real mount (pwrite, pread, truncation up and down, fsync, close and reopen, reads and
//! writes through a shared mapping with msync) while an in-memory model of the file follows
//! along; every read is compared with the model. Most operations are small, a few cross the
//! 64 MiB chunk boundary (the file grows to at most 70 MiB).
//!
//! Tier: fuse (real `mooseng` processes and real FUSE mounts; needs `/dev/fuse`).
//!
//! Environment: `MOOSENG_FSX_SEED` (default `0x5EED`) and `MOOSENG_FSX_OPS` (default 10,000).
//! A mismatch prints the seed, the operation number and the last 20 operations.

#![allow(unsafe_code)] // mmap, msync and munmap through libc: the exerciser's mapped reads and writes

mod common;

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Instant;

use testkit::{Cluster, SplitMix, fuse_or_skip};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
/// The chunk size: data on either side of it lives in different chunks.
const CHUNK: u64 = 64 * MIB;
/// The largest size the file reaches.
const MAX_SIZE: u64 = 70 * MIB;
/// Operations kept for the report of a mismatch.
const HISTORY: usize = 20;

/// The report the SIGBUS handler prints: a page the mount cannot supply to a mapping kills the
/// process with SIGBUS instead of failing a call, so the report `fail` would give is rendered
/// before every mapped access.
static SIGBUS_REPORT: AtomicPtr<Vec<u8>> = AtomicPtr::new(std::ptr::null_mut());

extern "C" fn on_sigbus(_signal: libc::c_int) {
    let report = SIGBUS_REPORT.load(Ordering::Acquire);
    if !report.is_null() {
        // SAFETY: armed reports are only freed by the next `arm`, which runs on this same
        // thread between mapped accesses, never while one is in progress.
        let report = unsafe { &*report };
        // SAFETY: write(2) is async-signal-safe; the buffer is valid for its length.
        unsafe { libc::write(2, report.as_ptr().cast(), report.len()) };
    }
    // SA_RESETHAND restored the default action: the access is retried and kills the process.
}

/// Installs [`on_sigbus`] (once per delivery).
fn catch_sigbus() {
    // SAFETY: a zeroed sigaction is a valid starting point; the handler only calls write(2).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as *const () as usize;
        action.sa_flags = libc::SA_RESETHAND;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()), 0);
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Write { off: u64, len: u64 },
    Read { off: u64, len: u64 },
    Truncate { size: u64 },
    Fsync,
    Reopen,
    MapRead { off: u64, len: u64 },
    MapWrite { off: u64, len: u64 },
}

/// The exerciser: the file, its model and what was done.
struct Fsx {
    path: PathBuf,
    file: File,
    model: Vec<u8>,
    rng: SplitMix,
    seed: u64,
    done: usize,
    history: VecDeque<String>,
    page: u64,
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|e| panic!("{name}={v}: {e}"))
        }
        Err(_) => default,
    }
}

fn open(path: &PathBuf) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

impl Fsx {
    fn new(path: PathBuf, seed: u64) -> Fsx {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
        Fsx {
            file: open(&path),
            path,
            model: Vec::new(),
            rng: SplitMix(seed),
            seed,
            done: 0,
            history: VecDeque::new(),
            page,
        }
    }

    fn size(&self) -> u64 {
        self.model.len() as u64
    }

    /// What went wrong, with the seed, the operation number and the last operations.
    fn report(&self, what: &str) -> String {
        let history: Vec<&str> = self.history.iter().map(String::as_str).collect();
        format!(
            "fsx: {what}\nseed {:#x} (MOOSENG_FSX_SEED), operation {} (counting from 1), file size {}\nlast {} operations:\n  {}",
            self.seed,
            self.done + 1,
            self.size(),
            history.len(),
            history.join("\n  ")
        )
    }

    /// Fails with [`Fsx::report`].
    fn fail(&self, what: String) -> ! {
        panic!("{}", self.report(&what));
    }

    /// Renders the report the SIGBUS handler prints if the next mapped access cannot be served.
    fn arm(&self) {
        let text = format!(
            "\n{}\n",
            self.report("SIGBUS in a mapped access (the mount could not supply a page)")
        );
        let fresh = Box::into_raw(Box::new(text.into_bytes()));
        let old = SIGBUS_REPORT.swap(fresh, Ordering::AcqRel);
        if !old.is_null() {
            // SAFETY: `old` came from `Box::into_raw` here and the handler is not running.
            drop(unsafe { Box::from_raw(old) });
        }
    }

    /// Where an operation starts: mostly in or just past the data, sometimes just before the
    /// chunk boundary (so that it often crosses it), rarely anywhere up to the largest size
    /// (leaving a hole).
    fn offset(&mut self) -> u64 {
        match self.rng.below(100) {
            0..=1 => CHUNK - 1 - self.rng.below(8 * KIB),
            2 => CHUNK - 1 - self.rng.below(256 * KIB),
            3..=4 => self.rng.below(MAX_SIZE),
            _ => self.rng.below(self.size() + 64 * KIB),
        }
    }

    /// How many bytes: mostly a few KiB, sometimes up to 128 KiB, rarely up to 1 MiB (every
    /// byte crosses FUSE and QUIC in a debug build: small operations keep the run short).
    fn length(&mut self) -> u64 {
        1 + match self.rng.below(100) {
            0..=89 => self.rng.below(8 * KIB),
            90..=98 => self.rng.below(128 * KIB),
            _ => self.rng.below(MIB),
        }
    }

    fn pick(&mut self) -> Op {
        let size = self.size();
        match self.rng.below(100) {
            0..=31 => {
                let off = self.offset().min(MAX_SIZE - 1);
                let len = self.length().min(MAX_SIZE - off);
                Op::Write { off, len }
            }
            32..=59 => {
                let off = self.offset();
                Op::Read {
                    off,
                    len: self.length(),
                }
            }
            60..=65 => {
                let size = match self.rng.below(10) {
                    0..=5 => self.rng.below(size + 1),
                    6..=8 => (size + self.rng.below(MIB)).min(MAX_SIZE),
                    _ => CHUNK - MIB + self.rng.below(2 * MIB),
                };
                Op::Truncate { size }
            }
            66..=68 => Op::Fsync,
            69..=71 => Op::Reopen,
            72..=87 if size > 0 => {
                let off = self.rng.below(size);
                let len = 1 + self.rng.below((size - off).min(64 * KIB));
                Op::MapRead { off, len }
            }
            _ => {
                let off = self.offset().min(MAX_SIZE - 1);
                let len = (1 + self.rng.below(16 * KIB)).min(MAX_SIZE - off);
                Op::MapWrite { off, len }
            }
        }
    }

    /// Fresh bytes for a write: the operation number mixed in, so stale data is recognisable.
    fn bytes(&mut self, len: u64) -> Vec<u8> {
        let tag = (self.done as u64).wrapping_mul(0x100_0000_01B3);
        let mut out = Vec::with_capacity(len as usize + 8);
        while (out.len() as u64) < len {
            out.extend_from_slice(&(self.rng.next_u64() ^ tag).to_le_bytes());
        }
        out.truncate(len as usize);
        out
    }

    fn resize(&mut self, size: u64) {
        self.model.resize(size as usize, 0);
    }

    fn check(&self, what: &str, off: u64, got: &[u8]) {
        let end = (off + got.len() as u64).min(self.size());
        let want = &self.model[(off.min(self.size()) as usize)..end as usize];
        if got != want {
            let at = got.iter().zip(want).position(|(a, b)| a != b);
            let (len_got, len_want) = (got.len(), want.len());
            let detail = match at {
                Some(i) => format!(
                    "first difference at file offset {} (read {:#04x}, model {:#04x})",
                    off + i as u64,
                    got[i],
                    want[i]
                ),
                None => format!("{len_got} bytes read, model has {len_want}"),
            };
            self.fail(format!("{what} at {off} of {len_got} bytes: {detail}"));
        }
    }

    /// Reads `len` bytes at `off` (fewer at the end of the file).
    fn pread(&self, off: u64, len: u64) -> Vec<u8> {
        let mut buf = vec![0u8; len as usize];
        let mut n = 0;
        while n < buf.len() {
            match self.file.read_at(&mut buf[n..], off + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => self.fail(format!("pread at {} of {len}: {e}", off + n as u64)),
            }
        }
        buf.truncate(n);
        buf
    }

    /// Maps `len` bytes of the file at `off` (shared, `prot`); returns the mapping, its length
    /// and where `off` is in it.
    fn map(&self, off: u64, len: u64, prot: i32) -> (*mut libc::c_void, usize, usize) {
        let start = off - off % self.page;
        let skip = (off - start) as usize;
        let maplen = skip + len as usize;
        // SAFETY: a fresh mapping of an open descriptor; nothing else refers to the range.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                maplen,
                prot,
                libc::MAP_SHARED,
                self.file.as_raw_fd(),
                start as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            self.fail(format!(
                "mmap at {start} of {maplen}: {}",
                std::io::Error::last_os_error()
            ));
        }
        (p, maplen, skip)
    }

    fn unmap(&self, p: *mut libc::c_void, maplen: usize) {
        // SAFETY: `p` is a mapping of `maplen` bytes made by `map` and not used after this.
        if unsafe { libc::munmap(p, maplen) } != 0 {
            self.fail(format!("munmap: {}", std::io::Error::last_os_error()));
        }
    }

    fn run(&mut self, op: Op) {
        match op {
            Op::Write { off, len } => {
                let data = self.bytes(len);
                if let Err(e) = self.file.write_all_at(&data, off) {
                    self.fail(format!("pwrite at {off} of {len}: {e}"));
                }
                if off + len > self.size() {
                    self.resize(off + len);
                }
                self.model[off as usize..(off + len) as usize].copy_from_slice(&data);
            }
            Op::Read { off, len } => {
                let got = self.pread(off, len);
                self.check("pread", off, &got);
            }
            Op::Truncate { size } => {
                if let Err(e) = self.file.set_len(size) {
                    self.fail(format!("ftruncate to {size}: {e}"));
                }
                self.resize(size);
            }
            Op::Fsync => {
                if let Err(e) = self.file.sync_all() {
                    self.fail(format!("fsync: {e}"));
                }
            }
            Op::Reopen => {
                // Closing reports what failed to land since the last flush.
                let fd = self.file.as_raw_fd();
                let fresh = open(&self.path);
                let old = std::mem::replace(&mut self.file, fresh);
                std::mem::forget(old);
                // SAFETY: `fd` belonged to the file just replaced, which was forgotten.
                if unsafe { libc::close(fd) } != 0 {
                    self.fail(format!("close: {}", std::io::Error::last_os_error()));
                }
            }
            Op::MapRead { off, len } => {
                self.arm();
                let (p, maplen, skip) = self.map(off, len, libc::PROT_READ);
                // SAFETY: the mapping covers `skip + len` bytes, all inside the file.
                let got =
                    unsafe { std::slice::from_raw_parts((p as *const u8).add(skip), len as usize) }.to_vec();
                self.unmap(p, maplen);
                self.check("mapped read", off, &got);
            }
            Op::MapWrite { off, len } => {
                self.arm();
                // A mapping cannot grow the file: extend it first, as fsx does.
                if off + len > self.size() {
                    if let Err(e) = self.file.set_len(off + len) {
                        self.fail(format!("ftruncate to {} before a mapped write: {e}", off + len));
                    }
                    self.resize(off + len);
                }
                let data = self.bytes(len);
                let (p, maplen, skip) = self.map(off, len, libc::PROT_READ | libc::PROT_WRITE);
                // SAFETY: the mapping is writable and covers `skip + len` bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(data.as_ptr(), (p as *mut u8).add(skip), len as usize);
                }
                // SAFETY: `p` is the start of a mapping of `maplen` bytes.
                if unsafe { libc::msync(p, maplen, libc::MS_SYNC) } != 0 {
                    self.fail(format!("msync: {}", std::io::Error::last_os_error()));
                }
                self.unmap(p, maplen);
                self.model[off as usize..(off + len) as usize].copy_from_slice(&data);
            }
        }
    }

    /// Compares the whole file, read through `file`, with the model.
    fn check_all(&self, file: &File, what: &str) {
        let len = file.metadata().unwrap().len();
        if len != self.size() {
            self.fail(format!("{what}: size {len}, model {}", self.size()));
        }
        let mut off = 0;
        while off < len {
            let n = (len - off).min(8 * MIB);
            let mut buf = vec![0u8; n as usize];
            if let Err(e) = file.read_exact_at(&mut buf, off) {
                self.fail(format!("{what}: read at {off}: {e}"));
            }
            self.check(what, off, &buf);
            off += n;
        }
    }
}

#[test]
fn random_operations_match_the_model() {
    if !fuse_or_skip() {
        return;
    }
    let seed = env_u64("MOOSENG_FSX_SEED", 0x5EED);
    let ops = env_u64("MOOSENG_FSX_OPS", 10_000) as usize;
    let cluster = Cluster::start_fs(common::bin(), 3, 3, 2);
    let mut mount = cluster.mount("");
    let mut fsx = Fsx::new(mount.join("fsx.bin"), seed);
    catch_sigbus();
    let started = Instant::now();
    let mut counts = std::collections::BTreeMap::new();
    let mut crossing = 0;
    while fsx.done < ops {
        let op = fsx.pick();
        let entry = format!("{:>6}: {op:?} (size {})", fsx.done + 1, fsx.size());
        fsx.history.push_back(entry);
        if fsx.history.len() > HISTORY {
            fsx.history.pop_front();
        }
        let span = match op {
            Op::Write { off, len }
            | Op::Read { off, len }
            | Op::MapRead { off, len }
            | Op::MapWrite { off, len } => Some((off, off + len)),
            _ => None,
        };
        if span.is_some_and(|(from, to)| from < CHUNK && to > CHUNK) {
            crossing += 1;
        }
        let t = Instant::now();
        fsx.run(op);
        let kind = format!("{op:?}").split([' ', '{']).next().unwrap().to_string();
        let c = counts.entry(kind).or_insert((0, std::time::Duration::ZERO));
        c.0 += 1;
        c.1 += t.elapsed();
        fsx.done += 1;
        if fsx.done.is_multiple_of(1000) {
            eprintln!(
                "{} operations in {:?}, size {}",
                fsx.done,
                started.elapsed(),
                fsx.size()
            );
        }
    }
    let took = started.elapsed();
    eprintln!(
        "{ops} operations (seed {seed:#x}) in {took:?}, {:.0}/s, {crossing} across the chunk boundary; (count, time) by kind: {counts:?}",
        ops as f64 / took.as_secs_f64().max(1e-9)
    );
    fsx.check_all(&fsx.file, "the whole file through the exercised descriptor");
    let other = cluster.mount("");
    let file = File::open(other.join("fsx.bin")).unwrap();
    fsx.check_all(&file, "the whole file through a fresh mount");
    drop(file);
    assert!(mount.unmount(), "the mount unmounts cleanly");
}
