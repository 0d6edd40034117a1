//! Bad input: each case gets a clear one-line error (and hint), the documented exit code, and
//! nothing written. Odd but valid data syncs.

mod common;

use std::path::Path;

use common::{Sandbox, sample_path, sample_track};
use predicates::prelude::*;
use testutils::annex_repo;
use testutils::mixxx_db::{FixtureTrack, SchemaEra};

/// Runs `sync` against `db` and checks exit code, message, and that nothing was written.
fn assert_db_error(sb: &Sandbox, db: &Path, message: &str) {
    let head = sb.annex_ref();
    let out = sb
        .cmd()
        .arg("--mixxx-db")
        .arg(db)
        .arg("sync")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{db:?}: {stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: ") && first.contains(message),
        "{db:?}: {stderr}"
    );
    assert!(
        stderr
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("hint: ")),
        "{stderr}"
    );
    assert_eq!(sb.annex_ref(), head);
}

#[test]
fn unusable_mixxx_databases_are_exit_2() {
    let sb = Sandbox::new(1, SchemaEra::Newest);
    let dir = sb.home.join("cases");
    std::fs::create_dir_all(&dir).unwrap();

    assert_db_error(&sb, &dir.join("missing.sqlite"), "not found");
    assert_db_error(&sb, &dir, "not a Mixxx database");
    std::fs::write(dir.join("empty.sqlite"), "").unwrap();
    assert_db_error(&sb, &dir.join("empty.sqlite"), "not a Mixxx database");
    std::fs::write(
        dir.join("text.sqlite"),
        "hello, I am not SQLite\n".repeat(100),
    )
    .unwrap();
    assert_db_error(&sb, &dir.join("text.sqlite"), "not a Mixxx database");
    let other = rusqlite::Connection::open(dir.join("other.sqlite")).unwrap();
    other
        .execute_batch("CREATE TABLE songs (id INTEGER PRIMARY KEY, name TEXT);")
        .unwrap();
    drop(other);
    assert_db_error(&sb, &dir.join("other.sqlite"), "not a Mixxx database");

    // Truncated: the first page survives, the tables it points to do not.
    let bytes = std::fs::read(&sb.db).unwrap();
    std::fs::write(
        dir.join("truncated.sqlite"),
        &bytes[..bytes.len().min(4096) + 100],
    )
    .unwrap();
    assert_db_error(&sb, &dir.join("truncated.sqlite"), "Mixxx database");
}

#[test]
fn a_newer_schema_with_the_needed_columns_works() {
    let sb = Sandbox::new(2, SchemaEra::Newest);
    let db = sb.mixxx();
    db.execute_batch(
        "UPDATE settings SET value = '99' WHERE name = 'mixxx.schema.version';
         ALTER TABLE library ADD COLUMN future_thing TEXT;
         CREATE TABLE future_table (x INTEGER);",
    )
    .unwrap();
    drop(db);
    assert_eq!(sb.sync_json(&[])["files"]["written"], 2);
}

#[test]
fn a_database_held_by_a_writer_is_read_or_fails_clearly_and_is_never_modified() {
    let sb = Sandbox::new(3, SchemaEra::Mixxx23);
    let before = std::fs::read(&sb.db).unwrap();

    // Mixxx in the middle of a write transaction (RESERVED lock): readers still see the last
    // committed state.
    let writer = sb.mixxx();
    writer
        .execute_batch("BEGIN IMMEDIATE; UPDATE library SET rating = 1;")
        .unwrap();
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["files"]["written"], 3);
    assert_eq!(
        sb.metadata()[&sample_path(2)]["rating"],
        vec!["2"],
        "uncommitted edits are not read"
    );
    writer.execute_batch("ROLLBACK").unwrap();

    // An exclusive lock for longer than the busy timeout: a bounded wait, then a clear error.
    writer
        .execute_batch("BEGIN EXCLUSIVE; UPDATE library SET rating = 1;")
        .unwrap();
    let started = std::time::Instant::now();
    sb.cmd()
        .args(["sync", "--dry-run"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "locked — is Mixxx writing right now?",
        ));
    assert!(started.elapsed().as_secs() < 30);
    writer.execute_batch("ROLLBACK").unwrap();
    drop(writer);

    assert_eq!(
        std::fs::read(&sb.db).unwrap(),
        before,
        "the database must be byte-identical"
    );
    for suffix in ["-journal", "-wal", "-shm"] {
        let mut p = sb.db.clone().into_os_string();
        p.push(suffix);
        assert!(!Path::new(&p).exists(), "{suffix} left behind");
    }
}

