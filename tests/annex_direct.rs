//! The direct writer against git-annex's own: the same requests, from the same random history
//! (committed changes, journal-only changes, a clone's branch fetched but not merged), written
//! by `git annex metadata --batch` in one copy of the repository and by the direct writer in
//! another, give the same git-annex branch tree, byte for byte, and therefore the same
//! `git annex metadata --json` and `git annex find --metadata` answers. Then: kills at random
//! points, other writers at the same time, and a clone reading the values back.
//!
//! Seeded and reproducible: the seed is printed; `MC_DIRECT_SEED=<n>` replays a run.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::{Rng, Sandbox, metadata};
use music_commander::annex::writer::{self, WriteOptions, WriteRequest, Writer};
use music_commander::annex::{Entry, KeyMap, Repo};
use music_commander::model::AnnexKey;
use testutils::annex_repo::{self, git, git_bytes, git_with_input};
use testutils::library::{self, Shape};
use testutils::mixxx_db::SchemaEra;

const FILES: usize = 120;
/// History fields: case variants and non-ASCII names, as other tools may write them.
const HISTORY_FIELDS: &[&str] = &[
    "rating", "Rating", "RATING", "tag", "Tag", "genre", "comment", "bpm", "x.y", "ü", "Ü2",
];
/// Fields our requests use: names music-commander accepts (ASCII), in several cases.
const REQUEST_FIELDS: &[&str] = &[
    "rating",
    "Rating",
    "tag",
    "genre",
    "comment",
    "bpm",
    "x.y",
    "mixxx.rating",
];

fn value(rng: &mut Rng) -> String {
    const FIXED: &[&str] = &[
        "",
        " lead",
        "trail ",
        "a\nb",
        "a\rb",
        "line1\r\nline2",
        "x\ty",
        "!bang",
        "a!b",
        "+plus",
        "-minus",
        "+",
        "-",
        "ünï ☃",
        "a=b",
        "a  b",
        "House",
        "house",
        "deep house",
        "128",
        "128.00",
        "a\u{0}b",
        "4",
        "5",
    ];
    match rng.below(12) {
        0 => format!("long-{}-{}", rng.next(), "L".repeat(200 + rng.below(2000))),
        1..=3 => format!("v{}", rng.below(6)),
        _ => rng.pick(FIXED).to_string(),
    }
}

fn random_fields(rng: &mut Rng, names: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut fields = BTreeMap::new();
    let mut folded = std::collections::HashSet::new();
    for _ in 0..1 + rng.below(3) {
        let name = rng.pick(names).to_string();
        // One spelling per request: git-annex keeps one of two case twins at random.
        if !folded.insert(name.to_lowercase()) {
            continue;
        }
        let values: Vec<String> = (0..rng.below(4)).map(|_| value(rng)).collect();
        fields.insert(name, values);
    }
    fields
}

