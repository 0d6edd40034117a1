//! The persistent caches never change an answer: across random operation sequences, reads
//! through the caches (`KeyMap::read_with`, `snapshot::read_with`) equal the uncached reads
//! (`KeyMap::read`, `snapshot::read`), which `annex_agreement` proves equal to git-annex.
//!
//! Seeded and reproducible: the seed is printed; `MC_CACHE_SEED=<n>` replays a run.

mod common;

use common::Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use music_commander::annex::cache::Freshness;
use music_commander::annex::{Entry, KeyMap, Repo, metalog, snapshot};
use music_commander::model::{AnnexKey, RepoPath};
use testutils::annex_repo::{self, git, git_with_input};

/// The tracing test sets GIT_TRACE for the whole process; the others must not run meanwhile.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// `git init` + `git annex init`, with one hash level in the branch when `levels` is 1.
fn init(dir: &Path, levels: usize) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]).unwrap();
    git(dir, &["config", "user.name", "cache-test"]).unwrap();
    git(dir, &["config", "user.email", "cache@example.invalid"]).unwrap();
    let tune = format!("annex.tune.branchhash1={}", levels == 1);
    git(dir, &["-c", &tune, "annex", "init", "-q", "cache-test"]).unwrap();
}

/// Keys whose branch paths and journal names need escaping, plus plain ones.
fn key_for(i: usize) -> String {
    match i % 9 {
        0 => format!("WORM-s{i}-m1--under_score_{i}.mp3"),
        1 => format!("URL--http&c%%e.com%a&s20b{i}"),
        2 => format!("SHA256E-s{i}--amp&er{i}.flac"),
        _ => format!("SHA256E-s{i}--{:064x}.mp3", i as u128 * 104_729),
    }
}

const FIELDS: &[&str] = &["rating", "Rating", "crate", "genre", "comment", "bpm", "ü"];
const VALUES: &[&str] = &["", "5", "4", "House", "house", "ünï ☃", "a b", "x\ny", "-"];

/// A `--batch --json` request setting a few random fields (sometimes removing them), addressed
/// by file or by key.
fn request(rng: &mut Rng, target: &Target) -> String {
    let mut fields = serde_json::Map::new();
    for _ in 0..1 + rng.below(3) {
        let values: Vec<&str> = (0..rng.below(3)).map(|_| *rng.pick(VALUES)).collect();
        fields.insert(rng.pick(FIELDS).to_string(), values.into());
    }
    match target {
        Target::File(f) => serde_json::json!({ "file": f, "fields": fields }),
        Target::Key(k) => serde_json::json!({ "key": k, "fields": fields }),
    }
    .to_string()
}

enum Target {
    File(String),
    Key(String),
}

/// One `git annex metadata --batch --json` for a random `percent` of the targets.
fn batch_set(rng: &mut Rng, dir: &Path, config: &[&str], targets: &[Target], percent: u64) {
    let mut requests: Vec<String> = Vec::new();
    for target in targets {
        if rng.chance(percent) {
            requests.push(request(rng, target));
        }
    }
    if requests.is_empty() {
        return;
    }
    let mut args: Vec<&str> = Vec::new();
    for c in config {
        args.extend(["-c", c]);
    }
    args.extend(["annex", "metadata", "--batch", "--json"]);
    let input = requests.join("\n") + "\n";
    git_with_input(dir, &args, input.as_bytes()).expect("git annex metadata --batch");
}

/// Commits `(branch path, content)` files on top of the git-annex branch with plumbing, as
/// another tool could: temporary index, commit-tree, update-ref.
fn craft_annex_commit(dir: &Path, files: &[(String, Vec<u8>)]) {
    let index = dir.join(".git/mc-cache-test-index");
    let run = |args: &[&str], input: &[u8]| -> String {
        music_commander::annex::Git::in_dir(dir)
            .args(args)
            .env("GIT_INDEX_FILE", &index)
            .stdin(input)
            .stdout_text()
            .unwrap()
            .trim()
            .to_string()
    };
    run(&["read-tree", "git-annex"], b"");
    for (path, content) in files {
        let oid = run(&["hash-object", "-w", "--stdin"], content);
        let info = format!("100644,{oid},{path}");
        run(&["update-index", "--add", "--cacheinfo", &info], b"");
    }
    let tree = run(&["write-tree"], b"");
    let commit = run(
        &["commit-tree", &tree, "-p", "git-annex", "-m", "crafted"],
        b"",
    );
    run(&["update-ref", "refs/heads/git-annex", &commit], b"");
    std::fs::remove_file(index).unwrap();
}

