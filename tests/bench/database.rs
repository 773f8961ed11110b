//! Case 13: the shipped `postgresql` handler backing up a database of
//! `BENCH_PG_MIB` MiB of dump (default 1024) against `pg_dump | restic
//! backup --stdin` with the same options and tags, and tabacco's own peak
//! memory meanwhile (the dump is never buffered). `BENCH_PG_RUNS` rounds
//! (default 2: a round is about 40 s here, and the whole bench has 15
//! minutes). The server is started
//! for the case in the scratch directory (as `nobody` under root) and
//! stopped after.

use crate::backup::{stdin_backup_args, Side};
use crate::measure::{interleaved, run};
use crate::{mib, Bench, Row};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The server of the case, stopped when dropped.
struct Server {
    child: Child,
    dir: PathBuf,
    bin: PathBuf,
}

impl Server {
    fn start(bench: &Bench) -> Server {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is not installed (make bench-deps)")
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("no /usr/lib/postgresql/*/bin/initdb");
        let dir = bench.scratch.path("postgres");
        std::fs::create_dir_all(&dir).expect("mkdir");
        // SAFETY: geteuid has no preconditions.
        let nobody = (unsafe { libc::geteuid() } == 0).then_some((65534, 65534));
        let server_cmd = |program: &Path| {
            let mut cmd = Command::new(program);
            if let Some((uid, gid)) = nobody {
                cmd.uid(uid).gid(gid);
            }
            cmd
        };
        if let Some((uid, gid)) = nobody {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown");
        }
        run(server_cmd(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"]));
        let child = server_cmd(&bin.join("postgres"))
            .arg("-D")
            .arg(dir.join("data"))
            .arg("-k")
            .arg(&dir)
            .args(["-c", "listen_addresses=", "-c", "fsync=off"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        let server = Server { child, dir, bin };
        for _ in 0..600 {
            if server
                .psql("postgres", "SELECT 1")
                .status()
                .is_ok_and(|s| s.success())
            {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("postgres did not start");
    }

    fn psql(&self, db: &str, sql: &str) -> Command {
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGHOST", &self.dir)
            .env("PGUSER", "postgres")
            .env("PGDATABASE", db)
            .stdout(Stdio::null());
        cmd
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own unreaped child: SIGINT is a fast
        // shutdown.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }
}

pub fn case(bench: &Bench) -> Vec<Row> {
    let size = crate::env_number("BENCH_PG_MIB", 1024);
    eprintln!("case 13: a database of about {size} MiB");
    let server = Server::start(bench);
    run(&mut server.psql("postgres", "CREATE DATABASE bench"));
    // Rows of 256 random hex characters: about 4,000 per MiB of dump.
    run(&mut server.psql(
        "bench",
        &format!(
            "CREATE TABLE t AS SELECT i, repeat(md5(random()::text), 8) AS v \
             FROM generate_series(1, {}) i",
            size * 4000
        ),
    ));
    let source = format!(
        "name: pg\nhandler: postgresql\nparams: {{socket: {}, user: postgres}}\natoms: [{{name: bench}}]\n",
        server.dir.display()
    );
    let tabacco = Side::new(bench, "pg-tabacco", &source, 1);
    let restic = Side::new(bench, "pg-restic", "", 1);
    let args = stdin_backup_args(&tabacco.probe(bench));

    let mut peak_kib = 0;
    let mut t = || {
        eprintln!("case 13: tabacco");
        tabacco.fresh(bench);
        let m = run(&mut tabacco.tabacco(bench, &["run"]));
        peak_kib = peak_kib.max(m.peak_rss_kib);
        m.wall.as_secs_f64()
    };
    let mut r = || {
        eprintln!("case 13: pg_dump | restic");
        restic.fresh(bench);
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "pg_dump --format=custom --compress=0 | exec \"$RESTIC\" \"$@\"",
            "sh",
        ])
        .args(&args)
        .env("RESTIC", crate::restic())
        .env("PGHOST", &server.dir)
        .env("PGUSER", "postgres")
        .env("PGDATABASE", "bench");
        cmd.envs(
            restic
                .restic(&[])
                .get_envs()
                .filter_map(|(k, v)| Some((k, v?))),
        );
        run(&mut cmd).wall.as_secs_f64()
    };
    let runs = crate::env_number("BENCH_PG_RUNS", 2);
    let times = interleaved(true, runs, &mut [&mut t, &mut r]);
    vec![
        Row::ratio(
            13,
            &format!("postgresql handler, a database of {size} MiB of dump"),
            &times[0],
            &times[1],
            Some(1.02),
        ),
        Row::figure(
            13,
            "tabacco's own peak RSS while the postgresql handler streams it",
            mib(peak_kib),
            "< 16 MiB",
            Some(peak_kib < 16 << 10),
        ),
    ]
}
