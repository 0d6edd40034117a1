//! `music-commander demo`: a sample Mixxx library and git-annex repository, synced for real,
//! so a newcomer sees what the tool does without owning Mixxx.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::annex::Repo;
use crate::annex::cache::Freshness;
use crate::annex::sample as annex_repo;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::mixxx::Value;
use crate::mixxx::backup::LocalBackups;
use crate::mixxx::sample::{SampleDb, SampleTrack as FixtureTrack};
use crate::mixxx::write::{self, CellEdit, CrateEdit, Edits, Guard};
use crate::report::{self, Detail, TerminalProgress};
use crate::sync::fields::ManagedFields;
use crate::sync::import::{self, ImportOptions};
use crate::sync::plan::Selection;
use crate::sync::{self, Inputs, Options};

/// (artist, album, [titles]) of the sample collection; names exercise nesting and Unicode.
const ALBUMS: &[(&str, &str, &[&str])] = &[
    (
        "Daft Punk",
        "Discovery",
        &[
            "One More Time",
            "Aerodynamic",
            "Digital Love",
            "Harder, Better, Faster",
        ],
    ),
    (
        "Röyksopp",
        "Melody A.M.",
        &["So Easy", "Eple", "Poor Leno", "Remind Me"],
    ),
    ("Sigur Rós", "Takk…", &["Glósóli", "Hoppípolla", "Sæglópur"]),
    ("坂本龍一", "Async", &["andata", "disintegration", "solari"]),
    (
        "Kraftwerk",
        "Trans-Europe Express",
        &[
            "Europe Endless",
            "Showroom Dummies",
            "Trans-Europe Express",
            "Franz Schubert",
        ],
    ),
    (
        "Bonobo",
        "Migration",
        &["Migration", "Break Apart", "Kerala", "Bambro Koyo Ganda"],
    ),
    ("Moderat", "II", &["Bad Kingdom", "Milk", "Gita"]),
    (
        "Nils Frahm",
        "Spaces",
        &["An Aborted Beginning", "Says", "Hammers"],
    ),
    (
        "Åsa & The Øresund Trio",
        "Nordlys (Live)",
        &["Første", "Ånd", "Slutt"],
    ),
];

const CRATES: &[&str] = &[
    "Festival",
    "Warm-up",
    "Deep & Dub/Late night",
    "Ünïcode ☃ picks",
];

/// Runs the demo in `dir` (a new temporary directory when `None`).
pub fn run(dir: Option<&Path>, quiet: bool) -> Result<ExitCode> {
    let dir = match dir {
        Some(d) => {
            if d.exists()
                && std::fs::read_dir(d)
                    .map(|mut r| r.next().is_some())
                    .unwrap_or(true)
            {
                return Err(Error::Usage {
                    message: format!("demo directory {} is not empty", d.display()),
                    hint: Some("give a new or empty directory, or none for a temporary one".into()),
                });
            }
            std::fs::create_dir_all(d)
                .map_err(|e| Error::io(format!("cannot create {}", d.display()), e))?;
            d.canonicalize()
                .map_err(|e| Error::io(format!("cannot resolve {}", d.display()), e))?
        }
        None => tempfile::Builder::new()
            .prefix("music-commander-demo-")
            .tempdir()
            .map_err(|e| Error::io("cannot create a temporary directory", e))?
            .keep(),
    };
    let say = |text: &str| {
        if !quiet {
            say!("{text}");
        }
    };

    let repo_dir = dir.join("Music");
    let db_path = dir.join("mixxxdb.sqlite");
    say(&format!(
        "Building a sample collection in {}",
        dir.display()
    ));
    let (files, library, ids) = build(&repo_dir, &db_path)?;
    say(&format!(
        "  {files} annexed files in {}\n  Mixxx database ({} tracks, {} crates) at {}\n",
        repo_dir.display(),
        library.len(),
        CRATES.len(),
        db_path.display()
    ));

    let inputs = Inputs {
        repo: Repo::discover(&repo_dir)?,
        mixxx_db: db_path.clone(),
        music_root: None,
        managed: ManagedFields::all(),
        writer: Default::default(),
    };
    let detail = Detail {
        quiet,
        ..Detail::default()
    };
    let mut options = Options {
        dry_run: true,
        batch_size: None,
        jobs: 1,
        selection: Selection::default(),
        freshness: Freshness::UseCache,
        prefer: Default::default(),
    };
    let cancel = AtomicBool::new(false);
    let progress = TerminalProgress::new(!quiet);

    say("$ music-commander sync --dry-run");
    let outcome = sync::run(&inputs, &options, &progress, &cancel)?;
    say(&report::render_outcome(
        &outcome,
        &Detail {
            preview: 2,
            ..detail.clone()
        },
    ));

    say("$ music-commander sync");
    options.dry_run = false;
    let outcome = sync::run(&inputs, &options, &progress, &cancel)?;
    let failed = !outcome.failed.is_empty();
    say(&report::render_outcome(
        &outcome,
        &Detail {
            preview: 0,
            ..detail.clone()
        },
    ));

    say("$ music-commander sync    # again: nothing changed, nothing written");
    let again = sync::run(&inputs, &options, &progress, &cancel)?;
    say(&report::render_outcome(&again, &detail));

    for query in ["rating=5", "crate=Festival"] {
        say(&format!("$ git annex find --metadata {query}"));
        let found = annex_repo::git(
            &repo_dir,
            &["annex", "find", "--anything", "--metadata", query],
        )?;
        say(&found);
    }
    let example = "Röyksopp/Melody A.M./02 Eple.flac";
    say(&format!("$ git annex metadata \"{example}\""));
    say(&annex_repo::git(
        &repo_dir,
        &["annex", "metadata", example],
    )?);

    let laptop_failed = second_machine(&dir, &inputs, &library, &ids, &detail, &say)?;

    say(&format!(
        "Try it on your own library (nothing is written with --dry-run):\n  \
         cd /path/to/your/git-annex/music\n  \
         music-commander --mixxx-db ~/.mixxx/mixxxdb.sqlite sync --dry-run\n\
         The sample stays in {} for you to explore.",
        dir.display()
    ));
    let failed = failed || laptop_failed;
    Ok(if failed {
        ExitCode::Failure
    } else {
        ExitCode::Success
    })
}