fn cache_dir(repo: &Path) -> PathBuf {
    repo.join(".git/music-commander")
}

fn cache_files(repo: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(cache_dir(repo)) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Damages one cache file the way a crash, a full disk or a stray editor could.
fn damage_cache(rng: &mut Rng, repo: &Path) -> String {
    let files = cache_files(repo);
    if files.is_empty() {
        return "damage: no cache yet".into();
    }
    let file = rng.pick(&files).clone();
    let mut bytes = std::fs::read(&file).unwrap();
    let how = match rng.below(5) {
        0 if !bytes.is_empty() => {
            let at = rng.below(bytes.len());
            bytes[at] ^= 1 << rng.below(8);
            format!("flip a bit at {at}")
        }
        1 => {
            let len = rng.below(bytes.len() + 1);
            bytes.truncate(len);
            format!("truncate to {len}")
        }
        2 => {
            bytes = (0..rng.below(4096)).map(|_| rng.next() as u8).collect();
            "garbage".into()
        }
        3 => {
            bytes.clear();
            "empty".into()
        }
        _ => {
            std::fs::remove_file(&file).unwrap();
            return format!("delete {}", file.display());
        }
    };
    std::fs::write(&file, bytes).unwrap();
    format!("damage {}: {how}", file.display())
}

/// Every cache file of `from` copied over `to`'s, as `cp -a` of a repository or a user
/// copying `.git` around would do.
fn transplant_caches(from: &Path, to: &Path) -> String {
    std::fs::create_dir_all(cache_dir(to)).unwrap();
    for file in cache_files(from) {
        std::fs::copy(&file, cache_dir(to).join(file.file_name().unwrap())).unwrap();
    }
    format!("caches of {} copied in", from.display())
}

fn key_map(map: &KeyMap) -> BTreeMap<RepoPath, Entry> {
    map.iter().map(|(p, e)| (p.clone(), e.clone())).collect()
}

/// The checks after every step: cached reads equal uncached ones, for a random selection.
fn check(rng: &mut Rng, dir: &Path, all_keys: &[AnnexKey], step: &str, seed: u64) {
    let repo = Repo::discover(dir).unwrap();
    let only_d1 = |p: &RepoPath| p.as_bytes().starts_with(b"d1/");
    let everything = |_: &RepoPath| true;
    let wanted: &dyn Fn(&RepoPath) -> bool = if rng.chance(25) {
        &only_d1
    } else {
        &everything
    };
    let fresh = KeyMap::read(&repo, wanted).unwrap();
    let freshness = if rng.chance(15) {
        Freshness::FromScratch
    } else {
        Freshness::UseCache
    };
    let cached = KeyMap::read_with(&repo, wanted, freshness).unwrap();
    assert_eq!(
        key_map(&cached),
        key_map(&fresh),
        "seed {seed}, after {step}: key map ({freshness:?})"
    );

    // Sometimes all keys plus unknown ones (tree listing), sometimes a few (path lookups).
    let mut keys: Vec<AnnexKey> = match rng.below(3) {
        0 => (0..1 + rng.below(20))
            .map(|_| rng.pick(all_keys).clone())
            .collect(),
        _ => all_keys.to_vec(),
    };
    if rng.chance(50) {
        keys.extend((0..300).map(|i| AnnexKey::new(format!("SHA256E-s{i}--unknown.mp3"))));
    }
    let fresh = snapshot::read(&repo, &keys).unwrap();
    let freshness = if rng.chance(15) {
        Freshness::FromScratch
    } else {
        Freshness::UseCache
    };
    let cached = snapshot::read_with(&repo, &keys, freshness).unwrap();
    for key in &keys {
        assert_eq!(
            cached.get(key),
            fresh.get(key),
            "seed {seed}, after {step}: metadata of {key} ({freshness:?}, {} keys read)",
            keys.len()
        );
    }
    assert_eq!(cached.len(), fresh.len(), "seed {seed}, after {step}");
}

#[test]
fn cached_reads_equal_uncached_reads() {
    let _serial = serial();
    let seed = common::seed("MC_CACHE_SEED");
    eprintln!("cache seed = {seed} (replay: MC_CACHE_SEED={seed})");
    let mut rng = Rng::new(seed);
    let started = std::time::Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let main = tmp.path().join("main");
    let levels = if rng.chance(30) { 1 } else { 2 };
    init(&main, levels);

    annex_repo::add_files(
        &main,
        &[
            (Path::new("real/a.mp3"), b"aaa"),
            (Path::new("real/b.flac"), b"bbb"),
            (Path::new("real/c.flac"), b"ccc"),
        ],
    )
    .unwrap();
    let mut next_file = 0;
    let mut add_absent = |rng: &mut Rng, n: usize| -> Vec<(String, String)> {
        let added: Vec<(String, String)> = (next_file..next_file + n)
            .map(|i| {
                // Some files share a key: metadata is per key.
                let k = if i % 10 == 9 { i - 1 } else { i };
                (format!("d{}/t {i}.mp3", rng.below(4)), key_for(k))
            })
            .collect();
        next_file += n;
        let pairs: Vec<(&Path, &str)> = added
            .iter()
            .map(|(p, k)| (Path::new(p.as_str()), k.as_str()))
            .collect();
        annex_repo::add_absent_files(&main, &pairs).unwrap();
        added
    };
    let mut files: Vec<(String, String)> = add_absent(&mut rng, 90);
    // Keys with metadata but no file in the work tree.
    let key_only: Vec<String> = (1000..1012).map(key_for).collect();

    let targets = |files: &[(String, String)]| -> Vec<Target> {
        let mut t: Vec<Target> = files.iter().map(|(f, _)| Target::File(f.clone())).collect();
        t.extend(key_only.iter().map(|k| Target::Key(k.clone())));
        t.extend(["real/a.mp3", "real/b.flac"].map(|f| Target::File(f.into())));
        t
    };
    let all_keys = |repo: &Path, files: &[(String, String)]| -> Vec<AnnexKey> {
        let map = KeyMap::read(&Repo::discover(repo).unwrap(), &|_| true).unwrap();
        let mut keys: Vec<AnnexKey> = map
            .iter()
            .filter_map(|(_, e)| match e {
                Entry::Annexed(k) => Some(k.clone()),
                _ => None,
            })
            .collect();
        keys.extend(key_only.iter().map(|k| AnnexKey::new(k.as_str())));
        assert!(keys.len() > files.len() / 2);
        keys
    };
    batch_set(&mut rng, &main, &[], &targets(&files), 70);

    // A clone (shares history) and an unrelated repository, both with caches of their own.
    let clone = tmp.path().join("clone");
    git(
        tmp.path(),
        &["clone", "-q", main.to_str().unwrap(), "clone"],
    )
    .unwrap();
    git(&clone, &["config", "user.name", "clone"]).unwrap();
    git(&clone, &["config", "user.email", "clone@example.invalid"]).unwrap();
    git(&clone, &["annex", "init", "-q", "clone"]).unwrap();
    git(&main, &["remote", "add", "clone", clone.to_str().unwrap()]).unwrap();
    let other = tmp.path().join("other");
    init(&other, 3 - levels);
    let other_keys: Vec<AnnexKey> = (0..40).map(|i| AnnexKey::new(key_for(i))).collect();
    let other_targets: Vec<Target> = other_keys
        .iter()
        .map(|k| Target::Key(k.to_string()))
        .collect();
    batch_set(&mut rng, &other, &[], &other_targets, 90);
    let other_repo = Repo::discover(&other).unwrap();
    snapshot::read_with(&other_repo, &other_keys, Freshness::UseCache).unwrap();
    KeyMap::read_with(&other_repo, &|_| true, Freshness::UseCache).unwrap();
    let mut copy: Option<PathBuf> = None;

    let mut keys = all_keys(&main, &files);
    check(&mut rng, &main, &keys, "setup", seed);
    let steps = 24;
    // `git annex metadata --batch` does not merge fetched branches; without a merge now and
    // then, every later read would take the (uncached) union path.
    let mut fetched = false;
    for n in 0..steps {
        let merged_first = fetched && rng.chance(70);
        if merged_first {
            git(&main, &["annex", "merge", "-q"]).unwrap();
            fetched = false;
        }
        let step = match rng.below(13) {
            0 | 1 => {
                batch_set(&mut rng, &main, &[], &targets(&files), 30);
                "committed batch set".to_string()
            }
            2 | 3 => {
                batch_set(
                    &mut rng,
                    &main,
                    &["annex.alwayscommit=false"],
                    &targets(&files),
                    20,
                );
                "journal-only batch set".to_string()
            }
            4 => {
                git(&main, &["annex", "merge", "-q"]).unwrap();
                fetched = false;
                "git annex merge (journal committed, siblings merged)".to_string()
            }
            5 => {
                // The clone writes and main fetches without merging: a sibling to union.
                batch_set(&mut rng, &clone, &[], &targets(&files), 30);
                if rng.chance(50) {
                    git(&clone, &["annex", "merge", "-q"]).unwrap();
                }
                git(&main, &["fetch", "-q", "clone"]).unwrap();
                fetched = true;
                "clone's changes fetched, not merged".to_string()
            }
            6 => {
                git(&main, &["annex", "forget", "--force", "-q"]).unwrap();
                if rng.chance(50) {
                    // The cached commit disappears with the old history.
                    git(&main, &["reflog", "expire", "--expire=now", "--all"]).unwrap();
                    git(&main, &["gc", "-q", "--prune=now"]).unwrap();
                    "git annex forget + gc".to_string()
                } else {
                    "git annex forget".to_string()
                }
            }
            7 => damage_cache(&mut rng, &main),
            8 => match rng.below(3) {
                0 => transplant_caches(&other, &main),
                1 => {
                    let clone_repo = Repo::discover(&clone).unwrap();
                    snapshot::read_with(&clone_repo, &keys, Freshness::UseCache).unwrap();
                    KeyMap::read_with(&clone_repo, &|_| true, Freshness::UseCache).unwrap();
                    transplant_caches(&clone, &main)
                }
                _ => match &copy {
                    Some(copy) => transplant_caches(copy, &main),
                    None => {
                        // `cp -a` of the repository: from now on both diverge.
                        let to = tmp.path().join("copy");
                        let ok = std::process::Command::new("cp")
                            .arg("-a")
                            .arg(&main)
                            .arg(&to)
                            .status()
                            .unwrap();
                        assert!(ok.success());
                        batch_set(&mut rng, &to, &[], &targets(&files), 30);
                        let copy_repo = Repo::discover(&to).unwrap();
                        snapshot::read_with(&copy_repo, &keys, Freshness::UseCache).unwrap();
                        copy = Some(to);
                        "cp -a of the repository, copy diverged".to_string()
                    }
                },
            },
            9 => {
                // Work-tree changes: new files (committed by the fixture), then renames and
                // unlock / lock, committed or only staged.
                let more = 1 + rng.below(5);
                files.extend(add_absent(&mut rng, more));
                let (from, key) = files.remove(rng.below(files.len()));
                let to = format!("d{}/moved {n} {}.mp3", rng.below(4), from.len());
                git(&main, &["mv", &from, &to]).unwrap();
                files.push((to, key));
                match rng.below(3) {
                    0 => git(&main, &["annex", "unlock", "real/b.flac"]).map(drop),
                    1 => git(&main, &["annex", "lock", "real/b.flac"]).map(drop),
                    _ => Ok(()),
                }
                .ok();
                git(&main, &["add", "-A"]).unwrap();
                if rng.chance(50) {
                    git(&main, &["commit", "-q", "-m", "files moved and added"]).unwrap();
                    "git mv, new files, unlock/lock, committed".to_string()
                } else {
                    "git mv, new files, unlock/lock, staged".to_string()
                }
            }
            10 => {
                // Logs another tool put where no key's log lives: under wrong hash
                // directories, or at the other hash depth.
                let key = rng.pick(&keys).to_string();
                let file = metalog::key_file(&key);
                let right = metalog::met_path_levels(&key, levels);
                let line = format!("{}s rating +9\n", 1_000_000 + n);
                craft_annex_commit(
                    &main,
                    &[
                        (format!("fff/fff/{file}.log.met"), line.clone().into_bytes()),
                        (
                            metalog::met_path_levels(&key, 3 - levels),
                            line.clone().into_bytes(),
                        ),
                        (
                            right,
                            format!("{}s comment +crafted\n", 1_000_000 + n).into(),
                        ),
                    ],
                );
                "crafted commit with stray logs".to_string()
            }
            _ => {
                batch_set(&mut rng, &main, &[], &targets(&files), 5);
                "small committed batch set".to_string()
            }
        };
        let step = if merged_first {
            format!("git annex merge, then {step}")
        } else {
            step
        };
        eprintln!("step {n}: {step}");
        keys = all_keys(&main, &files);
        check(&mut rng, &main, &keys, &format!("step {n}: {step}"), seed);
        // Twice in a row: the second read starts from what the first one cached.
        check(
            &mut rng,
            &main,
            &keys,
            &format!("step {n}: {step}, again"),
            seed,
        );
    }
    eprintln!(
        "cache property: {steps} steps, {} keys, {levels} hash level(s), {:.1?}",
        keys.len(),
        started.elapsed()
    );
}

/// git commands run by `f`, from GIT_TRACE.
fn traced(f: impl FnOnce()) -> Vec<String> {
    let trace = tempfile::NamedTempFile::new().unwrap();
    // SAFETY: the SERIAL lock keeps the other tests of this binary from running meanwhile,
    // and nothing else in this process reads the environment concurrently.
    unsafe { std::env::set_var("GIT_TRACE", trace.path()) };
    f();
    unsafe { std::env::remove_var("GIT_TRACE") };
    std::fs::read_to_string(trace.path())
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.split_once("trace: built-in: git ")
                .map(|(_, c)| c.to_string())
        })
        .collect()
}

