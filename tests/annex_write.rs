//! The git-annex write side against real git-annex in temporary repositories.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use music_commander::annex::Repo;
use music_commander::annex::state::{self, STATE_KEY, SyncRecord};
use music_commander::annex::writer::{
    self, FailureKind, RecordOutcome, Tally, WriteOptions, WriteReport, WriteRequest,
};
use music_commander::model::AnnexKey;
use testutils::annex_repo;

type Fields = BTreeMap<String, Vec<String>>;

fn git(dir: &Path, args: &[&str]) -> String {
    annex_repo::git(dir, args).unwrap().trim().to_string()
}

fn open(dir: &Path) -> Repo {
    Repo::discover(dir).unwrap()
}

fn new_repo(dir: &Path) -> Repo {
    annex_repo::init(dir).unwrap();
    open(dir)
}

fn opts(jobs: usize, batch_size: Option<usize>) -> WriteOptions {
    WriteOptions {
        jobs,
        batch_size,
        commit_message: "music-commander test".into(),
        writer: writer::Writer::GitAnnex,
        vector_clock: None,
    }
}

fn req(key: &str, fields: &[(&str, &[&str])]) -> WriteRequest {
    WriteRequest {
        key: AnnexKey::new(key),
        fields: fields
            .iter()
            .map(|(f, vs)| (f.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect(),
    }
}

/// Made-up keys of the real shape: git-annex stores their metadata like any file's.
fn keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("SHA256E-s{i}--{prefix}{i:060x}.mp3"))
        .collect()
}

fn write(repo: &Repo, requests: Vec<WriteRequest>, o: &WriteOptions) -> WriteReport {
    writer::write(repo, requests, None, o, &|_| {}, &AtomicBool::new(false)).unwrap()
}

/// Current metadata of `keys` without `*lastchanged`, via one read-only batch process that
/// neither commits nor merges, so it cannot hide what the writer left uncommitted.
fn read_meta(repo: &Repo, keys: &[String]) -> Vec<Fields> {
    let mut child = repo
        .git()
        .args([
            "-c",
            "annex.alwayscommit=false",
            "-c",
            "annex.merge-annex-branches=false",
        ])
        .args(["annex", "metadata", "--batch", "--json"])
        .spawn(Stdio::piped(), Stdio::piped(), Stdio::inherit())
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input: String = keys
        .iter()
        .map(|k| format!("{}\n", serde_json::json!({ "key": k })))
        .collect();
    let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out: Vec<Fields> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            let fields: Fields = serde_json::from_value(v["fields"].clone()).unwrap();
            fields
                .into_iter()
                .filter(|(f, _)| !f.ends_with("lastchanged"))
                .collect()
        })
        .collect();
    feeder.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(out.len(), keys.len());
    out
}

fn fields(pairs: &[(&str, &[&str])]) -> Fields {
    req("X--", pairs).fields
}

fn head(repo: &Repo) -> String {
    git(&repo.root, &["rev-parse", "refs/heads/git-annex"])
}

fn journal_len(repo: &Repo) -> usize {
    std::fs::read_dir(repo.git_dir.join("annex/journal")).map_or(0, |d| d.count())
}

fn failed_keys(report: &WriteReport) -> Vec<&str> {
    report.failed.iter().map(|(k, _)| k.as_str()).collect()
}

/// SIGKILLs the `git-annex metadata --batch` process working in `root` (ours: other tests use
/// other temporary directories). Returns whether one was found.
fn kill_batch_writer(root: &Path) -> bool {
    let mut killed = false;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cwd = std::fs::read_link(entry.path().join("cwd")).unwrap_or_default();
        if comm.trim() == "git-annex"
            && cwd == root
            && String::from_utf8_lossy(&cmdline).contains("--batch")
        {
            // Started in its own process group, so a terminal's Ctrl-C reaches only us.
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap();
            let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
            let pgrp: i32 = after_comm.split(' ').nth(2).unwrap().parse().unwrap();
            assert_ne!(pgrp, unsafe { libc::getpgrp() });
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
    }
    killed
}

