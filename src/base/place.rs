//! Putting restored data into place below a directory without following a
//! symbolic link found there, and without replacing what is there unless
//! told. restic (0.14) writes through links in its target, and a restore
//! runs as root in trees that tenants write; so restic, and a stream
//! restored as a file, write into a private staging directory made inside
//! that directory (so on its file system), and each staged entry is then
//! moved into place with `rename`, every directory on the way opened
//! without following a link ([`at`]). What is restored, and where, is the
//! callers'.
//!
//! What holds even while someone else writes below the directory: nothing
//! is written but into directories reached from it without following a
//! link (a directory moved away meanwhile keeps what was put into it,
//! wherever it went); nothing there is replaced without `overwrite`: an
//! entry in the way, other than a file with the same contents or a link
//! with the same target, is a conflict, every conflict is found before
//! anything moves, and what appears after that check is left as it is. A
//! directory is never replaced, and one that exists keeps its own
//! permissions. The directory itself, and the path to it, are trusted:
//! whoever may write there could move the staging directory away while
//! restic writes into it.

mod at;

use at::Kind;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// The staging directory's name, its `XXXXXX` made unique by `mkdtemp`.
const STAGING_NAME: &str = ".tabacco-restore-XXXXXX";

/// How many conflicts an error names; it counts them all.
const SHOWN: usize = 5;

/// How often an entry is looked at again when it changed between a look
/// and a move (someone else writing there).
const ATTEMPTS: usize = 5;

/// A path below a directory: where an entry goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    dir: PathBuf,
    relative: PathBuf,
}

impl Place {
    /// `relative` below `dir`, if it is plain (no root, `.` or `..`); empty
    /// for `dir` itself.
    pub fn new(dir: &Path, relative: &Path) -> Option<Place> {
        let plain = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        plain.then(|| Place {
            dir: dir.to_path_buf(),
            relative: relative.to_path_buf(),
        })
    }

    /// The directory below which nothing is followed.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The whole path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.relative)
    }
}

/// Why an existing entry is in the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conflict {
    /// A file or link other than the one restored.
    Differs,
    /// A symbolic link where a directory is restored.
    Symlink,
    /// Something else where a directory is restored.
    NotDir,
    /// A directory where a file (or link) is restored.
    Dir,
    /// A symbolic link, or not a directory (`symlink` false), on the way to
    /// where an entry goes: never replaced.
    OnTheWay { symlink: bool },
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Conflict::Differs => "exists and differs (--overwrite replaces it)",
            Conflict::Symlink => "a symbolic link, not followed (--overwrite replaces it)",
            Conflict::NotDir => "not a directory (--overwrite replaces it)",
            Conflict::Dir => "a directory, where the backup has a file (never replaced)",
            Conflict::OnTheWay { symlink: true } => "a symbolic link, not followed",
            Conflict::OnTheWay { symlink: false } => "not a directory",
        })
    }
}

/// Why entries were not put into place.
#[derive(Debug)]
pub enum Error {
    /// Entries in the way: the first few, with why, and how many in all.
    InTheWay {
        found: Vec<(PathBuf, Conflict)>,
        total: usize,
    },
    /// A call on `path` failed.
    Io { path: PathBuf, source: io::Error },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::InTheWay { found, total } => {
                let shown: Vec<String> = found
                    .iter()
                    .map(|(path, why)| format!("{}: {why}", path.display()))
                    .collect();
                f.write_str(&shown.join("; "))?;
                match total - found.len() {
                    0 => Ok(()),
                    more => write!(f, "; and {more} more in the way"),
                }
            }
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::InTheWay { .. } => None,
        }
    }
}

