//! A pipe batch's staging area: a private directory (mode 0700) for one
//! source at `work_dir/batch/SOURCE`, into which each atom's dump is
//! written as a file at its name (`sql/db1`) before one `restic backup`
//! reads the whole area. Its path stays the same from run to run, so that
//! restic (and `forget`, which groups snapshots by their paths) sees one
//! series per source. A lock file beside it (`SOURCE.lock`, `flock`) says
//! a process is using it: a second run of the same source at once streams
//! its atoms on their own instead, and an area whose lock nobody holds is
//! what a crashed or killed run left, removed by the next backup of any
//! source. Nothing here follows a symbolic link: the directories are made
//! by this module, and files are opened with `O_NOFOLLOW` and `O_EXCL`.
//! What goes into the area, and when restic reads it, is
//! [`super`]'s.

use std::ffi::CString;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The directory below `work_dir` holding every source's area.
const BATCH_DIR: &str = "batch";

/// One source's staging area, removed with what it holds when dropped
/// (before its lock is released).
pub struct Area {
    dir: PathBuf,
    /// Held (`flock`) as long as the area exists.
    _lock: File,
}

impl Area {
    /// The staging area of `source` below `work_dir`, made empty and
    /// private: what a crashed run left there is removed first, and so is
    /// any other source's area that no process holds. `None` when another
    /// process is batching this source now.
    pub fn new(work_dir: &Path, source: &str) -> io::Result<Option<Area>> {
        let root = work_dir.join(BATCH_DIR);
        make_dir(&root)?;
        let name = source.replace('%', "%25").replace('/', "%2F");
        let Some(lock) = try_lock(&root.join(format!("{name}.lock")))? else {
            return Ok(None);
        };
        sweep_in(&root);
        let dir = root.join(&name);
        remove_leftover(&dir)?;
        DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(Some(Area { dir, _lock: lock }))
    }

    /// The area's directory, which restic backs up.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// A new file (mode 0600) at `relative`, a validated atom name (no
    /// `.` or `..` segments, no leading `/`), making the directories on
    /// the way.
    pub fn create(&self, relative: &str) -> io::Result<File> {
        let path = self.dir.join(relative);
        let mut dir = self.dir.clone();
        if let Some((parents, _)) = relative.rsplit_once('/') {
            for segment in parents.split('/') {
                dir.push(segment);
                make_dir(&dir)?;
            }
        }
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
    }

    /// Removes the file at `relative`, if it is there.
    pub fn remove(&self, relative: &str) {
        let path = self.dir.join(relative);
        if let Err(e) = fs::remove_file(&path) {
            if e.kind() != io::ErrorKind::NotFound {
                log::warn!("cannot remove {}: {e}", path.display());
            }
        }
    }

    /// Empties the area for the next batch.
    pub fn clear(&self) -> io::Result<()> {
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                fs::remove_dir_all(entry.path())?;
            } else {
                fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }

    /// The bytes its file system has free for unprivileged writers.
    pub fn available(&self) -> io::Result<u64> {
        let path = CString::new(self.dir.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: a NUL-terminated path and a zeroed statvfs buffer that
        // the call fills.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            log::warn!("cannot remove {}: {e}", self.dir.display());
        }
    }
}

/// Makes directory `dir` (mode 0700) unless it is there; one that is there
/// must be a directory, not a link to one.
fn make_dir(dir: &Path) -> io::Result<()> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if fs::symlink_metadata(dir)?.is_dir() {
                Ok(())
            } else {
                Err(io::Error::other(format!(
                    "{} is in the way: not a directory",
                    dir.display()
                )))
            }
        }
        Err(e) => Err(e),
    }
}

/// The lock file at `path`, locked, or `None` when another process holds
/// it.
fn try_lock(path: &Path) -> io::Result<Option<File>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(Some(file));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(None)
    } else {
        Err(e)
    }
}

/// Removes `dir` and what it holds, if it is there (a link is removed,
/// never followed).
fn remove_leftover(dir: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            log::info!("removing {}, left by an earlier run", dir.display());
            fs::remove_dir_all(dir)
        }
        Ok(_) => fs::remove_file(dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes every area below `work_dir` that no process holds: left by a
/// run that crashed or was killed.
pub fn sweep(work_dir: &Path) {
    let root = work_dir.join(BATCH_DIR);
    if fs::symlink_metadata(&root).is_ok_and(|m| m.is_dir()) {
        sweep_in(&root);
    }
}

/// Removes every area in `root` whose lock no process holds.
fn sweep_in(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir {
            continue;
        }
        let mut lock = entry.file_name();
        lock.push(".lock");
        if let Ok(Some(_held)) = try_lock(&root.join(lock)) {
            if let Err(e) = remove_leftover(&entry.path()) {
                log::warn!("cannot remove {}: {e}", entry.path().display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_area_is_private_locked_and_removed() {
        let work = std::env::temp_dir().join(format!("tabacco-area-{}", std::process::id()));
        let _ = fs::remove_dir_all(&work);
        fs::create_dir_all(&work).unwrap();
        // A crashed run's area of another source, and of this one.
        fs::create_dir_all(work.join("batch/other/sql")).unwrap();
        fs::create_dir_all(work.join("batch/a%2Fb/x")).unwrap();
        let area = Area::new(&work, "a/b").unwrap().unwrap();
        assert!(!work.join("batch/other").exists(), "a leftover is swept");
        assert!(!work.join("batch/a%2Fb/x").exists());
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode(area.path()).mode() & 0o777, 0o700);
        assert!(Area::new(&work, "a/b").unwrap().is_none(), "held");
        let mut file = area.create("sql/db1").unwrap();
        io::Write::write_all(&mut file, b"x").unwrap();
        assert!(area.create("sql/db1").is_err(), "never replaced");
        std::os::unix::fs::symlink("/etc/passwd", area.path().join("sql/link")).unwrap();
        assert!(area.create("sql/link").is_err(), "never followed");
        assert!(area.available().unwrap() > 0);
        area.clear().unwrap();
        assert_eq!(fs::read_dir(area.path()).unwrap().count(), 0);
        let dir = area.path().to_path_buf();
        drop(area);
        assert!(!dir.exists());
        assert!(Area::new(&work, "a/b").unwrap().is_some(), "released");
        fs::remove_dir_all(&work).unwrap();
    }
}
