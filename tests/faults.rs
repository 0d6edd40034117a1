//! Faults: the process killed, interrupted, or losing its git-annex mid-run — and other writers
//! at the same time. Whatever happens, a rerun completes and nothing is lost.

mod common;

use common::metadata;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testutils::annex_repo;
use testutils::library::{self, Generated, Rng, Shape};

fn binary() -> PathBuf {
    assert_cmd::cargo::cargo_bin("music-commander")
}

fn sync_cmd(lib: &Generated, home: &Path) -> Command {
    let mut cmd = Command::new(binary());
    cmd.current_dir(&lib.repo)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home)
        // Copies of a library keep the database that points at the original location.
        .env("MUSIC_COMMANDER_MUSIC_ROOT", &lib.mixxx_root)
        .arg("--mixxx-db")
        .arg(&lib.db)
        .arg("sync")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// How many files a complete sync writes (from a dry run), so the tests don't hard-code how
/// many generated tracks are deleted or missing.
fn files_to_write(lib: &Generated, home: &Path) -> u64 {
    let out = sync_cmd(lib, home)
        .args(["--dry-run", "--json"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["files"]["to_write"].as_u64().unwrap()
}

/// Files whose metadata has a title, i.e. that a sync has written.
fn synced_files(repo: &Path) -> u64 {
    metadata(repo)
        .values()
        .filter(|f| f.contains_key("title"))
        .count() as u64
}

fn journal_entries(repo: &Path) -> usize {
    std::fs::read_dir(repo.join(".git/annex/journal"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Waits until git-annex has accepted some writes (journal entries appear) or the child ends.
fn wait_for_writes(child: &mut Child, repo: &Path, at_least: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if journal_entries(repo) >= at_least {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// A generated library of `n` absent-content annexed files, with an unmanaged field on some.
fn library(n: usize) -> (tempfile::TempDir, Generated) {
    let tmp = tempfile::Builder::new()
        .prefix("mc-faults-")
        .tempdir()
        .unwrap();
    let lib = library::generate(
        &tmp.path().canonicalize().unwrap().join("lib"),
        &Shape::new(n),
    )
    .unwrap();
    annex_repo::git(
        &lib.repo,
        &[
            "annex", "metadata", "--force", "-s", "tag=mine", "-s", "rating=0", "Techno",
        ],
    )
    .unwrap();
    (tmp, lib)
}

/// A copy of a library (`cp -a`), so a clean run and a faulted run start from the same state.
fn copy(lib: &Generated, to: &Path) -> Generated {
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(lib.repo.parent().unwrap())
            .arg(to)
            .status()
            .unwrap()
            .success()
    );
    Generated {
        repo: to.join("Music"),
        db: to.join("mixxxdb.sqlite"),
        ..lib.clone()
    }
}

#[test]
fn sigkill_at_random_points_then_rerun_reaches_the_clean_end_state() {
    let (tmp, lib) = library(2000);
    let clean = copy(&lib, &tmp.path().join("clean"));
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = sync_cmd(&clean, &home).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = metadata(&clean.repo);
    assert!(want.values().filter(|f| f.contains_key("tag")).count() > 100);

    let seed = std::env::var("MC_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7u64);
    eprintln!("fault seed {seed} (set MC_FAULT_SEED to replay)");
    let mut rng = Rng::new(seed);
    for round in 0..20 {
        let mut child = sync_cmd(&lib, &home).spawn().unwrap();
        // Kill at a random moment: sometimes while reading, mostly while git-annex writes.
        let delay = Duration::from_millis(rng.below(1500));
        if rng.below(4) > 0 {
            wait_for_writes(&mut child, &lib.repo, 1 + rng.below(200) as usize);
        }
        std::thread::sleep(delay / 4);
        let _ = child.kill();
        let _ = child.wait();
        eprintln!(
            "round {round}: killed; journal {}",
            journal_entries(&lib.repo)
        );
    }
    // Orphaned git-annex writers finish what they had read and exit; the rerun must cope
    // with whatever state they left.
    let out = sync_cmd(&lib, &home).output().unwrap();
    assert!(
        out.status.success(),
        "rerun failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        metadata(&lib.repo),
        want,
        "end state differs from a clean sync"
    );
    let out = sync_cmd(&lib, &home).arg("--json").output().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["files"]["written"], 0,
        "a third run must have nothing to do"
    );
    annex_repo::git(&lib.repo, &["fsck", "--no-progress", "--no-dangling"]).unwrap();
}

#[test]
fn ctrl_c_commits_what_was_accepted_and_exits_130() {
    let (tmp, lib) = library(2000);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let want = files_to_write(&lib, &home);
    let before: usize = annex_repo::git(&lib.repo, &["rev-list", "--count", "git-annex"])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // git-annex's writer: its journal shows the writes coming in (the direct writer's single
    // commit gives a Ctrl-C nothing to wait for).
    let mut child = sync_cmd(&lib, &home)
        .args(["--writer", "git-annex"])
        .spawn()
        .unwrap();
    assert!(
        wait_for_writes(&mut child, &lib.repo, 20),
        "sync never started writing"
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("files written"),
        "partial summary expected: {stdout}"
    );
    let after: usize = annex_repo::git(&lib.repo, &["rev-list", "--count", "git-annex"])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(after, before + 1, "what git-annex accepted is committed");
    assert_eq!(journal_entries(&lib.repo), 0);
    let written = synced_files(&lib.repo);
    assert!(
        written > 0 && written < want,
        "partial: {written} of {want}"
    );
    // A rerun completes the job.
    let out = sync_cmd(&lib, &home).output().unwrap();
    assert!(out.status.success());
    assert_eq!(synced_files(&lib.repo), want);
}

/// Pids of all descendants of `pid` (from /proc/*/task/*/children).
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(c);
                stack.push(c);
            }
        }
    }
    out
}

#[test]
fn git_annex_killed_mid_run_reports_failures_and_rerun_completes() {
    let (tmp, lib) = library(1500);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let want = files_to_write(&lib, &home);
    let mut child = sync_cmd(&lib, &home)
        .args(["--json", "--writer", "git-annex"])
        .spawn()
        .unwrap();
    assert!(wait_for_writes(&mut child, &lib.repo, 20));
    let writers: Vec<u32> = descendants(child.id())
        .into_iter()
        .filter(|p| {
            let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains("metadata") && cmdline.contains("--batch")
        })
        .collect();
    assert!(!writers.is_empty(), "no git-annex writer found");
    for p in writers {
        unsafe { libc::kill(p as i32, libc::SIGKILL) };
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed = doc["files"]["failed"].as_u64().unwrap();
    assert!(failed > 0, "{doc}");
    assert!(
        doc["failed"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("git-annex"),
        "{doc}"
    );
    let out = sync_cmd(&lib, &home).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(synced_files(&lib.repo), want);
}

#[test]
fn another_git_annex_writer_at_the_same_time_loses_nothing() {
    let (tmp, lib) = library(1000);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let want = files_to_write(&lib, &home);
    // The other writer sets an unmanaged field on every file while we sync.
    let files: Vec<String> = annex_repo::git(&lib.repo, &["annex", "find", "--anything"])
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let input: String = files
        .iter()
        .map(|f| {
            format!(
                "{}\n",
                serde_json::json!({"file": f, "fields": {"energy": ["high"]}})
            )
        })
        .collect();
    let mut other = music_commander::annex::Git::in_dir(&lib.repo)
        .args(["annex", "metadata", "--batch", "--json"])
        .spawn(Stdio::piped(), Stdio::null(), Stdio::inherit())
        .unwrap();
    let mut stdin = other.stdin.take().unwrap();
    let feeder =
        std::thread::spawn(move || std::io::Write::write_all(&mut stdin, input.as_bytes()));
    let out = sync_cmd(&lib, &home).output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(other.wait().unwrap().success());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = metadata(&lib.repo);
    assert_eq!(
        meta.values().filter(|f| f.contains_key("energy")).count(),
        1000
    );
    assert_eq!(synced_files(&lib.repo), want);
}

/// An outer git (a hook, a shell that exported `GIT_DIR`) must not redirect a sync to another
/// repository: music-commander addresses the repository by its work tree.
#[test]
fn an_inherited_git_dir_does_not_redirect_the_sync() {
    let (tmp, lib) = library(20);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let other = tmp.path().join("other");
    annex_repo::init(&other).unwrap();
    let want = files_to_write(&lib, &home);
    let out = sync_cmd(&lib, &home)
        .env("GIT_DIR", other.join(".git"))
        .env("GIT_WORK_TREE", &other)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(synced_files(&lib.repo), want);
    let other_branch = annex_repo::git(&other, &["ls-tree", "-r", "--name-only", "git-annex"]);
    assert!(!other_branch.unwrap().contains(".log.met"));
}
