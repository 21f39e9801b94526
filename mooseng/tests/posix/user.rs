//! Running a system call as another user: the call runs in a forked child after it dropped to
//! the user's uid and gid (no supplementary groups), before it execs `true`. Its errno comes
//! back through `spawn` (std reports a failing pre-exec hook as the spawn error), so a check
//! sees the exact errno without a helper binary.

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};

/// A user without privileges.
#[derive(Debug, Clone, Copy)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

/// uid 1000, gid 1000.
pub const ALICE: User = User { uid: 1000, gid: 1000 };
/// uid 1001, gid 1001.
pub const BOB: User = User { uid: 1001, gid: 1001 };

impl User {
    /// Runs `call` as this user: `Ok` if it succeeded, its errno otherwise. `call` runs in a
    /// forked child of a multi-threaded process, so it must not allocate: build paths first
    /// and use [`super::sys`] (whose wrappers do not allocate).
    pub fn run(self, call: impl Fn() -> io::Result<()> + Send + Sync + 'static) -> Result<(), i32> {
        let mut cmd = Command::new("/bin/true");
        cmd.uid(self.uid)
            .gid(self.gid)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: `call` only makes system calls on memory allocated before the fork.
        unsafe { cmd.pre_exec(call) };
        match cmd.spawn() {
            Ok(mut child) => {
                let status = child.wait().expect("wait for the child");
                assert!(
                    status.success(),
                    "/bin/true failed: {status:?} ({:?})",
                    status.signal()
                );
                Ok(())
            }
            Err(e) => Err(e
                .raw_os_error()
                .unwrap_or_else(|| panic!("spawn failed without errno: {e}"))),
        }
    }
}
