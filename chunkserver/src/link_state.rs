//! Where the chunkserver stands with the metadata tier, and how long to wait before trying
//! again. Pure: the loop in [`crate::mds_link`] feeds it outcomes and logs only the changes
//! it reports, so an outage is one log line, not one per attempt.

use std::time::Duration;

/// The first wait after a failure; it doubles up to the configured maximum.
pub const RETRY_MIN: Duration = Duration::from_millis(100);

/// The state of the link, as `/status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Not registered yet, no failure yet.
    Connecting,
    /// Registered; heartbeats and reports are getting through.
    Registered,
    /// The last exchange failed; registering again with backoff.
    Unreachable,
}

impl LinkState {
    /// `connecting`, `registered` or `unreachable`.
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Connecting => "connecting",
            LinkState::Registered => "registered",
            LinkState::Unreachable => "unreachable",
        }
    }
}

/// The link's state machine with exponential backoff.
#[derive(Debug)]
pub struct Link {
    state: LinkState,
    next_wait: Duration,
    max_wait: Duration,
    failures: u64,
}

impl Link {
    /// A link not yet registered, waiting at most `max_wait` between attempts.
    pub fn new(max_wait: Duration) -> Link {
        Link {
            state: LinkState::Connecting,
            next_wait: RETRY_MIN.min(max_wait),
            max_wait,
            failures: 0,
        }
    }

    /// The current state.
    pub fn state(&self) -> LinkState {
        self.state
    }

    /// Registration succeeded. Returns the failed attempts before it if the state changed
    /// (worth a log line), `None` otherwise.
    pub fn registered(&mut self) -> Option<u64> {
        let changed = self.state != LinkState::Registered;
        let failures = std::mem::take(&mut self.failures);
        self.state = LinkState::Registered;
        self.next_wait = RETRY_MIN.min(self.max_wait);
        changed.then_some(failures)
    }

    /// An exchange failed. Returns how long to wait before registering again, and whether
    /// the state changed (worth a log line).
    pub fn failed(&mut self) -> (Duration, bool) {
        let changed = self.state != LinkState::Unreachable;
        self.state = LinkState::Unreachable;
        self.failures += 1;
        let wait = self.next_wait;
        self.next_wait = (self.next_wait * 2).min(self.max_wait);
        (wait, changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_one_change_with_doubling_waits() {
        let mut link = Link::new(Duration::from_millis(500));
        assert_eq!(link.state(), LinkState::Connecting);
        let waits: Vec<(Duration, bool)> = (0..5).map(|_| link.failed()).collect();
        let ms = |m| Duration::from_millis(m);
        assert_eq!(
            waits,
            vec![
                (ms(100), true),
                (ms(200), false),
                (ms(400), false),
                (ms(500), false),
                (ms(500), false)
            ]
        );
        assert_eq!(link.state(), LinkState::Unreachable);
        assert_eq!(link.registered(), Some(5));
        assert_eq!(link.registered(), None, "staying registered is no change");
        // A new outage starts from the shortest wait again.
        assert_eq!(link.failed(), (ms(100), true));
    }

    #[test]
    fn the_first_wait_never_exceeds_the_maximum() {
        let mut link = Link::new(Duration::from_millis(30));
        assert_eq!(link.failed().0, Duration::from_millis(30));
    }
}