/// Where the laptop's Mixxx saw the collection (a USB disk), unlike the desktop's.
const LAPTOP_ROOT: &str = "/media/usb/Music";

/// The second machine: a laptop clone with its own Mixxx database (the same curation, under
/// another music root). The desktop's DJ prepares Friday's gig, syncs and shares the
/// git-annex branch; the laptop's `import` brings it into the laptop's Mixxx. Returns whether
/// a sync failed.
fn second_machine(
    dir: &Path,
    desktop: &Inputs,
    library: &[FixtureTrack],
    ids: &[i64],
    detail: &Detail,
    say: &dyn Fn(&str),
) -> Result<bool> {
    let laptop_dir = dir.join("laptop");
    let laptop_repo = laptop_dir.join("Music");
    let laptop_db = laptop_dir.join("mixxxdb.sqlite");
    say(&format!(
        "── A second machine: a laptop clone in {} with its own Mixxx, which saw the collection under {LAPTOP_ROOT}",
        laptop_repo.display()
    ));
    std::fs::create_dir_all(&laptop_dir)
        .map_err(|e| Error::io(format!("cannot create {}", laptop_dir.display()), e))?;
    annex_repo::git(
        dir,
        &[
            "clone",
            "-q",
            "Music",
            laptop_repo.to_str().unwrap_or("laptop/Music"),
        ],
    )?;
    annex_repo::git(&laptop_repo, &["config", "user.name", "music-commander"])?;
    annex_repo::git(
        &laptop_repo,
        &["config", "user.email", "mc@example.invalid"],
    )?;
    annex_repo::git(&laptop_repo, &["annex", "init", "-q", "laptop"])?;
    // A fresh clone's first `git annex sync` sets up its synced branches; only later ones
    // are sure to fetch the other side's new git-annex commits.
    let annex_sync = || {
        annex_repo::git(
            &laptop_repo,
            &["annex", "sync", "-q", "--only-annex", "--no-content"],
        )
    };
    annex_sync()?;
    let desktop_root = desktop.repo.root.as_os_str().as_encoded_bytes();
    let tracks = library
        .iter()
        .map(|t| {
            let mut t = t.clone();
            if let Some(rel) = t.location.strip_prefix(desktop_root) {
                t.location = [LAPTOP_ROOT.as_bytes(), rel].concat();
            }
            t
        })
        .collect();
    SampleDb {
        tracks,
        ..SampleDb::default()
    }
    .build(&laptop_db)?;
    let laptop = Inputs {
        repo: Repo::discover(&laptop_repo)?,
        mixxx_db: laptop_db,
        music_root: Some(PathBuf::from(LAPTOP_ROOT)),
        managed: ManagedFields::all(),
        writer: Default::default(),
    };
    let options = Options {
        dry_run: false,
        batch_size: None,
        jobs: 1,
        selection: Selection::default(),
        freshness: Freshness::UseCache,
        prefer: Default::default(),
    };
    let cancel = AtomicBool::new(false);
    let progress = TerminalProgress::new(!detail.quiet);
    say("laptop$ music-commander sync    # once: the same curation, so nothing to write");
    let first = sync::run(&laptop, &options, &progress, &cancel)?;
    say(&report::render_outcome(&first, detail));

    // The DJ, in the desktop's Mixxx: rates two tracks 5 and colors one, builds a crate for
    // Friday's gig and takes one track out of Warm-up.
    let (europe, eple, kerala) = (ids[14], ids[5], ids[20]);
    let edits = Edits {
        cells: vec![
            CellEdit {
                track: europe,
                column: "rating",
                value: Value::Integer(5),
            },
            CellEdit {
                track: kerala,
                column: "rating",
                value: Value::Integer(5),
            },
            CellEdit {
                track: kerala,
                column: "color",
                value: Value::Integer(0xFFAA00),
            },
        ],
        crates: [europe, eple, kerala]
            .into_iter()
            .map(|track| CrateEdit {
                track,
                name: "Friday gig".into(),
                member: true,
            })
            .chain(std::iter::once(CrateEdit {
                track: eple,
                name: "Warm-up".into(),
                member: false,
            }))
            .collect(),
        cues: Vec::new(),
    };
    let backups = LocalBackups::new(&desktop.repo.common_dir, &desktop.mixxx_db);
    write::apply(
        &desktop.mixxx_db,
        &edits,
        &Guard {
            // The demo's own databases: no Mixxx has them open.
            process_name: None,
            backups: &backups,
            keep: crate::mixxx::backup::DEFAULT_KEEP,
            reason: "demo",
            busy_timeout: crate::mixxx::DEFAULT_BUSY_TIMEOUT,
            crate_key: crate::sync::fields::clean_text,
        },
    )?;
    say(
        "desktop$ music-commander sync    # after rating and crating three tracks for Friday's gig",
    );
    let sent = sync::run(desktop, &options, &progress, &cancel)?;
    say(&report::render_outcome(&sent, detail));

    say(
        "laptop$ git annex sync --only-annex --no-content    # fetch the desktop's git-annex branch",
    );
    annex_sync()?;
    say("");
    let import_options = ImportOptions {
        dry_run: true,
        selection: Selection::default(),
        prefer: Default::default(),
        // The demo's laptop database is its own: no Mixxx has it open.
        process_name: None,
        keep: crate::mixxx::backup::DEFAULT_KEEP,
    };
    say("laptop$ music-commander import --dry-run");
    let planned = import::run(&laptop, &import_options, &progress)?;
    say(&report::render_import(&planned, detail));
    say("laptop$ music-commander import    # Mixxx closed: a backup, then one transaction");
    let imported = import::run(
        &laptop,
        &ImportOptions {
            dry_run: false,
            ..import_options
        },
        &progress,
    )?;
    say(&report::render_import(
        &imported,
        &Detail {
            preview: 0,
            ..detail.clone()
        },
    ));
    say("laptop$ music-commander sync    # both sides agree now: nothing to write");
    let after = sync::run(&laptop, &options, &progress, &cancel)?;
    say(&report::render_outcome(&after, detail));
    Ok(!first.failed.is_empty() || !sent.failed.is_empty() || !after.failed.is_empty())
}

