//! A throwaway collection for end-to-end tests: a real git-annex repository and a real Mixxx
//! database in a temp dir, and the binary run as a user runs it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use testutils::annex_repo;
use testutils::mixxx_db::{FixtureTrack, MixxxDbBuilder, SchemaEra};

pub struct Sandbox {
    pub tmp: tempfile::TempDir,
    pub repo: PathBuf,
    pub db: PathBuf,
    pub home: PathBuf,
}

/// The process name that means "Mixxx is running" in every test: unique, so a real Mixxx on a
/// developer's machine never makes `import` refuse, and a test can start a process of this
/// name to see it refused.
pub fn mixxx_process_name() -> String {
    format!("mc-mixxx-{}", std::process::id() % 100_000)
}

/// Relative path of the i-th sample file; nested folders and Unicode names on purpose.
pub fn sample_path(i: usize) -> String {
    let artist = ["Daft Punk", "Röyksopp", "Sigur Rós", "坂本龍一", "A = B: C"][i % 5];
    format!("{artist}/Album {}/{i:04} Track.flac", i % 3)
}

/// A realistic track for sample file `i` under `repo`.
pub fn sample_track(repo: &Path, i: usize) -> FixtureTrack {
    FixtureTrack {
        location: repo
            .join(sample_path(i))
            .into_os_string()
            .into_encoded_bytes(),
        artist: Some(format!("Artist {}", i % 7)),
        title: Some(format!("Title {i}")),
        album: Some(format!("Album {}", i % 3)),
        genre: Some(["House", "Techno", "Ambient"][i % 3].into()),
        year: Some((1990 + i % 30).to_string()),
        tracknumber: Some((i % 12 + 1).to_string()),
        comment: i.is_multiple_of(4).then(|| format!("comment {i}")),
        rating: Some((i % 6) as i64),
        bpm: Some(100.0 + (i % 40) as f64),
        color: (!i.is_multiple_of(3)).then_some(0x112233 * (i as i64 % 5)),
        key: Some("Am".into()),
        key_id: Some((i % 24 + 1) as i64),
        crates: match i % 4 {
            0 => vec![],
            1 => vec!["Festival".into()],
            2 => vec!["Warm up".into(), "Deep/Dub".into()],
            _ => vec!["Ünï ☃".into()],
        },
        mixxx_deleted: None,
        fs_deleted: false,
        samplerate: Some(44100),
        cues: Vec::new(),
    }
}

impl Sandbox {
    /// A repository with `n` annexed sample files and a Mixxx database (of `era`) with one
    /// track per file.
    pub fn new(n: usize, era: SchemaEra) -> Sandbox {
        let tracks = |repo: &Path| (0..n).map(|i| sample_track(repo, i)).collect();
        Sandbox::with_tracks(n, era, tracks)
    }

    pub fn with_tracks(
        n: usize,
        era: SchemaEra,
        tracks: impl FnOnce(&Path) -> Vec<FixtureTrack>,
    ) -> Sandbox {
        let tmp = tempfile::Builder::new()
            .prefix("mc-test-")
            .tempdir()
            .unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let repo = base.join("Music");
        let home = base.join("home");
        std::fs::create_dir_all(&home).unwrap();
        annex_repo::init(&repo).unwrap();
        let files: Vec<(PathBuf, Vec<u8>)> = (0..n)
            .map(|i| {
                (
                    PathBuf::from(sample_path(i)),
                    format!("audio {i}\n").into_bytes(),
                )
            })
            .collect();
        let refs: Vec<(&Path, &[u8])> = files
            .iter()
            .map(|(p, c)| (p.as_path(), c.as_slice()))
            .collect();
        if !refs.is_empty() {
            annex_repo::add_files(&repo, &refs).unwrap();
        }
        let db = base.join("mixxxdb.sqlite");
        let mut builder = MixxxDbBuilder::new(era);
        builder.tracks = tracks(&repo);
        builder.build(&db).unwrap();
        Sandbox {
            tmp,
            repo,
            db,
            home,
        }
    }