#[test]
fn writes_locked_absent_and_unlocked_files_by_key() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = new_repo(tmp.path());
    let files: [(&Path, &[u8]); 3] = [
        (Path::new("locked.mp3"), b"locked"),
        (Path::new("absent.flac"), b"absent"),
        (Path::new("d/unlocked.mp3"), b"unlocked"),
    ];
    annex_repo::add_files(&repo.root, &files).unwrap();
    git(
        &repo.root,
        &["annex", "drop", "-q", "--force", "absent.flac"],
    );
    git(&repo.root, &["annex", "unlock", "-q", "d/unlocked.mp3"]);
    git(&repo.root, &["commit", "-q", "-m", "unlock"]);
    let keys: Vec<String> = ["locked.mp3", "absent.flac", "d/unlocked.mp3"]
        .iter()
        .map(|f| git(&repo.root, &["annex", "lookupkey", f]))
        .collect();
    assert!(!repo.root.join("absent.flac").exists(), "content dropped");

    let requests = keys
        .iter()
        .map(|k| req(k, &[("rating", &["5"]), ("tag", &["deep house", "house"])]))
        .collect();
    let report = write(&repo, requests, &opts(1, None));
    assert_eq!(report.failed, vec![]);
    assert_eq!(report.written.len(), 3);
    assert_eq!(report.commits, 1);
    let want = fields(&[("rating", &["5"]), ("tag", &["deep house", "house"])]);
    assert_eq!(read_meta(&repo, &keys), vec![want; 3]);
    assert_eq!(git(&repo.root, &["status", "--porcelain"]), "");
}

#[test]
fn replaces_named_fields_only() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = new_repo(tmp.path());
    let k = "SHA256E-s5--feedface.mp3".to_string();
    let before = [
        ("rating", &["3"][..]),
        ("tag", &["a", "b"]),
        ("comment", &["keep me"]),
        ("genre", &["House"]),
    ];
    write(&repo, vec![req(&k, &before)], &opts(1, None));

    let change = [
        ("rating", &["4"][..]),
        ("tag", &["c", "d", "e"]),
        ("genre", &[]),
    ];
    let report = write(&repo, vec![req(&k, &change)], &opts(1, None));
    assert_eq!(report.written, vec![AnnexKey::new(&k)]);
    assert_eq!(
        read_meta(&repo, &[k]),
        vec![fields(&[
            ("comment", &["keep me"]),
            ("rating", &["4"]),
            ("tag", &["c", "d", "e"])
        ])]
    );
}

#[test]
fn invalid_requests_fail_alone_and_git_annex_refusals_are_per_key() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = new_repo(tmp.path());
    let good = keys("g", 3);
    // git-annex accepts this key but cannot create its journal file (name > 255 bytes): a
    // real per-key refusal, reported in the reply while the process carries on.
    let too_long = format!("WORM--{}", "n".repeat(300));
    let ok = [("rating", &["1"][..])];
    let requests = vec![
        req(&good[0], &ok),
        req("WORM--bad-field", &[("foo bar", &["1"])]),
        req("notakey", &ok),
        req(&too_long, &ok),
        req(&good[1], &ok),
        req("WORM--new\nline", &ok),
        req("WORM--derived", &[("rating-lastchanged", &["1"])]),
        req("WORM--twins", &[("Rating", &["1"]), ("rating", &["2"])]),
        req(&good[2], &ok),
    ];
    let report = write(&repo, requests, &opts(1, None));

    let mut written: Vec<&str> = report.written.iter().map(AnnexKey::as_str).collect();
    written.sort();
    assert_eq!(written, good.iter().map(String::as_str).collect::<Vec<_>>());
    let mut failed = failed_keys(&report);
    failed.sort();
    let mut want = vec![
        "WORM--bad-field",
        "WORM--derived",
        "WORM--new\nline",
        "WORM--twins",
    ];
    want.extend([too_long.as_str(), "notakey"]);
    want.sort();
    assert_eq!(failed, want);
    let reason = |key: &str| {
        report
            .failed
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .unwrap()
            .1
            .to_string()
    };
    assert!(
        reason(&too_long).contains("File name too long"),
        "{}",
        reason(&too_long)
    );
    assert!(reason("notakey").contains("invalid git-annex key"));
    assert!(reason("WORM--bad-field").contains("illegal field name"));
    assert_eq!(read_meta(&repo, &good), vec![fields(&ok); 3]);
    assert_eq!(report.commits, 1);
}