#[test]
fn repository_problems() {
    let sb = Sandbox::new(2, SchemaEra::Newest);
    // --repo pointing into a subfolder works.
    let sub = sb.repo.join("Röyksopp");
    sb.cmd()
        .arg("--repo")
        .arg(&sub)
        .args(["sync", "-q"])
        .assert()
        .success();
    assert_eq!(sb.metadata()[&sample_path(1)]["rating"], vec!["1"]);

    // A bare repository.
    let bare = sb.home.join("bare.git");
    annex_repo::git(
        &sb.home,
        &[
            "clone",
            "-q",
            "--bare",
            sb.repo.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    )
    .unwrap();
    sb.cmd()
        .arg("--repo")
        .arg(&bare)
        .args(["sync", "--dry-run"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("bare"));

    // A repository in the middle of a merge still syncs (metadata lives on another branch).
    annex_repo::git(&sb.repo, &["checkout", "-q", "-b", "side"]).unwrap();
    std::fs::write(sb.repo.join("notes.txt"), "side\n").unwrap();
    annex_repo::git(&sb.repo, &["add", "notes.txt"]).unwrap();
    annex_repo::git(&sb.repo, &["commit", "-qm", "side", "--no-verify"]).unwrap();
    annex_repo::git(&sb.repo, &["checkout", "-q", "main"]).unwrap();
    std::fs::write(sb.repo.join("notes.txt"), "main\n").unwrap();
    annex_repo::git(&sb.repo, &["add", "notes.txt"]).unwrap();
    annex_repo::git(&sb.repo, &["commit", "-qm", "main", "--no-verify"]).unwrap();
    let merge = music_commander::annex::Git::in_dir(&sb.repo)
        .args(["merge", "-q", "side"])
        .output()
        .unwrap();
    assert!(!merge.status.success(), "the merge should conflict");
    sb.set_column(0, "rating", rusqlite::types::Value::Integer(4));
    sb.cmd().args(["sync", "-q"]).assert().success();
    assert_eq!(sb.metadata()[&sample_path(0)]["rating"], vec!["4"]);
}

#[test]
fn odd_values_sync_cleanly() {
    let long_comment = "x".repeat(10_000);
    let sb = Sandbox::with_tracks(6, SchemaEra::Newest, |repo| {
        let mut t: Vec<FixtureTrack> = (0..6).map(|i| sample_track(repo, i)).collect();
        // NULL in every nullable column.
        t[0] = FixtureTrack {
            location: t[0].location.clone(),
            ..FixtureTrack::default()
        };
        // Empty strings and whitespace-only crate names.
        t[1].artist = Some(String::new());
        t[1].title = Some("   ".into());
        t[1].crates = vec!["   ".into(), "\t".into()];
        // Control characters, right-to-left text, emoji, a 10 kB comment.
        t[2].title = Some("line1\nline2\ttab\u{7}bell".into());
        t[2].artist = Some("שלום עליכם".into());
        t[2].album = Some("🎧🔥 Party".into());
        t[3].comment = Some(long_comment.clone());
        // Values that need git-annex's base64 encoding or look like its syntax.
        t[4].title = Some("!bang".into());
        t[4].artist = Some("+plus".into());
        t[4].album = Some("-minus".into());
        t[4].genre = Some("a=b:c".into());
        t
    });
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["files"]["failed"], 0, "{doc}");
    let meta = sb.metadata();
    assert!(
        meta.get(&sample_path(0)).is_none_or(|f| f.is_empty()),
        "{:?}",
        meta.get(&sample_path(0))
    );
    let f1 = &meta[&sample_path(1)];
    assert!(!f1.contains_key("artist") && !f1.contains_key("title") && !f1.contains_key("crate"));
    let f2 = &meta[&sample_path(2)];
    assert_eq!(f2["title"], vec!["line1 line2 tab bell"]);
    assert_eq!(f2["artist"], vec!["שלום עליכם"]);
    assert_eq!(f2["album"], vec!["🎧🔥 Party"]);
    assert_eq!(meta[&sample_path(3)]["comment"], vec![long_comment]);
    let f4 = &meta[&sample_path(4)];
    assert_eq!(f4["title"], vec!["!bang"]);
    assert_eq!(f4["artist"], vec!["+plus"]);
    assert_eq!(f4["album"], vec!["-minus"]);
    assert_eq!(f4["genre"], vec!["a=b:c"]);
    assert_eq!(
        sb.sync_json(&[])["files"]["written"],
        0,
        "odd values must round-trip exactly"
    );
}

#[test]
fn odd_file_names_sync() {
    let names: &[&[u8]] = &[
        b"-leading dash.flac",
        b"equals=colon:.flac",
        b"new\nline.flac",
        b"Latin1 \xe9t\xe9.flac",
        b"sp  aces .flac",
    ];
    let sb = Sandbox::new(0, SchemaEra::Newest);
    use std::os::unix::ffi::OsStrExt;
    for (i, name) in names.iter().enumerate() {
        std::fs::write(
            sb.repo.join(std::ffi::OsStr::from_bytes(name)),
            format!("odd {i}"),
        )
        .unwrap();
    }
    annex_repo::git(&sb.repo, &["annex", "add", "-q", "--force-large", "."]).unwrap();
    annex_repo::git(&sb.repo, &["commit", "-qm", "odd names"]).unwrap();
    let db = sb.mixxx();
    for (i, name) in names.iter().enumerate() {
        let mut location = sb.repo.as_os_str().as_bytes().to_vec();
        location.push(b'/');
        location.extend_from_slice(name);
        // Mixxx stores paths as TEXT; non-UTF-8 bytes arrive as they were on disk.
        db.execute(
            "INSERT INTO track_locations (location, filename, directory, filesize, fs_deleted, needs_verification) VALUES (CAST(?1 AS TEXT), 'x', 'y', 1, 0, 0)",
            [location],
        )
        .unwrap();
        let loc = db.last_insert_rowid();
        db.execute(
            "INSERT INTO library (location, rating, mixxx_deleted) VALUES (?1, ?2, 0)",
            [loc, (i % 5 + 1) as i64],
        )
        .unwrap();
    }
    drop(db);
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["files"]["written"], names.len() as u64, "{doc}");
    assert_eq!(doc["files"]["failed"], 0);
    // git-annex cannot address a newline name by file, but the key carries the metadata.
    assert_eq!(sb.find("rating=2"), vec!["equals=colon:.flac"]);
    assert_eq!(sb.sync_json(&[])["files"]["written"], 0);
}

