//! The read side of the git-annex layer against real git and git-annex: repository discovery,
//! the file → key map, met paths and snapshots.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use music_commander::Error;
use music_commander::annex::{Entry, KeyMap, Repo, metalog, snapshot};
use music_commander::model::{AnnexKey, FieldSet, RepoPath};
use testutils::annex_repo::{self, git, git_bytes, git_with_input};

fn p(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

fn set_by_key(dir: &Path, config: &[&str], changes: &[(&str, &str, &str)]) {
    let mut args: Vec<&str> = Vec::new();
    for c in config {
        args.extend(["-c", c]);
    }
    args.extend(["annex", "metadata", "--batch", "--json"]);
    let input: String = changes
        .iter()
        .map(|(key, field, value)| {
            serde_json::json!({"key": key, "fields": {*field: [value]}}).to_string() + "\n"
        })
        .collect();
    git_with_input(dir, &args, input.as_bytes()).unwrap();
}

// ---------------------------------------------------------------------------------------
// Repo::discover

#[test]
fn discover_finds_root_from_subfolder_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("music");
    annex_repo::init(&dir).unwrap();
    annex_repo::add_files(&dir, &[(Path::new("sub/deep/a.mp3"), b"a")]).unwrap();
    let root = std::fs::canonicalize(&dir).unwrap();
    for start in [
        dir.clone(),
        dir.join("sub"),
        dir.join("sub/deep"),
        dir.join("sub/deep/a.mp3"),
    ] {
        let repo = Repo::discover(&start).unwrap();
        assert_eq!(repo.root, root, "from {}", start.display());
        assert_eq!(repo.git_dir, root.join(".git"));
        assert_eq!(repo.common_dir, root.join(".git"));
        assert_eq!(repo.uuid.len(), 36, "{}", repo.uuid);
        assert!(
            repo.annex_version.starts_with("10."),
            "{}",
            repo.annex_version
        );
    }
    // git() runs at the root whatever the start was, with unquoted paths.
    let repo = Repo::discover(&dir.join("sub/deep")).unwrap();
    let out = repo
        .git()
        .args(["rev-parse", "--show-prefix"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"\n");
    let out = repo
        .git()
        .args(["config", "core.quotepath"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"off\n");
}

#[test]
fn discover_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    assert!(matches!(
        Repo::discover(&plain),
        Err(Error::NotGitRepo { .. })
    ));
    assert!(matches!(
        Repo::discover(&tmp.path().join("does-not-exist")),
        Err(Error::NotGitRepo { .. })
    ));

    let bare = tmp.path().join("bare.git");
    git(tmp.path(), &["init", "-q", "--bare", "bare.git"]).unwrap();
    assert!(matches!(Repo::discover(&bare), Err(Error::BareRepo { .. })));

    let not_annex = tmp.path().join("not-annex");
    git(tmp.path(), &["init", "-q", "not-annex"]).unwrap();
    assert!(matches!(
        Repo::discover(&not_annex),
        Err(Error::NotAnnexRepo { .. })
    ));

    let annex = tmp.path().join("annex");
    annex_repo::init(&annex).unwrap();
    assert!(matches!(
        Repo::discover(&annex.join(".git")),
        Err(Error::Git { .. })
    ));
}

/// Runs itself in a child process whose PATH has git but not git-annex (changing PATH in this
/// multi-threaded test process would race with the other tests).
#[test]
fn discover_without_git_annex() {
    if let Some(repo) = std::env::var_os("MC_TEST_ANNEX_MISSING_REPO") {
        let err = Repo::discover(Path::new(&repo)).unwrap_err();
        assert!(matches!(err, Error::AnnexMissing), "{err:?}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    annex_repo::init(&repo).unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let real_git = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::os::unix::fs::symlink(real_git.trim(), bin.join("git")).unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "discover_without_git_annex", "--quiet"])
        .env("PATH", &bin)
        .env("MC_TEST_ANNEX_MISSING_REPO", &repo)
        .status()
        .unwrap();
    assert!(status.success());
}

// ---------------------------------------------------------------------------------------
// KeyMap

/// Every kind of index entry, compared with `git annex find --anything` (one process).
#[test]
fn key_map_matches_git_annex_find() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("music");
    annex_repo::init(&dir).unwrap();
    let files: Vec<(&Path, &[u8])> = vec![
        (p(b"present.mp3"), b"present"),
        (p(b"absent.mp3"), b"absent"),
        (p(b"unlocked.flac"), b"unlocked"),
        (p(b"dir with space/song name.mp3"), b"space"),
        (p(b"\xc3\xbcn\xc3\xaf \xe2\x98\x83.mp3"), b"unicode"),
        (p(b"Cafe\xcc\x81.mp3"), b"nfd"),
        (p(b"new\nline.mp3"), b"newline"),
        (p(b"-leading-dash.mp3"), b"dash"),
        (p(b"a=b:c&d%e.mp3"), b"punct"),
        (p(b"latin1-\xe9.mp3"), b"latin1"),
        (p(b"tab\tname.mp3"), b"tab"),
        (p(b"same-content.mp3"), b"present"),
    ];
    annex_repo::add_files(&dir, &files).unwrap();
    git(&dir, &["annex", "drop", "-q", "--force", "absent.mp3"]).unwrap();
    git(&dir, &["annex", "unlock", "unlocked.flac"]).unwrap();
    git(&dir, &["commit", "-q", "-m", "unlock"]).unwrap();
    // git-annex escapes non-UTF-8 bytes in the keys it makes (WORM `,56553`), but a link made
    // by another tool (or an old git-annex) can carry a non-UTF-8 key.
    std::os::unix::fs::symlink(
        OsStr::from_bytes(b".git/annex/objects/Xx/Yy/WORM-s1-m1--caf\xe9/WORM-s1-m1--caf\xe9"),
        dir.join("latin1-key.mp3"),
    )
    .unwrap();
    git(&dir, &["add", "latin1-key.mp3"]).unwrap();
    git(&dir, &["commit", "-q", "-m", "hand-made link"]).unwrap();
    // Staged, never committed.
    std::fs::write(dir.join("staged.mp3"), b"staged").unwrap();
    git(&dir, &["annex", "add", "-q", "staged.mp3"]).unwrap();
    // Plain git: a small file, a big file, a symlink that is not into the annex, and a file
    // whose text merely mentions /annex/objects/ beyond the first line.
    std::fs::write(dir.join("notes.txt"), b"notes\n").unwrap();
    std::fs::write(dir.join("big.bin"), vec![b'x'; 40 * 1024]).unwrap();
    std::fs::write(
        dir.join("tricky.txt"),
        b"hello\n/annex/objects/SHA256E-s1--aa\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("notes.txt", dir.join("link")).unwrap();
    git(
        &dir,
        &[
            "-c",
            "annex.largefiles=nothing",
            "add",
            "notes.txt",
            "big.bin",
            "tricky.txt",
            "link",
        ],
    )
    .unwrap();
    git(&dir, &["commit", "-q", "-m", "plain"]).unwrap();
    std::fs::write(dir.join("untracked.mp3"), b"untracked").unwrap();

    let repo = Repo::discover(&dir).unwrap();
    let map = KeyMap::read(&repo, &|_| true).unwrap();

    let out = git_bytes(
        &dir,
        &[
            "annex",
            "find",
            "--anything",
            "--format=${key}\\000${file}\\000",
        ],
    )
    .unwrap();
    let mut fields = out.split(|&b| b == 0);
    let mut theirs: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    while let (Some(key), Some(file)) = (fields.next(), fields.next()) {
        theirs.insert(file.to_vec(), key.to_vec());
    }
    let ours: BTreeMap<Vec<u8>, Vec<u8>> = map
        .iter()
        .filter_map(|(path, entry)| match entry {
            Entry::Annexed(key) => {
                Some((path.as_bytes().to_vec(), key.as_str().as_bytes().to_vec()))
            }
            Entry::NonUtf8Key(key) => Some((path.as_bytes().to_vec(), key.clone())),
            Entry::Plain => None,
        })
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(theirs.len(), files.len() + 2);

    let entry = |path: &[u8]| map.get(&RepoPath::from_bytes(path)).map(|(_, e)| e.clone());
    for plain in [&b"notes.txt"[..], b"big.bin", b"tricky.txt", b"link"] {
        assert_eq!(
            entry(plain),
            Some(Entry::Plain),
            "{}",
            String::from_utf8_lossy(plain)
        );
    }
    assert_eq!(entry(b"untracked.mp3"), None);
    assert!(matches!(entry(b"staged.mp3"), Some(Entry::Annexed(_))));
    assert!(matches!(entry(b"unlocked.flac"), Some(Entry::Annexed(_))));
    assert_eq!(
        entry(b"latin1-key.mp3"),
        Some(Entry::NonUtf8Key(b"WORM-s1-m1--caf\xe9".to_vec()))
    );
    assert_eq!(entry(b"present.mp3"), entry(b"same-content.mp3"));
    // NFC query finds the NFD index entry and reports the index spelling.
    let (found, _) = map.get(&RepoPath::from_bytes("Café.mp3")).unwrap();
    assert_eq!(found.as_bytes(), b"Cafe\xcc\x81.mp3");

    // `wanted` filters what is resolved and kept.
    let only_mp3 = KeyMap::read(&repo, &|p| p.as_bytes().ends_with(b".mp3")).unwrap();
    assert!(
        only_mp3
            .iter()
            .all(|(p, _)| p.as_bytes().ends_with(b".mp3"))
    );
    assert_eq!(only_mp3.len(), files.len() - 1 + 2);
}

// ---------------------------------------------------------------------------------------
// met_path and snapshots

const ODD_KEYS: &[&str] = &[
    "SHA256E-s6--5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03.ß",
    "SHA256E-s6--5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03.é",
    "SHA256E-s6--5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03.FLAC",
    "SHA256E-s6--5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03.tar.gz",
    "SHA256-s6--5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
    "WORM-s3-m1700000000--a,32b c.mp3",
    "WORM-s0-m0--under_score__x",
    "URL--http://example.com/a%20b/x.mp3",
    "URL--http://e.com/a&b:c%d_e",
    "WORM-s0-m0--music-commander-sync-state",
];

#[test]
fn met_path_matches_the_branch_and_snapshot_reads_journal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("music");
    annex_repo::init(&dir).unwrap();
    let repo = Repo::discover(&dir).unwrap();
    let keys: Vec<AnnexKey> = ODD_KEYS.iter().map(|k| AnnexKey::new(*k)).collect();

    // The branch exists but holds no metadata yet.
    assert!(snapshot::read(&repo, &keys).unwrap().is_empty());

    let committed: Vec<(&str, &str, &str)> =
        ODD_KEYS.iter().map(|k| (*k, "f", "committed")).collect();
    set_by_key(&dir, &[], &committed);
    let tree = git_bytes(&dir, &["ls-tree", "-r", "-z", "--name-only", "git-annex"]).unwrap();
    let tree: Vec<&[u8]> = tree.split(|&b| b == 0).collect();
    for key in ODD_KEYS {
        let path = metalog::met_path(key);
        assert!(
            tree.contains(&path.as_bytes()),
            "{key}: {path} not in branch"
        );
    }

    // Journal-only changes, with `_` and `%` in the journal file names.
    let journaled: Vec<(&str, &str, &str)> =
        ODD_KEYS.iter().map(|k| (*k, "g", "journal")).collect();
    set_by_key(&dir, &["annex.alwayscommit=false"], &journaled);
    let journal_files = std::fs::read_dir(dir.join(".git/annex/journal"))
        .unwrap()
        .count();
    assert_eq!(journal_files, ODD_KEYS.len());

    let snap = read_both_ways(&repo, &keys);
    let expected: FieldSet = [("f", "committed"), ("g", "journal")].into_iter().collect();
    for key in &keys {
        assert_eq!(snap.get(key), Some(&expected), "{key}");
    }
    // Unknown keys and duplicates are fine.
    let more = [
        keys[0].clone(),
        keys[0].clone(),
        AnnexKey::new("SHA256E-s1--00.mp3"),
    ];
    let snap = snapshot::read(&repo, &more).unwrap();
    assert_eq!(snap.len(), 1);

    // A fresh clone has only `origin/git-annex` until git-annex first runs there: read that.
    git(tmp.path(), &["clone", "-q", dir.to_str().unwrap(), "clone"]).unwrap();
    let clone = tmp.path().join("clone");
    git(
        &clone,
        &[
            "config",
            "annex.uuid",
            "00000000-0000-4000-8000-000000000001",
        ],
    )
    .unwrap();
    let clone_repo = Repo::discover(&clone).unwrap();
    let snap = read_both_ways(&clone_repo, &keys);
    let committed_only: FieldSet = [("f", "committed")].into_iter().collect();
    assert_eq!(snap.len(), keys.len());
    assert!(snap.values().all(|f| f == &committed_only));
}

#[test]
fn snapshot_with_one_level_branch_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("music");
    git(tmp.path(), &["init", "-q", "music"]).unwrap();
    git(
        &dir,
        &[
            "-c",
            "annex.tune.branchhash1=true",
            "annex",
            "init",
            "-q",
            "h1",
        ],
    )
    .unwrap();
    let repo = Repo::discover(&dir).unwrap();
    set_by_key(&dir, &[], &[(ODD_KEYS[7], "rating", "5")]);
    let tree = git(&dir, &["ls-tree", "-r", "--name-only", "git-annex"]).unwrap();
    assert!(
        tree.lines()
            .any(|l| l == metalog::met_path_levels(ODD_KEYS[7], 1)),
        "{tree}"
    );
    let snap = read_both_ways(&repo, &[AnnexKey::new(ODD_KEYS[7])]);
    assert_eq!(
        snap[&AnnexKey::new(ODD_KEYS[7])],
        [("rating", "5")].into_iter().collect()
    );
}

// ---------------------------------------------------------------------------------------
// Throughput (not run by default):
//   cargo test --release --test annex_read -- --ignored --nocapture throughput_10k
// The repository is built once in $MC_BENCH_DIR (default /tmp/mc-annex-bench-10k) and reused.

fn timed<T>(label: &str, files: usize, runs: usize, mut f: impl FnMut() -> T) -> T {
    let mut best = std::time::Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let start = std::time::Instant::now();
        out = Some(f());
        best = best.min(start.elapsed());
    }
    eprintln!(
        "{label:<58} best of {runs}: {:>7.3} s  {:>9.0} files/s",
        best.as_secs_f64(),
        files as f64 / best.as_secs_f64()
    );
    out.expect("at least one run")
}

