//! The WAN-latency delayer: this kernel has no `netem`, so a server's outgoing packets are
//! sent to an NFQUEUE (an iptables rule in its namespace, `--queue-bypass` so packets pass if
//! the delayer is gone) and this loop accepts each one after a fixed delay, in order.
//! It runs as its own process inside the server's namespace (`jepsen delayer`), as netlink
//! queues belong to a namespace.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// Holds every packet of `queue` for `delay`, until killed.
pub fn run(queue: u16, delay: Duration) -> anyhow::Result<()> {
    let mut q =
        nfq::Queue::open().context("opening a netfilter queue (root, CONFIG_NETFILTER_NETLINK_QUEUE)")?;
    q.bind(queue)
        .with_context(|| format!("binding netfilter queue {queue}"))?;
    q.set_fail_open(queue, true)?;
    q.set_nonblocking(true);
    let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    loop {
        loop {
            match q.recv() {
                Ok(mut msg) => {
                    msg.set_verdict(nfq::Verdict::Accept);
                    held.push_back((Instant::now() + delay, msg));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // The kernel's queue overflowed: those packets were dropped (fail-open
                // accepts the next ones); carry on.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => break,
                Err(e) => return Err(e).context("reading the netfilter queue"),
            }
        }
        let now = Instant::now();
        while held.front().is_some_and(|(due, _)| *due <= now) {
            let (_, msg) = held.pop_front().expect("front exists");
            q.verdict(msg).context("releasing a packet")?;
        }
        let wait = held
            .front()
            .map_or(Duration::from_millis(1), |(due, _)| {
                due.saturating_duration_since(now)
            })
            .min(Duration::from_millis(1));
        #[allow(
            clippy::disallowed_methods,
            reason = "a plain process loop, no async runtime here"
        )]
        std::thread::sleep(wait);
    }
}