/// The git commands a read ran itself: `read` ends with an uncached comparison read, which
/// starts at its `--no-merged` listing.
fn ours(trace: &[String]) -> Vec<&str> {
    trace
        .iter()
        .take_while(|c| !c.contains("--no-merged"))
        .map(String::as_str)
        .collect()
}

/// What a read that finds both caches current runs: no object read.
const WARM: [&str; 2] = [
    "ls-files --stage -z",
    "for-each-ref '--format=%(objectname) %(refname)'",
];

/// The point of the caches: a repeated read asks git for no object at all, and after a small
/// change only for the changed logs.
#[test]
fn warm_reads_skip_the_object_reads() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("music");
    init(&dir, 2);
    let pairs: Vec<(PathBuf, String)> = (0..300)
        .map(|i| (PathBuf::from(format!("d/t{i}.mp3")), key_for(i)))
        .collect();
    let refs: Vec<(&Path, &str)> = pairs
        .iter()
        .map(|(p, k)| (p.as_path(), k.as_str()))
        .collect();
    annex_repo::add_absent_files(&dir, &refs).unwrap();
    let targets: Vec<Target> = pairs
        .iter()
        .map(|(p, _)| Target::File(p.to_string_lossy().into()))
        .collect();
    let mut rng = Rng::new(7);
    batch_set(&mut rng, &dir, &[], &targets, 100);
    let repo = Repo::discover(&dir).unwrap();
    let keys: Vec<AnnexKey> = pairs
        .iter()
        .map(|(_, k)| AnnexKey::new(k.as_str()))
        .collect();
    let read = || {
        let map = KeyMap::read_with(&repo, &|_| true, Freshness::UseCache).unwrap();
        assert_eq!(map.len(), 300);
        let snap = snapshot::read_with(&repo, &keys, Freshness::UseCache).unwrap();
        assert_eq!(snap, snapshot::read(&repo, &keys).unwrap());
    };

    let cold = traced(read);
    assert!(cold.iter().any(|c| c.starts_with("cat-file")), "{cold:?}");
    let warm = traced(read);
    assert_eq!(ours(&warm), WARM, "{warm:?}");

    // Three keys change: one diff-tree, and cat-file only for their new blobs.
    let changed: Vec<Target> = pairs[..3]
        .iter()
        .map(|(p, _)| Target::File(p.to_string_lossy().into()))
        .collect();
    batch_set(&mut rng, &dir, &[], &changed, 100);
    let moved = traced(read);
    let ran = ours(&moved);
    assert!(ran.iter().any(|c| c.starts_with("diff-tree")), "{moved:?}");
    assert!(!ran.iter().any(|c| c.starts_with("ls-tree")), "{moved:?}");
    // What that read stored is a cache the next read trusts: it asks for nothing again.
    let after = traced(read);
    assert_eq!(ours(&after), WARM, "{after:?}");

    // `FromScratch` reads every object again, and the cache it writes is good.
    let scratch = traced(|| {
        KeyMap::read_with(&repo, &|_| true, Freshness::FromScratch).unwrap();
        snapshot::read_with(&repo, &keys, Freshness::FromScratch).unwrap();
    });
    assert!(
        scratch.iter().any(|c| c.starts_with("ls-tree")),
        "{scratch:?}"
    );
    assert_eq!(
        traced(read)
            .iter()
            .filter(|c| c.starts_with("cat-file"))
            .count(),
        1
    );
}

