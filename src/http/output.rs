//! A connection's output: an answer's bytes written within the answer's
//! deadline, and, while a streamed answer is being made, what the client
//! does not take at once set aside in an unlinked temporary file, sent
//! once the answer is made. So what makes an answer (a find holding one of
//! the metadb's reading connections) never waits on a client that reads
//! slowly or not at all, and the answer is held on disk, not in memory.
//! Which bytes make an answer is `response`'s; when a connection closes,
//! `connection`'s.

use std::fs::File;
use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The slowest a client may take an answer, on average, after the time it
/// is given to take the first byte: an answer of `n` bytes must be taken
/// within `Limits::request` and `n` / this many seconds.
pub const MIN_RATE: u64 = 64 << 10;

/// Most bytes set aside at once, by all the answers of a transport; beyond
/// it, an answer being made waits on its client again (within its
/// deadline).
pub const MAX_SPILLED: u64 = 1 << 30;

/// How much of the set-aside bytes are read back at once.
const READ_BACK: usize = 64 << 10;

/// The bytes the answers of a transport have set aside, and where.
pub(super) struct Spills {
    dir: PathBuf,
    held: AtomicU64,
}

impl Spills {
    /// Set aside in `dir`, at most [`MAX_SPILLED`] bytes at once.
    pub(super) fn new(dir: PathBuf) -> Spills {
        Spills {
            dir,
            held: AtomicU64::new(0),
        }
    }

    /// Reserves `n` more bytes, if there is room.
    fn reserve(&self, n: u64) -> bool {
        self.held
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                held.checked_add(n).filter(|&total| total <= MAX_SPILLED)
            })
            .is_ok()
    }

    fn release(&self, n: u64) {
        self.held.fetch_sub(n, Ordering::SeqCst);
    }
}

/// One answer's way to the client.
pub(super) struct Output<'a> {
    stream: &'a TcpStream,
    spills: &'a Spills,
    begun: Instant,
    /// What the client is given to take the first byte (`Limits::request`).
    grace: Duration,
    /// Bytes the client took so far.
    sent: u64,
    /// Whether the answer is being made: then what the client does not
    /// take at once is set aside.
    making: bool,
    spill: Option<Spill>,
}

/// Bytes set aside, in a file no one else can open.
struct Spill {
    file: File,
    /// Bytes written to the file, and sent from it.
    written: u64,
    read: u64,
}

