//! The calls relative to an open directory that [`super`] moves entries
//! with, none of which follows a symbolic link in the name it is given (a
//! single component): `std` has no `openat`, `fstatat`, `mkdirat`,
//! `renameat2`, `unlinkat` or `readlinkat`. Each wraps one libc call and
//! turns its failure into an `io::Error`.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// What is at a name, as `lstat` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    /// A fifo, socket or device.
    Other,
}

impl Kind {
    /// The kind of `mode` (a `st_mode`).
    fn of(mode: libc::mode_t) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFREG => Kind::File,
            libc::S_IFLNK => Kind::Symlink,
            _ => Kind::Other,
        }
    }

    /// The kind of what `meta` describes (from `symlink_metadata`).
    pub fn of_metadata(meta: &std::fs::Metadata) -> Kind {
        let t = meta.file_type();
        if t.is_dir() {
            Kind::Dir
        } else if t.is_symlink() {
            Kind::Symlink
        } else if t.is_file() {
            Kind::File
        } else {
            Kind::Other
        }
    }
}

fn c_name(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// The result of a libc call returning -1 on failure.
fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

/// Opens `dir` as a directory, following what its path says: the
/// operator named it.
pub fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    let path = c_name(dir.as_os_str())?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
    // SAFETY: a valid C string; the descriptor returned is new and owned
    // from here on.
    let fd = check(unsafe { libc::open(path.as_ptr(), flags) })?;
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens directory `name` in `dir`; a symbolic link there fails (`ELOOP`
/// or `ENOTDIR`), as does anything but a directory.
pub fn open_subdir(dir: &OwnedFd, name: &OsStr) -> io::Result<OwnedFd> {
    let name = c_name(name)?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: a valid descriptor and C string; the descriptor returned is
    // new and owned from here on.
    let fd = check(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags) })?;
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens regular file `name` in `dir` to read it; a symbolic link there
/// fails.
pub fn open_file(dir: &OwnedFd, name: &OsStr) -> io::Result<File> {
    let name = c_name(name)?;
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: as in `open_subdir`.
    let fd = check(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags) })?;
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// What is at `name` in `dir`, not following a symbolic link: its kind and
/// size, or `None` if nothing is.
pub fn lstat(dir: &OwnedFd, name: &OsStr) -> io::Result<Option<(Kind, u64)>> {
    let name = c_name(name)?;
    // SAFETY: `stat` is plain data, which all zeroes is a valid value of.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let flags = libc::AT_SYMLINK_NOFOLLOW;
    // SAFETY: a valid descriptor, C string and `stat` to fill.
    match check(unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, flags) }) {
        Ok(_) => Ok(Some((Kind::of(st.st_mode), st.st_size as u64))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Makes directory `name` in `dir` (mode 0755 less the umask).
pub fn mkdir(dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: a valid descriptor and C string.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) }).map(drop)
}

/// Moves `from` (a path, not followed at its last component) to `name` in
/// `dir`: only if nothing is there (`EEXIST` otherwise) unless `replace`,
/// when whatever non-directory is there is replaced, a link itself rather
/// than what it points to.
pub fn rename(from: &Path, dir: &OwnedFd, name: &OsStr, replace: bool) -> io::Result<()> {
    let from = c_name(from.as_os_str())?;
    let name = c_name(name)?;
    let flags = if replace { 0 } else { libc::RENAME_NOREPLACE };
    // SAFETY: valid C strings and descriptors.
    check(unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            flags,
        )
    })
    .map(drop)
}

/// Removes the non-directory `name` from `dir` (a link itself, not what it
/// points to).
pub fn unlink(dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: a valid descriptor and C string.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) }).map(drop)
}

/// Where the symbolic link `name` in `dir` points.
pub fn readlink(dir: &OwnedFd, name: &OsStr) -> io::Result<OsString> {
    let name = c_name(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: a valid descriptor and C string, and a buffer of the length
    // given.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    buf.truncate(n);
    Ok(OsString::from_vec(buf))
}
