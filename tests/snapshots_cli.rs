//! Whole outputs of the commands a user reads most, as inline snapshots: temp paths, clone
//! uuids, times and durations are normalised so that only a change in what we print fails.

mod common;

use common::Sandbox;
use testutils::annex_repo;
use testutils::mixxx_db::SchemaEra;

/// Replaces the sandbox's temp dir with `[TMP]`; [`snap!`] normalises the rest.
fn normalise(text: &[u8], sb: &Sandbox) -> String {
    let base = sb.tmp.path().canonicalize().unwrap();
    String::from_utf8_lossy(text).replace(base.to_str().unwrap(), "[TMP]")
}

fn stdout(sb: &Sandbox, args: &[&str]) -> String {
    let out = sb.cmd().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    normalise(&out.stdout, sb)
}

fn stderr(sb: &Sandbox, cmd: &mut assert_cmd::Command, code: i32) -> String {
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(code));
    normalise(&out.stderr, sb)
}

/// An inline snapshot with uuids, times, durations and the version normalised.
macro_rules! snap {
    ($value:expr, @$snapshot:literal) => {
        insta::with_settings!({filters => vec![
            (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[UUID]"),
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", "[TIME]"),
            (r#""(seconds|elapsed_seconds|peak_memory_mib)": [0-9.e-]+"#, r#""$1": [N]"#),
            (r"elapsed\s+[0-9.]+s", "elapsed [SECS]"),
            (r"music-commander \d+\.\d+\.\d+", "music-commander [VERSION]"),
            (r#""tool_version": "[^"]+""#, r#""tool_version": "[VERSION]""#),
        ]}, {
            insta::assert_snapshot!($value, @$snapshot);
        })
    };
}

#[test]
fn sync_json() {
    let sb = Sandbox::new(2, SchemaEra::Newest);
    snap!(stdout(&sb, &["sync", "--json"]), @r##"
    {
      "dry_run": false,
      "interrupted": false,
      "tracks": 2,
      "files": {
        "to_write": 2,
        "written": 2,
        "unchanged": 0,
        "failed": 0,
        "not_written": 0,
        "incoming": 0,
        "conflicts": 0,
        "duplicates": 0
      },
      "skipped": {
        "removed-from-mixxx": 0,
        "outside-root": 0,
        "not-in-repository": 0,
        "not-annexed": 0,
        "key-not-utf8": 0
      },
      "skipped_tracks": [],
      "commits": 1,
      "elapsed_seconds": [N],
      "changes": [
        {
          "paths": [
            "Daft Punk/Album 0/0000 Track.flac"
          ],
          "key": "SHA256E-s8--696c4d4dc59b253ef5dfb4973bebf40b45d659896b7a3183ab241a96dc1bbf24.flac",
          "fields": {
            "album": {
              "direction": "outgoing",
              "mixxx": [
                "Album 0"
              ],
              "repo": [],
              "base": null
            },
            "artist": {
              "direction": "outgoing",
              "mixxx": [
                "Artist 0"
              ],
              "repo": [],
              "base": null
            },
            "bpm": {
              "direction": "outgoing",
              "mixxx": [
                "100.00"
              ],
              "repo": [],
              "base": null
            },
            "comment": {
              "direction": "outgoing",
              "mixxx": [
                "comment 0"
              ],
              "repo": [],
              "base": null
            },
            "genre": {
              "direction": "outgoing",
              "mixxx": [
                "House"
              ],
              "repo": [],
              "base": null
            },
            "key": {
              "direction": "outgoing",
              "mixxx": [
                "C"
              ],
              "repo": [],
              "base": null
            },
            "title": {
              "direction": "outgoing",
              "mixxx": [
                "Title 0"
              ],
              "repo": [],
              "base": null
            },
            "tracknumber": {
              "direction": "outgoing",
              "mixxx": [
                "1"
              ],
              "repo": [],
              "base": null
            },
            "year": {
              "direction": "outgoing",
              "mixxx": [
                "1990"
              ],
              "repo": [],
              "base": null
            }
          },
          "set": {
            "album": [
              "Album 0"
            ],
            "artist": [
              "Artist 0"
            ],
            "bpm": [
              "100.00"
            ],
            "comment": [
              "comment 0"
            ],
            "genre": [
              "House"
            ],
            "key": [
              "C"
            ],
            "title": [
              "Title 0"
            ],
            "tracknumber": [
              "1"
            ],
            "year": [
              "1990"
            ]
          },
          "removed": [],
          "before": {
            "album": [],
            "artist": [],
            "bpm": [],
            "comment": [],
            "genre": [],
            "key": [],
            "title": [],
            "tracknumber": [],
            "year": []
          }
        },
        {
          "paths": [
            "Röyksopp/Album 1/0001 Track.flac"
          ],
          "key": "SHA256E-s8--7a5f5af4f748b09c874e0a68b17546a1ba1ca00a2d72669694ab5aa04af2ca2a.flac",
          "fields": {
            "album": {
              "direction": "outgoing",
              "mixxx": [
                "Album 1"
              ],
              "repo": [],
              "base": null
            },
            "artist": {
              "direction": "outgoing",
              "mixxx": [
                "Artist 1"
              ],
              "repo": [],
              "base": null
            },
            "bpm": {
              "direction": "outgoing",
              "mixxx": [
                "101.00"
              ],
              "repo": [],
              "base": null
            },
            "color": {
              "direction": "outgoing",
              "mixxx": [
                "#112233"
              ],
              "repo": [],
              "base": null
            },
            "crate": {
              "direction": "outgoing",
              "mixxx": [
                "Festival"
              ],
              "repo": [],
              "base": null
            },
            "genre": {
              "direction": "outgoing",
              "mixxx": [
                "Techno"
              ],
              "repo": [],
              "base": null
            },
            "key": {
              "direction": "outgoing",
              "mixxx": [
                "Db"
              ],
              "repo": [],
              "base": null
            },
            "rating": {
              "direction": "outgoing",
              "mixxx": [
                "1"
              ],
              "repo": [],
              "base": null
            },
            "title": {
              "direction": "outgoing",
              "mixxx": [
                "Title 1"
              ],
              "repo": [],
              "base": null
            },
            "tracknumber": {
              "direction": "outgoing",
              "mixxx": [
                "2"
              ],
              "repo": [],
              "base": null
            },
            "year": {
              "direction": "outgoing",
              "mixxx": [
                "1991"
              ],
              "repo": [],
              "base": null
            }
          },
          "set": {
            "album": [
              "Album 1"
            ],
            "artist": [
              "Artist 1"
            ],
            "bpm": [
              "101.00"
            ],
            "color": [
              "#112233"
            ],
            "crate": [
              "Festival"
            ],
            "genre": [
              "Techno"
            ],
            "key": [
              "Db"
            ],
            "rating": [
              "1"
            ],
            "title": [
              "Title 1"
            ],
            "tracknumber": [
              "2"
            ],
            "year": [
              "1991"
            ]
          },
          "removed": [],
          "before": {
            "album": [],
            "artist": [],
            "bpm": [],
            "color": [],
            "crate": [],
            "genre": [],
            "key": [],
            "rating": [],
            "title": [],
            "tracknumber": [],
            "year": []
          }
        }
      ],
      "counts": {
        "outgoing": 20,
        "incoming": 0,
        "conflicts": 0
      },
      "incoming": [],
      "conflicts": [],
      "duplicates": [],
      "failed": [],
      "timings": [
        {
          "phase": "mixxx read",
          "seconds": [N]
        },
        {
          "phase": "key map (alongside)",
          "seconds": [N]
        },
        {
          "phase": "resolve",
          "seconds": [N]
        },
        {
          "phase": "metadata read",
          "seconds": [N]
        },
        {
          "phase": "plan",
          "seconds": [N]
        },
        {
          "phase": "write + commit",
          "seconds": [N]
        },
        {
          "phase": "base and stamp saved",
          "seconds": [N]
        }
      ],
      "peak_memory_mib": [N]
    }
    "##);
}

#[test]
fn dry_run_with_a_removed_value() {
    let sb = Sandbox::new(2, SchemaEra::Newest);
    stdout(&sb, &["sync", "-q"]);
    sb.set_column(1, "comment", rusqlite::types::Value::Text("new".into()));
    sb.set_column(1, "rating", rusqlite::types::Value::Integer(0));
    sb.remove_from_crate(1, "Festival");
    snap!(stdout(&sb, &["sync", "--dry-run"]), @"
    Would write 1 file.
      files to write                                 1
      files unchanged                                1
      incoming changes (not written)                 0
      conflicts (not written)                        0
      tracks skipped                                 0
      same content, different values                 0
      elapsed [SECS]
    Changes:
      Röyksopp/Album 1/0001 Track.flac
          rating: removed
          comment: new
          crate: −Festival
    ");
}

#[test]
fn status_json_and_table() {
    let sb = Sandbox::new(2, SchemaEra::Newest);
    stdout(&sb, &["sync", "-q"]);
    sb.set_column(0, "rating", rusqlite::types::Value::Integer(5));
    snap!(stdout(&sb, &["status", "--json"]), @r#"
    {
      "repository": "[TMP]/Music",
      "uuid": "[UUID]",
      "mixxx_db": "[TMP]/mixxxdb.sqlite",
      "mixxx_db_found": true,
      "tracks": 2,
      "files_to_write": 1,
      "files_unchanged": 1,
      "tracks_skipped": 0,
      "skipped": {
        "removed-from-mixxx": 0,
        "outside-root": 0,
        "not-in-repository": 0,
        "not-annexed": 0,
        "key-not-utf8": 0
      },
      "skipped_tracks": [],
      "pending": [
        {
          "paths": [
            "Daft Punk/Album 0/0000 Track.flac"
          ],
          "key": "SHA256E-s8--696c4d4dc59b253ef5dfb4973bebf40b45d659896b7a3183ab241a96dc1bbf24.flac",
          "fields": {
            "rating": {
              "direction": "outgoing",
              "mixxx": [
                "5"
              ],
              "repo": [],
              "base": []
            }
          },
          "set": {
            "rating": [
              "5"
            ]
          },
          "removed": [],
          "before": {
            "rating": []
          }
        }
      ],
      "counts": {
        "outgoing": 1,
        "incoming": 0,
        "conflicts": 0
      },
      "incoming": [],
      "conflicts": [],
      "duplicates": [],
      "syncs": [
        {
          "uuid": "[UUID]",
          "description": "fixture",
          "time": "[TIME]",
          "mixxx_db": "[TMP]/mixxxdb.sqlite",
          "tool_version": "[VERSION]",
          "tracks": 2,
          "written": 2,
          "failed": 0
        }
      ]
    }
    "#);
    snap!(stdout(&sb, &["status"]), @"
    Repository:     [TMP]/Music (this clone: [UUID])
    Mixxx database: [TMP]/mixxxdb.sqlite
    Mixxx and the repository differ: 1 change outgoing (a sync writes them); 1 file unchanged, 0 tracks skipped.
    Changes:
      Daft Punk/Album 0/0000 Track.flac
          rating: 5
    Last sync of each clone:
      fixture ([UUID]) [this clone]
          [TIME]  2 tracks, 2 files changed, music-commander [VERSION], from [TMP]/mixxxdb.sqlite
    ");
}

#[test]
fn missing_mixxx_database() {
    let sb = Sandbox::new(0, SchemaEra::Newest);
    let mut cmd = sb.cmd();
    cmd.arg("--mixxx-db")
        .arg(sb.home.join("nope.sqlite"))
        .arg("sync");
    snap!(stderr(&sb, &mut cmd, 2), @r#"
error: Mixxx database not found: [TMP]/home/nope.sqlite
hint: pass --mixxx-db FILE or set [paths] mixxx_db in the config (Mixxx keeps it at ~/.mixxx/mixxxdb.sqlite on Linux)
"#);
}

#[test]
fn not_a_mixxx_database() {
    let sb = Sandbox::new(0, SchemaEra::Newest);
    let text = sb.home.join("notes.sqlite");
    std::fs::write(&text, "not sqlite at all").unwrap();
    let mut cmd = sb.cmd();
    cmd.arg("--mixxx-db").arg(&text).arg("sync");
    snap!(stderr(&sb, &mut cmd, 2), @r#"
error: not a Mixxx database: [TMP]/home/notes.sqlite (not an SQLite database)
hint: point --mixxx-db at Mixxx's mixxxdb.sqlite (start Mixxx once to create it)
"#);
}

#[test]
fn not_a_git_repository() {
    let sb = Sandbox::new(0, SchemaEra::Newest);
    let mut cmd = sb.cmd();
    cmd.current_dir(&sb.home).arg("sync");
    snap!(stderr(&sb, &mut cmd, 3), @r#"
error: not a git repository: [TMP]/home
hint: run inside your git-annex music repository, or pass --repo DIR (or set [paths] music_repo)
"#);
}

#[test]
fn not_git_annex() {
    let sb = Sandbox::new(0, SchemaEra::Newest);
    let plain = sb.home.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    annex_repo::git(&plain, &["init", "-q"]).unwrap();
    let mut cmd = sb.cmd();
    cmd.current_dir(&plain).arg("sync");
    snap!(stderr(&sb, &mut cmd, 3), @r#"
error: git-annex is not initialized in [TMP]/home/plain
hint: run `git annex init` in the repository
"#);
}

#[test]
fn bad_config_names_line_and_column() {
    let sb = Sandbox::new(0, SchemaEra::Newest);
    let config = sb.home.join("bad.toml");
    std::fs::write(&config, "[paths]\nmixxx_db = \"unterminated\n").unwrap();
    let mut cmd = sb.cmd();
    cmd.arg("--config").arg(&config).arg("sync");
    snap!(stderr(&sb, &mut cmd, 2), @r#"
    error: config file [TMP]/home/bad.toml: line 2, column 25, paths.mixxx_db: invalid basic string, expected `"`
    hint: fix the file, or run `music-commander init-config --force -o [TMP]/home/bad.toml` for a fresh commented one
    "#);
}

#[test]
fn a_config_that_cannot_be_written_is_exit_2_and_says_why_once() {
    let sb = Sandbox::new(0, SchemaEra::Newest);
    let blocker = sb.home.join("file");
    std::fs::write(&blocker, "").unwrap();
    let mut cmd = sb.cmd();
    cmd.args(["-v", "init-config", "-o"])
        .arg(blocker.join("config.toml"));
    snap!(stderr(&sb, &mut cmd, 2), @"error: cannot create [TMP]/home/file: File exists (os error 17)");
}
