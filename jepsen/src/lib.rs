//! MooseNG's Jepsen-style harness: real `mooseng mds` processes in network namespaces, a
//! seeded nemesis, logical client processes recording a history, and checkers.
//!
//! | module | what it holds |
//! |---|---|
//! | [`history`] | operations (invoke / ok / fail / info) and their JSON-lines form |
//! | [`check`] | checkers without I/O: linearizability per key, set-full |
//! | [`workload`] | register and set workloads over the metadata RPC, and their checks |
//! | [`nemesis`] | fault plans (seeded) and the abstract fault backend |
//! | [`delayer`] | the NFQUEUE packet delayer behind `--nemesis delay` |
//! | [`netns`] | the namespaces and links of a run |
//! | [`nodes`] | the server processes: start, kill, pause, clock skew; chunkservers |
//! | [`mount`] | a FUSE mount of the run's cluster, for the file workload |
//! | [`run`] | one run: servers, clients, nemesis, heal, convergence, final reads, checks |
//! | [`report`] | the terminal summary and the HTML report |
//!
//! `jepsen run` (as root) creates the namespaces, runs itself again inside the clients'
//! namespace for the test proper, and removes the namespaces when that ends, however it ends.

pub mod check;
pub mod delayer;
pub mod history;
pub mod mount;
pub mod nemesis;
pub mod netns;
pub mod nodes;
pub mod report;
pub mod run;
pub mod workload;