#[test]
fn commits_once_per_call_or_per_batch_and_last_lands_in_the_final_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = new_repo(tmp.path());
    // A `synced/main` branch ahead of main is what `git annex merge` would merge into the
    // checked-out branch; the writer must leave it alone.
    git(&repo.root, &["commit", "-q", "--allow-empty", "-m", "base"]);
    git(&repo.root, &["branch", "synced/main"]);
    git(&repo.root, &["checkout", "-q", "synced/main"]);
    git(
        &repo.root,
        &["commit", "-q", "--allow-empty", "-m", "ahead"],
    );
    git(&repo.root, &["checkout", "-q", "main"]);
    let main_before = git(&repo.root, &["rev-parse", "main"]);

    let ks = keys("c", 250);
    let rating = |v: &'static str| ks.iter().map(move |k| req(k, &[("rating", &[v])]));
    let record = |_: &Tally| req(STATE_KEY, &[("someuuid.time", &["t"])]);
    let last = || Some(&record as &dyn Fn(&Tally) -> WriteRequest);
    let never = AtomicBool::new(false);

    let start = head(&repo);
    let report = writer::write(
        &repo,
        rating("1").collect::<Vec<_>>(),
        last(),
        &opts(1, None),
        &|_| {},
        &never,
    )
    .unwrap();
    let written = Some(RecordOutcome::Written);
    assert_eq!(
        (report.written.len(), Some(report.record), report.commits),
        (250, written.clone(), 1)
    );
    assert_eq!(
        git(
            &repo.root,
            &["rev-list", "--count", &format!("{start}..git-annex")]
        ),
        "1"
    );
    assert_eq!(journal_len(&repo), 0, "everything committed");

    // The writer stays alive across batches and is fed again after each commit: the first
    // key, set again in the last batch, must end with only the later value.
    let seen = std::sync::Mutex::new(Vec::new());
    let again = req(&ks[0], &[("rating", &["9"])]);
    let report = writer::write(
        &repo,
        rating("2").chain([again]).collect::<Vec<_>>(),
        last(),
        &opts(1, Some(100)),
        &|n| seen.lock().unwrap().push(n),
        &never,
    )
    .unwrap();
    assert_eq!(
        (report.written.len(), Some(report.record), report.commits),
        (251, written.clone(), 3)
    );
    assert_eq!(*seen.lock().unwrap(), (1..=252).collect::<Vec<_>>());
    let meta = read_meta(&repo, &ks);
    assert_eq!(meta[0], fields(&[("rating", &["9"])]));
    assert!(
        meta[1..]
            .iter()
            .all(|m| *m == fields(&[("rating", &["2"])]))
    );
    assert_eq!(journal_len(&repo), 0);
    let subject = git(&repo.root, &["log", "-1", "--format=%s", "git-annex"]);
    assert_eq!(subject, "music-commander test");
    let in_final = git(
        &repo.root,
        &["diff-tree", "--name-only", "-r", "git-annex~1", "git-annex"],
    );
    assert!(in_final.contains(STATE_KEY), "{in_final}");
    assert_eq!(in_final.lines().count(), 52, "51 requests + last");

    // Exactly divisible: `last` joins the final chunk instead of adding a commit.
    let report = writer::write(
        &repo,
        rating("3").take(200).collect::<Vec<_>>(),
        last(),
        &opts(2, Some(100)),
        &|_| {},
        &never,
    )
    .unwrap();
    assert_eq!(
        (report.written.len(), Some(report.record), report.commits),
        (200, written, 2)
    );

    assert_eq!(git(&repo.root, &["rev-parse", "main"]), main_before);
    assert_eq!(
        git(&repo.root, &["symbolic-ref", "HEAD"]),
        "refs/heads/main"
    );
    assert_eq!(git(&repo.root, &["status", "--porcelain"]), "");
}