fn batch(dir: &Path, config: &[&str], env: &[(&str, &str)], requests: &[String]) {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir);
    for c in config {
        cmd.args(["-c", c]);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(["annex", "metadata", "--batch", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = requests.join("\n");
    input.push('\n');
    let mut stdin = child.stdin.take().unwrap();
    let feeder =
        std::thread::spawn(move || std::io::Write::write_all(&mut stdin, input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "git annex metadata --batch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answered = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert_eq!(answered, requests.len(), "one answer per request");
}

fn file_requests(rng: &mut Rng, files: &[String], percent: u64) -> Vec<String> {
    let mut out = Vec::new();
    for f in files {
        if rng.chance(percent) {
            let fields = random_fields(rng, HISTORY_FIELDS);
            out.push(serde_json::json!({"file": f, "fields": fields}).to_string());
        }
    }
    out
}

/// One CLI metadata change applied to many files with a single git-annex start.
fn cli_op(rng: &mut Rng, dir: &Path, files: &[String]) {
    let field = rng.pick(HISTORY_FIELDS).to_string();
    let cli_value = |rng: &mut Rng| -> Vec<u8> {
        match rng.below(8) {
            0 => b"a\xff\xfeb".to_vec(),
            1 => b"-dash".to_vec(),
            _ => value(rng).replace(['=', '\0'], "_").into_bytes(),
        }
    };
    let mut op: Vec<OsString> = Vec::new();
    match rng.below(6) {
        0 => op.extend([
            "-s".into(),
            OsString::from_vec([format!("{field}+=").into_bytes(), cli_value(rng)].concat()),
        ]),
        1 => op.extend([
            "-s".into(),
            OsString::from_vec([format!("{field}-=").into_bytes(), cli_value(rng)].concat()),
        ]),
        2 => op.extend([
            "-s".into(),
            OsString::from_vec([format!("{field}=").into_bytes(), cli_value(rng)].concat()),
        ]),
        3 => op.extend(["-r".into(), field.into()]),
        4 => op.push("--remove-all".into()),
        _ => op.extend(["-t".into(), OsString::from_vec(cli_value(rng))]),
    }
    let chosen: Vec<&String> = files.iter().filter(|_| rng.chance(35)).collect();
    if chosen.is_empty() {
        return;
    }
    let mut args: Vec<OsString> = vec!["annex".into(), "metadata".into(), "--quiet".into()];
    args.extend(op);
    args.push("--".into());
    args.extend(chosen.iter().map(|f| OsString::from(f.as_str())));
    git_bytes(dir, &args).expect("git annex metadata (CLI)");
}

/// A repository with a random metadata history: committed batch and CLI changes, a clone's
/// diverging changes fetched (and pushed to `synced/git-annex`) but not merged, and changes
/// left in the journal. Returns the files and their keys.
fn random_history(rng: &mut Rng, tmp: &Path) -> (PathBuf, Vec<String>, Vec<AnnexKey>) {
    let main = tmp.join("main");
    annex_repo::init(&main).unwrap();
    annex_repo::add_files(&main, &[(Path::new("real/a.mp3"), b"aaa")]).unwrap();
    let absent: Vec<(PathBuf, String)> = (0..FILES)
        .map(|i| {
            let n = if i % 20 == 19 { i - 1 } else { i };
            (
                PathBuf::from(format!("d{}/t {i}.mp3", i % 5)),
                format!("SHA256E-s{n}--{:064x}.mp3", n as u128 * 7919 + 17),
            )
        })
        .collect();
    let pairs: Vec<(&Path, &str)> = absent
        .iter()
        .map(|(p, k)| (p.as_path(), k.as_str()))
        .collect();
    annex_repo::add_absent_files(&main, &pairs).unwrap();
    let mut files: Vec<String> = absent
        .iter()
        .map(|(p, _)| p.to_string_lossy().into_owned())
        .collect();
    files.push("real/a.mp3".into());

    for _ in 0..2 {
        let requests = file_requests(rng, &files, 70);
        batch(&main, &[], &[], &requests);
    }
    let clone = tmp.join("clone");
    git(tmp, &["clone", "-q", main.to_str().unwrap(), "clone"]).unwrap();
    git(&clone, &["config", "user.name", "clone"]).unwrap();
    git(&clone, &["config", "user.email", "clone@example.invalid"]).unwrap();
    git(&clone, &["annex", "init", "-q", "clone"]).unwrap();
    for _ in 0..2 {
        cli_op(rng, &main, &files);
    }
    let requests = file_requests(rng, &files, 40);
    batch(&clone, &[], &[], &requests);
    cli_op(rng, &clone, &files);
    if rng.chance(70) {
        git(
            &clone,
            &["push", "-q", "origin", "git-annex:synced/git-annex"],
        )
        .unwrap();
    }
    let requests = file_requests(rng, &files, 30);
    batch(&clone, &[], &[], &requests);
    if rng.chance(70) {
        git(&main, &["remote", "add", "clone", clone.to_str().unwrap()]).unwrap();
        git(&main, &["fetch", "-q", "clone"]).unwrap();
    }
    // Left in main's journal: no commit at exit.
    let requests = file_requests(rng, &files, 30);
    batch(&main, &["annex.alwayscommit=false"], &[], &requests);

    let repo = Repo::discover(&main).unwrap();
    let map = KeyMap::read(&repo, &|_| true).unwrap();
    let mut keys: Vec<AnnexKey> = map
        .iter()
        .filter_map(|(_, e)| match e {
            Entry::Annexed(k) => Some(k.clone()),
            _ => None,
        })
        .collect();
    keys.sort();
    keys.dedup();
    (main, files, keys)
}

fn copy_dir(from: &Path, to: &Path) {
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .status()
            .unwrap()
            .success()
    );
}

/// Every branch file at `refs/heads/git-annex`: path → content.
fn branch_files(dir: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let listing = git_bytes(dir, &["ls-tree", "-r", "-z", "git-annex"]).unwrap();
    let mut files = BTreeMap::new();
    for record in listing.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let tab = record.iter().position(|&b| b == b'\t').unwrap();
        let oid = String::from_utf8_lossy(&record[..tab])
            .rsplit(' ')
            .next()
            .unwrap()
            .to_string();
        let content = git_bytes(dir, &["cat-file", "blob", &oid]).unwrap();
        files.insert(record[tab + 1..].to_vec(), content);
    }
    files
}

fn tree(dir: &Path) -> String {
    git(dir, &["rev-parse", "refs/heads/git-annex^{tree}"])
        .unwrap()
        .trim()
        .to_string()
}

/// The tree git-annex's branch index holds, and the commit `index.lck` says it matches.
fn annex_index(dir: &Path) -> (String, String) {
    let staged = Command::new("git")
        .current_dir(dir)
        .env("GIT_INDEX_FILE", dir.join(".git/annex/index"))
        .args(["write-tree"])
        .output()
        .unwrap();
    assert!(staged.status.success());
    let recorded = std::fs::read_to_string(dir.join(".git/annex/index.lck")).unwrap_or_default();
    (
        String::from_utf8_lossy(&staged.stdout).trim().to_string(),
        recorded.lines().next().unwrap_or("").trim().to_string(),
    )
}

fn journal_entries(repo: &Path) -> usize {
    std::fs::read_dir(repo.join(".git/annex/journal"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A new annexed repository `r` under `tmp`.
fn fresh_repo(tmp: &Path) -> (PathBuf, Repo) {
    let dir = tmp.join("r");
    annex_repo::init(&dir).unwrap();
    let repo = Repo::discover(&dir).unwrap();
    (dir, repo)
}

/// `requests` and then the sync record `record` makes, by the direct writer.
fn write_with_record(
    repo: &Repo,
    requests: Vec<WriteRequest>,
    record: &dyn Fn(&writer::Tally) -> WriteRequest,
) -> writer::WriteReport {
    writer::write(
        repo,
        requests,
        Some(record),
        &direct_options(None),
        &|_| {},
        &AtomicBool::new(false),
    )
    .unwrap()
}

fn direct_options(clock: Option<String>) -> WriteOptions {
    WriteOptions {
        writer: Writer::Direct,
        jobs: 1,
        batch_size: None,
        commit_message: "direct test".into(),
        vector_clock: clock,
    }
}

/// The heart of the proof: byte-equal branch trees after the same requests, on random
/// histories with journal entries and unmerged siblings, clocks pinned (in the past, so every
/// key with a log takes git-annex's "newest + 1 s" path, or in the future).
#[test]
fn direct_writer_writes_exactly_what_git_annex_writes() {
    let seed = common::seed("MC_DIRECT_SEED");
    eprintln!("direct seed = {seed} (replay: MC_DIRECT_SEED={seed})");
    let mut rng = Rng::new(seed);
    for round in 0..3 {
        let tmp = tempfile::tempdir().unwrap();
        if std::env::var_os("MC_KEEP").is_some() {
            eprintln!("keeping {}", tmp.path().display());
            std::mem::forget(tmp.path().to_path_buf());
        }
        let (main, files, keys) = random_history(&mut rng, tmp.path());
        let journaled = journal_entries(&main);
        let by_annex = tmp.path().join("by-annex");
        let by_direct = tmp.path().join("by-direct");
        copy_dir(&main, &by_annex);
        copy_dir(&main, &by_direct);

        // Requests by key: most files, some twice, a key no file uses, the state key.
        let mut targets: Vec<AnnexKey> = keys.iter().filter(|_| rng.chance(80)).cloned().collect();
        for _ in 0..10 {
            targets.push(rng.pick(&keys).clone());
        }
        targets.push(AnnexKey::new("WORM-s0-m0--not-a-file"));
        targets.push(AnnexKey::new(music_commander::annex::state::STATE_KEY));
        let requests: Vec<WriteRequest> = targets
            .into_iter()
            .map(|key| WriteRequest {
                key,
                fields: random_fields(&mut rng, REQUEST_FIELDS),
            })
            .collect();
        let clock = match rng.below(3) {
            0 => "1600000000".to_string(),
            1 => "1600000000.123456789".to_string(),
            _ => "4000000000.5".to_string(),
        };

        let lines: Vec<String> = requests
            .iter()
            .map(|r| serde_json::json!({"key": r.key.as_str(), "fields": r.fields}).to_string())
            .collect();
        // As the git-annex writer does: a batch process merges no sibling branch (measured),
        // so a plain read merges them first, then the batch, which commits at exit.
        git(
            &by_annex,
            &["annex", "metadata", "--json", "--key", "WORM-s0-m0--x"],
        )
        .unwrap();
        batch(
            &by_annex,
            &[],
            &[("GIT_ANNEX_VECTOR_CLOCK", &clock)],
            &lines,
        );
        assert_eq!(
            journal_entries(&by_annex),
            0,
            "git-annex commits its journal at exit"
        );

        let repo = Repo::discover(&by_direct).unwrap();
        let n = requests.len();
        let report = writer::write(
            &repo,
            requests,
            None,
            &direct_options(Some(clock.clone())),
            &|_| {},
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(report.written.len(), n, "{:?}", report.failed);
        assert!(report.failed.is_empty());

        let (a, b) = (branch_files(&by_annex), branch_files(&by_direct));
        let differing: Vec<String> = a
            .keys()
            .chain(b.keys())
            .filter(|p| a.get(*p) != b.get(*p))
            .map(|p| {
                format!(
                    "{}:\n git-annex: {:?}\n direct:    {:?}",
                    String::from_utf8_lossy(p),
                    a.get(p).map(|c| String::from_utf8_lossy(c).into_owned()),
                    b.get(p).map(|c| String::from_utf8_lossy(c).into_owned())
                )
            })
            .collect();
        if !differing.is_empty() && std::env::var_os("MC_KEEP").is_some() {
            let _ = tmp.keep();
            panic!("{}", differing[0]);
        }
        assert!(
            differing.is_empty(),
            "seed {seed} round {round}: {} branch files differ, e.g. {}",
            differing.len(),
            differing[0]
        );
        assert_eq!(tree(&by_annex), tree(&by_direct));

        // What git-annex itself answers, lastchanged included.
        let json = |dir: &Path| git(dir, &["annex", "metadata", "--json", "."]).unwrap();
        assert_eq!(
            json(&by_annex),
            json(&by_direct),
            "seed {seed} round {round}"
        );
        for query in [
            "rating=5",
            "tag=house",
            "genre=*",
            "rating>4",
            "x.y=v*",
            "comment=",
        ] {
            let find = |dir: &Path| {
                git(dir, &["annex", "find", "--anything", "--metadata", query]).unwrap()
            };
            assert_eq!(find(&by_annex), find(&by_direct), "find --metadata {query}");
        }
        let key_json = |dir: &Path| {
            git(
                dir,
                &[
                    "annex",
                    "metadata",
                    "--json",
                    "--key",
                    "WORM-s0-m0--not-a-file",
                ],
            )
            .unwrap()
        };
        assert_eq!(key_json(&by_annex), key_json(&by_direct));

        // The repository is clean and git-annex's own state agrees with the branch: its index,
        // when it says it matches the head, holds the head's tree.
        assert_eq!(journal_entries(&by_direct), 0);
        let (staged, recorded) = annex_index(&by_direct);
        let head = git(&by_direct, &["rev-parse", "git-annex"]).unwrap();
        if recorded == head.trim() {
            assert_eq!(staged, tree(&by_direct), "round {round}: git-annex's index");
        }
        wait_until_idle(&by_direct);
        git(&by_direct, &["fsck", "--no-progress", "--no-dangling"]).unwrap();
        assert!(
            git(&by_direct, &["for-each-ref", "refs/music-commander"])
                .unwrap()
                .is_empty(),
            "work ref left behind"
        );
        eprintln!(
            "round {round}: {} files, {journaled} journal files, clock {clock}: equal",
            files.len()
        );
    }
}

/// git-annex's branch index stays in step: after a direct write its recorded commit is the
/// branch head, and its content is the head's tree, so git-annex's next commit merges nothing.
#[test]
fn git_annex_index_follows_the_direct_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    annex_repo::init(&dir).unwrap();
    annex_repo::add_absent_files(&dir, &[(Path::new("a.mp3"), "SHA256E-s1--aa.mp3")]).unwrap();
    git(&dir, &["annex", "metadata", "-s", "genre=x", "a.mp3"]).unwrap();
    let repo = Repo::discover(&dir).unwrap();
    let requests = vec![WriteRequest {
        key: AnnexKey::new("SHA256E-s1--aa.mp3"),
        fields: [("rating".to_string(), vec!["5".to_string()])].into(),
    }];
    let report = writer::write(
        &repo,
        requests,
        None,
        &direct_options(None),
        &|_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(report.commits, 1);
    let head = git(&dir, &["rev-parse", "git-annex"]).unwrap();
    let (staged, recorded) = annex_index(&dir);
    assert_eq!(recorded, head.trim());
    assert_eq!(staged, tree(&dir));
    // git-annex reads and writes on top of it.
    git(&dir, &["annex", "metadata", "-s", "tag=t", "a.mp3"]).unwrap();
    let meta = metadata(&dir);
    assert_eq!(meta["a.mp3"]["rating"], ["5"]);
    assert_eq!(meta["a.mp3"]["genre"], ["x"]);
    assert_eq!(meta["a.mp3"]["tag"], ["t"]);
}

/// What git-annex staged in its branch index and has not committed (it stages the journal,
/// removes the journal files, then commits: a crash in between leaves the changes only in
/// the index) survives a direct write: only the paths the write changed are restaged.
#[test]
fn git_annex_index_keeps_what_git_annex_staged_but_did_not_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    annex_repo::init(&dir).unwrap();
    annex_repo::add_absent_files(&dir, &[(Path::new("a.mp3"), "SHA256E-s1--aa.mp3")]).unwrap();
    git(&dir, &["annex", "metadata", "-s", "genre=x", "a.mp3"]).unwrap();
    let (_, recorded) = annex_index(&dir);
    assert_eq!(
        recorded,
        git(&dir, &["rev-parse", "git-annex"]).unwrap().trim()
    );
    let blob = Command::new("git")
        .current_dir(&dir)
        .args(["hash-object", "-w", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"staged only\n")?;
            child.wait_with_output()
        })
        .unwrap();
    let blob = String::from_utf8_lossy(&blob.stdout).trim().to_string();
    let staged = Command::new("git")
        .current_dir(&dir)
        .env("GIT_INDEX_FILE", dir.join(".git/annex/index"))
        .args(["update-index", "--add", "--cacheinfo"])
        .arg(format!("100644,{blob},zzz/staged.log"))
        .status()
        .unwrap();
    assert!(staged.success());

    let repo = Repo::discover(&dir).unwrap();
    let requests = vec![WriteRequest {
        key: AnnexKey::new("SHA256E-s1--aa.mp3"),
        fields: [("rating".to_string(), vec!["5".to_string()])].into(),
    }];
    writer::write(
        &repo,
        requests,
        None,
        &direct_options(None),
        &|_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    let (tree_id, recorded) = annex_index(&dir);
    assert_eq!(
        recorded,
        git(&dir, &["rev-parse", "git-annex"]).unwrap().trim()
    );
    let listing = git(&dir, &["ls-tree", "-r", "--name-only", &tree_id]).unwrap();
    assert!(listing.contains("zzz/staged.log"), "{listing}");
    // Everything else is the new head's tree.
    let head_listing = git(&dir, &["ls-tree", "-r", "git-annex"]).unwrap();
    let index_listing = git(&dir, &["ls-tree", "-r", &tree_id]).unwrap();
    let without: Vec<&str> = index_listing
        .lines()
        .filter(|l| !l.ends_with("zzz/staged.log"))
        .collect();
    assert_eq!(without, head_listing.lines().collect::<Vec<_>>());
}

fn binary() -> PathBuf {
    assert_cmd::cargo::cargo_bin("music-commander")
}

fn sync_cmd(lib: &library::Generated, home: &Path, writer: &str) -> Command {
    let mut cmd = Command::new(binary());
    cmd.current_dir(&lib.repo)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home)
        .env("MUSIC_COMMANDER_MUSIC_ROOT", &lib.mixxx_root)
        .arg("--mixxx-db")
        .arg(&lib.db)
        .args(["--writer", writer, "sync"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
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

/// Live processes working in `dir` (their current directory is in it), as (pid, command
/// name). Every git and git-annex a sync starts runs in the repository, in a process group of
/// its own (so a terminal's Ctrl-C reaches only music-commander): the directory, not the
/// group or the parent, is what finds them once their parent is gone. Zombies are left out:
/// they have finished, and the container's init may reap them late.
fn processes_in(dir: &Path) -> Vec<(i32, String)> {
    let dir = dir.canonicalize().unwrap();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if !std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(&dir)) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ...`; comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !matches!(stat[close + 1..].split_whitespace().next(), Some("Z" | "X")) {
            out.push((pid, stat[open + 1..close].to_string()));
        }
    }
    out
}

/// Waits until no process works in `repo` any more, and returns the names of those that did.
///
/// A SIGKILL ends music-commander only: the git-annex committing the leftover journal, an
/// `update-ref` or a `fast-import` it started runs on, orphaned, and finishes its step (and a
/// detached `git gc --auto` repacks in the background). Inspecting before they are done reads
/// a state that is still moving: `git fsck` lists the objects first and reads the reflogs
/// afterwards, so a commit an orphan adds in between is reported as
/// `refs/heads/git-annex: invalid reflog entry <commit>` (issue 15).
fn wait_until_idle(repo: &Path) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut quiet = 0;
    // Twice empty in a row: a process that exits right after starting another is not missed.
    while quiet < 2 {
        let now = processes_in(repo);
        if now.is_empty() {
            quiet += 1;
        } else {
            quiet = 0;
            for (pid, name) in &now {
                let name = format!("{name}[{pid}]");
                if !seen.contains(&name) {
                    seen.push(name);
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still working in {}: {now:?}",
                repo.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    seen
}

fn generated(tmp: &Path, n: usize) -> library::Generated {
    library::generate(&tmp.canonicalize().unwrap().join("lib"), &Shape::new(n)).unwrap()
}

fn copy_lib(lib: &library::Generated, to: &Path) -> library::Generated {
    copy_dir(lib.repo.parent().unwrap(), to);
    library::Generated {
        repo: to.join("Music"),
        db: to.join("mixxxdb.sqlite"),
        ..lib.clone()
    }
}

/// Killed at random points, the branch is always before or after: every file has either all
/// its old metadata or all its new, never a mix across files; a rerun finishes; fsck is clean.
/// Each round starts from the same state, so every kill lands in a full write. The state
/// checked is the one the kill leaves once the processes the sync started have finished
/// (see [`wait_until_idle`]). `MC_DIRECT_KILL_ROUNDS` sets the number of rounds (10).
#[test]
fn sigkill_leaves_the_branch_before_or_after() {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = generated(tmp.path(), 1500);
    // A pending journal entry on files the sync writes: the sync has git-annex commit it
    // first (`commit_leftover_journal`), and some kills land in that commit.
    git(
        &pristine.repo,
        &[
            "-c",
            "annex.alwayscommit=false",
            "annex",
            "metadata",
            "--force",
            "-s",
            "energy=high",
            "Techno",
        ],
    )
    .unwrap();
    assert!(journal_entries(&pristine.repo) > 0);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let before = metadata(&pristine.repo);
    let clean = copy_lib(&pristine, &tmp.path().join("clean"));
    let started = std::time::Instant::now();
    let out = sync_cmd(&clean, &home, "direct").output().unwrap();
    let full = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = metadata(&clean.repo);
    assert_ne!(before, after);

    let rounds: usize = std::env::var("MC_DIRECT_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let seed = common::seed("MC_DIRECT_KILL_SEED");
    eprintln!("kill seed {seed} (replay: MC_DIRECT_KILL_SEED={seed}); a full sync takes {full:?}");
    let mut rng = Rng::new(seed);
    let mut seen = (0, 0);
    let mut outliving = 0;
    for round in 0..rounds {
        let lib = copy_lib(&pristine, &tmp.path().join(format!("round-{round}")));
        let mut child = sync_cmd(&lib, &home, "direct").spawn().unwrap();
        let id = child.id();
        let started = std::time::Instant::now();
        // Waits until a process the sync started has `what` in its command line (false when
        // the sync ended first).
        let mut wait_for = |what: &[u8], running: bool| loop {
            let found = descendants(id).iter().any(|p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.windows(what.len()).any(|w| w == what))
            });
            if found == running {
                return true;
            }
            if child.try_wait().unwrap().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_micros(500));
        };
        let at = match rng.below(100) {
            // Anywhere in the run.
            0..20 => {
                std::thread::sleep(full.mul_f64(rng.below(1000) as f64 / 1000.0));
                "anywhere"
            }
            // While git-annex commits the journal the run found.
            20..40 => {
                wait_for(b"annex.alwayscommit=true", true);
                std::thread::sleep(Duration::from_millis(rng.below(900) as u64));
                "in the journal commit"
            }
            // While fast-import runs, or a little later (the pack, the ref moves).
            40..70 => {
                wait_for(b"fast-import", true);
                std::thread::sleep(Duration::from_millis(rng.below(80) as u64));
                "in the write"
            }
            // Once fast-import is done: the ref moves, the work ref, the branch index.
            _ => {
                if wait_for(b"fast-import", true) {
                    wait_for(b"fast-import", false);
                }
                std::thread::sleep(Duration::from_micros(rng.below(5000) as u64));
                "after fast-import"
            }
        };
        let delay = started.elapsed();
        let _ = child.kill();
        let _ = child.wait();
        let outlived = wait_until_idle(&lib.repo);
        outliving += usize::from(!outlived.is_empty());
        let now = metadata(&lib.repo);
        eprintln!(
            "round {round}: killed {at} after {delay:?}: {}{}",
            if now == before {
                "before"
            } else if now == after {
                "after"
            } else {
                "torn"
            },
            if outlived.is_empty() {
                String::new()
            } else {
                format!(" (outlived by {})", outlived.join(", "))
            }
        );
        if now == before {
            seen.0 += 1;
        } else if now == after {
            seen.1 += 1;
        } else {
            let mixed = now
                .iter()
                .filter(|(f, m)| before.get(*f) != Some(m) && after.get(*f) != Some(m))
                .count();
            panic!(
                "round {round} (killed {at} after {delay:?}): torn, {mixed} files neither before nor after"
            );
        }
        if let Err(e) = git(&lib.repo, &["fsck", "--no-progress", "--no-dangling"]) {
            panic!("round {round} (killed {at} after {delay:?}): {e}");
        }
        let out = sync_cmd(&lib, &home, "direct").output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(metadata(&lib.repo), after, "round {round}: rerun");
        wait_until_idle(&lib.repo);
        let _ = std::fs::remove_dir_all(lib.repo.parent().unwrap());
    }
    eprintln!(
        "kills: {} before, {} after; {outliving} left processes running",
        seen.0, seen.1
    );
}

/// SIGKILL while git-annex commits the journal a sync found (issue 15): the git-annex it
/// started is not killed with it (it is in a process group of its own, and a kill reaches one
/// process anyway), and commits the journal after music-commander is gone. The repository
/// keeps changing after the kill until it is done; then the metadata is what it was, the
/// journal is in the branch, fsck is clean and a rerun writes everything.
#[test]
fn a_kill_during_the_leftover_journal_commit_leaves_git_annex_to_finish_it() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = generated(tmp.path(), 300);
    git(
        &lib.repo,
        &[
            "-c",
            "annex.alwayscommit=false",
            "annex",
            "metadata",
            "--force",
            "-s",
            "energy=high",
            "Techno",
        ],
    )
    .unwrap();
    assert!(journal_entries(&lib.repo) > 0);
    let before = metadata(&lib.repo);
    let head = || git(&lib.repo, &["rev-parse", "git-annex"]).unwrap();
    let old_head = head();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();

    // Holding git-annex's journal lock makes its commit wait until after the kill. A classic
    // record lock, as git-annex takes it; nothing else in this process opens the file, so it
    // holds until dropped.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(lib.repo.join(".git/annex/journal.lck"))
        .unwrap();
    // SAFETY: plain data, zeroed then filled in; a valid descriptor for the call.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as _;
    fl.l_whence = libc::SEEK_SET as _;
    assert_eq!(
        unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::F_SETLK, &fl,) },
        0
    );

    let mut child = sync_cmd(&lib, &home, "direct").spawn().unwrap();
    // git-annex answers, then waits for the lock to commit: kill music-commander then. (A
    // git-annex orphaned before it answered finds its output gone and exits without
    // committing: the journal stays, which is the other safe outcome.)
    let inode = format!(
        ":{} ",
        std::os::unix::fs::MetadataExt::ino(&lock.metadata().unwrap())
    );
    while !std::fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .any(|l| l.contains("->") && l.contains(&inode))
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sync ended without git-annex waiting to commit the journal"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let running = processes_in(&lib.repo);
    assert!(
        running.iter().any(|(_, name)| name == "git-annex"),
        "git-annex outlives the sync: {running:?}"
    );
    assert_eq!(head(), old_head, "nothing committed yet");
    drop(lock);

    let outlived = wait_until_idle(&lib.repo);
    assert!(outlived.iter().any(|n| n.starts_with("git-annex")));
    assert_ne!(
        head(),
        old_head,
        "the orphaned git-annex committed after the kill"
    );
    assert_eq!(
        git(&lib.repo, &["log", "-1", "--format=%s", "git-annex"])
            .unwrap()
            .trim(),
        "music-commander: commit journal entries left uncommitted"
    );
    assert_eq!(journal_entries(&lib.repo), 0);
    assert_eq!(metadata(&lib.repo), before);
    git(&lib.repo, &["fsck", "--no-progress", "--no-dangling"]).unwrap();

    let out = sync_cmd(&lib, &home, "direct").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let synced = metadata(&lib.repo);
    assert_ne!(synced, before);
    wait_until_idle(&lib.repo);
    git(&lib.repo, &["fsck", "--no-progress", "--no-dangling"]).unwrap();
}

/// A `git annex metadata -s` loop on the same files while the direct writer syncs them: every
/// value of both survives.
#[test]
fn a_concurrent_git_annex_metadata_loop_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = generated(tmp.path(), 1500);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let clean = copy_lib(&lib, &tmp.path().join("clean"));
    let out = sync_cmd(&clean, &home, "direct").output().unwrap();
    assert!(out.status.success());
    let synced = metadata(&clean.repo);

    let files: Vec<String> = git(&lib.repo, &["annex", "find", "--anything"])
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let loop_files: Vec<String> = files.iter().step_by(25).cloned().collect();
    let repo = lib.repo.clone();
    let other_files = loop_files.clone();
    let other = std::thread::spawn(move || {
        for (i, f) in other_files.iter().enumerate() {
            git(
                &repo,
                &["annex", "metadata", "-s", &format!("energy={i}"), "--", f],
            )
            .unwrap();
        }
    });
    // Several syncs while the loop runs: the first writes everything, later ones nothing
    // (or what a lost update would have undone).
    for _ in 0..3 {
        let out = sync_cmd(&lib, &home, "direct").output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    other.join().unwrap();
    let meta = metadata(&lib.repo);
    for (i, f) in loop_files.iter().enumerate() {
        assert_eq!(meta[f].get("energy"), Some(&vec![i.to_string()]), "{f}");
    }
    for (f, fields) in &synced {
        let mut got = meta[f].clone();
        got.remove("energy");
        assert_eq!(&got, fields, "{f}");
    }
    wait_until_idle(&lib.repo);
    git(&lib.repo, &["fsck", "--no-progress", "--no-dangling"]).unwrap();
}

/// Another writer moves the branch without git-annex's lock (a push into this repository):
/// the compare-and-swap notices, the write is redone on the new head, nothing is lost.
#[test]
fn a_branch_moved_under_the_writer_is_not_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = generated(tmp.path(), 800);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let repo = lib.repo.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    // Commits adding `pushed/<n>` on top of whatever the branch is, moved by plain git.
    let pusher = std::thread::spawn(move || {
        let mut n = 0;
        // A few pushes, spaced out: a writer that never gets a quiet moment cannot finish.
        for _ in 0..15 {
            if stop2.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let head = git(&repo, &["rev-parse", "git-annex"])
                .unwrap()
                .trim()
                .to_string();
            let blob = git_with_input(
                &repo,
                &["hash-object", "-w", "--stdin"],
                format!("{n}\n").as_bytes(),
            )
            .unwrap();
            let blob = String::from_utf8_lossy(&blob).trim().to_string();
            let index = repo.join(format!(".git/pusher-index-{n}"));
            let with_index = |args: &[&str]| {
                let out = Command::new("git")
                    .current_dir(&repo)
                    .env("GIT_INDEX_FILE", &index)
                    .args(args)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            };
            with_index(&["read-tree", &head]);
            with_index(&[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("100644,{blob},pushed/{n}"),
            ]);
            let tree = with_index(&["write-tree"]);
            let _ = std::fs::remove_file(&index);
            let commit = git(&repo, &["commit-tree", &tree, "-p", &head, "-m", "pushed"]).unwrap();
            // Lost races of our own are fine: only moves that happened count.
            if git(
                &repo,
                &["update-ref", "refs/heads/git-annex", commit.trim(), &head],
            )
            .is_ok()
            {
                n += 1;
            }
            std::thread::sleep(Duration::from_millis(60));
        }
        n
    });
    let out = sync_cmd(&lib, &home, "direct").output().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let pushed = pusher.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = git(
        &lib.repo,
        &["ls-tree", "-r", "--name-only", "git-annex", "pushed"],
    )
    .unwrap();
    assert_eq!(
        listing.lines().count(),
        pushed,
        "every pushed commit is still in the branch"
    );
    let json = sync_cmd(&lib, &home, "direct")
        .arg("--json")
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        doc["files"]["written"], 0,
        "the first sync's writes all landed: {doc}"
    );
}

/// `git annex sync` carries what the direct writer wrote to another clone, which reads it back
/// (through git-annex and through a music-commander sync there), and the record shows.
#[test]
fn annex_sync_carries_direct_writes_to_another_clone() {
    let sb = Sandbox::new(12, SchemaEra::Mixxx23);
    let before = sb.annex_commits();
    let doc = sb.sync_json(&["--writer", "direct"]);
    assert_eq!(doc["files"]["written"], 12, "{doc}");
    assert_eq!(
        sb.annex_commits(),
        before + 1,
        "one commit, the record in it"
    );
    let laptop = common::Laptop::clone_of(&sb, 12);
    sb.annex_sync();
    laptop.annex_sync();
    assert_eq!(laptop.metadata(), sb.metadata());
    assert!(!sb.metadata().values().all(|f| f.is_empty()));
    // The record traveled in the same commit.
    let status = laptop.status_json(&sb);
    assert!(
        status
            .to_string()
            .contains(&sb.git(&["config", "annex.uuid"]).trim().to_string()),
        "{status}"
    );
}

/// The same race, made certain: the branch moves after the writer read it (from the progress
/// callback, which runs while the logs are computed). The compare-and-swap fails, the write is
/// redone on the moved branch, and lands on top of it.
#[test]
fn a_lost_compare_and_swap_is_redone_on_the_new_head() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    annex_repo::init(&dir).unwrap();
    annex_repo::add_absent_files(&dir, &[(Path::new("a.mp3"), "SHA256E-s1--aa.mp3")]).unwrap();
    let repo = Repo::discover(&dir).unwrap();
    let moved = std::sync::Mutex::new(None::<String>);
    let progress = |_: usize| {
        let mut moved = moved.lock().unwrap();
        if moved.is_some() {
            return;
        }
        let head = git(&dir, &["rev-parse", "git-annex"])
            .unwrap()
            .trim()
            .to_string();
        let tree = git(&dir, &["rev-parse", "git-annex^{tree}"])
            .unwrap()
            .trim()
            .to_string();
        let commit = git(&dir, &["commit-tree", &tree, "-p", &head, "-m", "pushed"]).unwrap();
        git(
            &dir,
            &["update-ref", "refs/heads/git-annex", commit.trim(), &head],
        )
        .unwrap();
        *moved = Some(commit.trim().to_string());
    };
    let requests = vec![WriteRequest {
        key: AnnexKey::new("SHA256E-s1--aa.mp3"),
        fields: [("rating".to_string(), vec!["5".to_string()])].into(),
    }];
    let report = writer::write(
        &repo,
        requests,
        None,
        &direct_options(None),
        &progress,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(report.written.len(), 1);
    let pushed = moved.lock().unwrap().clone().expect("the branch was moved");
    let parent = git(&dir, &["rev-parse", "git-annex^"]).unwrap();
    assert_eq!(parent.trim(), pushed, "our commit sits on the moved head");
    assert_eq!(metadata(&dir)["a.mp3"]["rating"], ["5"]);
}

/// `--batch-size` with the direct writer: one commit per chunk, the record in the last one
/// (not a chunk of its own), as with git-annex's writer; and the tally the record is built
/// from counts the writes.
#[test]
fn batch_size_commits_per_chunk_and_the_record_joins_the_last() {
    for (n, want) in [(9, 3), (10, 4)] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("r");
        annex_repo::init(&dir).unwrap();
        let repo = Repo::discover(&dir).unwrap();
        let requests: Vec<WriteRequest> = (0..n)
            .map(|i| WriteRequest {
                key: AnnexKey::new(format!("SHA256E-s{i}--{i:064x}.mp3")),
                fields: [("rating".to_string(), vec![i.to_string()])].into(),
            })
            .collect();
        let mut options = direct_options(None);
        options.batch_size = Some(3);
        let tallied = std::sync::Mutex::new(None);
        let record = |t: &writer::Tally| {
            *tallied.lock().unwrap() = Some(*t);
            WriteRequest {
                key: AnnexKey::new(music_commander::annex::state::STATE_KEY),
                fields: [("u.written".to_string(), vec![t.written.to_string()])].into(),
            }
        };
        let report = writer::write(
            &repo,
            requests,
            Some(&record),
            &options,
            &|_| {},
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(report.commits, want, "{n} requests");
        assert_eq!(report.record, writer::RecordOutcome::Written);
        assert_eq!(tallied.lock().unwrap().unwrap().written, n);
        let last = git(&dir, &["diff-tree", "-r", "--name-only", "git-annex"]).unwrap();
        assert!(last.contains("music-commander-sync-state"), "{last}");
    }
}

/// Logs go into the stream as their last request is applied: a key asked for twice lands with
/// both changes, and the record's key asked for by a request too keeps that request's fields
/// under the record's.
#[test]
fn a_key_asked_for_twice_and_the_records_key_as_a_request_keep_every_change() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, repo) = fresh_repo(tmp.path());
    let state = AnnexKey::new(music_commander::annex::state::STATE_KEY);
    let twice = AnnexKey::new(format!("SHA256E-s1--{:064x}.mp3", 1));
    let request = |key: &AnnexKey, field: &str, value: &str| WriteRequest {
        key: key.clone(),
        fields: [(field.to_string(), vec![value.to_string()])].into(),
    };
    let requests = vec![
        request(&twice, "rating", "1"),
        request(&state, "tag", "asked"),
        request(&twice, "genre", "House"),
    ];
    let record = |t: &writer::Tally| request(&state, "u.written", &t.written.to_string());
    let report = write_with_record(&repo, requests, &record);
    assert_eq!(report.written.len(), 3, "{:?}", report.failed);
    assert_eq!(report.record, writer::RecordOutcome::Written);
    assert_eq!(report.commits, 1);
    let fields = |key: &AnnexKey| {
        let out = git(
            &dir,
            &["annex", "metadata", "--json", "--key", key.as_str()],
        )
        .unwrap();
        let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        let mut fields: Vec<String> = json["fields"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(name, _)| !name.ends_with("lastchanged"))
            .map(|(name, values)| format!("{name}={}", values[0].as_str().unwrap()))
            .collect();
        fields.sort();
        fields
    };
    assert_eq!(fields(&twice), ["genre=House", "rating=1"]);
    assert_eq!(fields(&state), ["tag=asked", "u.written=3"]);
}

/// A record whose key git-annex's protocol refuses fails alone: it is never looked up (a
/// newline would split cat-file's requests), and the other requests are written.
#[test]
fn a_record_with_an_invalid_key_fails_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, repo) = fresh_repo(tmp.path());
    let requests = vec![WriteRequest {
        key: AnnexKey::new(format!("SHA256E-s1--{:064x}.mp3", 1)),
        fields: [("rating".to_string(), vec!["5".to_string()])].into(),
    }];
    let record = |_: &writer::Tally| WriteRequest {
        key: AnnexKey::new("SHA256E-s0--bad\nkey"),
        fields: [("u.written".to_string(), vec!["1".to_string()])].into(),
    };
    let report = write_with_record(&repo, requests, &record);
    assert_eq!(report.written.len(), 1, "{:?}", report.failed);
    assert!(
        matches!(report.record, writer::RecordOutcome::Failed(_)),
        "{:?}",
        report.record
    );
    assert_eq!(report.commits, 1);
}

/// A cancel noticed while the stream is being made: the stream ends without `done`, the branch
/// stays where it was, no work ref is left, and every request is reported interrupted.
#[test]
fn a_cancel_while_streaming_leaves_the_branch_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, repo) = fresh_repo(tmp.path());
    let before = git(&dir, &["rev-parse", "git-annex"]).unwrap();
    let requests: Vec<WriteRequest> = (0..3000)
        .map(|i| WriteRequest {
            key: AnnexKey::new(format!("SHA256E-s{i}--{i:064x}.mp3")),
            fields: [("rating".to_string(), vec!["5".to_string()])].into(),
        })
        .collect();
    let cancel = AtomicBool::new(false);
    let report = writer::write(
        &repo,
        requests,
        None,
        &direct_options(None),
        // Progress comes every 1,024 requests; the cancel is seen at the next.
        &|n| {
            if n >= 1024 {
                cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        },
        &cancel,
    )
    .unwrap();
    assert!(report.interrupted);
    assert!(report.written.is_empty());
    assert_eq!(report.failed.len(), 3000);
    assert_eq!(git(&dir, &["rev-parse", "git-annex"]).unwrap(), before);
    let refs = git(&dir, &["for-each-ref", "--format=%(refname)"]).unwrap();
    assert!(!refs.contains("music-commander"), "{refs}");
}

/// A key whose journal file name would be too long for the file system: git-annex refuses to
/// write it (tests/sync.rs); the direct writer has no journal file to create, writes the branch
/// file, and git-annex reads it back.
#[test]
fn a_key_too_long_for_a_journal_file_is_written_and_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    annex_repo::init(&dir).unwrap();
    let key = format!("SHA256E-s4--{}.flac", "a".repeat(300));
    let repo = Repo::discover(&dir).unwrap();
    let requests = vec![WriteRequest {
        key: AnnexKey::new(key.clone()),
        fields: [("rating".to_string(), vec!["5".to_string()])].into(),
    }];
    let report = writer::write(
        &repo,
        requests,
        None,
        &direct_options(None),
        &|_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(report.written.len(), 1, "{:?}", report.failed);
    let got = git(
        &dir,
        &["annex", "metadata", "--get", "rating", "--key", &key],
    )
    .unwrap();
    assert_eq!(got.trim(), "5");
}

/// Another clone runs `git annex sync` against this repository in a loop (pushing its
/// git-annex branch here, merging ours) while the direct writer syncs: afterwards both clones
/// hold every value of both.
#[test]
fn a_concurrent_git_annex_sync_from_another_clone_loses_nothing() {
    let sb = Sandbox::new(60, SchemaEra::Mixxx23);
    let laptop = common::Laptop::clone_of(&sb, 60);
    let files: Vec<String> = (0..60).step_by(6).map(common::sample_path).collect();
    let repo = laptop.repo.clone();
    let loop_files = files.clone();
    let other = std::thread::spawn(move || {
        for (i, f) in loop_files.iter().enumerate() {
            git(
                &repo,
                &["annex", "metadata", "-s", &format!("energy={i}"), "--", f],
            )
            .unwrap();
            common::annex_sync(&repo);
        }
    });
    for _ in 0..3 {
        let (code, _, err) = sb.sync(&["--writer", "direct"]);
        assert_eq!(code, 0, "{err}");
    }
    other.join().unwrap();
    sb.annex_sync();
    laptop.annex_sync();
    sb.annex_sync();
    let (desk, lap) = (sb.metadata(), laptop.metadata());
    assert_eq!(desk, lap);
    for (i, f) in files.iter().enumerate() {
        assert_eq!(desk[f].get("energy"), Some(&vec![i.to_string()]), "{f}");
    }
    let written = desk.values().filter(|m| m.contains_key("title")).count();
    assert_eq!(written, 60, "every sync value arrived");
    wait_until_idle(&sb.repo);
    git(&sb.repo, &["fsck", "--no-progress", "--no-dangling"]).unwrap();
}

/// `--writer` > `MUSIC_COMMANDER_WRITER` > `[sync] writer` > direct, seen from what each
/// writer leaves: the direct writer moves the branch with its own reflog message.
#[test]
fn the_writer_setting_resolves_flag_then_environment_then_file() {
    let direct_moves = |sb: &Sandbox| {
        sb.git(&["reflog", "show", "--format=%gs", "refs/heads/git-annex"])
            .lines()
            .filter(|l| l.contains("direct metadata write"))
            .count()
    };
    let run = |sb: &Sandbox, env: Option<&str>, flag: Option<&str>, i: usize| {
        sb.set_column(i, "rating", rusqlite::types::Value::Integer(5));
        let mut cmd = sb.cmd();
        if let Some(env) = env {
            cmd.env("MUSIC_COMMANDER_WRITER", env);
        }
        if let Some(flag) = flag {
            cmd.args(["--writer", flag]);
        }
        cmd.arg("sync").output().unwrap()
    };
    let sb = Sandbox::new(4, SchemaEra::Newest);
    let config = sb.home.join(".config/music-commander");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        "[sync]\nwriter = \"git-annex\"\n",
    )
    .unwrap();
    assert!(run(&sb, None, None, 0).status.success());
    assert_eq!(direct_moves(&sb), 0, "the file chose git-annex");
    assert!(run(&sb, Some("direct"), None, 1).status.success());
    assert_eq!(direct_moves(&sb), 1, "the environment beats the file");
    assert!(
        run(&sb, Some("direct"), Some("git-annex"), 2)
            .status
            .success()
    );
    assert_eq!(direct_moves(&sb), 1, "the flag beats the environment");
    std::fs::remove_file(config.join("config.toml")).unwrap();
    assert!(run(&sb, None, None, 3).status.success());
    assert_eq!(direct_moves(&sb), 2, "direct by default");
    let out = run(&sb, Some("fast"), None, 0);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MUSIC_COMMANDER_WRITER=fast is not a writer"),
        "{err}"
    );
}
