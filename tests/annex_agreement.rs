//! The agreement property: `snapshot::read` (pure git) reports exactly what
//! `git annex metadata --json` reports, minus the derived `*lastchanged` fields, for every file
//! — after random metadata histories written by git-annex itself, with committed changes,
//! journal-only changes and a clone's conflicting changes that are fetched but not merged.
//!
//! Seeded and reproducible: the seed is printed; `MC_AGREEMENT_SEED=<n>` replays a run.

mod common;

use common::Rng;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use music_commander::annex::{Entry, KeyMap, Repo, snapshot};
use music_commander::model::{AnnexKey, FieldSet};
use testutils::annex_repo::{self, git, git_bytes, git_with_input};

const FILES: usize = 240;
const FIELDS: &[&str] = &[
    "rating",
    "Rating",
    "RATING",
    "tag",
    "Tag",
    "genre",
    "comment",
    "bpm",
    "x.y",
    "mixxx.rating",
    "ü",
    "Ü2",
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
        "=",
        "4",
        "5",
    ];
    match rng.below(10) {
        0 => format!("long-{}-{}", rng.next(), "L".repeat(500 + rng.below(3000))),
        1 | 2 => format!("v{}", rng.below(6)),
        _ => rng.pick(FIXED).to_string(),
    }
}

/// A `--batch --json` request replacing a few random fields (sometimes removing them).
fn random_request(rng: &mut Rng, file: &str) -> String {
    let mut fields = serde_json::Map::new();
    for _ in 0..1 + rng.below(3) {
        let values: Vec<String> = (0..rng.below(4)).map(|_| value(rng)).collect();
        fields.insert(rng.pick(FIELDS).to_string(), values.into());
    }
    serde_json::json!({ "file": file, "fields": fields }).to_string()
}

/// Requests for a random `percent` of `files`.
fn random_requests(rng: &mut Rng, files: &[String], percent: u64) -> Vec<String> {
    let mut requests = Vec::new();
    for file in files {
        if rng.chance(percent) {
            requests.push(random_request(rng, file));
        }
    }
    requests
}

fn batch(dir: &Path, config: &[&str], requests: &[String]) {
    let mut args: Vec<&str> = Vec::new();
    for c in config {
        args.extend(["-c", c]);
    }
    args.extend(["annex", "metadata", "--batch", "--json"]);
    let mut input = requests.join("\n");
    input.push('\n');
    let out = git_with_input(dir, &args, input.as_bytes()).expect("git annex metadata --batch");
    let answered = out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    assert_eq!(answered, requests.len(), "one answer per request");
}