impl<'a> Output<'a> {
    /// The output of an answer beginning now, which the client must take
    /// within `grace` and at [`MIN_RATE`] on average.
    pub(super) fn new(stream: &'a TcpStream, spills: &'a Spills, grace: Duration) -> Output<'a> {
        Output {
            stream,
            spills,
            begun: Instant::now(),
            grace,
            sent: 0,
            making: false,
            spill: None,
        }
    }

    /// From now until [`Output::made`], what the client does not take at
    /// once is set aside.
    pub(super) fn making(&mut self) {
        self.making = true;
    }

    /// The answer is made: what was set aside is sent, within the deadline.
    pub(super) fn made(&mut self) -> io::Result<()> {
        self.making = false;
        self.send_spilled(true)
    }

    /// How long the client has left to take `more` bytes after those it took.
    fn left(&self, more: u64) -> io::Result<Duration> {
        let allowed =
            self.grace + Duration::from_secs_f64((self.sent + more) as f64 / MIN_RATE as f64);
        let left = allowed.saturating_sub(self.begun.elapsed());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client did not take the answer in time",
            ));
        }
        Ok(left)
    }

    /// Sends what `data` the socket takes; with `wait`, all of it, within
    /// the deadline. Returns how much was sent.
    fn send(&mut self, data: &[u8], wait: bool) -> io::Result<usize> {
        let mut done = 0;
        while done < data.len() {
            let flags = if wait { 0 } else { libc::MSG_DONTWAIT };
            if wait {
                // A write that takes nothing for a whole grace fails anyway.
                let left = self.left((data.len() - done) as u64)?.min(self.grace);
                self.stream.set_write_timeout(Some(left))?;
            }
            let rest = &data[done..];
            // SAFETY: `rest` is a live slice of `rest.len()` bytes and the
            // socket is open while `self` borrows it.
            let n = unsafe {
                libc::send(
                    self.stream.as_raw_fd(),
                    rest.as_ptr().cast(),
                    rest.len(),
                    flags | libc::MSG_NOSIGNAL,
                )
            };
            if n >= 0 {
                // Non-negative, and at most `rest.len()`.
                let n = n as usize;
                done += n;
                self.sent += n as u64;
                continue;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock if !wait => break,
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    self.left((data.len() - done) as u64)?;
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client took nothing of the answer in time",
                    ));
                }
                _ => return Err(e),
            }
        }
        Ok(done)
    }

    /// Sends what was set aside; with `wait`, all of it, within the
    /// deadline, else what the socket takes at once.
    fn send_spilled(&mut self, wait: bool) -> io::Result<()> {
        // Nothing read back for a client that takes nothing now.
        if self.spill.is_some() && !wait && !writable(self.stream) {
            return Ok(());
        }
        let mut buf = Vec::new();
        while let Some(spill) = &self.spill {
            let (from, to) = (spill.read, spill.written);
            if from == to {
                self.spills.release(to);
                self.spill = None;
                return Ok(());
            }
            let n = usize::try_from(to - from)
                .unwrap_or(READ_BACK)
                .min(READ_BACK);
            buf.resize(n, 0);
            spill.file.read_exact_at(&mut buf, from)?;
            let sent = self.send(&buf, wait)?;
            if let Some(spill) = &mut self.spill {
                spill.read += sent as u64;
            }
            if sent < n {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Sets `data` aside, if there is room; returns whether there was.
    fn set_aside(&mut self, data: &[u8]) -> io::Result<bool> {
        if !self.spills.reserve(data.len() as u64) {
            return Ok(false);
        }
        if self.spill.is_none() {
            match temporary(&self.spills.dir) {
                Ok(file) => {
                    self.spill = Some(Spill {
                        file,
                        written: 0,
                        read: 0,
                    })
                }
                Err(e) => {
                    self.spills.release(data.len() as u64);
                    log::warn!(
                        "cannot set an answer aside in {}: {e}",
                        self.spills.dir.display()
                    );
                    return Ok(false);
                }
            }
        }
        if let Some(spill) = &mut self.spill {
            if let Err(e) = spill.file.write_all_at(data, spill.written) {
                self.spills.release(data.len() as u64);
                return Err(e);
            }
            spill.written += data.len() as u64;
        }
        Ok(true)
    }
}

impl Drop for Output<'_> {
    fn drop(&mut self) {
        if let Some(spill) = &self.spill {
            self.spills.release(spill.written);
        }
    }
}

impl Write for Output<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if !self.making {
            return self.send(data, true);
        }
        self.send_spilled(false)?;
        let sent = if self.spill.is_none() {
            self.send(data, false)?
        } else {
            0
        };
        if sent == data.len() || self.set_aside(&data[sent..])? {
            return Ok(data.len());
        }
        // No room to set it aside: the maker waits on the client, within
        // the deadline.
        self.send_spilled(true)?;
        Ok(sent + self.send(&data[sent..], true)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether `stream` takes something now.
fn writable(stream: &TcpStream) -> bool {
    let mut poll = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one pollfd that lives across the call; a zero timeout does
    // not block.
    unsafe { libc::poll(&mut poll, 1, 0) > 0 }
}

/// A new file in `dir` that has no name, so that it goes when closed, also
/// when the process dies.
fn temporary(dir: &std::path::Path) -> io::Result<File> {
    let unnamed = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir);
    match unnamed {
        Ok(file) => Ok(file),
        // A file system without O_TMPFILE: a name, removed at once.
        Err(_) => {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let path = dir.join(format!(
                ".tabacco-answer-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            std::fs::remove_file(&path)?;
            Ok(file)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    /// Both ends of a loopback connection: (the server's, the client's).
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (listener.accept().unwrap().0, client)
    }

    fn answer(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    // Issue 26.6a: ten clients that never read a 7 MB find held all eight
    // of the metadb's reading connections, each while its write blocked:
    // a one-atom find got no answer within 70 s. What a client does not
    // take while the answer is made is set aside; the maker goes on.
    #[test]
    fn a_client_that_does_not_read_does_not_hold_up_the_maker() {
        let (server, client) = pair();
        let spills = Spills::new(std::env::temp_dir());
        let mut out = Output::new(&server, &spills, Duration::from_millis(300));
        out.making();
        let started = Instant::now();
        let data = answer(8 << 20);
        for piece in data.chunks(64 << 10) {
            out.write_all(piece).unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(spills.held.load(Ordering::SeqCst) > 0, "set aside");
        // Made: now the client must take it, and takes nothing.
        let started = Instant::now();
        let err = out.made().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(out);
        assert_eq!(spills.held.load(Ordering::SeqCst), 0, "released");
        drop(client);
    }

    #[test]
    fn what_was_set_aside_arrives_whole_and_in_order() {
        let (server, mut client) = pair();
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let mut got = Vec::new();
            client.read_to_end(&mut got).unwrap();
            got
        });
        let spills = Spills::new(std::env::temp_dir());
        let data = answer(6 << 20);
        {
            let mut out = Output::new(&server, &spills, Duration::from_secs(5));
            out.write_all(b"head:").unwrap();
            out.making();
            for piece in data.chunks(10_000) {
                out.write_all(piece).unwrap();
            }
            out.made().unwrap();
            out.write_all(b":end").unwrap();
        }
        drop(server);
        let got = reader.join().unwrap();
        assert_eq!(got.len(), data.len() + 9);
        assert!(got.starts_with(b"head:") && got.ends_with(b":end"));
        assert!(got[5..got.len() - 4] == data[..]);
    }
}