#[test]
fn two_jobs_end_in_the_same_state_as_one() {
    let ks = keys("j", 200);
    let requests: Vec<WriteRequest> = ks
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let n = i.to_string();
            req(
                k,
                &[
                    ("rating", &[&n[..]]),
                    ("tag", &["x", "y"]),
                    ("bpm", &["128.00"]),
                ],
            )
        })
        .collect();
    let mut states = Vec::new();
    for jobs in [1, 2] {
        let tmp = tempfile::tempdir().unwrap();
        let repo = new_repo(tmp.path());
        let report = write(&repo, requests.clone(), &opts(jobs, None));
        assert_eq!(
            (report.written.len(), report.commits),
            (200, 1),
            "jobs {jobs}"
        );
        assert_eq!(journal_len(&repo), 0);
        states.push(read_meta(&repo, &ks));
    }
    assert_eq!(states[0], states[1]);
    assert_eq!(
        states[0][7],
        fields(&[
            ("bpm", &["128.00"]),
            ("rating", &["7"]),
            ("tag", &["x", "y"])
        ])
    );
}

#[test]
fn a_killed_writer_fails_its_unanswered_keys_and_is_replaced_for_the_next_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = new_repo(tmp.path());
    let ks = keys("k", 300);
    let requests: Vec<_> = ks.iter().map(|k| req(k, &[("rating", &["5"])])).collect();
    let killed = AtomicBool::new(false);
    let start = Instant::now();
    let report = writer::write(
        &repo,
        requests,
        None,
        &opts(1, Some(150)),
        &|n| {
            if n == 10 && !killed.swap(true, Ordering::SeqCst) {
                assert!(kill_batch_writer(&repo.root), "no writer process found");
            }
        },
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(killed.load(Ordering::SeqCst));
    assert!(start.elapsed().as_secs() < 60, "no hang");
    assert!(!report.interrupted);
    assert_eq!(report.written.len() + report.failed.len(), 300);
    // At most 10 + WINDOW (128) of the first 150 were sent when the kill came, so some are
    // certainly unanswered whatever the timing.
    assert!(report.failed.len() >= 12, "{}", report.failed.len());
    for (key, why) in &report.failed {
        assert!(why.to_string().starts_with("git-annex stopped"), "{why}");
        let i = ks.iter().position(|k| k == key.as_str()).unwrap();
        assert!(
            (10..150).contains(&i),
            "only the first batch is affected: {i}"
        );
    }
    // Later batches went to a new writer; whatever was confirmed was committed. (A request
    // the killed process applied just before dying is reported failed but may be stored:
    // "failed" means "not confirmed", and the next sync sees it by value.)
    let meta = read_meta(&repo, &ks);
    for (i, k) in ks.iter().enumerate() {
        if report.written.iter().any(|w| w.as_str() == k) {
            assert!(!meta[i].is_empty(), "key {i} confirmed but not stored");
        }
    }
    assert_eq!(report.commits, 2);
    assert_eq!(journal_len(&repo), 0);
}

#[test]
fn cancel_stops_sending_and_commits_what_was_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = new_repo(tmp.path());
    let ks = keys("x", 600);
    let requests: Vec<_> = ks.iter().map(|k| req(k, &[("rating", &["5"])])).collect();
    let cancel = AtomicBool::new(false);
    let record = |_: &Tally| req(STATE_KEY, &[("someuuid.time", &["t"])]);
    let report = writer::write(
        &repo,
        requests,
        Some(&record),
        &opts(2, None),
        &|n| {
            if n == 50 {
                cancel.store(true, Ordering::SeqCst);
            }
        },
        &cancel,
    )
    .unwrap();
    assert!(report.interrupted);
    // Each writer runs at most 128 requests ahead of its replies, so a cancel at reply 50
    // leaves some of the 600 unsent whatever the timing.
    assert!(report.written.len() >= 50 && report.written.len() < 600);
    assert_eq!(report.written.len() + report.failed.len(), 600);
    assert!(
        report
            .failed
            .iter()
            .all(|(_, why)| *why == FailureKind::Interrupted)
    );
    assert_eq!(
        report.record,
        RecordOutcome::NotSent,
        "no record of an interrupted sync"
    );
    assert_eq!(report.commits, 1);
    assert_eq!(journal_len(&repo), 0, "accepted writes are committed");
    let meta = read_meta(&repo, &ks);
    let n_set = meta.iter().filter(|m| !m.is_empty()).count();
    assert_eq!(n_set, report.written.len());
}

fn record(repo: &Repo, time: &str, tracks: u64) -> SyncRecord {
    SyncRecord {
        uuid: repo.uuid.clone(),
        description: None,
        time: time.into(),
        mixxx_db: "/home/dj/.mixxx/mixxxdb.sqlite".into(),
        tool_version: "0.1.0".into(),
        tracks,
        written: tracks - 1,
        failed: 1,
    }
}

