//! TLS to PostgreSQL, against real servers: a cluster of its own started with `ssl=on` and
//! a certificate for `localhost` signed by a throwaway CA made here with `openssl req`, and
//! the shared test cluster (plain text only). `sslmode=verify-full` with the CA records a
//! run; `verify-full` to `127.0.0.1` (not a name on the certificate) and `require` to the
//! plain-text server are refused with one sentence. Also: the database password, given in
//! the URL, never reaches an agent. Skips like the other PostgreSQL tests
//! (`GIT_WS_REQUIRE_PG=1` makes a missing PostgreSQL a failure).

use crate::common::{Env, Run};
use crate::pgcluster::{self, psql, Cluster, PASSWORD};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The TLS cluster and its CA certificate, started once per test process.
fn tls_cluster() -> Option<&'static (Cluster, PathBuf)> {
    static C: OnceLock<Option<(Cluster, PathBuf)>> = OnceLock::new();
    C.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("git-ws-tls-")
            .tempdir()
            .unwrap()
            .keep();
        make_certificates(&dir);
        let extra = format!(
            "-c ssl=on -c ssl_cert_file={d}/server.crt -c ssl_key_file={d}/server.key",
            d = dir.display()
        );
        match pgcluster::start_with(&extra) {
            Ok(Some(c)) => Some((c, dir.join("ca.crt"))),
            Ok(None) if !pgcluster::required() => {
                eprintln!("skipping the PostgreSQL TLS tests: no PostgreSQL binaries found");
                None
            }
            Ok(None) => panic!("GIT_WS_REQUIRE_PG=1 and no PostgreSQL binaries found"),
            Err(e) => panic!("failed to start a PostgreSQL cluster with ssl=on: {e}"),
        }
    })
    .as_ref()
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.crt`) and a server certificate for `localhost` only (`server.crt`,
/// `server.key`: 0600, owned by the server's user).
fn make_certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=git-ws test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ],
    );
    use std::os::unix::fs::PermissionsExt;
    let key = dir.join("server.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    if let Some((uid, gid)) = pgcluster::server_owner() {
        for f in ["server.key", "server.crt"] {
            std::os::unix::fs::chown(dir.join(f), Some(uid), Some(gid)).unwrap();
        }
    }
}

/// A fresh database on the TLS cluster; its URL for `host`, without parameters.
fn tls_db(c: &Cluster, label: &str, host: &str) -> String {
    let url = c.database(label);
    url.replace("127.0.0.1", host)
}

fn ws_run_db(env: &Env, db: &str) -> Run {
    Run::from(
        env.command("git")
            .args(["ws-run", "--agents", "1", "--db", db])
            .output()
            .unwrap(),
    )
}

#[test]
fn verify_full_with_the_ca_records_a_run() {
    let Some((c, ca)) = tls_cluster() else { return };
    let url = tls_db(c, "verify_full", "localhost");
    let env = Env::new();
    env.ws_cmd("ws-01", "echo a > a.txt");
    let db = format!("{url}?sslmode=verify-full&sslrootcert={}", ca.display());
    let out = ws_run_db(&env, &db);
    out.expect(0);
    let run = out.run_id();
    let rows = psql(
        &url,
        &format!("SELECT status FROM agent_results WHERE run_id = '{run}'"),
    )
    .unwrap();
    assert_eq!(rows, vec![vec!["completed".to_string()]]);
    // The connection was encrypted: the server says so for a session like ours.
    let ssl = psql(
        &format!("{url}?sslmode=verify-full&sslrootcert={}", ca.display()),
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .unwrap();
    assert_eq!(ssl, vec![vec!["t".to_string()]]);
    // libpq's environment variables work too (PGSSLMODE, PGSSLROOTCERT).
    let out = Run::from(
        env.command("git")
            .args(["ws-report", "--db", &url, &run])
            .env("PGSSLMODE", "verify-full")
            .env("PGSSLROOTCERT", ca)
            .output()
            .unwrap(),
    );
    out.expect(0);
}

#[test]
fn verify_full_refuses_a_host_name_the_certificate_does_not_name() {
    let Some((c, ca)) = tls_cluster() else { return };
    let url = tls_db(c, "wrong_host", "127.0.0.1");
    let env = Env::new();
    env.ws_cmd("ws-01", "echo a > a.txt");
    let out = ws_run_db(
        &env,
        &format!("{url}?sslmode=verify-full&sslrootcert={}", ca.display()),
    );
    out.expect(2);
    assert!(out.stderr.contains("TLS failed"), "{}", out.stderr);
    assert!(
        out.stderr.contains("does not match host name"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(PASSWORD), "{}", out.stderr);
    // verify-ca checks the chain only: the same address is accepted.
    let out = ws_run_db(
        &env,
        &format!("{url}?sslmode=verify-ca&sslrootcert={}", ca.display()),
    );
    out.expect(0);
    // Without the CA, nothing verifies.
    let out = ws_run_db(
        &env,
        &format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            url.replace("127.0.0.1", "localhost"),
            env.scratch("missing-ca.crt").display()
        ),
    );
    out.expect(2);
    assert!(out.stderr.contains("TLS failed"), "{}", out.stderr);
}

#[test]
fn require_refuses_a_plain_text_server() {
    let Some(c) = pgcluster::cluster() else {
        return;
    };
    let url = c.database("plain");
    let env = Env::new();
    env.ws_cmd("ws-01", "echo a > a.txt");
    let out = ws_run_db(&env, &format!("{url}?sslmode=require"));
    out.expect(2);
    assert!(
        out.stderr.contains("TLS failed")
            && out
                .stderr
                .contains("server does not support SSL, but SSL was required"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(PASSWORD), "{}", out.stderr);
    // `sslmode=require` on the TLS cluster works (encrypted, no verification).
    if let Some((tc, _)) = tls_cluster() {
        let url = tls_db(tc, "require", "127.0.0.1");
        ws_run_db(&env, &format!("{url}?sslmode=require")).expect(0);
    }
}

#[test]
fn the_database_password_never_reaches_an_agent_or_a_stored_output() {
    let Some(c) = pgcluster::cluster() else {
        return;
    };
    let url = c.database("no_secret");
    let env = Env::new();
    // The agent prints its environment, then the password from a file it found.
    env.write("found.txt", &format!("{PASSWORD}\n"));
    env.git(&["add", "found.txt"]);
    env.git(&["commit", "-q", "-m", "found"]);
    env.ws_cmd("ws-01", "env; cat found.txt; echo done > done.txt");
    env.ws(
        "ws-02",
        serde_json::json!({"id": "ws-02", "command": "env; cat found.txt; exit 4"}),
    );
    let out = Run::from(
        env.command("git")
            .args(["ws-run", "--agents", "1"])
            .env("GIT_WS_DATABASE_URL", &url)
            .output()
            .unwrap(),
    );
    out.expect(1);
    let run = out.run_id();
    for ws in ["ws-01", "ws-02"] {
        let log =
            std::fs::read_to_string(env.repo.join(format!(".state/logs/{run}/{ws}.log"))).unwrap();
        assert!(!log.contains(PASSWORD), "{log}");
        assert!(!log.contains("GIT_WS_DATABASE_URL"), "{log}");
        assert!(log.contains("***"), "{log}");
    }
    let stored = psql(
        &url,
        &format!("SELECT errors, test_results FROM agent_results WHERE run_id = '{run}'"),
    )
    .unwrap();
    let stored = format!("{stored:?}");
    assert!(!stored.contains(PASSWORD), "{stored}");
    // The failed workstream's output tail, read back from the database.
    let report = Run::from(
        env.command("git")
            .args(["ws-report", &run, "--errors", "--format", "markdown"])
            .env("GIT_WS_DATABASE_URL", &url)
            .output()
            .unwrap(),
    );
    report.expect(0);
    assert!(report.stdout.contains("***"), "{}", report.stdout);
    assert!(!report.stdout.contains(PASSWORD), "{}", report.stdout);
    // ws-merge's test prints its environment and the file: masked in what it prints.
    let merge = Run::from(
        env.command("git")
            .args(["ws-merge", &run, "--test", "env; cat found.txt; exit 1"])
            .env("GIT_WS_DATABASE_URL", &url)
            .output()
            .unwrap(),
    );
    let printed = format!("{}{}", merge.stdout, merge.stderr);
    assert!(!printed.contains(PASSWORD), "{printed}");
    assert!(!printed.contains("GIT_WS_DATABASE_URL"), "{printed}");
}

#[test]
fn an_unencoded_at_sign_in_the_password_never_reaches_libpq_s_message() {
    let Some(c) = pgcluster::cluster() else {
        return;
    };
    let env = Env::new();
    env.ws_cmd("ws-01", "true");
    // Wrong password holding `@`: libpq would read `ret@127.0.0.1` as the host.
    let url = format!("postgres://postgres:sec@ret@127.0.0.1:{}/postgres", c.port);
    let out = ws_run_db(&env, &url);
    out.expect(2);
    assert!(
        out.stderr.contains("authentication failed"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("ret@") && !out.stderr.contains("sec"),
        "{}",
        out.stderr
    );
}
