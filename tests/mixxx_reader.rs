//! Reading Mixxx databases of every schema era, odd values, broken files and a locked
//! database, all built in temporary folders.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use music_commander::Error;
use music_commander::mixxx::paths::PathMapper;
use music_commander::mixxx::{CrateId, Library, MixxxDb, Request};
use music_commander::model::RepoPath;
use music_commander::sync::fields::ManagedFields;
use rusqlite::Connection;
use testutils::mixxx_db::{FixtureTrack, MixxxDbBuilder, SchemaEra};

const ROOT: &str = "/home/dj/Music";

fn location(relative: &[u8]) -> Vec<u8> {
    let mut bytes = format!("{ROOT}/").into_bytes();
    bytes.extend_from_slice(relative);
    bytes
}

fn some(s: &str) -> Option<String> {
    Some(s.to_owned())
}

/// Tracks covering every field filled, every nullable column NULL, '' against NULL, deleted
/// rows and crate memberships from none to many.
fn sample_tracks() -> Vec<FixtureTrack> {
    let crates = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
    vec![
        FixtureTrack {
            location: location(b"House/Artist - Title.flac"),
            artist: some("Artist"),
            title: some("Title"),
            album: some("Album"),
            genre: some("Deep House"),
            year: some("2024-05-01"),
            tracknumber: some("5/12"),
            comment: some("line one\nline two"),
            rating: Some(5),
            bpm: Some(123.456),
            color: Some(0xFF0000),
            key: some("C\u{266f}m"),
            key_id: Some(14),
            crates: crates(&["Warm up", "a/b", "Ünïcödé"]),
            mixxx_deleted: Some(0),
            fs_deleted: false,
            ..Default::default()
        },
        // Every nullable column NULL.
        FixtureTrack {
            location: location(b"nulls.mp3"),
            ..Default::default()
        },
        // Cleared in the editor: '' rather than NULL.
        FixtureTrack {
            location: location(b"empty strings.mp3"),
            artist: some(""),
            title: some(""),
            album: some(""),
            genre: some(""),
            year: some(""),
            tracknumber: some(""),
            comment: some(""),
            key: some(""),
            rating: Some(0),
            bpm: Some(0.0),
            key_id: Some(0),
            crates: crates(&["   "]),
            ..Default::default()
        },
        FixtureTrack {
            location: location(b"removed in mixxx.mp3"),
            title: some("Removed"),
            mixxx_deleted: Some(1),
            crates: crates(&["Warm up"]),
            ..Default::default()
        },
        FixtureTrack {
            location: location(b"missing on disk.mp3"),
            fs_deleted: true,
            crates: crates(&["Ünïcödé", "Warm up", "Peak time", "a/b", "   "]),
            ..Default::default()
        },
        // macOS spells names decomposed (NFD).
        FixtureTrack {
            location: location("Bjo\u{308}rk/Jo\u{301}ga.aif".as_bytes()),
            artist: some("Bj\u{f6}rk"),
            ..Default::default()
        },
        // A Linux file name that is not UTF-8.
        FixtureTrack {
            location: location(b"latin1/caf\xe9.mp3"),
            title: some("Caf\u{e9}"),
            ..Default::default()
        },
    ]
}

fn build(
    dir: &Path,
    era: SchemaEra,
    tracks: Vec<FixtureTrack>,
    empty: &[&str],
) -> (PathBuf, Vec<i64>) {
    let path = dir.join(format!("mixxxdb-{era:?}.sqlite"));
    let mut builder = MixxxDbBuilder::new(era);
    builder.tracks = tracks;
    builder.empty_crates = empty.iter().map(|s| s.to_string()).collect();
    let ids = builder.build(&path).unwrap();
    (path, ids)
}

/// What every managed field reads.
fn everything() -> Request {
    ManagedFields::all().request()
}

fn read(path: &Path) -> Library {
    MixxxDb::open(path)
        .unwrap()
        .read_library(&everything())
        .unwrap()
}

/// One track with every column the field table reads, as the old fixed-shape reader returned
/// it: the tests compare whole rows.
#[derive(Clone, Debug, Default, PartialEq)]
struct Track {
    id: i64,
    location: Vec<u8>,
    artist: Option<String>,
    title: Option<String>,
    album: Option<String>,
    genre: Option<String>,
    year: Option<String>,
    tracknumber: Option<String>,
    comment: Option<String>,
    rating: Option<i64>,
    bpm: Option<f64>,
    color: Option<i64>,
    key: Option<String>,
    key_id: Option<i64>,
    crates: Vec<CrateId>,
    mixxx_deleted: bool,
    fs_deleted: bool,
}

