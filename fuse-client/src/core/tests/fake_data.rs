//! In-memory chunkservers: copies with versions, chained writes and truncations, reads that
//! fill holes with zeros, syncs; failures injected per server; every request logged.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use client::data::DataCallError;
use net::NetError;
use proto::data::{DataError, DataReply, DataRequest, Server};

use crate::core::Data;

#[derive(Debug, Default)]
pub(crate) struct FakeData {
    pub(crate) state: Mutex<DataState>,
}

#[derive(Debug, Default)]
pub(crate) struct DataState {
    /// (server, chunk) → (version, bytes).
    pub(crate) copies: HashMap<(u64, u64), (u32, Vec<u8>)>,
    /// Errors the next modifications on a server answer with, in order.
    pub(crate) fail_next: VecDeque<(u64, DataError)>,
    /// Copies whose blocks fail their checksum.
    pub(crate) corrupt: HashSet<(u64, u64)>,
    /// Servers that cannot be reached.
    pub(crate) down: HashSet<u64>,
    /// Every request received: (server, kind).
    pub(crate) calls: Vec<(u64, &'static str)>,
}

impl FakeData {
    pub(crate) fn st(&self) -> std::sync::MutexGuard<'_, DataState> {
        self.state.lock().unwrap()
    }

    /// How many requests of `kind` were received (by any server, chained ones included).
    pub(crate) fn count(&self, kind: &str) -> usize {
        self.st().calls.iter().filter(|c| c.1 == kind).count()
    }
}

impl DataState {
    /// Moves `server`'s copy of `chunk` from `prev` to `version` with `f`, then forwards down
    /// `chain`.
    fn modify(
        &mut self,
        server: u64,
        kind: &'static str,
        (chunk, prev, version): (u64, u32, u32),
        chain: &[Server],
        f: &dyn Fn(&mut Vec<u8>),
    ) -> Result<(), DataError> {
        self.calls.push((server, kind));
        if let Some(i) = self.fail_next.iter().position(|(s, _)| *s == server) {
            return Err(self
                .fail_next
                .remove(i)
                .map(|f| f.1)
                .unwrap_or(DataError::Io("gone".into())));
        }
        match self.copies.get(&(server, chunk)) {
            // As a chunkserver: a copy anywhere from `prev` to `version` moves (a failed
            // write may have left it ahead of `prev`).
            Some((have, _)) if (prev..=version).contains(have) => {}
            Some((have, _)) => {
                return Err(DataError::WrongVersion {
                    chunk,
                    have: *have,
                    want: prev,
                });
            }
            None if prev == 0 => {}
            None => return Err(DataError::NoChunk(chunk)),
        }
        let copy = self.copies.entry((server, chunk)).or_default();
        copy.0 = version;
        f(&mut copy.1);
        if let Some((next, rest)) = chain.split_first() {
            if self.down.contains(&next.id) {
                return Err(DataError::Chain {
                    server: next.id,
                    reason: "unreachable".into(),
                });
            }
            match self.modify(next.id, kind, (chunk, prev, version), rest, f) {
                Ok(()) => {}
                Err(e @ DataError::Chain { .. }) => return Err(e),
                Err(e) => {
                    return Err(DataError::Chain {
                        server: next.id,
                        reason: e.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    fn answer(&mut self, server: u64, req: &DataRequest) -> Result<DataReply, DataError> {
        match req {
            DataRequest::Read {
                chunk,
                version,
                offset,
                len,
            } => {
                self.calls.push((server, "read"));
                if self.corrupt.contains(&(server, *chunk)) {
                    return Err(DataError::Corrupt {
                        chunk: *chunk,
                        block: offset / proto::data::BLOCK_SIZE,
                    });
                }
                let (have, bytes) = self
                    .copies
                    .get(&(server, *chunk))
                    .ok_or(DataError::NoChunk(*chunk))?;
                if have != version {
                    return Err(DataError::WrongVersion {
                        chunk: *chunk,
                        have: *have,
                        want: *version,
                    });
                }
                let mut out = vec![0; *len as usize];
                let from = (*offset as usize).min(bytes.len());
                let to = (*offset as usize + *len as usize).min(bytes.len());
                out[..to - from].copy_from_slice(&bytes[from..to]);
                Ok(DataReply::Data(out))
            }
            DataRequest::Write {
                chunk,
                version,
                prev_version,
                offset,
                data,
                chain,
            } => {
                let (offset, data) = (*offset as usize, data.clone());
                let put = move |b: &mut Vec<u8>| {
                    if b.len() < offset + data.len() {
                        b.resize(offset + data.len(), 0);
                    }
                    b[offset..offset + data.len()].copy_from_slice(&data);
                };
                self.modify(server, "write", (*chunk, *prev_version, *version), chain, &put)?;
                Ok(DataReply::Done)
            }
            DataRequest::Truncate {
                chunk,
                version,
                prev_version,
                len,
                chain,
            } => {
                let len = *len as usize;
                let cut = |b: &mut Vec<u8>| b.resize(len, 0);
                self.modify(server, "truncate", (*chunk, *prev_version, *version), chain, &cut)?;
                Ok(DataReply::Done)
            }
            DataRequest::Sync {
                chunk,
                version,
                chain,
            } => {
                for s in std::iter::once(server).chain(chain.iter().map(|s| s.id)) {
                    self.calls.push((s, "sync"));
                    match self.copies.get(&(s, *chunk)) {
                        Some((v, _)) if v == version => {}
                        _ => return Err(DataError::NoChunk(*chunk)),
                    }
                }
                Ok(DataReply::Done)
            }
            other => Err(DataError::BadRequest(format!("{other:?}"))),
        }
    }
}

impl Data for FakeData {
    async fn call(&self, server: &Server, req: &DataRequest) -> Result<DataReply, DataCallError> {
        let mut st = self.st();
        if st.down.contains(&server.id) {
            st.calls.push((server.id, "unreachable"));
            return Err(DataCallError::Unreachable {
                server: server.id,
                addr: server.addr.clone(),
                error: NetError::Timeout,
            });
        }
        st.answer(server.id, req).map_err(|error| DataCallError::Refused {
            server: server.id,
            error,
        })
    }
}
