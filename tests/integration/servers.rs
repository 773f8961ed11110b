//! Real database servers for the database handlers' tests, each started
//! once per test process in a temporary directory and shared by the tests
//! (each test uses names of its own): PostgreSQL (`initdb`, `postgres`)
//! and MariaDB (`mariadb-install-db`, `mariadbd`) as the unprivileged user
//! `nobody` when the tests run as root (CI), slapd with a temporary
//! `slapd.conf`. None depends on a packaged service. They are stopped and
//! their directories removed when the test process exits.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The servers to stop at exit, and their directories.
static STARTED: Mutex<Vec<(Child, PathBuf)>> = Mutex::new(Vec::new());

extern "C" fn stop_all() {
    let Ok(mut started) = STARTED.lock() else {
        return;
    };
    for (mut child, dir) in started.drain(..) {
        // SAFETY: kill(2) on a child of this process, not yet reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let stopped =
            crate::common::eventually(Duration::from_secs(10), || child.try_wait().ok().flatten());
        if stopped.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The uid and gid servers run as: `nobody`'s under root (PostgreSQL
/// refuses root), else the tests' own.
fn account() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions; getpwnam's result is read at
    // once, before any other call could reuse its buffer.
    unsafe {
        if libc::geteuid() != 0 {
            return None;
        }
        let pw = libc::getpwnam(c"nobody".as_ptr());
        assert!(
            !pw.is_null(),
            "no user nobody to run the database servers as"
        );
        Some(((*pw).pw_uid, (*pw).pw_gid))
    }
}

/// A new directory for a server, owned by the account it runs as.
fn server_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tabacco-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    if let Some((uid, gid)) = account() {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
    }
    dir
}

/// `program` as the server account.
fn as_server(program: impl AsRef<std::ffi::OsStr>) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    if let Some((uid, gid)) = account() {
        cmd.uid(uid).gid(gid);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to success; its stdout.
#[track_caller]
pub fn run(mut cmd: Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts server `cmd` in `dir`, to be stopped at exit.
fn spawn(mut cmd: Command, dir: &Path) {
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let child = cmd
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut started = STARTED.lock().unwrap();
    if started.is_empty() {
        // SAFETY: registers a plain function to run at exit.
        unsafe { libc::atexit(stop_all) };
    }
    started.push((child, dir.to_path_buf()));
}

/// A free loopback port.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Waits until `ready` succeeds, or panics with the server's log.
#[track_caller]
fn wait_ready(dir: &Path, mut ready: impl FnMut() -> bool) {
    let up = crate::common::eventually(Duration::from_secs(60), || ready().then_some(()));
    if up.is_none() {
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        panic!("the server in {} did not start:\n{log}", dir.display());
    }
}

/// The PostgreSQL server of the tests: the superuser `postgres` with
/// password [`PASSWORD`] over TCP, trusted over its socket.
pub struct Postgres {
    pub dir: PathBuf,
    pub port: u16,
    pub bin: PathBuf,
}

/// The password of the test servers' users.
pub const PASSWORD: &str = "s3cret 'pw'";

/// The shared PostgreSQL server.
pub fn postgres() -> &'static Postgres {
    static SERVER: OnceLock<Postgres> = OnceLock::new();
    SERVER.get_or_init(|| {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is not installed (make test-deps)")
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("no /usr/lib/postgresql/*/bin/initdb (make test-deps)");
        let dir = server_dir("postgres");
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if let Some((uid, gid)) = account() {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).unwrap();
        }
        let mut initdb = as_server(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()));
        run(initdb);
        let port = free_port();
        let mut server = as_server(bin.join("postgres"));
        server
            .arg("-D")
            .arg(dir.join("data"))
            .arg("-k")
            .arg(&dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-p", &port.to_string()]);
        spawn(server, &dir);
        let pg = Postgres { dir, port, bin };
        wait_ready(&pg.dir, || pg.psql_status("postgres", "SELECT 1"));
        pg
    })
}

impl Postgres {
    /// A client program, as the superuser over the socket.
    pub fn client(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.env("PGHOST", &self.dir)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", "postgres");
        cmd
    }

    fn psql_status(&self, db: &str, sql: &str) -> bool {
        let mut cmd = self.client("psql");
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGDATABASE", db)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.status().is_ok_and(|s| s.success())
    }

    /// Runs `sql` in database `db`; what it printed, unaligned.
    #[track_caller]
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let mut cmd = self.client("psql");
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGDATABASE", db);
        run(cmd)
    }

    /// Creates database `db`.
    #[track_caller]
    pub fn create(&self, db: &str) {
        let mut cmd = self.client("createdb");
        cmd.arg("--").arg(db);
        run(cmd);
    }

    /// The params of a source connecting over TCP as `postgres`, with a
    /// passfile at `passfile` holding `password`.
    pub fn params(&self, passfile: &Path, password: &str) -> String {
        let line = format!(
            "127.0.0.1:{}:*:postgres:{}\n",
            self.port,
            password.replace('\\', "\\\\").replace(':', "\\:")
        );
        write_secret(passfile, &line);
        format!(
            "{{host: 127.0.0.1, port: {}, user: postgres, credentials_file: {}}}",
            self.port,
            passfile.display()
        )
    }
}

