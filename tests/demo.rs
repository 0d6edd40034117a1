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

    // A second demo into the same, now non-empty directory is refused.
    assert_cmd::Command::cargo_bin("music-commander")
        .unwrap()
        .arg("demo")
        .arg(&dir)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not empty"));
}