/// A closure making an [`Error::Io`] on `path`.
fn io_at(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A private directory (mode 0700) for restored data on its way into
/// place, removed with whatever is left in it when dropped.
pub struct Staging {
    path: PathBuf,
}

impl Staging {
    /// A new staging directory in `dir`, which is made first if missing.
    pub fn new(dir: &Path) -> Result<Staging, Error> {
        fs::create_dir_all(dir).map_err(io_at(dir))?;
        let mut template = dir.join(STAGING_NAME).into_os_string().into_vec();
        template.push(0);
        // SAFETY: a NUL-terminated buffer, which mkdtemp rewrites in place.
        let made = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
        if made.is_null() {
            return Err(io_at(dir)(io::Error::last_os_error()));
        }
        template.pop();
        Ok(Staging {
            path: PathBuf::from(OsString::from_vec(template)),
        })
    }

    /// Where restic restores into.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new file at `relative` in the staging directory (mode 0600), for
    /// a stream.
    pub fn create(&self, relative: &Path) -> Result<File, Error> {
        let path = self.path.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_at(parent))?;
        }
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_at(&path))
    }

    /// Moves each staged entry (a path relative to the staging directory;
    /// empty for all of it) to its place: into a directory that is there
    /// entry by entry, over a non-directory only with `overwrite`, making
    /// the directories on the way that are missing. Every entry is checked
    /// before any moves: with a conflict, nothing does.
    pub fn put(&self, entries: &[(PathBuf, Place)], overwrite: bool) -> Result<(), Error> {
        let mut conflicts = Conflicts::default();
        for pass in [Pass::Check, Pass::Move] {
            let mut walk = Walk {
                pass,
                overwrite,
                conflicts: &mut conflicts,
            };
            for (staged, place) in entries {
                walk.place(&self.path.join(staged), place)?;
            }
            if conflicts.total > 0 {
                return Err(Error::InTheWay {
                    found: conflicts.found,
                    total: conflicts.total,
                });
            }
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // remove_dir_all does not follow links.
        if let Err(e) = fs::remove_dir_all(&self.path) {
            log::warn!("cannot remove {}: {e}", self.path.display());
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Look for conflicts, change nothing.
    Check,
    /// Move, making the directories on the way.
    Move,
}

#[derive(Default)]
struct Conflicts {
    found: Vec<(PathBuf, Conflict)>,
    total: usize,
}

/// One pass over the entries to put into place.
struct Walk<'c> {
    pass: Pass,
    overwrite: bool,
    conflicts: &'c mut Conflicts,
}

impl Walk<'_> {
    /// Notes `conflict` at `path`; when moving, it is an error at once (it
    /// appeared since the check).
    fn conflict(&mut self, path: &Path, conflict: Conflict) -> Result<(), Error> {
        if self.pass == Pass::Move {
            return Err(Error::InTheWay {
                found: vec![(path.to_path_buf(), conflict)],
                total: 1,
            });
        }
        self.conflicts.total += 1;
        if self.conflicts.found.len() < SHOWN {
            self.conflicts.found.push((path.to_path_buf(), conflict));
        }
        Ok(())
    }

    /// Puts `staged` at `place`.
    fn place(&mut self, staged: &Path, place: &Place) -> Result<(), Error> {
        let mut dir = at::open_dir(&place.dir).map_err(io_at(&place.dir))?;
        let mut names: Vec<&OsStr> = place.relative.iter().collect();
        let Some(last) = names.pop() else {
            return self.merge(staged, &dir, &place.dir);
        };
        let mut shown = place.dir.clone();
        for name in names {
            shown.push(name);
            match self.on_the_way(&dir, name, &shown)? {
                Some(next) => dir = next,
                // Nothing there yet: nothing in the way below either.
                None => return Ok(()),
            }
        }
        shown.push(last);
        self.entry(staged, &dir, last, &shown)
    }

    /// Opens directory `name` of `dir` (shown as `shown`) on the way to a
    /// place, making it when moving; none if it is missing while checking,
    /// or in the way.
    fn on_the_way(
        &mut self,
        dir: &OwnedFd,
        name: &OsStr,
        shown: &Path,
    ) -> Result<Option<OwnedFd>, Error> {
        let io = io_at(shown);
        for _ in 0..ATTEMPTS {
            match at::lstat(dir, name).map_err(&io)? {
                None if self.pass == Pass::Check => return Ok(None),
                None => match at::mkdir(dir, name) {
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    made => made.map_err(&io)?,
                },
                Some((Kind::Dir, _)) => {}
                Some((kind, _)) => {
                    let symlink = kind == Kind::Symlink;
                    self.conflict(shown, Conflict::OnTheWay { symlink })?;
                    return Ok(None);
                }
            }
            match at::open_subdir(dir, name) {
                Ok(next) => return Ok(Some(next)),
                Err(e) if changed(&e) => continue,
                Err(e) => return Err(io(e)),
            }
        }
        Err(io(keeps_changing()))
    }

    /// Merges staged directory `staged` into `dest` (shown as `shown`),
    /// entry by entry, in name order.
    fn merge(&mut self, staged: &Path, dest: &OwnedFd, shown: &Path) -> Result<(), Error> {
        let io = io_at(staged);
        let mut names = fs::read_dir(staged)
            .map_err(&io)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(&io)?;
        names.sort();
        for name in names {
            self.entry(&staged.join(&name), dest, &name, &shown.join(&name))?;
        }
        Ok(())
    }

    /// Puts staged entry `staged` at `name` in `dir` (shown as `shown`).
    fn entry(
        &mut self,
        staged: &Path,
        dir: &OwnedFd,
        name: &OsStr,
        shown: &Path,
    ) -> Result<(), Error> {
        let io = io_at(shown);
        let meta = staged.symlink_metadata().map_err(io_at(staged))?;
        let kind = Kind::of_metadata(&meta);
        for _ in 0..ATTEMPTS {
            let Some((there, size)) = at::lstat(dir, name).map_err(&io)? else {
                if self.pass == Pass::Check {
                    return Ok(());
                }
                match at::rename(staged, dir, name, false) {
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    moved => return moved.map_err(&io),
                }
            };
            match (there, kind) {
                (Kind::Dir, Kind::Dir) => match at::open_subdir(dir, name) {
                    Ok(sub) => return self.merge(staged, &sub, shown),
                    Err(e) if changed(&e) => continue,
                    Err(e) => return Err(io(e)),
                },
                (Kind::Dir, _) => return self.conflict(shown, Conflict::Dir),
                _ if self.overwrite && self.pass == Pass::Check => return Ok(()),
                (_, Kind::Dir) if self.overwrite => match at::unlink(dir, name) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io(e)),
                    _ => continue,
                },
                _ if self.overwrite => return at::rename(staged, dir, name, true).map_err(&io),
                // Checked before: the same, or there since, and kept.
                _ if self.pass == Pass::Move => return Ok(()),
                _ if same(staged, kind, dir, name, there, size).map_err(&io)? => return Ok(()),
                (Kind::Symlink, _) => return self.conflict(shown, Conflict::Symlink),
                (_, Kind::Dir) => return self.conflict(shown, Conflict::NotDir),
                _ => return self.conflict(shown, Conflict::Differs),
            }
        }
        Err(io(keeps_changing()))
    }
}