#[test]
#[ignore]
fn throughput_10k() {
    const N: usize = 10_000;
    let dir = std::path::PathBuf::from(
        std::env::var_os("MC_BENCH_DIR").unwrap_or_else(|| "/tmp/mc-annex-bench-10k".into()),
    );
    if !dir.join(".bench-ready").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        annex_repo::init(&dir).unwrap();
        let files: Vec<(String, String)> = (0..N)
            .map(|i| {
                (
                    format!("Artist {:03}/Album {}/{i:05} Track ünï.mp3", i % 500, i % 7),
                    format!("SHA256E-s{}--{:064x}.mp3", 1000 + i, i as u128 * 104_729),
                )
            })
            .collect();
        let pairs: Vec<(&Path, &str)> = files
            .iter()
            .map(|(p, k)| (Path::new(p.as_str()), k.as_str()))
            .collect();
        annex_repo::add_absent_files(&dir, &pairs).unwrap();
        let input: String = files
            .iter()
            .map(|(_, key)| {
                serde_json::json!({"key": key, "fields": {
                    "rating": [((key.len() % 5) + 1).to_string()],
                    "bpm": ["128.00"],
                    "genre": ["Deep House"],
                    "comment": ["a comment with spaces"],
                }})
                .to_string()
                    + "\n"
            })
            .collect();
        git_with_input(
            &dir,
            &["annex", "metadata", "--batch", "--json"],
            input.as_bytes(),
        )
        .unwrap();
        std::fs::write(dir.join(".git/.bench-ready"), b"").unwrap();
        std::fs::rename(dir.join(".git/.bench-ready"), dir.join(".bench-ready")).unwrap();
    }
    let repo = Repo::discover(&dir).unwrap();
    let map = timed("KeyMap::read (ls-files + cat-file)", N, 5, || {
        KeyMap::read(&repo, &|_| true).unwrap()
    });
    let keys: Vec<AnnexKey> = map
        .iter()
        .filter_map(|(_, e)| match e {
            Entry::Annexed(k) => Some(k.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(keys.len(), N);
    let snap = timed("snapshot::read (one cat-file, all keys)", N, 5, || {
        snapshot::read(&repo, &keys).unwrap()
    });
    assert_eq!(snap.len(), N);
    let one = timed("snapshot::read, 1 key (path lookup)", 1, 5, || {
        snapshot::read(&repo, &keys[..1]).unwrap()
    });
    assert_eq!(one.len(), 1);
    timed(
        "git annex find --anything --format='${key}\\0${file}\\0'",
        N,
        3,
        || {
            git_bytes(
                &dir,
                &[
                    "annex",
                    "find",
                    "--anything",
                    "--format=${key}\\000${file}\\000",
                ],
            )
            .unwrap()
        },
    );
    let json = timed("git annex metadata --json .", N, 2, || {
        git_bytes(&dir, &["annex", "metadata", "--json", "."]).unwrap()
    });
    // The same answer at scale.
    let mut agreed = 0;
    for line in json.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_slice(line).unwrap();
        let key = AnnexKey::new(v["key"].as_str().unwrap());
        let mut theirs = FieldSet::new();
        for (field, values) in v["fields"].as_object().unwrap() {
            if !field.ends_with("lastchanged") {
                for value in values.as_array().unwrap() {
                    theirs.insert(field, value.as_str().unwrap());
                }
            }
        }
        assert_eq!(snap[&key], theirs);
        agreed += 1;
    }
    assert_eq!(agreed, N);
}

/// Commits `(branch path, content)` files on top of the git-annex branch and points `ref_name`
/// at the commit, as another tool (or clone) could: temporary index, commit-tree, update-ref.
fn commit_on_annex_branch(dir: &Path, ref_name: &str, files: &[(String, &[u8])]) {
    let index = dir.join(".git/mc-test-index");
    let git_env = |args: &[&str], input: Option<&[u8]>| -> String {
        music_commander::annex::Git::in_dir(dir)
            .args(args)
            .env("GIT_INDEX_FILE", &index)
            .stdin(input.unwrap_or_default())
            .stdout_text()
            .unwrap()
            .trim()
            .to_string()
    };
    git_env(&["read-tree", "git-annex"], None);
    for (path, content) in files {
        let oid = git_env(&["hash-object", "-w", "--stdin"], Some(content));
        git_env(
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("100644,{oid},{path}"),
            ],
            None,
        );
    }
    let tree = git_env(&["write-tree"], None);
    let commit = git_env(
        &["commit-tree", &tree, "-p", "git-annex", "-m", "crafted"],
        None,
    );
    git_env(&["update-ref", ref_name, &commit], None);
    std::fs::remove_file(index).unwrap();
}