/// A changed `difference.log` changes every key's path: no cached entry may survive it.
#[test]
fn hash_level_change_means_full_read() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("music");
    init(&dir, 2);
    let keys: Vec<AnnexKey> = (0..20).map(|i| AnnexKey::new(key_for(i))).collect();
    let targets: Vec<Target> = keys.iter().map(|k| Target::Key(k.to_string())).collect();
    batch_set(&mut Rng::new(3), &dir, &[], &targets, 100);
    let repo = Repo::discover(&dir).unwrap();
    let before = snapshot::read_with(&repo, &keys, Freshness::UseCache).unwrap();
    assert_eq!(before, snapshot::read(&repo, &keys).unwrap());
    assert!(!before.is_empty());

    // Another tool declares one hash level and writes logs there: the two-level logs become
    // invisible, the one-level ones count.
    let mut files: Vec<(String, Vec<u8>)> = vec![(
        "difference.log".into(),
        b"e2e5f7d5-0000-0000-0000-000000000000 [OneLevelBranchHash] timestamp=1s\n".to_vec(),
    )];
    files.extend(keys[..5].iter().map(|k| {
        (
            metalog::met_path_levels(k.as_str(), 1),
            b"1s one +level\n".to_vec(),
        )
    }));
    craft_annex_commit(&dir, &files);
    let fresh = snapshot::read(&repo, &keys).unwrap();
    assert_eq!(fresh.len(), 5, "{fresh:?}");
    assert_eq!(
        snapshot::read_with(&repo, &keys, Freshness::UseCache).unwrap(),
        fresh
    );
}