#[test]
fn sync_state_travels_to_another_clone() {
    let tmp = tempfile::tempdir().unwrap();
    let a = new_repo(&tmp.path().join("a"));
    git(&a.root, &["commit", "-q", "--allow-empty", "-m", "base"]);
    let b_dir: PathBuf = tmp.path().join("b");
    git(tmp.path(), &["clone", "-q", a.root.to_str().unwrap(), "b"]);
    git(&b_dir, &["config", "user.name", "t"]);
    git(&b_dir, &["config", "user.email", "t@example.invalid"]);
    git(&b_dir, &["annex", "init", "-q", "clone b"]);
    let b = open(&b_dir);
    let never = AtomicBool::new(false);
    let save = |repo: &Repo, rec: &SyncRecord| {
        let r = writer::write(
            repo,
            vec![],
            Some(&|_: &Tally| state::request(rec)),
            &opts(1, None),
            &|_| {},
            &never,
        )
        .unwrap();
        assert_eq!((r.record, r.commits), (RecordOutcome::Written, 1));
    };

    let rec_a = record(&a, "2026-01-02T03:04:05Z", 10);
    save(&a, &rec_a);
    assert_eq!(
        state::read_all(&a).unwrap(),
        vec![SyncRecord {
            description: Some("fixture".into()),
            ..rec_a.clone()
        }]
    );
    let rec_b = record(&b, "2026-02-01T00:00:00Z", 20);
    save(&b, &rec_b);
    // Twice: git-annex 10.20230126's sync fetches `git-annex` and `synced/git-annex` in one
    // `git fetch`, which fails as a whole (sync still says ok) until the first sync has
    // pushed a `synced/git-annex` to the origin.
    for _ in 0..2 {
        git(
            &b.root,
            &["annex", "sync", "-q", "--only-annex", "--no-content"],
        );
    }

    let all = state::read_all(&b).unwrap();
    let want = vec![
        SyncRecord {
            description: Some("clone b".into()),
            ..rec_b
        },
        SyncRecord {
            description: Some("fixture".into()),
            ..rec_a
        },
    ];
    assert_eq!(all, want, "newest first, with descriptions");
}

/// Throughput on 2,000 keys, first write then an update of every key, each in a fresh
/// repository, rounds interleaved because the shared VM is noisy:
/// `cargo test --test annex_write -- --ignored --nocapture measure`.
#[test]
#[ignore]
fn measure_throughput() {
    let n = 2000;
    let ks = keys("m", n);
    let requests = |v: &str| -> Vec<WriteRequest> {
        let four = [
            ("rating", &[v][..]),
            ("tag", &["house", v]),
            ("bpm", &["128.00"]),
            ("crate", &["a"]),
        ];
        ks.iter().map(|k| req(k, &four)).collect()
    };
    let raw = |repo: &Repo, v: &str| {
        let input: String = requests(v)
            .iter()
            .map(|r| {
                format!(
                    "{}\n",
                    serde_json::json!({ "key": r.key.as_str(), "fields": r.fields })
                )
            })
            .collect();
        let mut child = repo
            .annex()
            .args(["metadata", "--batch", "--json"])
            .spawn(Stdio::piped(), Stdio::piped(), Stdio::inherit())
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
        let replies = BufReader::new(child.stdout.take().unwrap()).lines().count();
        feeder.join().unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(replies, n);
    };
    for round in 1..=2 {
        for jobs in [0, 1, 2] {
            let tmp = tempfile::tempdir().unwrap();
            let repo = new_repo(tmp.path());
            let mut times = Vec::new();
            for v in ["1", "2"] {
                let t = Instant::now();
                if jobs == 0 {
                    raw(&repo, v);
                } else {
                    let r = write(&repo, requests(v), &opts(jobs, None));
                    assert_eq!((r.written.len(), r.commits), (n, 1));
                }
                times.push(t.elapsed());
            }
            let what = if jobs == 0 {
                "raw floor".to_string()
            } else {
                format!("jobs={jobs}")
            };
            println!(
                "round {round} {what:>9}: first write {:.2?}, update {:.2?}",
                times[0], times[1]
            );
        }
    }
}