#[test]
fn a_symlinked_folder_spelling_maps_to_the_same_files() {
    let sb = Sandbox::with_tracks(3, SchemaEra::Newest, |repo| {
        let link = repo.parent().unwrap().join("MusicLink");
        std::os::unix::fs::symlink(repo, &link).unwrap();
        (0..3).map(|i| sample_track(&link, i)).collect()
    });
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["files"]["written"], 3, "{doc}");
}

#[test]
fn two_tracks_for_one_file_are_written_once_or_reported() {
    // Mixxx knows the same file twice: once directly, once through a symlinked folder.
    let sb = Sandbox::with_tracks(2, SchemaEra::Newest, |repo| {
        let link = repo.parent().unwrap().join("Alias");
        std::os::unix::fs::symlink(repo, &link).unwrap();
        let mut tracks: Vec<FixtureTrack> = (0..2).map(|i| sample_track(repo, i)).collect();
        let mut again = sample_track(&link, 0);
        again.title = Some("Title 0".into());
        tracks.push(again);
        let mut differs = sample_track(&link, 1);
        differs.rating = Some(5);
        tracks.push(differs);
        tracks
    });
    let doc = sb.sync_json(&[]);
    assert_eq!(doc["files"]["written"], 1, "{doc}");
    assert_eq!(doc["files"]["duplicates"], 1, "{doc}");
    assert_eq!(
        doc["duplicates"][0]["fields"],
        serde_json::json!(["rating"])
    );
    assert_eq!(sb.metadata()[&sample_path(0)]["title"], vec!["Title 0"]);
}

/// As root every file is readable, so the permission check runs the binary as `nobody`
/// (through util-linux's `setpriv`); as another user, `chmod 000` is enough.
#[test]
fn an_unreadable_database_is_exit_2() {
    let sb = Sandbox::new(1, SchemaEra::Newest);
    use std::os::unix::fs::PermissionsExt;
    let db = sb.home.join("locked-away.sqlite");
    std::fs::copy(&sb.db, &db).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o000)).unwrap();
    sb.unprivileged_cmd()
        .arg("--mixxx-db")
        .arg(&db)
        .args(["sync", "--dry-run"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("cannot read Mixxx database")
                .and(predicate::str::contains("Permission denied")),
        );
}
