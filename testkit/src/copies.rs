//! Looking at chunk copies directly, past the metadata servers: the data port of one
//! chunkserver, and the chunk files in its data dirs.

use std::path::PathBuf;

use client::data::DataClient;
use proto::data::{DataReply, DataRequest, Server};
use proto::fs::ChunkLocation;

use crate::Cluster;

impl Cluster {
    /// A data-port client with the cluster's admin identity.
    pub fn data_client(&self) -> DataClient {
        let tls = net::TlsFiles::load(&self.cluster_dir().join("tls"), "client-admin")
            .expect("the admin certificate of the cluster");
        DataClient::new(&tls).expect("a data client")
    }

    /// The file of chunk `id` among chunkserver `cs`'s data dirs, if it has one.
    pub fn chunk_file(&self, cs: u64, id: u64) -> Option<PathBuf> {
        self.chunkserver(cs)
            .dirs
            .iter()
            .map(|d| {
                d.join("chunks")
                    .join(format!("{:02x}", id & 0xff))
                    .join(format!("{id:016x}.chunk"))
            })
            .find(|p| p.exists())
    }
}

/// Reads the first `len` bytes of the copy of `loc`'s chunk on server `at` (id, address)
/// through its data port.
pub async fn read_copy(
    data: &DataClient,
    at: &(u64, String),
    loc: &ChunkLocation,
    len: usize,
) -> Result<Vec<u8>, String> {
    let c = loc.chunk.expect("a chunk, not a hole");
    let req = DataRequest::Read {
        chunk: c.id,
        version: c.version,
        offset: 0,
        len: len as u32,
    };
    let server = Server {
        id: at.0,
        addr: at.1.clone(),
    };
    match data.call(&server, &req).await {
        Ok(DataReply::Data(d)) => Ok(d),
        other => Err(format!("{other:?}")),
    }
}
