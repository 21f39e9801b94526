//! POSIX permission checks, as Linux makes them (`generic_permission`, `may_delete`,
//! `inode_init_owner`, the set-id clearing rules), for the caller's [`Cred`].
//!
//! Root (uid 0) stands for every capability: it reads and writes anything, searches any
//! directory, and executes a file only if some execute bit is set.

use crdt::model::FileKind;
use proto::Errno;
use proto::fs::{Cred, access};

use crate::fs::node::Node;

/// Set-user-id bit.
pub const S_ISUID: u32 = 0o4000;
/// Set-group-id bit.
pub const S_ISGID: u32 = 0o2000;
/// Sticky bit.
pub const S_ISVTX: u32 = 0o1000;
/// Group execute bit.
pub const S_IXGRP: u32 = 0o010;
/// Permission, set-id and sticky bits.
pub const MODE_BITS: u32 = 0o7777;

const ANY_EXEC: u32 = 0o111;

/// Whether `cred` is the superuser.
pub fn is_root(cred: &Cred) -> bool {
    cred.uid == 0
}

/// Whether `cred` owns `node` or is root (Linux `inode_owner_or_capable`).
pub fn is_owner(cred: &Cred, node: &Node) -> bool {
    is_root(cred) || cred.uid == node.rec.uid()
}

/// Checks the [`access`] bits in `mask` against `node`'s mode: the owner class if `cred` owns
/// it, else the group class if `cred` is in its group, else the other class. `EACCES` if a
/// bit is missing.
pub fn check(cred: &Cred, node: &Node, mask: u32) -> Result<(), Errno> {
    let mask = mask & (access::R | access::W | access::X);
    let mode = node.mode();
    let allowed = if is_root(cred) {
        let exec = node.is_dir() || mode & ANY_EXEC != 0;
        access::R | access::W | if exec { access::X } else { 0 }
    } else if cred.uid == node.rec.uid() {
        mode >> 6
    } else if cred.in_group(node.rec.gid()) {
        mode >> 3
    } else {
        mode
    };
    if mask & !allowed == 0 {
        Ok(())
    } else {
        Err(Errno::EACCES)
    }
}

/// Checks that `cred` may add an entry to `dir` (write and search).
pub fn may_create(cred: &Cred, dir: &Node) -> Result<(), Errno> {
    check(cred, dir, access::W | access::X)
}

/// Checks that `cred` may remove or rename `victim`'s entry in `dir`: write and search on
/// `dir` (`EACCES`), and in a sticky directory only the entry's owner, the directory's owner
/// or root (`EPERM`).
pub fn may_delete(cred: &Cred, dir: &Node, victim: &Node) -> Result<(), Errno> {
    may_create(cred, dir)?;
    let sticky = dir.mode() & S_ISVTX != 0;
    if sticky && !is_owner(cred, dir) && cred.uid != victim.rec.uid() {
        return Err(Errno::EPERM);
    }
    Ok(())
}

/// Owner, group and mode of an inode created by `cred` in `parent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// The creator.
    pub uid: u32,
    /// The creator's group, or the parent's if the parent is set-group-id.
    pub gid: u32,
    /// The requested mode, with the set-group-id bit inherited by directories (and dropped
    /// from files whose inherited group the creator is not in).
    pub mode: u32,
}

/// The owner of a new inode of `kind` with requested mode `mode` (Linux `inode_init_owner`).
pub fn new_owner(cred: &Cred, parent: &Node, kind: FileKind, mode: u32) -> Owner {
    let mut mode = mode & MODE_BITS;
    if parent.mode() & S_ISGID == 0 {
        return Owner {
            uid: cred.uid,
            gid: cred.gid,
            mode,
        };
    }
    let gid = parent.rec.gid();
    if kind == FileKind::Dir {
        mode |= S_ISGID;
    } else if mode & (S_ISGID | S_IXGRP) == S_ISGID | S_IXGRP && !is_root(cred) && !cred.in_group(gid) {
        mode &= !S_ISGID;
    }
    Owner {
        uid: cred.uid,
        gid,
        mode,
    }
}