/// `snapshot::read` of `keys`, checking that the few-keys path (cat-file `<ref>:<path>`) and
/// the many-keys path (ls-tree; forced by padding with unknown keys) agree.
fn read_both_ways(repo: &Repo, keys: &[AnnexKey]) -> HashMap<AnnexKey, FieldSet> {
    assert!(keys.len() <= 100, "few enough keys for path lookups");
    let few = snapshot::read(repo, keys).unwrap();
    let mut padded = keys.to_vec();
    padded.extend((0..300).map(|i| AnnexKey::new(format!("SHA256E-s{i}--padding.mp3"))));
    let many = snapshot::read(repo, &padded).unwrap();
    assert_eq!(few, many);
    few
}

/// git-annex's answer for `keys` (one batch process) compared with ours; one message per key
/// that differs.
fn disagreements(dir: &Path, ours: &HashMap<AnnexKey, FieldSet>, keys: &[AnnexKey]) -> Vec<String> {
    let input: String = keys
        .iter()
        .map(|k| serde_json::json!({"key": k.as_str()}).to_string() + "\n")
        .collect();
    let out = git_with_input(
        dir,
        &["annex", "metadata", "--batch", "--json"],
        input.as_bytes(),
    )
    .unwrap();
    let mut failures = Vec::new();
    for (key, line) in keys.iter().zip(out.split(|&b| b == b'\n')) {
        let v: serde_json::Value = serde_json::from_slice(line).unwrap();
        let mut theirs = FieldSet::new();
        for (field, values) in v["fields"].as_object().unwrap() {
            if !field.ends_with("lastchanged") {
                for value in values.as_array().unwrap() {
                    theirs.insert(field, value.as_str().unwrap());
                }
            }
        }
        let got = ours.get(key).cloned().unwrap_or_default();
        if got != theirs {
            failures.push(format!(
                "{key}\n  ours:      {got:?}\n  git-annex: {theirs:?}"
            ));
        }
    }
    failures
}