    /// The binary with this sandbox's repository and database, and a clean environment (no
    /// user config, no terminal).
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("music-commander").unwrap();
        cmd.current_dir(&self.repo)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("MUSIC_COMMANDER_MIXXX_PROCESS", mixxx_process_name())
            .arg("--mixxx-db")
            .arg(&self.db);
        cmd
    }

    /// The binary as a user whom file permissions apply to, with a clean environment and no
    /// database argument: as root (who may read and write anything) through util-linux's
    /// `setpriv` as `nobody`, who is then let into the sandbox's folders and, through
    /// `safe.directory`, into a repository owned by another user.
    pub fn unprivileged_cmd(&self) -> assert_cmd::Command {
        use std::os::unix::fs::PermissionsExt;
        let mut cmd = if unsafe { libc::geteuid() } == 0 {
            for dir in [self.tmp.path(), self.home.as_path()] {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            let mut cmd = assert_cmd::Command::new("setpriv");
            cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(assert_cmd::cargo::cargo_bin("music-commander"));
            cmd
        } else {
            assert_cmd::Command::cargo_bin("music-commander").unwrap()
        };
        cmd.current_dir(&self.repo)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", &self.home)
            .env("MUSIC_COMMANDER_MIXXX_PROCESS", mixxx_process_name())
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "safe.directory")
            .env("GIT_CONFIG_VALUE_0", "*");
        cmd
    }

    /// `sync` with extra args; returns (exit code, stdout, stderr).
    pub fn sync(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd().arg("sync").args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `sync --json` parsed; panics on a non-zero exit.
    pub fn sync_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (code, out, err) = self.sync(&all);
        assert_eq!(code, 0, "sync failed: {err}\n{out}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
    }

    pub fn git(&self, args: &[&str]) -> String {
        annex_repo::git(&self.repo, args).unwrap()
    }

    /// Commits on the git-annex branch.
    pub fn annex_commits(&self) -> usize {
        self.git(&["rev-list", "--count", "refs/heads/git-annex"])
            .trim()
            .parse()
            .unwrap()
    }

    pub fn annex_ref(&self) -> String {
        self.git(&["rev-parse", "refs/heads/git-annex"])
            .trim()
            .to_string()
    }

    /// Every file's metadata as git-annex reports it (one process), without `*lastchanged`.
    pub fn metadata(&self) -> Metadata {
        metadata(&self.repo)
    }

    /// `git annex find --metadata QUERY` (sorted file list).
    pub fn find(&self, query: &str) -> Vec<String> {
        let out = self.git(&["annex", "find", "--anything", "--metadata", query]);
        let mut files: Vec<String> = out.lines().map(String::from).collect();
        files.sort();
        files
    }

    /// The DJ editing this sandbox's Mixxx.
    pub fn dj(&self) -> Dj<'_> {
        Dj {
            db: &self.db,
            root: &self.repo,
        }
    }

    pub fn mixxx(&self) -> rusqlite::Connection {
        self.dj().mixxx()
    }

    pub fn track_id(&self, i: usize) -> i64 {
        self.dj().track_id(i)
    }

    pub fn add_to_crate(&self, i: usize, name: &str) {
        self.dj().add_to_crate(i, name)
    }

    pub fn remove_from_crate(&self, i: usize, name: &str) {
        self.dj().remove_from_crate(i, name)
    }

    pub fn set_column(&self, i: usize, column: &str, value: rusqlite::types::Value) {
        self.dj().set_column(i, column, value)
    }

    /// `git annex sync` of the git-annex branch only, with every remote.
    pub fn annex_sync(&self) {
        annex_sync(&self.repo);
    }

    /// `status --json` parsed; panics on a non-zero exit.
    pub fn status_json(&self) -> Value {
        json_of(self.cmd().args(["status", "--json"]))
    }
}

/// `git annex sync` of the git-annex branch only: no work-tree commit, no content.
pub fn annex_sync(repo: &Path) {
    annex_repo::git(
        repo,
        &["annex", "sync", "-q", "--only-annex", "--no-content"],
    )
    .unwrap();
}

/// Runs `cmd`, asserts success, parses stdout as JSON.
pub fn json_of(cmd: &mut assert_cmd::Command) -> Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Edits a Mixxx database the way a DJ does in Mixxx, addressing sample track `i` by its
/// location under `root`.
pub struct Dj<'a> {
    pub db: &'a Path,
    pub root: &'a Path,
}

