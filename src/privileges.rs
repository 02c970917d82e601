//! Privilege drop after binding: `tracker.rootdir` (`-d`) and `tracker.user` (`-u`), as
//! opentracker's `ot_drop_privileges`, with one deliberate difference: as root without a user,
//! opentracker switches to `nobody`; opentracker-rs refuses to start (exit 1) unless
//! `tracker.allow_root` / `--allow-root` says serving as root is meant.
//!
//! Order (see `main.rs`): parse the config, [`check_root`] and [`lookup_user`] (the passwd
//! database is outside the chroot), bind the sockets (ports below 1024 need root or
//! `CAP_NET_BIND_SERVICE`), write the pid file, then [`enter_rootdir`] (chroot into the root
//! directory when root; otherwise only chdir into it) and [`switch_user`] (`setgroups([])`,
//! `setgid`, `setuid`).
//! Files read after that (access lists, the state file) are resolved inside the chroot.
//!
//! Unix only; every failure is an error string for `main` to print before exiting 1.

use std::path::Path;

use nix::unistd::{self, Gid, Uid, User};

/// The user to switch to, resolved from the passwd database before the chroot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The name as configured (`tracker.user`).
    pub name: String,
    /// Its user id.
    pub uid: u32,
    /// Its primary group id (the group the tracker runs with; supplementary groups are dropped).
    pub gid: u32,
}

/// Whether the process runs with effective user id 0.
pub fn running_as_root() -> bool {
    unistd::geteuid().is_root()
}

/// Looks `name` up in the passwd database (`getpwnam`). A decimal number that is not a user
/// name is not taken as a uid: opentracker takes names only.
///
/// Errors: `unknown user "NAME" (tracker.user / -u)`, or the lookup's OS error.
pub fn lookup_user(name: &str) -> Result<Identity, String> {
    match User::from_name(name) {
        Ok(Some(u)) => Ok(Identity {
            name: name.to_owned(),
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        }),
        Ok(None) => Err(format!("unknown user \"{name}\" (tracker.user / -u)")),
        Err(e) => Err(format!("cannot look up user \"{name}\": {e}")),
    }
}

/// The root policy, checked before anything is bound: a process running as root (`is_root`)
/// must have a user to switch to (`user`, already resolved) that is not root itself, unless
/// `allow_root` (`tracker.allow_root on` / `--allow-root`).
///
/// Errors: a message that says what to set.
pub fn check_root(is_root: bool, user: Option<&Identity>, allow_root: bool) -> Result<(), String> {
    if !is_root || allow_root {
        return Ok(());
    }
    match user {
        None => Err(
            "refusing to run as root: set tracker.user (-u USER) to the user to switch \
                     to after binding, or pass --allow-root (tracker.allow_root on) to serve \
                     as root"
                .to_owned(),
        ),
        Some(id) if id.uid == 0 => Err(format!(
            "refusing to run as root: tracker.user \"{}\" has uid 0; choose an unprivileged \
             user, or pass --allow-root (tracker.allow_root on) to serve as root",
            id.name
        )),
        Some(_) => Ok(()),
    }
}

/// Where the process went by [`enter_rootdir`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rootdir {
    /// Chrooted (as root): paths outside the root directory are out of reach; the working
    /// directory is `/` inside it.
    Chrooted,
    /// Not root: only the working directory changed, as opentracker.
    Chdir,
}

/// Chroots to `dir` and changes directory to `/` inside it when running as root; otherwise only
/// changes directory to `dir` (as opentracker's `ot_drop_privileges`).
///
/// Errors: `cannot chroot to "DIR": ...`, `cannot change directory to "DIR": ...`; nothing was
/// changed then.
pub fn enter_rootdir(dir: &Path) -> Result<Rootdir, String> {
    if running_as_root() {
        unistd::chroot(dir).map_err(|e| format!("cannot chroot to \"{}\": {e}", dir.display()))?;
        // chdir("/") after a successful chroot cannot fail in practice; if it did, the process
        // would be chrooted with a working directory outside: refuse to go on either way.
        unistd::chdir("/").map_err(|e| format!("cannot chdir to / in the chroot: {e}"))?;
        Ok(Rootdir::Chrooted)
    } else {
        unistd::chdir(dir)
            .map_err(|e| format!("cannot change directory to \"{}\": {e}", dir.display()))?;
        Ok(Rootdir::Chdir)
    }
}

/// Switches to `user`: `setgroups([])`, `setgid(gid)`, `setuid(uid)`, then checks that the real
/// and effective ids are the user's and that uid 0 cannot be regained. Returns whether ids
/// changed: a non-root process that already runs as `user` changes nothing (as under systemd's
/// `User=`); one that runs as somebody else fails (only root may switch users).
///
/// Errors name the step: `cannot switch to user "NAME" (uid U, gid G): setgid: EPERM: Operation
/// not permitted (only root may switch users)`.
pub fn switch_user(id: &Identity) -> Result<bool, String> {
    let (uid, gid) = (Uid::from_raw(id.uid), Gid::from_raw(id.gid));
    let already = unistd::getuid() == uid
        && unistd::geteuid() == uid
        && unistd::getgid() == gid
        && unistd::getegid() == gid;
    if already && !uid.is_root() {
        return Ok(false);
    }
    let fail = |step: &str, e: nix::Error| {
        format!(
            "cannot switch to user \"{}\" (uid {}, gid {}): {step}: {e}{}",
            id.name,
            id.uid,
            id.gid,
            if running_as_root() {
                ""
            } else {
                " (only root may switch users)"
            }
        )
    };
    unistd::setgroups(&[]).map_err(|e| fail("setgroups", e))?;
    unistd::setgid(gid).map_err(|e| fail("setgid", e))?;
    unistd::setuid(uid).map_err(|e| fail("setuid", e))?;
    if unistd::getuid() != uid
        || unistd::geteuid() != uid
        || unistd::getgid() != gid
        || unistd::getegid() != gid
    {
        return Err(format!(
            "switching to user \"{}\" left other ids in place",
            id.name
        ));
    }
    if !uid.is_root() && unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(format!(
            "after switching to user \"{}\", uid 0 could be regained",
            id.name
        ));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(uid: u32) -> Identity {
        Identity {
            name: "someone".to_owned(),
            uid,
            gid: uid,
        }
    }

    #[test]
    fn root_policy() {
        assert_eq!(check_root(false, None, false), Ok(()));
        assert_eq!(check_root(true, Some(&id(65534)), false), Ok(()));
        assert_eq!(check_root(true, None, true), Ok(()));
        assert_eq!(check_root(true, Some(&id(0)), true), Ok(()));
        let e = check_root(true, None, false).unwrap_err();
        assert!(
            e.starts_with("refusing to run as root: set tracker.user"),
            "{e}"
        );
        assert!(e.contains("--allow-root"), "{e}");
        let e = check_root(true, Some(&id(0)), false).unwrap_err();
        assert!(e.contains("\"someone\" has uid 0"), "{e}");
    }

    #[test]
    fn lookups() {
        let root = lookup_user("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(
            lookup_user("no-such-user-otrs").unwrap_err(),
            "unknown user \"no-such-user-otrs\" (tracker.user / -u)"
        );
    }

    #[test]
    fn errors_change_nothing() {
        let before = std::env::current_dir().unwrap();
        let e = enter_rootdir(Path::new("/nonexistent/otrs-root")).unwrap_err();
        assert!(e.contains("\"/nonexistent/otrs-root\""), "{e}");
        assert!(e.contains("ENOENT"), "{e}");
        assert_eq!(std::env::current_dir().unwrap(), before);
    }
}