/// Caches whose commit this repository does not have: copied from an unrelated repository
/// with the same keys, or left behind when `git annex forget` + gc removed the commit.
#[test]
fn caches_of_unknown_commits_are_not_trusted() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let keys: Vec<AnnexKey> = (0..30).map(|i| AnnexKey::new(key_for(i))).collect();
    let targets: Vec<Target> = keys.iter().map(|k| Target::Key(k.to_string())).collect();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for (dir, seed) in [(&a, 1), (&b, 2)] {
        init(dir, 2);
        batch_set(&mut Rng::new(seed), dir, &[], &targets, 100);
        let repo = Repo::discover(dir).unwrap();
        snapshot::read_with(&repo, &keys, Freshness::UseCache).unwrap();
    }
    let repo = Repo::discover(&a).unwrap();
    let truth = snapshot::read(&repo, &keys).unwrap();
    assert_ne!(
        truth,
        snapshot::read(&Repo::discover(&b).unwrap(), &keys).unwrap()
    );

    transplant_caches(&b, &a);
    assert_eq!(
        snapshot::read_with(&repo, &keys, Freshness::UseCache).unwrap(),
        truth
    );

    // Cache at the current head, then the history it names disappears.
    batch_set(&mut Rng::new(3), &a, &[], &targets, 50);
    let before = snapshot::read_with(&repo, &keys, Freshness::UseCache).unwrap();
    assert_eq!(before, snapshot::read(&repo, &keys).unwrap());
    git(&a, &["annex", "forget", "--force", "-q"]).unwrap();
    batch_set(&mut Rng::new(4), &a, &[], &targets, 50);
    git(&a, &["reflog", "expire", "--expire=now", "--all"]).unwrap();
    git(&a, &["gc", "-q", "--prune=now"]).unwrap();
    assert_eq!(
        snapshot::read_with(&repo, &keys, Freshness::UseCache).unwrap(),
        snapshot::read(&repo, &keys).unwrap()
    );
}