/// Hand-made logs, including lines git-annex never writes, planted both as branch blobs and as
/// journal files (git-annex treats the two slightly differently), then read back by git-annex
/// and by us.
#[test]
fn crafted_logs_agree_with_git_annex() {
    let logs: &[&[u8]] = &[
        b"100s f +a -a\n",
        b"100s f -a +a\n",
        b"100s f +a F -a\n",
        b"100 f1 f2 +v2\n",
        b"100s f +!@@ +v\n",
        b"100s f +v g\xff +w h +x\n",
        b"100s f  +v\n",
        b"100s f +!YQ\n",
        b"100s f +!YR==\n",
        b"1795746952.2762159201s f +new\n1795746952.27621592s f -new\n",
        b"1795746952.2762159201s f -new\n1795746952.27621592s f +new\n",
        b"0100.50s f +a\n100.5 f -a\n99.9s f +a\n",
        b"-5s f +a\n-6s f -a\n",
        b"-0.5s f +a\n0.4s f -a\n",
        b"100.0000000000001s f -a\n100s f +a\n",
        b"100s f +a\n100.0000000000001s f -a\n",
        b"100s f +a\n100s f -a\n",
        b"100s f -a\n100s f +a\n",
        b"100s f -a +b\n100s f +a\n",
        b"100s f +a\n100s f -a +b\n",
        b"100s f +a\r200s f -a +b\r\r\n150s g +c",
        b"100s lastchanged +x foo-lastchanged +y f +z\n",
        b"100s f +a\xff\xfeb g +\xe2\x82 h +\xf0\x9f\x98\n",
        b"100s Rating +4\n200s rating +3\n",
        b"garbage\n100s\n100s \n+5s f +plus-clock\n",
        b"100.s f +a\n100s. f +b\n",
        b"100s f +a",
        b"100s f +a\n200s f -a +b",
    ];
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("music");
    annex_repo::init(&dir).unwrap();
    let repo = Repo::discover(&dir).unwrap();
    let journal = dir.join(".git/annex/journal");
    std::fs::create_dir_all(&journal).unwrap();
    let key = |place: &str, i: usize| AnnexKey::new(format!("WORM-s0-m0--crafted-{place}{i}"));
    let write_journal = |place: &str| {
        for (i, log) in logs.iter().enumerate() {
            let path = metalog::met_path(key(place, i).as_str());
            std::fs::write(journal.join(path.replace('_', "__").replace('/', "_")), log).unwrap();
        }
    };
    let mut failures = Vec::new();

    // Round 1: each log as a branch blob ("b") and as a journal file ("j").
    let branch_files: Vec<(String, &[u8])> = (0..logs.len())
        .map(|i| (metalog::met_path(key("b", i).as_str()), logs[i]))
        .collect();
    commit_on_annex_branch(&dir, "refs/heads/git-annex", &branch_files);
    write_journal("j");
    let keys: Vec<AnnexKey> = (0..logs.len())
        .flat_map(|i| [key("b", i), key("j", i)])
        .collect();
    let ours = read_both_ways(&repo, &keys);
    failures.extend(disagreements(&dir, &ours, &keys));

    // Round 2: journal files ("s") plus an unmerged sibling with its own line for each: git-annex
    // commits the journal before union-merging, which changes what it keeps.
    write_journal("s");
    let sibling_files: Vec<(String, &[u8])> = (0..logs.len())
        .map(|i| {
            (
                metalog::met_path(key("s", i).as_str()),
                &b"150s f -a +sib\n"[..],
            )
        })
        .collect();
    commit_on_annex_branch(&dir, "refs/remotes/sib/git-annex", &sibling_files);
    let keys: Vec<AnnexKey> = (0..logs.len()).map(|i| key("s", i)).collect();
    let ours = read_both_ways(&repo, &keys);
    // `metadata --batch` does not merge siblings (plain `metadata` does); merge explicitly.
    git(&dir, &["annex", "merge", "-q"]).unwrap();
    failures.extend(disagreements(&dir, &ours, &keys));

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
