//! The README's first command: `demo` builds a sample library and syncs it for real.

use predicates::prelude::*;

#[test]
fn demo_syncs_a_sample_library_and_queries_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let out = assert_cmd::Command::cargo_bin("music-commander")
        .unwrap()
        .env("HOME", tmp.path())
        .arg("demo")
        .arg(&dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("Would write 30 files.\n"), "{out}");
    assert!(out.contains("Wrote 30 files."), "{out}");
    assert!(
        out.contains("removed from the Mixxx library               1"),
        "{out}"
    );
    assert!(
        out.contains("outside the music root                       1"),
        "{out}"
    );
    assert!(
        out.contains("Nothing to sync: 30 tracks already match"),
        "{out}"
    );
    let rated = out
        .split("$ git annex find --metadata rating=5\n")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap();
    assert_eq!(rated.lines().count(), 5, "{rated}");
    assert!(dir.join("Music/.git/annex").is_dir());

    // The second machine: the desktop's gig preparation arrives in the laptop's Mixxx.
    let laptop = out
        .split("── A second machine")
        .nth(1)
        .expect("the laptop walk-through");
    assert!(
        laptop.contains("Would import 3 files into Mixxx (6 field changes).\n"),
        "{laptop}"
    );
    assert!(
        laptop.contains("crate: +\"Friday gig\" −Warm-up"),
        "{laptop}"
    );
    assert!(
        laptop.contains("Imported 3 files into Mixxx (3 tracks, 6 field changes).\n"),
        "{laptop}"
    );
    assert!(
        laptop.contains("Backup of the Mixxx database first: "),
        "{laptop}"
    );
    let after_import = laptop
        .split("laptop$ music-commander sync    # both sides agree")
        .nth(1)
        .unwrap();
    assert!(
        after_import.contains("Nothing to sync: 30 tracks already match"),
        "{after_import}"
    );
    let db = rusqlite::Connection::open(dir.join("laptop/mixxxdb.sqlite")).unwrap();
    let gig: Vec<(String, i64)> = db
        .prepare(
            "SELECT tl.location, l.rating FROM crate_tracks ct JOIN crates c ON c.id = ct.crate_id \
             JOIN library l ON l.id = ct.track_id JOIN track_locations tl ON tl.id = l.location \
             WHERE c.name = 'Friday gig' ORDER BY tl.location",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(
        gig,
        vec![
            (
                "/media/usb/Music/Bonobo/Migration/03 Kerala.flac".to_string(),
                5
            ),
            (
                "/media/usb/Music/Kraftwerk/Trans-Europe Express/01 Europe Endless.flac"
                    .to_string(),
                5
            ),
            (
                "/media/usb/Music/Röyksopp/Melody A.M./02 Eple.flac".to_string(),
                5
            ),
        ],
        "the crate and the ratings are in the laptop's Mixxx"
    );

    // A second demo into the same, now non-empty directory is refused.
    assert_cmd::Command::cargo_bin("music-commander")
        .unwrap()
        .arg("demo")
        .arg(&dir)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not empty"));
}
