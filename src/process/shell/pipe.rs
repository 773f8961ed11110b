//! Streams between processes: a producer's stdout fed to a consumer, both
//! supervised by the same job, both ends checked. Backup feeds
//! `backup_command` to `restic backup --stdin`, restore feeds `restic dump`
//! to `restore_command`, and a restore drill reads `restic dump` to count
//! it. Between two processes the data never passes through tabacco's
//! memory: the consumer reads the producer's own pipe, or, when the bytes
//! are counted, a second pipe that the kernel splices them into (only a
//! consumer that is tabacco itself, `dump` or a drill, reads it).

use crate::process::shell::{Error, Running};
use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::ExitStatus;
use std::thread;

/// How a stream gets from the producer to the consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// The consumer reads the producer's stdout pipe itself.
    Direct,
    /// Through a second pipe, with the bytes counted on the way.
    Counted,
}

/// How both ends of a stream ended.
pub struct Ended<T, E> {
    /// The producer's exit: an error if it failed, was killed because the
    /// consumer failed, or the job was stopped.
    pub producer: Result<ExitStatus, Error>,
    /// What the consumer's side returned.
    pub consumer: Result<T, E>,
    /// With [`Link::Counted`], the bytes passed on, or why not all of them
    /// were (the consumer stopped reading).
    pub bytes: Option<io::Result<u64>>,
}

impl Running {
    /// Streams this process's stdout (which must be piped) into a consumer:
    /// `consume` gets the reading end, hands it to a process as its stdin
    /// (or reads it), and returns once the consumer has ended. A consumer
    /// that fails gets the producer killed, as a producer busy with
    /// something else would not notice that nobody reads any more; then the
    /// producer is waited for. The error is for a producer without stdout,
    /// or a stream that could not be set up; the producer is reaped then.
    pub fn pipe_into<T, E>(
        mut self,
        link: Link,
        consume: impl FnOnce(OwnedFd) -> Result<T, E>,
    ) -> Result<Ended<T, E>, Error> {
        let what = self.what.clone();
        let give_up = |running: Running, reason: String| {
            running.kill();
            let _ = running.wait();
            Err(Error::Output { what, reason })
        };
        let Some(stdout) = self.child.stdout.take() else {
            return give_up(self, "no stdout to stream from".into());
        };
        let (input, counter) = match link {
            Link::Direct => (OwnedFd::from(stdout), None),
            Link::Counted => match counted(stdout) {
                Ok((input, counter)) => (input, Some(counter)),
                Err(e) => return give_up(self, format!("cannot pass its output on: {e}")),
            },
        };
        let consumer = consume(input);
        if consumer.is_err() {
            self.kill();
        }
        let producer = self.wait();
        let bytes = counter.map(|counter| {
            counter
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the stream was lost")))
        });
        Ok(Ended {
            producer,
            consumer,
            bytes,
        })
    }
}

/// A new pipe: its reading and its writing end, both close-on-exec (a
/// child gets one only as its stdin or stdout).
pub fn new() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills `fds` with two new descriptors, owned from here
    // on; close-on-exec keeps them out of every other child.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The reading end of a new pipe, and a thread passing `stdout` into it and
/// counting. On Linux `io::copy` splices pipe to pipe in the kernel.
fn counted(
    mut stdout: std::process::ChildStdout,
) -> io::Result<(OwnedFd, thread::JoinHandle<io::Result<u64>>)> {
    let (read, write) = new()?;
    let mut write = File::from(write);
    let counter = thread::Builder::new()
        .name("stream".into())
        .spawn(move || io::copy(&mut stdout, &mut write))?;
    Ok((read, counter))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::shell::{sh, Priority, Stop, Supervisor};
    use std::io::Read;
    use std::process::Stdio;

    fn producer(sup: &Supervisor, command: &str) -> Running {
        let mut cmd = sh(command);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        sup.spawn(&mut cmd, "producer", Stop::Terminate).unwrap()
    }

    /// The consumer `command`, fed `input`; the stdout it printed.
    fn consume(sup: &Supervisor, command: &str, input: OwnedFd) -> Result<String, Error> {
        let mut consumer = {
            let mut cmd = sh(command);
            cmd.stdin(input).stdout(Stdio::piped());
            sup.spawn(&mut cmd, "consumer", Stop::Terminate)?
        };
        let mut out = String::new();
        if let Some(mut stdout) = consumer.child().stdout.take() {
            let _ = stdout.read_to_string(&mut out);
        }
        consumer.wait().map(|_| out)
    }

    /// How the consumer and then the producer failed.
    fn failures<T: std::fmt::Debug>(ended: Ended<T, Error>) -> [String; 2] {
        [
            ended.consumer.unwrap_err().to_string(),
            ended.producer.unwrap_err().to_string(),
        ]
    }

    #[test]
    fn a_stream_flows_and_is_counted() {
        let sup = Supervisor::new(Priority::default(), "t");
        for link in [Link::Direct, Link::Counted] {
            let ended = producer(&sup, "seq 1 100000")
                .pipe_into(link, |input| consume(&sup, "wc -l", input))
                .unwrap();
            assert!(ended.producer.is_ok());
            assert_eq!(ended.consumer.unwrap().trim(), "100000");
            let bytes = ended.bytes.map(|b| b.unwrap());
            let expected = (link == Link::Counted).then_some(588895);
            assert_eq!(bytes, expected, "{link:?}");
        }
    }

    #[test]
    fn a_failed_consumer_gets_a_stuck_producer_killed() {
        let sup = Supervisor::new(Priority::default(), "t");
        let started = std::time::Instant::now();
        // The producer never writes: only a kill ends it.
        let ended = producer(&sup, "sleep 30")
            .pipe_into(Link::Counted, |input| consume(&sup, "exit 4", input))
            .unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        assert_eq!(
            failures(ended),
            [
                "consumer exited with status 4",
                "producer was killed by signal 9"
            ]
        );
    }

    #[test]
    fn a_failed_producer_is_reported_after_its_output() {
        let sup = Supervisor::new(Priority::default(), "t");
        let ended = producer(&sup, "echo partial; echo broke >&2; exit 2")
            .pipe_into(Link::Direct, |input| consume(&sup, "cat", input))
            .unwrap();
        assert_eq!(ended.consumer.unwrap(), "partial\n");
        assert_eq!(
            ended.producer.unwrap_err().to_string(),
            "producer exited with status 2: broke"
        );
    }

    #[test]
    fn a_stopped_job_stops_both_ends() {
        let sup = Supervisor::new(Priority::default(), "t");
        let _watch = sup.watchdog(
            std::time::Duration::from_millis(200),
            "timeout after 0.2s".into(),
        );
        let ended = producer(&sup, "yes")
            .pipe_into(Link::Direct, |input| consume(&sup, "sleep 30", input))
            .unwrap();
        assert_eq!(
            failures(ended),
            [
                "consumer stopped: timeout after 0.2s",
                "producer stopped: timeout after 0.2s"
            ]
        );
    }
}