fn rows(library: &Library) -> Vec<Track> {
    (0..library.tracks.len())
        .map(|i| {
            let t = &library.tracks[i];
            let text = |c| library.get(i, c).as_text().map(String::from);
            Track {
                id: t.id,
                location: t.location.clone(),
                artist: text("artist"),
                title: text("title"),
                album: text("album"),
                genre: text("genre"),
                year: text("year"),
                tracknumber: text("tracknumber"),
                comment: text("comment"),
                rating: library.get(i, "rating").as_integer(),
                bpm: library.get(i, "bpm").as_real(),
                color: library.get(i, "color").as_integer(),
                key: text("key"),
                key_id: library.get(i, "key_id").as_integer(),
                crates: t.crates.clone(),
                mixxx_deleted: t.mixxx_deleted,
                fs_deleted: t.fs_deleted,
            }
        })
        .collect()
}

fn crate_names_of(library: &Library, track: &Track) -> Vec<String> {
    track
        .crates
        .iter()
        .map(|&id| library.crate_name(id).to_owned())
        .collect()
}

/// What the reader should return for a fixture track.
fn expected(fixture: &FixtureTrack, id: i64) -> Track {
    Track {
        id,
        location: fixture.location.clone(),
        artist: fixture.artist.clone(),
        title: fixture.title.clone(),
        album: fixture.album.clone(),
        genre: fixture.genre.clone(),
        year: fixture.year.clone(),
        tracknumber: fixture.tracknumber.clone(),
        comment: fixture.comment.clone(),
        rating: fixture.rating,
        bpm: fixture.bpm,
        color: fixture.color,
        key: fixture.key.clone(),
        key_id: fixture.key_id,
        crates: Vec::new(),
        mixxx_deleted: fixture.mixxx_deleted == Some(1),
        fs_deleted: fixture.fs_deleted,
    }
}

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn dir_listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_era_reads_back_every_field() {
    let tmp = tempfile::tempdir().unwrap();
    for era in SchemaEra::ALL {
        let fixtures = sample_tracks();
        let (path, ids) = build(tmp.path(), era, fixtures.clone(), &["Empty crate", "Zzz"]);
        let db = MixxxDb::open(&path).unwrap();
        let schema = db.schema();
        assert_eq!(schema.version, Some(era.revision()), "{era:?}");
        assert!(schema.has_color && schema.has_key_id, "{era:?}");
        assert_eq!(
            schema.has_source_synchronized_ms,
            era != SchemaEra::Mixxx23,
            "{era:?}"
        );
        let library = db.read_library(&everything()).unwrap();

        assert_eq!(
            library.crate_names,
            [
                "   ",
                "Empty crate",
                "Peak time",
                "Warm up",
                "Zzz",
                "a/b",
                "Ünïcödé"
            ],
            "{era:?}: crate names sorted, empty crates included"
        );
        assert_eq!(library.tracks.len(), fixtures.len(), "{era:?}");
        for ((track, fixture), id) in rows(&library).iter().zip(&fixtures).zip(&ids) {
            let mut want_crates = fixture.crates.clone();
            want_crates.sort();
            want_crates.dedup();
            assert_eq!(crate_names_of(&library, track), want_crates, "{era:?} {id}");
            let without_crates = Track {
                crates: Vec::new(),
                ..track.clone()
            };
            assert_eq!(without_crates, expected(fixture, *id), "{era:?} {id}");
        }
    }
}

#[test]
fn locations_map_into_the_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, _) = build(tmp.path(), SchemaEra::Mixxx24, sample_tracks(), &[]);
    let library = read(&path);
    let mut mapper = PathMapper::new(Path::new("/elsewhere/repo"), Some(Path::new(ROOT)));
    let mapped: Vec<RepoPath> = library
        .tracks
        .iter()
        .map(|t| mapper.map(&t.location).unwrap())
        .collect();
    assert_eq!(mapped[0], RepoPath::from_bytes("House/Artist - Title.flac"));
    // Spelled as Mixxx stored it; the key map falls back to NFC (tests/safety.rs).
    assert_eq!(
        mapped[5],
        RepoPath::from_bytes("Bjo\u{308}rk/Jo\u{301}ga.aif")
    );
    assert_eq!(mapped[6], RepoPath::from_bytes(&b"latin1/caf\xe9.mp3"[..]));
}

