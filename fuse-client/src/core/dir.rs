//! Directory streams. The metadata server pages a listing with opaque byte cookies; FUSE wants
//! a `u64` offset per entry that resumes the listing right after it, even after `seekdir`.
//!
//! A stream remembers the cookie that starts each page it has fetched (page 0 starts at
//! `None`) and holds one page of entries. The offset after entry `i` of page `p` is
//! `p << 16 | (i + 1)`, and `(p + 1) << 16` after a page's last entry, so any offset handed out
//! names a page whose start is remembered and an index within it. Memory is one cookie per
//! page seen plus one page: bounded by the directory's size over the page size, never by how
//! often or from where it is read. Server cookies name the last entry of a page, so they stay
//! valid whatever changes; an entry added or removed inside a page that is fetched again can
//! shift that page's later offsets by one (POSIX leaves entries changed during a listing
//! unspecified).
//!
//! Once a page is fetched, the next one is fetched in the background (read-ahead) while the
//! kernel takes the entries of this one, so a long listing waits for the metadata server
//! about once instead of once per page; at most one page is read ahead per stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use proto::fs::{Cred, DirEntry};
use proto::{Errno, FsOp, FsReply};

use crate::core::{Data, Fs, FsError, Meta};

/// Bits of a FUSE directory offset that index an entry within its page.
const INDEX_BITS: u32 = 16;

/// Where listed entries go: the kernel's reply buffer, or a test's vector.
pub trait DirSink {
    /// Adds `entry`, after which the listing resumes at offset `next`; `false` if the buffer
    /// is full and the entry was not added.
    fn push(&mut self, entry: &DirEntry, next: u64) -> bool;
}

/// The open directory streams.
#[derive(Debug, Default)]
pub(crate) struct Streams(Mutex<HashMap<u64, Arc<tokio::sync::Mutex<Stream>>>>);

impl Streams {
    fn get(&self, fh: u64) -> Option<Arc<tokio::sync::Mutex<Stream>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(&fh).cloned()
    }

    fn insert(&self, fh: u64, s: Stream) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(fh, Arc::new(tokio::sync::Mutex::new(s)));
    }

    fn remove(&self, fh: u64) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&fh);
    }
}

/// A page's entries and the cookie of the page after it.
type Fetched = (Vec<DirEntry>, Option<Vec<u8>>);

/// One open directory.
#[derive(Debug)]
pub(crate) struct Stream {
    dir: u64,
    /// The cookie starting each page fetched so far (and the one after the last, if any).
    starts: Vec<Option<Vec<u8>>>,
    page: Page,
    ahead: Option<Ahead>,
}

/// The page after the held one, being fetched in the background.
#[derive(Debug)]
struct Ahead {
    no: u64,
    plus: bool,
    fetch: tokio::task::JoinHandle<Result<Fetched, FsError>>,
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.fetch.abort();
    }
}

/// The page a stream holds.
#[derive(Debug)]
struct Page {
    no: u64,
    entries: Vec<DirEntry>,
    more: bool,
    plus: bool,
}

impl Stream {
    /// Pages whose start cookie the stream remembers.
    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
        self.starts.len()
    }
}

fn is_dot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

impl<M: Meta, D: Data> Fs<M, D> {
    /// Opens directory `ino` and fetches its first page (so an unreadable directory fails
    /// here with `EACCES`, as opendir(3) does).
    pub async fn opendir(&self, cred: &Cred, ino: u64) -> Result<u64, FsError> {
        let page = self.fetch_page(cred, ino, 0, None, true).await?;
        let mut starts = vec![None];
        if let Some(next) = page.1 {
            starts.push(Some(next));
        }
        let fh = self.new_handle();
        let more = starts.len() > 1;
        self.dirs.insert(
            fh,
            Stream {
                dir: ino,
                starts,
                page: Page {
                    no: 0,
                    entries: page.0,
                    more,
                    plus: true,
                },
                ahead: None,
            },
        );
        Ok(fh)
    }

