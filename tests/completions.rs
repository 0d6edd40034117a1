//! The completion scripts, run by the real shells: a script that loads but completes nothing
//! (clap-rs/clap#6421 for a binary name with a hyphen) passes every test that only reads it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Options `sync --<Tab>` must offer, and commands `music-commander <Tab>` must offer.
const SYNC_OPTIONS: &[&str] = &["--dry-run", "--json", "--all"];
const COMMANDS: &[&str] = &["sync", "status", "init-config", "completions"];

fn shells_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/shells")
}

/// The script `music-commander completions SHELL` prints, written to a file in `dir`.
fn script(dir: &Path, shell: &str) -> PathBuf {
    let out = assert_cmd::Command::cargo_bin("music-commander")
        .unwrap()
        .args(["completions", shell])
        .output()
        .unwrap();
    assert!(out.status.success(), "completions {shell} failed");
    let path = dir.join(format!("music-commander.{shell}"));
    std::fs::write(&path, out.stdout).unwrap();
    path
}

/// False (after a loud message) when `shell` is not installed; a CI run fails instead, since
/// `.ci/run` installs every shell tested here.
fn have(shell: &str) -> bool {
    let found = Command::new(shell)
        .arg("-c")
        .arg("exit 0")
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        let msg = format!(
            "{shell} is not installed: its completion script is NOT TESTED \
             (sudo apt-get install -y {shell})"
        );
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("\n\n!!! WARNING: {msg}\n");
    }
    found
}

fn candidates(out: std::process::Output, shell: &str, line: &str) -> Vec<String> {
    assert!(
        out.status.success(),
        "{shell} failed completing {line:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        // fish prints `candidate<TAB>description`.
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn assert_offers(shell: &str, line: &str, got: &[String], wanted: &[&str]) {
    for w in wanted {
        assert!(
            got.iter().any(|g| g == w),
            "{shell}: `{line}<Tab>` does not offer {w}; it offers {got:?}"
        );
    }
}

fn complete_bash(script: &Path, line: &str) -> Vec<String> {
    let out = Command::new("bash")
        .arg("--norc")
        .arg("--noprofile")
        .arg(shells_dir().join("complete.bash"))
        .arg(script)
        .arg(line)
        .output()
        .unwrap();
    candidates(out, "bash", line)
}

fn complete_zsh(dir: &Path, script: &Path, line: &str) -> Vec<String> {
    let zdotdir = dir.join("zdotdir");
    std::fs::create_dir_all(&zdotdir).unwrap();
    std::fs::copy(shells_dir().join("zshrc"), zdotdir.join(".zshrc")).unwrap();
    let out = Command::new("zsh")
        .arg("-f")
        .arg(shells_dir().join("complete.zsh"))
        .arg(&zdotdir)
        .arg(script)
        .arg(dir.join("zsh-candidates"))
        .arg(line)
        .env("HOME", dir)
        .output()
        .unwrap();
    candidates(out, "zsh", line)
}

fn complete_fish(dir: &Path, script: &Path, line: &str) -> Vec<String> {
    let out = Command::new("fish")
        .arg("--no-config")
        .arg("-c")
        .arg("source $argv[1]; complete -C $argv[2]")
        .arg(script)
        .arg(line)
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join(".config"))
        .env("XDG_DATA_HOME", dir.join(".local/share"))
        .output()
        .unwrap();
    candidates(out, "fish", line)
}

/// `music-commander <Tab>` offers the commands in `shell`, and each line of `cases` its
/// options; `complete` returns the candidates for a line.
fn check(
    shell: &str,
    cases: &[(&str, &[&str])],
    complete: impl Fn(&Path, &Path, &str) -> Vec<String>,
) {
    if !have(shell) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let script = script(tmp.path(), shell);
    let line = "music-commander ";
    assert_offers(shell, line, &complete(tmp.path(), &script, line), COMMANDS);
    for (line, wanted) in cases {
        assert_offers(shell, line, &complete(tmp.path(), &script, line), wanted);
    }
}

#[test]
fn bash_completes_commands_and_subcommand_options() {
    let cases: &[(&str, &[&str])] = &[
        ("music-commander sync --", SYNC_OPTIONS),
        ("music-commander mixxx sync --", SYNC_OPTIONS),
        ("music-commander status --", &["--json"]),
    ];
    check("bash", cases, |_, script, line| complete_bash(script, line));
}

#[test]
fn zsh_completes_commands_and_subcommand_options() {
    check(
        "zsh",
        &[("music-commander sync --", SYNC_OPTIONS)],
        complete_zsh,
    );
}

#[test]
fn fish_completes_commands_and_subcommand_options() {
    check(
        "fish",
        &[("music-commander sync --", SYNC_OPTIONS)],
        complete_fish,
    );
}