#[test]
fn odd_values_and_old_schemas_do_not_fail_the_read() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("odd.sqlite");
    let conn = Connection::open(&path).unwrap();
    // A pre-rev-19 shape (no key_id, no color), no settings table, columns without type
    // affinity so that numbers land in text fields and text in numeric ones, plus a table
    // and a column the reader has never heard of.
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF;
         CREATE TABLE track_locations (id INTEGER PRIMARY KEY, location, fs_deleted);
         CREATE TABLE library (id INTEGER PRIMARY KEY, location, artist, title, year,
             tracknumber, rating, bpm, key, mixxx_deleted, future_column);
         CREATE TABLE crates (id, name);
         CREATE TABLE crate_tracks (crate_id, track_id);
         CREATE TABLE something_new (x);
         INSERT INTO track_locations VALUES (10, '/m/a.mp3', NULL), (11, '/m/b.mp3', 'yes'),
             (12, NULL, 0), (13, 42, 1);
         INSERT INTO library VALUES
             (1, 10, CAST(X'41FF42' AS TEXT), X'6869', 2024, 5, '4', 'fast', 8, NULL, 1),
             (2, 11, NULL, 12.5, 1999.0, '5/12', 4.7, '128.5', NULL, '1', NULL),
             (3, 12, 'no location text', NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL),
             (4, 13, 'numeric location', NULL, NULL, NULL, ' 3 ', 'inf', NULL, 'x', NULL),
             (5, 99, 'dangling location id', NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL),
             (6, NULL, 'no location', NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL);
         INSERT INTO crates VALUES (7, 'b'), (8, 'a'), (9, NULL), ('x', 'c');
         INSERT INTO crate_tracks VALUES (7, 1), (8, 1), (8, 1), (9, 1), (7, 77), (77, 2),
             ('7', 2), (NULL, 2);",
    )
    .unwrap();
    drop(conn);

    let db = MixxxDb::open(&path).unwrap();
    assert_eq!(db.schema().version, None);
    assert!(!db.schema().has_color && !db.schema().has_key_id);
    let library = db.read_library(&everything()).unwrap();
    assert_eq!(library.crate_names, ["a", "b"]);
    let ids: Vec<i64> = library.tracks.iter().map(|t| t.id).collect();
    assert_eq!(ids, [1, 2, 4], "rows without a usable location are skipped");

    let rows = rows(&library);
    let a = &rows[0];
    assert_eq!(a.artist.as_deref(), Some("A\u{fffd}B"));
    assert_eq!(a.title.as_deref(), Some("hi"));
    assert_eq!(a.year.as_deref(), Some("2024"));
    assert_eq!(a.tracknumber.as_deref(), Some("5"));
    assert_eq!(a.rating, Some(4));
    assert_eq!(a.bpm, None);
    assert_eq!(a.key.as_deref(), Some("8"));
    assert_eq!((a.color, a.key_id), (None, None));
    assert!(!a.mixxx_deleted && !a.fs_deleted);
    assert_eq!(crate_names_of(&library, a), ["a", "b"]);

    let b = &rows[1];
    assert_eq!(b.title.as_deref(), Some("12.5"));
    assert_eq!(b.year.as_deref(), Some("1999"));
    assert_eq!(b.rating, Some(4));
    assert_eq!(b.bpm, Some(128.5));
    assert!(b.mixxx_deleted);
    assert!(!b.fs_deleted, "unreadable flag counts as false");
    assert_eq!(
        crate_names_of(&library, b),
        ["b"],
        "'7' as text still names crate 7"
    );

    let numeric = &rows[2];
    assert_eq!(numeric.location, b"42");
    assert_eq!(numeric.rating, Some(3));
    assert_eq!(numeric.bpm, None);
    assert!(numeric.fs_deleted && !numeric.mixxx_deleted);
}