/// Whether opening a directory failed because what is there is no longer
/// one (replaced by a link or a file since it was looked at).
fn changed(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR))
}

fn keeps_changing() -> io::Error {
    io::Error::other("keeps changing while it is restored")
}

/// Whether `name` in `dir`, of `kind` and `size` there, is the same as
/// staged entry `staged` of `staged_kind`: a file with the same bytes, or
/// a link with the same target.
fn same(
    staged: &Path,
    staged_kind: Kind,
    dir: &OwnedFd,
    name: &OsStr,
    kind: Kind,
    size: u64,
) -> io::Result<bool> {
    match (staged_kind, kind) {
        (Kind::File, Kind::File) => {
            let mine = File::open(staged)?;
            if mine.metadata()?.len() != size {
                return Ok(false);
            }
            let theirs = match at::open_file(dir, name) {
                Ok(file) => file,
                // A link since: not the same.
                Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(false),
                Err(e) => return Err(e),
            };
            same_bytes(mine, theirs)
        }
        (Kind::Symlink, Kind::Symlink) => {
            Ok(fs::read_link(staged)?.as_os_str() == at::readlink(dir, name)?.as_os_str())
        }
        _ => Ok(false),
    }
}

/// Whether `a` and `b` hold the same bytes.
fn same_bytes(a: File, b: File) -> io::Result<bool> {
    let mut a = BufReader::with_capacity(1 << 16, a);
    let mut b = BufReader::with_capacity(1 << 16, b);
    loop {
        let (x, y) = (a.fill_buf()?, b.fill_buf()?);
        if x.is_empty() || y.is_empty() {
            return Ok(x.is_empty() && y.is_empty());
        }
        let n = x.len().min(y.len());
        if x[..n] != y[..n] {
            return Ok(false);
        }
        a.consume(n);
        b.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fresh directory for one test, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("tabacco-place-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn write(&self, rel: &str, text: &str) -> PathBuf {
            let path = self.0.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, text).unwrap();
            path
        }

        fn read(&self, rel: &str) -> String {
            fs::read_to_string(self.0.join(rel)).unwrap()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A staging directory in `s`'s `to` holding `files`.
    fn staged(s: &Scratch, files: &[(&str, &str)]) -> Staging {
        let staging = Staging::new(&s.0.join("to")).unwrap();
        for (rel, text) in files {
            use std::io::Write;
            let mut file = staging.create(Path::new(rel)).unwrap();
            file.write_all(text.as_bytes()).unwrap();
        }
        staging
    }

    fn all(s: &Scratch) -> Vec<(PathBuf, Place)> {
        let place = Place::new(&s.0.join("to"), Path::new("")).unwrap();
        vec![(PathBuf::new(), place)]
    }

    #[test]
    fn staged_entries_merge_into_what_is_there() {
        let s = Scratch::new("merge");
        s.write("to/a/kept", "kept");
        s.write("to/a/same", "same");
        let staging = staged(&s, &[("a/same", "same"), ("a/new", "new"), ("b/c", "c")]);
        staging.put(&all(&s), false).unwrap();
        let path = staging.path().to_path_buf();
        drop(staging);
        assert!(!path.exists(), "the staging directory goes");
        assert_eq!(
            [
                s.read("to/a/kept"),
                s.read("to/a/same"),
                s.read("to/a/new"),
                s.read("to/b/c")
            ],
            ["kept", "same", "new", "c"]
        );
    }

    #[test]
    fn conflicts_are_all_found_before_anything_moves() {
        let s = Scratch::new("conflicts");
        s.write("to/a/x", "mine");
        s.write("to/a/y", "mine too");
        s.write("outside/z", "not yours");
        symlink(s.0.join("outside"), s.0.join("to/b")).unwrap();
        symlink(s.0.join("outside/z"), s.0.join("to/c")).unwrap();
        let staging = staged(
            &s,
            &[
                ("a/new", "n"),
                ("a/x", "x"),
                ("a/y", "y"),
                ("b/z", "z"),
                ("c", "c"),
            ],
        );
        let e = staging.put(&all(&s), false).unwrap_err().to_string();
        let to = s.0.join("to");
        assert_eq!(
            e,
            format!(
                "{t}/a/x: exists and differs (--overwrite replaces it); \
                 {t}/a/y: exists and differs (--overwrite replaces it); \
                 {t}/b: a symbolic link, not followed (--overwrite replaces it); \
                 {t}/c: a symbolic link, not followed (--overwrite replaces it)",
                t = to.display()
            )
        );
        assert!(!to.join("a/new").exists(), "nothing moved");
        staging.put(&all(&s), true).unwrap();
        assert_eq!(s.read("to/a/x"), "x");
        assert_eq!(s.read("to/b/z"), "z");
        assert!(!fs::symlink_metadata(to.join("c")).unwrap().is_symlink());
        assert_eq!(s.read("outside/z"), "not yours");
        assert_eq!(fs::read_dir(s.0.join("outside")).unwrap().count(), 1);
    }

    #[test]
    fn a_place_elsewhere_is_reached_without_following_links() {
        let s = Scratch::new("elsewhere");
        s.write("outside/keep", "not yours");
        let staging = staged(&s, &[("srv/users/alice/inbox", "mail")]);
        let home = s.0.join("home");
        fs::create_dir_all(home.join("users")).unwrap();
        symlink(s.0.join("outside"), home.join("users/link")).unwrap();
        let entry = |rel: &str| {
            let place = Place::new(&home, Path::new(rel)).unwrap();
            vec![(PathBuf::from("srv/users/alice"), place)]
        };
        let e = staging.put(&entry("users/link/alice"), true).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}/users/link: a symbolic link, not followed",
                home.display()
            )
        );
        staging.put(&entry("users/new/alice"), false).unwrap();
        assert_eq!(s.read("home/users/new/alice/inbox"), "mail");
        assert_eq!(fs::read_dir(s.0.join("outside")).unwrap().count(), 1);
        assert!(Place::new(&home, Path::new("../x")).is_none());
    }

    #[test]
    fn a_directory_is_never_replaced() {
        let s = Scratch::new("dir");
        fs::create_dir_all(s.0.join("to/x/inner")).unwrap();
        let staging = staged(&s, &[("x", "a file")]);
        for overwrite in [false, true] {
            let e = staging.put(&all(&s), overwrite).unwrap_err();
            assert!(
                e.to_string()
                    .ends_with("/to/x: a directory, where the backup has a file (never replaced)"),
                "{e}"
            );
        }
    }
}
