//! `music-commander demo`: a sample Mixxx library and git-annex repository, synced for real,
//! so a newcomer sees what the tool does without owning Mixxx.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::annex::Repo;
use crate::annex::cache::Freshness;
use crate::annex::sample as annex_repo;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::mixxx::sample::{SampleDb, SampleTrack as FixtureTrack};
use crate::report::{self, Detail, TerminalProgress};
use crate::sync::fields::ManagedFields;
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
            println!("{text}");
        }
    };

    let repo_dir = dir.join("Music");
    let db_path = dir.join("mixxxdb.sqlite");
    say(&format!(
        "Building a sample collection in {}",
        dir.display()
    ));
    let (files, tracks) = build(&repo_dir, &db_path)?;
    say(&format!(
        "  {files} annexed files in {}\n  Mixxx database ({tracks} tracks, {} crates) at {}\n",
        repo_dir.display(),
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

    say(&format!(
        "Try it on your own library (nothing is written with --dry-run):\n  \
         cd /path/to/your/git-annex/music\n  \
         music-commander --mixxx-db ~/.mixxx/mixxxdb.sqlite sync --dry-run\n\
         The sample stays in {} for you to explore.",
        dir.display()
    ));
    Ok(if failed {
        ExitCode::Failure
    } else {
        ExitCode::Success
    })
}

/// Creates the repository and the Mixxx database; returns the number of annexed files and of
/// Mixxx tracks.
fn build(repo_dir: &Path, db_path: &Path) -> Result<(usize, usize)> {
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
    builder.build(db_path)?;
    Ok((files.len(), builder.tracks.len()))
}