#[test]
fn newer_unknown_revision_and_missing_settings_row_still_read() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, _) = build(tmp.path(), SchemaEra::Newest, sample_tracks(), &[]);
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "UPDATE settings SET value = '57' WHERE name = 'mixxx.schema.version';
         ALTER TABLE library ADD COLUMN stems_layout TEXT;
         ALTER TABLE track_locations ADD COLUMN inode INTEGER;
         CREATE TABLE library_v2 (id INTEGER PRIMARY KEY);",
    )
    .unwrap();
    assert_eq!(MixxxDb::open(&path).unwrap().schema().version, Some(57));
    assert_eq!(read(&path).tracks.len(), sample_tracks().len());

    conn.execute_batch("DELETE FROM settings").unwrap();
    let db = MixxxDb::open(&path).unwrap();
    assert_eq!(db.schema().version, None);
    assert!(db.schema().has_source_synchronized_ms);
    assert_eq!(
        db.read_library(&everything()).unwrap().tracks.len(),
        sample_tracks().len()
    );
}

#[test]
fn reading_changes_nothing_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    for era in SchemaEra::ALL {
        let dir = tmp.path().join(format!("{era:?}"));
        std::fs::create_dir(&dir).unwrap();
        let (path, _) = build(&dir, era, sample_tracks(), &["Empty"]);
        let before = file_bytes(&path);
        let listing = dir_listing(&dir);
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        {
            let db = MixxxDb::open(&path).unwrap();
            db.read_library(&everything()).unwrap();
            // While the reader is open, it holds no lock and leaves no side files.
            assert_eq!(dir_listing(&dir), listing, "{era:?}");
            db.read_library(&everything()).unwrap();
        }
        assert_eq!(file_bytes(&path), before, "{era:?}: database bytes changed");
        assert_eq!(dir_listing(&dir), listing, "{era:?}: side files created");
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    }
}

#[test]
fn an_open_reader_does_not_block_mixxx_from_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, _) = build(tmp.path(), SchemaEra::Mixxx24, sample_tracks(), &[]);
    let db = MixxxDb::open(&path).unwrap();
    db.read_library(&everything()).unwrap();
    let mixxx = Connection::open(&path).unwrap();
    mixxx
        .execute_batch("BEGIN IMMEDIATE; UPDATE library SET rating = 3 WHERE id = 2; COMMIT;")
        .unwrap();
    assert_eq!(
        rows(&db.read_library(&everything()).unwrap())[1].rating,
        Some(3)
    );
}

#[test]
fn a_write_locked_database_reports_locked_within_bounded_time() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, _) = build(tmp.path(), SchemaEra::Mixxx23, sample_tracks(), &[]);
    let reader = MixxxDb::open_with_busy_timeout(&path, Duration::from_millis(100)).unwrap();

    let mixxx = Connection::open(&path).unwrap();
    mixxx.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let started = Instant::now();
    let err = MixxxDb::open_with_busy_timeout(&path, Duration::from_millis(100))
        .expect_err("opening must fail while locked");
    assert!(matches!(err, Error::MixxxDbLocked { .. }), "{err:?}");
    let err = reader.read_library(&everything()).unwrap_err();
    assert!(matches!(err, Error::MixxxDbLocked { .. }), "{err:?}");
    // A bound, not a speed target: the wait must end (0.2 s expected), whatever the load.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    // The default timeout gives up too, in a bounded time.
    let started = Instant::now();
    let err = MixxxDb::open(&path).expect_err("still locked");
    assert!(matches!(err, Error::MixxxDbLocked { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );

    mixxx.execute_batch("COMMIT").unwrap();
    assert_eq!(
        reader.read_library(&everything()).unwrap().tracks.len(),
        sample_tracks().len()
    );
}

#[test]
fn a_lock_released_during_the_wait_is_waited_for() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, _) = build(tmp.path(), SchemaEra::Newest, sample_tracks(), &[]);
    let mixxx = Connection::open(&path).unwrap();
    mixxx.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        mixxx.execute_batch("COMMIT").unwrap();
    });
    assert_eq!(read(&path).tracks.len(), sample_tracks().len());
    releaser.join().unwrap();
}

fn assert_not_mixxx(path: &Path, reason_contains: &str) {
    match MixxxDb::open(path) {
        Err(Error::MixxxDbNotMixxx { reason, .. }) => {
            assert!(reason.contains(reason_contains), "{reason}")
        }
        Err(other) => panic!("{}: expected NotMixxx, got {other:?}", path.display()),
        Ok(_) => panic!("{}: expected NotMixxx, opened fine", path.display()),
    }
}

