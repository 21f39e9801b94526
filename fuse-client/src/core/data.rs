//! Chunkservers as the core sees them: [`Data`], implemented by [`client::data::DataClient`]
//! (and by an in-memory fake in the unit tests).

use std::future::Future;

use client::data::{DataCallError, DataClient};
use proto::data::{DataReply, DataRequest, Server};

/// The chunkservers' data ports.
pub trait Data: Send + Sync + 'static {
    /// Sends `req` to `server`; a refusal (`DataReply::Error`) comes back as an error.
    fn call(
        &self,
        server: &Server,
        req: &DataRequest,
    ) -> impl Future<Output = Result<DataReply, DataCallError>> + Send;
}

impl Data for DataClient {
    fn call(
        &self,
        server: &Server,
        req: &DataRequest,
    ) -> impl Future<Output = Result<DataReply, DataCallError>> + Send {
        DataClient::call(self, server, req)
    }
}

/// The servers of a chunk location as data-port addresses.
pub(crate) fn servers(list: &[(u64, String)]) -> Vec<Server> {
    list.iter()
        .map(|(id, addr)| Server {
            id: *id,
            addr: addr.clone(),
        })
        .collect()
}