/// `mode` after a write or truncate by `cred` (Linux `should_remove_suid`): a non-root writer
/// clears set-user-id, and set-group-id when group execute is set (without it the bit marks
/// mandatory locking, not privilege).
pub fn after_write(cred: &Cred, mode: u32) -> u32 {
    if is_root(cred) {
        return mode;
    }
    let mut kill = S_ISUID;
    if mode & S_IXGRP != 0 {
        kill |= S_ISGID;
    }
    mode & !kill
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::node::tests::node;

    fn user(uid: u32, gid: u32, groups: &[u32]) -> Cred {
        Cred {
            uid,
            gid,
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn the_owner_class_wins_even_when_it_grants_less() {
        let f = node(FileKind::File, 0o077, 1000, 100);
        assert_eq!(check(&user(1000, 100, &[]), &f, access::R), Err(Errno::EACCES));
        assert_eq!(check(&user(1001, 100, &[]), &f, access::R | access::W), Ok(()));
        assert_eq!(
            check(&user(1001, 5, &[100]), &f, access::W),
            Ok(()),
            "supplementary group"
        );
        assert_eq!(check(&user(1001, 5, &[]), &f, access::X), Ok(()), "other class");
    }

    #[test]
    fn root_executes_only_what_some_class_may_execute() {
        let root = Cred::root();
        let f = node(FileKind::File, 0o600, 1000, 100);
        assert_eq!(check(&root, &f, access::R | access::W), Ok(()));
        assert_eq!(check(&root, &f, access::X), Err(Errno::EACCES));
        assert_eq!(
            check(&root, &node(FileKind::File, 0o001, 1, 1), access::X),
            Ok(())
        );
        assert_eq!(check(&root, &node(FileKind::Dir, 0o000, 1, 1), access::X), Ok(()));
    }

    #[test]
    fn sticky_directories_protect_other_users_entries() {
        let dir = node(FileKind::Dir, 0o1777, 1, 1);
        let theirs = node(FileKind::File, 0o644, 2000, 1);
        assert_eq!(may_delete(&user(1000, 1, &[]), &dir, &theirs), Err(Errno::EPERM));
        assert_eq!(may_delete(&user(2000, 1, &[]), &dir, &theirs), Ok(()));
        assert_eq!(
            may_delete(&user(1, 1, &[]), &dir, &theirs),
            Ok(()),
            "the directory's owner"
        );
        assert_eq!(may_delete(&Cred::root(), &dir, &theirs), Ok(()));
        let plain = node(FileKind::Dir, 0o777, 1, 1);
        assert_eq!(may_delete(&user(1000, 1, &[]), &plain, &theirs), Ok(()));
        let closed = node(FileKind::Dir, 0o1755, 1, 1);
        assert_eq!(
            may_delete(&user(2000, 1, &[]), &closed, &theirs),
            Err(Errno::EACCES)
        );
    }

    #[test]
    fn setgid_parents_hand_down_their_group() {
        let parent = node(FileKind::Dir, 0o2775, 0, 500);
        let alice = user(1000, 100, &[]);
        assert_eq!(
            new_owner(&alice, &parent, FileKind::Dir, 0o755),
            Owner {
                uid: 1000,
                gid: 500,
                mode: 0o2755
            }
        );
        assert_eq!(
            new_owner(&alice, &parent, FileKind::File, 0o2755).mode,
            0o755,
            "not in group 500"
        );
        let member = user(1000, 100, &[500]);
        assert_eq!(new_owner(&member, &parent, FileKind::File, 0o2755).mode, 0o2755);
        let plain = node(FileKind::Dir, 0o775, 0, 500);
        assert_eq!(
            new_owner(&alice, &plain, FileKind::Dir, 0o755),
            Owner {
                uid: 1000,
                gid: 100,
                mode: 0o755
            }
        );
    }

    #[test]
    fn writers_drop_privilege_bits() {
        let alice = user(1000, 100, &[]);
        assert_eq!(after_write(&alice, 0o6755), 0o755);
        assert_eq!(
            after_write(&alice, 0o6745),
            0o2745,
            "setgid without group exec stays"
        );
        assert_eq!(after_write(&Cred::root(), 0o6755), 0o6755);
    }
}