impl Dj<'_> {
    /// A writable connection. Foreign keys off, as Mixxx has them: real databases declare
    /// some wrongly, and rusqlite's bundled SQLite would otherwise enforce them.
    pub fn mixxx(&self) -> rusqlite::Connection {
        let db = rusqlite::Connection::open(self.db).unwrap();
        db.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        db
    }

    /// Library id of sample track `i`.
    pub fn track_id(&self, i: usize) -> i64 {
        let location = self.root.join(sample_path(i));
        self.mixxx()
            .query_row(
                "SELECT library.id FROM library JOIN track_locations ON track_locations.id = library.location WHERE track_locations.location = ?1",
                [location.to_str().unwrap()],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// Puts track `i` into crate `name` (created if missing).
    pub fn add_to_crate(&self, i: usize, name: &str) {
        let db = self.mixxx();
        db.execute("INSERT OR IGNORE INTO crates (name) VALUES (?1)", [name])
            .unwrap();
        let crate_id: i64 = db
            .query_row("SELECT id FROM crates WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .unwrap();
        db.execute(
            "INSERT OR IGNORE INTO crate_tracks (crate_id, track_id) VALUES (?1, ?2)",
            [crate_id, self.track_id(i)],
        )
        .unwrap();
    }

    pub fn remove_from_crate(&self, i: usize, name: &str) {
        self.mixxx()
            .execute(
                "DELETE FROM crate_tracks WHERE track_id = ?1 AND crate_id = (SELECT id FROM crates WHERE name = ?2)",
                rusqlite::params![self.track_id(i), name],
            )
            .unwrap();
    }

    /// Sets one `library` column of track `i`.
    pub fn set_column(&self, i: usize, column: &str, value: rusqlite::types::Value) {
        self.mixxx()
            .execute(
                &format!("UPDATE library SET {column} = ?1 WHERE id = ?2"),
                rusqlite::params![value, self.track_id(i)],
            )
            .unwrap();
    }
}

/// Where the second machine's Mixxx saw the collection.
pub const LAPTOP_ROOT: &str = "/media/usb/Music";

/// A desktop (the sandbox, newest schema) and a laptop whose Mixxx database is of `era`,
/// under [`LAPTOP_ROOT`]; `setup` runs on the desktop before its first sync (a config). Both
/// synced once, their git-annex branches exchanged, and the laptop's sync wrote nothing.
#[allow(dead_code)]
pub fn two_machines_of_era(
    n: usize,
    era: SchemaEra,
    setup: impl FnOnce(&Sandbox),
) -> (Sandbox, Laptop) {
    let sb = Sandbox::new(n, SchemaEra::Newest);
    setup(&sb);
    sb.sync_json(&[]);
    let lap = Laptop::clone_of(&sb, n);
    if era != SchemaEra::Mixxx23 {
        std::fs::remove_file(&lap.db).unwrap();
        let mut builder = MixxxDbBuilder::new(era);
        builder.tracks = (0..n)
            .map(|i| sample_track(Path::new(LAPTOP_ROOT), i))
            .collect();
        builder.build(&lap.db).unwrap();
    }
    lap.annex_sync();
    let doc = lap.sync_json(&sb, &[]);
    assert_eq!(doc["files"]["written"], 0, "{doc}");
    (sb, lap)
}

/// Adds a track for `root/rel` to a Mixxx database, as a scan would; returns its id.
#[allow(dead_code)]
pub fn add_track(db: &Path, root: &Path, rel: &str) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    let location = root.join(rel);
    c.execute(
        "INSERT INTO track_locations (location, filename, directory, filesize, fs_deleted, needs_verification) VALUES (?1, ?2, ?3, 9, 0, 0)",
        rusqlite::params![
            location.to_str().unwrap(),
            location.file_name().unwrap().to_str().unwrap(),
            location.parent().unwrap().to_str().unwrap()
        ],
    )
    .unwrap();
    let loc = c.last_insert_rowid();
    c.execute(
        "INSERT INTO library (location, samplerate, mixxx_deleted, filetype) VALUES (?1, 44100, 0, 'mp3')",
        [loc],
    )
    .unwrap();
    c.last_insert_rowid()
}

/// Another machine: a clone of the sandbox's repository (no content fetched) with its own
/// Mixxx database (of the 2.3 era), which saw the collection under [`LAPTOP_ROOT`]. The two
/// repositories are each other's remotes.
pub struct Laptop {
    pub repo: PathBuf,
    pub db: PathBuf,
}

impl Laptop {
    pub fn clone_of(sb: &Sandbox, n: usize) -> Laptop {
        Laptop::clone_named(sb, "laptop", n)
    }

    pub fn clone_named(sb: &Sandbox, name: &str, n: usize) -> Laptop {
        let base = sb.tmp.path().canonicalize().unwrap();
        let repo = base.join(name);
        annex_repo::git(&base, &["clone", "-q", sb.repo.to_str().unwrap(), name]).unwrap();
        annex_repo::git(&repo, &["config", "user.name", name]).unwrap();
        annex_repo::git(&repo, &["config", "user.email", "laptop@example.invalid"]).unwrap();
        annex_repo::git(&repo, &["annex", "init", "-q", name]).unwrap();
        annex_repo::git(&sb.repo, &["remote", "add", name, repo.to_str().unwrap()]).unwrap();
        let db = base.join(format!("{name}.sqlite"));
        let mut builder = MixxxDbBuilder::new(SchemaEra::Mixxx23);
        builder.tracks = (0..n)
            .map(|i| sample_track(Path::new(LAPTOP_ROOT), i))
            .collect();
        builder.build(&db).unwrap();
        Laptop { repo, db }
    }

    pub fn dj(&self) -> Dj<'_> {
        Dj {
            db: &self.db,
            root: Path::new(LAPTOP_ROOT),
        }
    }

    /// The binary run on this machine (environment as the sandbox's).
    pub fn cmd(&self, sb: &Sandbox) -> assert_cmd::Command {
        let mut cmd = sb.cmd();
        cmd.current_dir(&self.repo)
            .env("MUSIC_COMMANDER_MUSIC_ROOT", LAPTOP_ROOT)
            .arg("--mixxx-db")
            .arg(&self.db);
        cmd
    }

    /// The same as a `std` command, for runs to kill.
    pub fn std_cmd(&self, sb: &Sandbox) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("music-commander"));
        cmd.current_dir(&self.repo)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", &sb.home)
            .env("XDG_CONFIG_HOME", sb.home.join(".config"))
            .env("MUSIC_COMMANDER_MIXXX_PROCESS", mixxx_process_name())
            .env("MUSIC_COMMANDER_MUSIC_ROOT", LAPTOP_ROOT)
            .arg("--mixxx-db")
            .arg(&self.db);
        cmd
    }

    pub fn sync(&self, sb: &Sandbox, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd(sb).arg("sync").args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn sync_json(&self, sb: &Sandbox, args: &[&str]) -> Value {
        json_of(self.cmd(sb).args(["sync", "--json"]).args(args))
    }

    pub fn status_json(&self, sb: &Sandbox) -> Value {
        json_of(self.cmd(sb).args(["status", "--json"]))
    }

    pub fn git(&self, args: &[&str]) -> String {
        annex_repo::git(&self.repo, args).unwrap()
    }

    pub fn annex_ref(&self) -> String {
        self.git(&["rev-parse", "refs/heads/git-annex"])
            .trim()
            .to_string()
    }

    pub fn annex_sync(&self) {
        annex_sync(&self.repo);
    }

    pub fn metadata(&self) -> Metadata {
        metadata(&self.repo)
    }

    pub fn set_column(&self, i: usize, column: &str, value: rusqlite::types::Value) {
        self.dj().set_column(i, column, value)
    }

    pub fn add_to_crate(&self, i: usize, name: &str) {
        self.dj().add_to_crate(i, name)
    }

    pub fn remove_from_crate(&self, i: usize, name: &str) {
        self.dj().remove_from_crate(i, name)
    }
}

/// The seeded generator of the random tests: the fixtures' SplitMix64 (stable across crate
/// versions, so a seed replays forever) with the helpers the tests want.
pub struct Rng(testutils::library::Rng);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(testutils::library::Rng::new(seed))
    }

    pub fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0.below(n as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.0.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// File → field → sorted values.
pub type Metadata = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// Every file's metadata in `repo` as git-annex reports it (one process, committing nothing),
/// without the derived `*lastchanged` fields.
pub fn metadata(repo: &Path) -> Metadata {
    let out = annex_repo::git(
        repo,
        &[
            "-c",
            "annex.alwayscommit=false",
            "annex",
            "metadata",
            "--json",
            ".",
        ],
    )
    .unwrap();
    let mut all = BTreeMap::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        let file = v["file"].as_str().unwrap().to_string();
        let mut fields = BTreeMap::new();
        for (name, values) in v["fields"].as_object().unwrap() {
            if name.ends_with("lastchanged") {
                continue;
            }
            let mut vals: Vec<String> = values
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect();
            vals.sort();
            fields.insert(name.clone(), vals);
        }
        all.insert(file, fields);
    }
    all
}

/// The seed of a random test: `$var` when set (to replay a run), else a new one each run.
pub fn seed(var: &str) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}