/// Creates the repository and the Mixxx database; returns the number of annexed files, the
/// Mixxx tracks and their library ids.
fn build(repo_dir: &Path, db_path: &Path) -> Result<(usize, Vec<FixtureTrack>, Vec<i64>)> {
    annex_repo::init(repo_dir)?;
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut tracks = Vec::new();
    let mut n = 0usize;
    for (artist, album, titles) in ALBUMS {
        for (i, title) in titles.iter().enumerate() {
            let rel = PathBuf::from(artist)
                .join(album)
                .join(format!("{:02} {title}.flac", i + 1));
            files.push((
                rel.clone(),
                format!("sample audio {n}: {artist} — {title}\n").into_bytes(),
            ));
            let crates: Vec<String> = CRATES
                .iter()
                .enumerate()
                .filter(|(c, _)| (n + c).is_multiple_of(3))
                .map(|(_, name)| name.to_string())
                .collect();
            tracks.push(FixtureTrack {
                location: repo_dir.join(&rel).into_os_string().into_encoded_bytes(),
                artist: Some(artist.to_string()),
                title: Some(title.to_string()),
                album: Some(album.to_string()),
                genre: Some(["House", "Electronic", "Ambient", "Techno"][n % 4].to_string()),
                year: Some((1977 + (n * 7) % 45).to_string()),
                tracknumber: Some((i + 1).to_string()),
                comment: n.is_multiple_of(5).then(|| "Great\nopener".to_string()),
                rating: Some((n % 6) as i64),
                bpm: (!n.is_multiple_of(7)).then_some(90.0 + (n * 37 % 45) as f64 + 0.5),
                color: [Some(0xFF0000), None, Some(0x00AAFF), Some(0x32BE44)][n % 4],
                key: Some(["Am", "C♯m", "E♭", "8A"][n % 4].to_string()),
                key_id: Some((n % 25) as i64),
                crates,
                mixxx_deleted: None,
                fs_deleted: false,
                samplerate: Some(44100),
                cues: Vec::new(),
            });
            n += 1;
        }
    }
    // One track the DJ removed from the library, one outside the collection.
    tracks[3].mixxx_deleted = Some(1);
    tracks.push(FixtureTrack {
        location: b"/tmp/Downloads/not in the collection.mp3".to_vec(),
        title: Some("Outside".into()),
        rating: Some(5),
        ..FixtureTrack::default()
    });
    let refs: Vec<(&Path, &[u8])> = files
        .iter()
        .map(|(p, c)| (p.as_path(), c.as_slice()))
        .collect();
    annex_repo::add_files(repo_dir, &refs)?;
    let builder = SampleDb {
        tracks,
        ..SampleDb::default()
    };
    let ids = builder.build(db_path)?;
    Ok((files.len(), builder.tracks, ids))
}