#[test]
fn files_that_are_not_mixxx_databases_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    assert_not_mixxx(dir, "directory");

    let empty = dir.join("empty.sqlite");
    std::fs::write(&empty, b"").unwrap();
    assert_not_mixxx(&empty, "empty");

    let text = dir.join("notes.txt");
    std::fs::write(
        &text,
        "this is not a database, it is a long enough text file\n",
    )
    .unwrap();
    assert_not_mixxx(&text, "not an SQLite database");

    let other = dir.join("other.sqlite");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE songs (id INTEGER PRIMARY KEY, path TEXT)")
        .unwrap();
    assert_not_mixxx(&other, "library");

    let half = dir.join("half.sqlite");
    Connection::open(&half)
        .unwrap()
        .execute_batch("CREATE TABLE library (id INTEGER PRIMARY KEY, location INTEGER)")
        .unwrap();
    assert_not_mixxx(&half, "track_locations");

    let no_location = dir.join("no_location.sqlite");
    Connection::open(&no_location)
        .unwrap()
        .execute_batch(
            "CREATE TABLE library (id INTEGER PRIMARY KEY, artist TEXT);
             CREATE TABLE track_locations (id INTEGER PRIMARY KEY, location TEXT);",
        )
        .unwrap();
    assert_not_mixxx(&no_location, "location");

    // SQLite's own verdict on a file with a valid magic string but a nonsense header.
    let bad_header = dir.join("bad_header.sqlite");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend(std::iter::repeat_n(0xAB_u8, 4096));
    std::fs::write(&bad_header, bytes).unwrap();
    assert!(matches!(
        MixxxDb::open(&bad_header).and_then(|db| db.read_library(&everything())),
        Err(Error::MixxxDbNotMixxx { .. } | Error::MixxxDbUnreadable { .. })
    ));
}

#[test]
fn missing_path_is_reported_as_missing() {
    let tmp = tempfile::tempdir().unwrap();
    for path in [
        tmp.path().join("nope.sqlite"),
        tmp.path().join("no/such/folder/mixxxdb.sqlite"),
    ] {
        assert!(matches!(
            MixxxDb::open(&path),
            Err(Error::MixxxDbMissing { .. })
        ));
    }
    let dangling = tmp.path().join("dangling.sqlite");
    std::os::unix::fs::symlink(tmp.path().join("gone"), &dangling).unwrap();
    assert!(matches!(
        MixxxDb::open(&dangling),
        Err(Error::MixxxDbMissing { .. })
    ));
}

#[test]
fn a_corrupted_database_is_unreadable() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, _) = build(tmp.path(), SchemaEra::Mixxx24, sample_tracks(), &[]);
    let mut bytes = file_bytes(&path);
    // Keep the 100-byte file header, destroy the schema table on page 1.
    let page1_end = 4096.min(bytes.len());
    bytes[100..page1_end].fill(0x5A);
    std::fs::write(&path, bytes).unwrap();
    let err = MixxxDb::open(&path)
        .and_then(|db| db.read_library(&everything()))
        .expect_err("corruption must be reported");
    assert!(matches!(err, Error::MixxxDbUnreadable { .. }), "{err:?}");
    assert!(err.to_string().contains("corrupt"), "{err}");
}

#[test]
/// A full-size library reads in one pass with every crate membership (speed is the
/// benchmark's job, not a test's: `cargo run --release --example bench`).
fn a_hundred_thousand_tracks_read_with_their_crates() {
    let tmp = tempfile::tempdir().unwrap();
    let crates = ["Warm up", "Peak time", "Closing", "Deep", "Vocal"];
    let tracks: Vec<FixtureTrack> = (0..100_000)
        .map(|i| FixtureTrack {
            location: location(format!("Folder {}/Track {i}.flac", i % 500).as_bytes()),
            artist: Some(format!("Artist {}", i % 1000)),
            title: Some(format!("Title {i}")),
            rating: Some(i % 6),
            bpm: Some(120.0 + (i % 20) as f64),
            crates: crates[..(i as usize % 4)]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ..Default::default()
        })
        .collect();
    let (path, ids) = build(tmp.path(), SchemaEra::Mixxx24, tracks, &[]);
    let library = read(&path);
    let mut mapper = PathMapper::new(Path::new(ROOT), None);
    for track in &library.tracks {
        mapper.map(&track.location).unwrap();
    }
    assert_eq!(library.tracks.len(), ids.len());
    assert_eq!(library.tracks[3].crates.len(), 3);
    assert_eq!(
        library.crate_names.len(),
        3,
        "only crates with members were used"
    );
}
