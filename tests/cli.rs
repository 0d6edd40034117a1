//! The command line as a user meets it: arguments, config, errors and exit codes.

mod common;

use std::path::Path;

use common::Sandbox;
use predicates::prelude::*;
use testutils::annex_repo;
use testutils::mixxx_db::SchemaEra;

fn bare_cmd(cwd: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("music-commander").unwrap();
    cmd.current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", cwd)
        .env("XDG_CONFIG_HOME", cwd.join(".config"));
    cmd
}

#[test]
fn help_lists_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let out = bare_cmd(tmp.path())
        .arg("--help")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    insta::assert_snapshot!(String::from_utf8(out).unwrap());
}

#[test]
fn completions_are_printed() {
    let tmp = tempfile::tempdir().unwrap();
    bare_cmd(tmp.path())
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("sync-metadata"));
}

#[test]
fn init_config_writes_once_then_needs_force() {
    let tmp = tempfile::tempdir().unwrap();
    bare_cmd(tmp.path()).arg("init-config").assert().success();
    let path = tmp.path().join(".config/music-commander/config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("key_notation = \"traditional\""));
    bare_cmd(tmp.path())
        .arg("init-config")
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("already exists")
                .and(predicate::str::contains("hint: pass --force")),
        );
    bare_cmd(tmp.path())
        .args(["init-config", "--force", "-o", "other.toml"])
        .assert()
        .success();
    assert!(tmp.path().join("other.toml").exists());
}

#[test]
fn bad_numbers_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        ["sync", "--batch-size", "0"],
        ["sync", "--jobs", "0"],
        ["sync", "--jobs", "x"],
    ] {
        bare_cmd(tmp.path()).args(args).assert().code(2);
    }
}

#[test]
fn malformed_config_names_line_and_column() {
    let sb = Sandbox::new(1, SchemaEra::Newest);
    let config = sb.home.join("bad.toml");
    std::fs::write(&config, "[paths]\nmixxx_db = \"unterminated\n").unwrap();
    sb.cmd()
        .arg("--config")
        .arg(&config)
        .arg("sync")
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("error: config file")
                .and(predicate::str::contains("line 2, column")),
        );
}

#[test]
fn unknown_config_keys_warn_and_bad_values_fail() {
    let sb = Sandbox::new(1, SchemaEra::Newest);
    let config = sb.home.join("c.toml");
    std::fs::write(&config, "[sync]\nkey_notaton = \"lancelot\"\n").unwrap();
    sb.cmd()
        .env("MUSIC_COMMANDER_CONFIG", &config)
        .args(["sync", "--dry-run"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "warning: unknown config key sync.key_notaton",
        ));

    std::fs::write(&config, "[sync]\nkey_notation = \"camelot\"\n").unwrap();
    sb.cmd()
        .arg("--config")
        .arg(&config)
        .arg("sync")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("camelot"));

    std::fs::write(&config, "[sync.names]\nyear = \"mixxx year\"\n").unwrap();
    sb.cmd()
        .arg("--config")
        .arg(&config)
        .arg("sync")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("mixxx year"));
}

#[test]
fn config_renames_and_limits_fields() {
    let sb = Sandbox::new(3, SchemaEra::Newest);
    let config = sb.home.join("c.toml");
    std::fs::write(
        &config,
        "[sync]\nfields = [\"rating\", \"key\", \"year\"]\nkey_notation = \"lancelot\"\n[sync.names]\nyear = \"mixxx-year\"\n",
    )
    .unwrap();
    sb.cmd()
        .arg("--config")
        .arg(&config)
        .args(["sync", "-q"])
        .assert()
        .success();
    let meta = sb.metadata();
    let f = &meta[&common::sample_path(1)];
    assert_eq!(f["rating"], vec!["1"]);
    assert_eq!(f["key"], vec!["3B"]);
    assert_eq!(f["mixxx-year"], vec!["1991"]);
    assert!(!f.contains_key("title") && !f.contains_key("year"));
}

#[test]
fn not_a_git_repository_is_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    bare_cmd(tmp.path())
        .args(["sync", "--dry-run"])
        .assert()
        .code(3)
        .stderr(
            predicate::str::starts_with("error: not a git repository")
                .and(predicate::str::contains("hint: ")),
        );
}

#[test]
fn git_without_annex_init_is_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    annex_repo::git(tmp.path(), &["init", "-q"]).unwrap();
    bare_cmd(tmp.path())
        .args(["sync", "--dry-run"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("git annex init"));
}

#[test]
fn git_annex_missing_is_exit_3() {
    let sb = Sandbox::new(1, SchemaEra::Newest);
    // A PATH with git but without git-annex.
    let bin = sb.home.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let git = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::os::unix::fs::symlink(git.trim(), bin.join("git")).unwrap();
    sb.cmd()
        .env("PATH", &bin)
        .args(["sync", "--dry-run"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("git-annex is not installed"));
}

#[test]
fn missing_mixxx_database_is_exit_2() {
    let sb = Sandbox::new(1, SchemaEra::Newest);
    sb.cmd()
        .arg("--mixxx-db")
        .arg(sb.home.join("nope.sqlite"))
        .arg("sync")
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("Mixxx database not found")
                .and(predicate::str::contains("hint:")),
        );
}

#[test]
fn dry_run_output_is_stable() {
    let sb = Sandbox::new(4, SchemaEra::Newest);
    let out = sb.cmd().args(["sync", "--dry-run"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    insta::with_settings!({filters => vec![(r"elapsed\s+[0-9.]+s", "elapsed [TIME]")]}, {
        insta::assert_snapshot!(text);
    });
}

/// Output into a pipe that closed (`… 2>&1 | head -1`) ends the process quietly, like other
/// Unix tools: no panic message and no exit code 101 from a failed print.
#[test]
fn a_closed_pipe_is_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("music-commander"))
        .current_dir(tmp.path())
        .args(["--mixxx-db", "/nonexistent/mixxxdb.sqlite", "status"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close both read ends before the program prints its error.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_ne!(status.code(), Some(101), "{status:?}");
}

#[test]
fn a_config_type_error_names_the_key_and_the_line() {
    let sb = Sandbox::new(1, SchemaEra::Newest);
    let config = sb.home.join("c.toml");
    std::fs::write(&config, "# mine\n[sync]\nkey_notation = 5\n").unwrap();
    let out = sb
        .cmd()
        .arg("--config")
        .arg(&config)
        .arg("status")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("sync.key_notation"), "{err}");
    assert!(err.contains("line 3"), "{err}");
}