    /// Lists directory stream `fh` from FUSE offset `offset` into `sink` until it is full or
    /// the listing ends. With `plus`, entries carry attributes and the kernel holds a
    /// reference to each (but `.` and `..`).
    pub async fn readdir(
        self: &Arc<Self>,
        cred: &Cred,
        fh: u64,
        offset: u64,
        plus: bool,
        sink: &mut impl DirSink,
    ) -> Result<(), FsError> {
        let stream = self.dirs.get(fh).ok_or(Errno::EBADF)?;
        let mut s = stream.lock().await;
        let mut page = offset >> INDEX_BITS;
        let mut index = (offset & ((1 << INDEX_BITS) - 1)) as usize;
        loop {
            if s.page.no != page || (plus && !s.page.plus) {
                let Some(start) = usize::try_from(page).ok().and_then(|p| s.starts.get(p)).cloned() else {
                    return Ok(());
                };
                let ahead = match s.ahead.take() {
                    Some(mut a) if a.no == page && (a.plus || !plus) => (&mut a.fetch).await.ok(),
                    _ => None,
                };
                // A read-ahead that failed is not an answer: the page is asked for again.
                let (entries, next) = match ahead {
                    Some(Ok(raw)) => self.settle_page(cred, raw, plus).await?,
                    _ => self.fetch_page(cred, s.dir, page, start, plus).await?,
                };
                if s.starts.len() as u64 == page + 1
                    && let Some(next) = &next
                {
                    s.starts.push(Some(next.clone()));
                }
                s.page = Page {
                    no: page,
                    entries,
                    more: next.is_some(),
                    plus,
                };
            }
            self.read_ahead(&mut s, cred, plus);
            let count = s.page.entries.len();
            for (i, e) in s.page.entries.iter().enumerate().skip(index) {
                let next = if i + 1 < count {
                    page << INDEX_BITS | (i as u64 + 1)
                } else {
                    (page + 1) << INDEX_BITS
                };
                if !sink.push(e, next) {
                    return Ok(());
                }
                if plus && !is_dot(&e.name) {
                    self.hand_out(e.ino, s.dir, &e.name);
                }
            }
            if !s.page.more {
                return Ok(());
            }
            page += 1;
            index = 0;
        }
    }

    /// Closes directory stream `fh`.
    pub fn releasedir(&self, fh: u64) {
        self.dirs.remove(fh);
    }

    /// Starts fetching the page after the one `s` holds, if there is one and it is not being
    /// fetched already.
    fn read_ahead(self: &Arc<Self>, s: &mut Stream, cred: &Cred, plus: bool) {
        let no = s.page.no + 1;
        if !s.page.more || s.ahead.as_ref().is_some_and(|a| a.no == no && (a.plus || !plus)) {
            return;
        }
        let Some(start) = usize::try_from(no).ok().and_then(|p| s.starts.get(p)).cloned() else {
            return;
        };
        // Only the server's page is read ahead: attributes are settled against this mount's
        // buffered writes when the page is used, as a fetched page's are.
        let (fs, cred, dir) = (self.clone(), cred.clone(), s.dir);
        let fetch = tokio::spawn(async move { fs.ask_page(&cred, dir, no, start, plus).await });
        s.ahead = Some(Ahead { no, plus, fetch });
    }

    /// Page `no` of `dir`, starting at `cookie`: its entries (with settled attributes if
    /// `plus`) and the cookie of the next page.
    async fn fetch_page(
        &self,
        cred: &Cred,
        dir: u64,
        no: u64,
        cookie: Option<Vec<u8>>,
        plus: bool,
    ) -> Result<Fetched, FsError> {
        let raw = self.ask_page(cred, dir, no, cookie, plus).await?;
        self.settle_page(cred, raw, plus).await
    }

    /// Page `no` of `dir` as the metadata server gives it.
    async fn ask_page(
        &self,
        cred: &Cred,
        dir: u64,
        no: u64,
        cookie: Option<Vec<u8>>,
        plus: bool,
    ) -> Result<Fetched, FsError> {
        let op = FsOp::ReadDir {
            dir,
            cookie,
            max: self.cfg.readdir_page,
            plus,
        };
        let (entries, next) = match self.ask(cred, op).await? {
            FsReply::Dir { entries, cookie } => (entries, cookie),
            other => return Err(FsError::protocol("readdir", other)),
        };
        if entries.len() >= 1 << INDEX_BITS || no >= 1 << (64 - INDEX_BITS) {
            return Err(FsError::protocol(
                "readdir",
                format!("page {no} of {} entries", entries.len()),
            ));
        }
        Ok((entries, next))
    }

    /// With `plus`, the attributes of a page's entries as this mount sees them (its buffered
    /// writes landed first).
    async fn settle_page(
        &self,
        cred: &Cred,
        (mut entries, next): Fetched,
        plus: bool,
    ) -> Result<Fetched, FsError> {
        if plus {
            for e in entries.iter_mut().filter(|e| !is_dot(&e.name)) {
                e.attr = Some(match e.attr.take() {
                    Some(a) => self.settled(cred, a).await?,
                    None => self.getattr(cred, e.ino).await?,
                });
            }
        }
        Ok((entries, next))
    }

    /// The stream of `fh`, for tests to inspect.
    #[cfg(test)]
    pub(crate) fn dir_stream(&self, fh: u64) -> Option<Arc<tokio::sync::Mutex<Stream>>> {
        self.dirs.get(fh)
    }
}
