//! A tabacco daemon (agent or metadb) started for a case: its address from
//! the `listening on` line, its memory, and a kill when the case ends.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct Daemon {
    child: Child,
    pub addr: std::net::SocketAddr,
}

impl Daemon {
    /// Starts `cmd` and waits for it to log `listening on ADDR`.
    pub fn start(cmd: &mut Command) -> Daemon {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                panic!("{cmd:?} exited before listening");
            };
            if let Some((_, rest)) = line.split_once("listening on ") {
                let addr = rest.split_whitespace().next().expect("an address");
                break addr.parse().expect("a socket address");
            }
        };
        // Keep draining its log so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Daemon { child, addr }
    }

    /// `tabacco metadb --config CONFIG` on a free loopback port.
    pub fn metadb(bin: &str, config: &std::path::Path) -> Daemon {
        Daemon::start(
            Command::new(bin)
                .args(["metadb", "--config"])
                .arg(config)
                .args(["--http-addr", "127.0.0.1:0"]),
        )
    }

    /// Its peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        crate::measure::vm_kib(&format!("/proc/{}/status", self.child.id()), "VmHWM:")
            .expect("the daemon is running")
    }

    /// Its resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        crate::measure::vm_kib(&format!("/proc/{}/status", self.child.id()), "VmRSS:")
            .expect("the daemon is running")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