/// Writes `content` to `path`, readable by its owner only (libpq and the
/// LDAP tools refuse or warn about a secret others can read).
pub fn write_secret(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The MariaDB server of the tests: user `tabacco` with password
/// [`PASSWORD`] and every privilege, through its socket; `root` without a
/// password for the tests' own statements.
pub struct Mariadb {
    pub dir: PathBuf,
}

/// The shared MariaDB server.
pub fn mariadb() -> &'static Mariadb {
    static SERVER: OnceLock<Mariadb> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = server_dir("mariadb");
        let mut install = as_server("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        run(install);
        let mut server = as_server("mariadbd");
        server
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--socket={}", dir.join("sock").display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .args(["--skip-networking", "--innodb-flush-log-at-trx-commit=0"]);
        spawn(server, &dir);
        let db = Mariadb { dir };
        wait_ready(&db.dir, || {
            db.client()
                .args(["-e", "SELECT 1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        db.sql(
            "",
            &format!(
                "CREATE USER tabacco@localhost IDENTIFIED BY '{}'; GRANT ALL ON *.* TO tabacco@localhost",
                PASSWORD.replace('\'', "''")
            ),
        );
        db
    })
}

impl Mariadb {
    /// `mariadb` as root through the socket.
    pub fn client(&self) -> Command {
        let mut cmd = Command::new("mariadb");
        cmd.arg("--no-defaults")
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .args(["--user=root", "--batch", "--skip-column-names"]);
        cmd
    }

    /// Runs `sql` in database `db` (none if empty); what it printed.
    #[track_caller]
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let mut cmd = self.client();
        if !db.is_empty() {
            cmd.arg(format!("--database={db}"));
        }
        cmd.args(["--execute", sql]);
        run(cmd)
    }

    /// The params of a source connecting as `tabacco` with `password`, in
    /// an option file at `file`.
    pub fn params(&self, file: &Path, password: &str) -> String {
        write_secret(
            file,
            &format!("[client]\nuser=tabacco\npassword={password}\n"),
        );
        format!(
            "{{socket: {}, credentials_file: {}}}",
            self.dir.join("sock").display(),
            file.display()
        )
    }
}

/// The slapd of the tests: suffixes `dc=one,dc=test` and `dc=two,dc=test`
/// (each a database of its own), their rootdn `cn=admin,SUFFIX` with
/// password [`PASSWORD`], reached through an `ldapi` socket.
pub struct Slapd {
    pub dir: PathBuf,
}

/// The shared slapd.
pub fn slapd() -> &'static Slapd {
    static SERVER: OnceLock<Slapd> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = server_dir("slapd");
        let mut conf = String::new();
        for schema in ["core", "cosine", "nis", "inetorgperson"] {
            conf.push_str(&format!("include /etc/ldap/schema/{schema}.schema\n"));
        }
        conf.push_str(&format!(
            "modulepath /usr/lib/ldap\nmoduleload back_mdb\npidfile {}\n",
            dir.join("pid").display()
        ));
        for name in ["one", "two"] {
            let db = dir.join(name);
            std::fs::create_dir_all(&db).unwrap();
            conf.push_str(&format!(
                "database mdb\nmaxsize 104857600\nsuffix \"dc={name},dc=test\"\nrootdn \"cn=admin,dc={name},dc=test\"\nrootpw \"{PASSWORD}\"\ndirectory {}\n",
                db.display()
            ));
        }
        std::fs::write(dir.join("slapd.conf"), conf).unwrap();
        let uri = format!("ldapi://{}", encode(&dir.join("ldapi")));
        let mut server = Command::new("/usr/sbin/slapd");
        server
            .arg("-f")
            .arg(dir.join("slapd.conf"))
            .args(["-h", &uri, "-d", "0"])
            .stdin(Stdio::null());
        spawn(server, &dir);
        let slapd = Slapd { dir };
        wait_ready(&slapd.dir, || {
            Command::new("ldapsearch")
                .args(["-x", "-H", &uri, "-s", "base", "-b", ""])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        slapd
    })
}

/// A socket path as an `ldapi` URI's host.
fn encode(path: &Path) -> String {
    path.to_string_lossy()
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Slapd {
    pub fn uri(&self) -> String {
        format!("ldapi://{}", encode(&self.dir.join("ldapi")))
    }

    /// LDAP tool `program` bound as the rootdn of `suffix`.
    pub fn tool(&self, program: &str, suffix: &str) -> Command {
        let pw = self.dir.join("pw");
        if !pw.exists() {
            write_secret(&pw, PASSWORD);
        }
        let mut cmd = Command::new(program);
        cmd.args(["-x", "-H", &self.uri(), "-D", &format!("cn=admin,{suffix}")])
            .arg("-y")
            .arg(pw);
        cmd
    }
}