/// One CLI metadata change applied to many files with a single git-annex start.
fn cli_op(rng: &mut Rng, dir: &Path, files: &[String]) {
    let field = rng.pick(FIELDS).to_string();
    // CLI values go through argv, so they may be non-UTF-8; `=` would be ambiguous in `-s`.
    let cli_value = |rng: &mut Rng| -> Vec<u8> {
        match rng.below(8) {
            0 => b"a\xff\xfeb".to_vec(),
            1 => b"-dash".to_vec(),
            // argv cannot carry NUL: such a value can only come through the JSON batch.
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

/// git-annex's answer for every annexed file, by key, without `*lastchanged`.
fn annex_view(dir: &Path) -> HashMap<AnnexKey, FieldSet> {
    let out = git_bytes(dir, &["annex", "metadata", "--json"]).expect("git annex metadata --json");
    let mut view = HashMap::new();
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_slice(line).expect("JSON line");
        let key = AnnexKey::new(v["key"].as_str().expect("key"));
        let mut fields = FieldSet::new();
        for (field, values) in v["fields"].as_object().expect("fields") {
            if field.ends_with("lastchanged") {
                continue;
            }
            for value in values.as_array().expect("values") {
                fields.insert(field, value.as_str().expect("string value"));
            }
        }
        view.insert(key, fields);
    }
    view
}

#[test]
fn snapshot_agrees_with_git_annex() {
    let seed = common::seed("MC_AGREEMENT_SEED");
    eprintln!("agreement seed = {seed} (replay: MC_AGREEMENT_SEED={seed})");
    let mut rng = Rng::new(seed);
    let started = std::time::Instant::now();

    let tmp = tempfile::tempdir().unwrap();
    let main = tmp.path().join("main");
    annex_repo::init(&main).unwrap();

    // A few real files (present content, one unlocked), the rest absent-content symlinks.
    annex_repo::add_files(
        &main,
        &[
            (Path::new("real/a.mp3"), b"aaa"),
            (Path::new("real/b.flac"), b"bbb"),
            (Path::new("real/dup.mp3"), b"aaa"),
        ],
    )
    .unwrap();
    git(&main, &["annex", "unlock", "real/b.flac"]).unwrap();
    git(&main, &["commit", "-q", "-m", "unlock"]).unwrap();
    let mut absent: Vec<(PathBuf, String)> = Vec::new();
    for i in 0..FILES {
        // Every 20th file shares the previous file's key: metadata is per key.
        let n = if i % 20 == 19 { i - 1 } else { i };
        let key = format!(
            "SHA256E-s{n}--{:064x}.mp3",
            n as u128 * 7919 + seed as u128 % 1000
        );
        absent.push((PathBuf::from(format!("d{}/t {i}.mp3", i % 7)), key));
    }
    let pairs: Vec<(&Path, &str)> = absent
        .iter()
        .map(|(p, k)| (p.as_path(), k.as_str()))
        .collect();
    annex_repo::add_absent_files(&main, &pairs).unwrap();
    let mut files: Vec<String> = absent
        .iter()
        .map(|(p, _)| p.to_string_lossy().into_owned())
        .collect();
    files.extend(["real/a.mp3", "real/b.flac", "real/dup.mp3"].map(String::from));

    // Random histories, committed: three rounds of JSON sets, then CLI ops on many files.
    for _ in 0..3 {
        let requests: Vec<String> = random_requests(&mut rng, &files, 80);
        batch(&main, &[], &requests);
    }
    // Long logs: many successive changes to a few keys in one process.
    let long: Vec<String> = (0..12)
        .flat_map(|_| {
            files
                .iter()
                .take(8)
                .map(|f| random_request(&mut rng, f))
                .collect::<Vec<_>>()
        })
        .collect();
    batch(&main, &[], &long);

    // The clone starts from this state and diverges.
    let clone = tmp.path().join("clone");
    git(
        tmp.path(),
        &["clone", "-q", main.to_str().unwrap(), "clone"],
    )
    .unwrap();
    git(&clone, &["config", "user.name", "clone"]).unwrap();
    git(&clone, &["config", "user.email", "clone@example.invalid"]).unwrap();
    git(&clone, &["annex", "init", "-q", "clone"]).unwrap();

    for _ in 0..3 {
        cli_op(&mut rng, &main, &files);
    }
    let requests: Vec<String> = random_requests(&mut rng, &files, 40);
    batch(&clone, &[], &requests);
    cli_op(&mut rng, &clone, &files);
    for _ in 0..3 {
        cli_op(&mut rng, &main, &files);
    }
    // Left in main's journal: no commit at exit.
    let requests: Vec<String> = random_requests(&mut rng, &files, 30);
    batch(&main, &["annex.alwayscommit=false"], &requests);

    // Pure git from here on in main: any git-annex command would merge these refs.
    git(
        &clone,
        &["push", "-q", "origin", "git-annex:synced/git-annex"],
    )
    .unwrap();
    let requests: Vec<String> = random_requests(&mut rng, &files, 30);
    batch(&clone, &[], &requests);
    git(&main, &["remote", "add", "clone", clone.to_str().unwrap()]).unwrap();
    git(&main, &["fetch", "-q", "clone"]).unwrap();

    let journal = main.join(".git/annex/journal");
    let journaled = std::fs::read_dir(&journal).map(|d| d.count()).unwrap_or(0);
    assert!(journaled > 0, "some changes must still be in the journal");
    let unmerged = git(
        &main,
        &[
            "for-each-ref",
            "--no-merged=git-annex",
            "--format=%(refname)",
        ],
    )
    .unwrap();
    assert!(
        unmerged.contains("refs/remotes/clone/git-annex"),
        "{unmerged}"
    );
    assert!(
        unmerged.contains("refs/heads/synced/git-annex"),
        "{unmerged}"
    );

    let repo = Repo::discover(&main).unwrap();
    let map = KeyMap::read(&repo, &|_| true).unwrap();
    let keys: Vec<AnnexKey> = map
        .iter()
        .filter_map(|(_, e)| match e {
            Entry::Annexed(k) => Some(k.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(map.len(), files.len());
    let ours = snapshot::read(&repo, &keys).unwrap();
    // A few keys take the path-lookup route instead of listing trees; same answers.
    let few = snapshot::read(&repo, &keys[..40]).unwrap();
    for key in &keys[..40] {
        assert_eq!(few.get(key), ours.get(key), "few-keys read of {key}");
    }

    // Now let git-annex answer (this merges the siblings and commits the journal).
    let theirs = annex_view(&main);
    let mut checked = 0;
    let mut mismatches = BTreeMap::new();
    for (path, entry) in map.iter() {
        let Entry::Annexed(key) = entry else {
            panic!("{path} should be annexed");
        };
        let expected = theirs
            .get(key)
            .unwrap_or_else(|| panic!("git-annex skipped {path}"));
        let got = ours.get(key).cloned().unwrap_or_default();
        if &got != expected {
            mismatches.insert(path.to_string(), (got, expected.clone()));
        }
        checked += 1;
    }
    assert!(
        mismatches.is_empty(),
        "seed {seed}: {} of {checked} files disagree, e.g. {:#?}",
        mismatches.len(),
        mismatches.iter().next()
    );
    assert!(checked >= 200);
    let with_metadata = ours.len();
    assert!(
        with_metadata > 100,
        "only {with_metadata} keys had metadata"
    );

    // And once git-annex has merged everything, a fresh snapshot still agrees.
    let merged = snapshot::read(&repo, &keys).unwrap();
    for key in &keys {
        assert_eq!(
            merged.get(key).cloned().unwrap_or_default(),
            theirs[key],
            "after merge, key {key}"
        );
    }
    eprintln!(
        "agreement: {checked} files, {with_metadata} keys with metadata, {journaled} journal files, {:.1?}",
        started.elapsed()
    );
}
