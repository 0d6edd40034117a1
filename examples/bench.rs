//! The benchmark: whole-process figures of the release binary on synthetic libraries, and the
//! ratios that the speed targets are stated in, all measured in one run.
//!
//!     cargo run --release --example bench                 # 10k and 100k tracks, 3 runs each
//!     cargo run --release --example bench -- --quick      # 1k and 10k, for a smoke test
//!     cargo run --release --example bench -- --first      # only the first-sync scenarios (10k)
//!     cargo run --release --example bench -- --runs 5 --keep /tmp/bench
//!     cargo run --release --example bench -- --generate 100000 /tmp/lib   # a library to profile
//!     cargo run --release --example bench -- --cues       # every other track with cues
//!
//! Each figure is the median of the runs: these machines are noisy, so compare ratios
//! measured together, never single times across runs.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testutils::library::{self, Generated, Shape};

struct Sample {
    wall: Duration,
    cpu: Duration,
    max_rss_kib: i64,
    /// The whole output, when asked for (a plan the floor replays).
    stdout: String,
    /// What a `--json` report says about the run, parsed as it streams in: a 100k first
    /// sync's report is 270 MB, and holding it would make every later child's `wait4` peak
    /// that big (a spawned process inherits its parent's high-water mark).
    report: Option<Report>,
}

#[derive(serde::Deserialize)]
struct Report {
    peak_memory_mib: Option<f64>,
    #[serde(default)]
    timings: Vec<Timing>,
}

#[derive(serde::Deserialize)]
struct Timing {
    phase: String,
    seconds: f64,
}

/// Runs a command to completion and returns wall time, CPU time and peak RSS of its process
/// tree (`wait4` accounts for the children it waited for).
fn measure(cmd: &mut Command, stdin: Option<&Path>) -> Sample {
    measure_keeping(cmd, stdin, false)
}

/// [`measure`], also keeping the whole standard output when `keep`.
fn measure_keeping(cmd: &mut Command, stdin: Option<&Path>, keep: bool) -> Sample {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(input) = stdin {
        cmd.stdin(std::fs::File::open(input).expect("stdin file"));
    }
    let started = Instant::now();
    // Reaped by wait4 below, which also gives the resource usage.
    #[allow(clippy::zombie_processes)]
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let stdout = child.stdout.map(|mut s| {
        std::thread::spawn(move || {
            if keep {
                let mut buf = String::new();
                std::io::Read::read_to_string(&mut s, &mut buf).ok();
                let report = serde_json::from_str(&buf).ok();
                return (buf, report);
            }
            let mut reader = std::io::BufReader::new(s);
            let report = serde_json::from_reader(&mut reader).ok();
            std::io::copy(&mut reader, &mut std::io::sink()).ok();
            (String::new(), report)
        })
    });
    let stderr = child.stderr.map(|mut s| {
        std::thread::spawn(move || {
            let mut buf = String::new();
            std::io::Read::read_to_string(&mut s, &mut buf).ok();
            buf
        })
    });
    let mut status: libc::c_int = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: plain syscall on our own child with valid out-pointers.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid, "wait4 failed");
    let wall = started.elapsed();
    let (stdout, report) = stdout
        .map(|t| t.join().unwrap_or_default())
        .unwrap_or_default();
    let stderr = stderr
        .map(|t| t.join().unwrap_or_default())
        .unwrap_or_default();
    let exit = std::process::ExitStatus::from_raw(status);
    assert!(exit.success(), "{cmd:?} failed: {stderr}");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Sample {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss,
        stdout,
        report,
    }
}

fn median<T: Copy + PartialOrd>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    v[v.len() / 2]
}

struct Row {
    name: String,
    tracks: usize,
    wall: Duration,
    cpu: Duration,
    /// Peak RSS of the process tree (git children included).
    rss_mib: f64,
    /// Peak RSS of music-commander itself, as it reports with `--json`.
    own_mib: f64,
    phases: Vec<(String, f64)>,
}

fn summarize(name: &str, tracks: usize, samples: &[Sample]) -> Row {
    // Per-phase timings from the JSON of each run (median per phase).
    let mut phases: Vec<(String, Vec<f64>)> = Vec::new();
    let mut own: Vec<f64> = Vec::new();
    for s in samples {
        if let Some(report) = &s.report {
            if let Some(mib) = report.peak_memory_mib {
                own.push(mib);
            }
            for t in &report.timings {
                match phases.iter_mut().find(|(p, _)| *p == t.phase) {
                    Some((_, v)) => v.push(t.seconds),
                    None => phases.push((t.phase.clone(), vec![t.seconds])),
                }
            }
        }
    }
    Row {
        name: name.to_string(),
        tracks,
        wall: median(samples.iter().map(|s| s.wall).collect()),
        cpu: median(samples.iter().map(|s| s.cpu).collect()),
        rss_mib: median(samples.iter().map(|s| s.max_rss_kib).collect()) as f64 / 1024.0,
        own_mib: if own.is_empty() { 0.0 } else { median(own) },
        phases: phases.into_iter().map(|(p, v)| (p, median(v))).collect(),
    }
}

struct Bench {
    binary: PathBuf,
    work: PathBuf,
    runs: usize,
}

impl Bench {
    /// A pristine generated library of `n` tracks, made once per benchmark run.
    fn pristine(&self, n: usize) -> Generated {
        let dir = self.work.join(match with_cues() {
            true => format!("pristine-{n}-cues"),
            false => format!("pristine-{n}"),
        });
        // With --keep, a library generated by an earlier run is reused (it is never synced:
        // every scenario works on a copy).
        let repo = dir.join("Music");
        if repo.join(".git").is_dir() && dir.join("mixxxdb.sqlite").is_file() {
            eprintln!("reusing {n} tracks in {}", dir.display());
            let tracks = rusqlite::Connection::open(dir.join("mixxxdb.sqlite"))
                .and_then(|db| {
                    db.query_row("SELECT COUNT(*) FROM library", [], |r| r.get::<_, i64>(0))
                })
                .expect("count tracks") as usize;
            return Generated {
                mixxx_root: repo.clone(),
                db: dir.join("mixxxdb.sqlite"),
                repo,
                files: n,
                tracks,
            };
        }
        eprintln!("generating {n} tracks in {} …", dir.display());
        let started = Instant::now();
        let generated = library::generate(&dir, &shape(n)).expect("generate");
        eprintln!("  done in {:.1}s", started.elapsed().as_secs_f64());
        generated
    }

    /// A fresh copy of a pristine library (`cp -a` keeps symlinks and the git state).
    fn copy(&self, from: &Generated, name: &str) -> Generated {
        let dir = self.work.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        let src = from.repo.parent().expect("repo in a dir");
        let ok = Command::new("cp")
            .arg("-a")
            .arg(src)
            .arg(&dir)
            .status()
            .expect("cp");
        assert!(ok.success());
        Generated {
            repo: dir.join("Music"),
            db: dir.join("mixxxdb.sqlite"),
            ..from.clone()
        }
    }

    /// Runs our binary on `lib` and waits for the `git gc --auto` it may leave running in
    /// the background (after large writes), so that one scenario's housekeeping does not
    /// slow the next one down.
    fn run_sync(&self, lib: &Generated, args: &[&str]) -> Sample {
        let sample = measure(&mut self.sync(lib, args), None);
        let pid_file = lib.repo.join(".git/gc.pid");
        let deadline = Instant::now() + Duration::from_secs(600);
        while pid_file.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        sample
    }

    fn sync(&self, lib: &Generated, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.current_dir(&lib.repo)
            .env("MUSIC_COMMANDER_MUSIC_ROOT", &lib.mixxx_root)
            .arg("--mixxx-db")
            .arg(&lib.db)
            .arg("sync")
            .arg("--json")
            .args(args)
            .env("XDG_CONFIG_HOME", &self.work);
        cmd
    }

    /// A first sync with `writer` (`direct`, or `git-annex` with `jobs` processes).
    fn first_sync(&self, pristine: &Generated, writer: &str, jobs: &str) -> Row {
        let samples: Vec<Sample> = (0..self.runs)
            .map(|r| {
                let lib = self.copy(pristine, &format!("first-{writer}-j{jobs}-{r}"));
                let s = self.run_sync(&lib, &["--writer", writer, "--jobs", jobs]);
                let _ = std::fs::remove_dir_all(lib.repo.parent().unwrap());
                s
            })
            .collect();
        let name = match writer {
            "direct" => "first sync, direct writer".to_string(),
            _ => format!("first sync, git-annex writer -j{jobs}"),
        };
        summarize(&name, pristine.tracks, &samples)
    }

    /// The same writes our first sync makes, fed straight to one git-annex batch process.
    fn raw_floor(&self, pristine: &Generated) -> Row {
        let plan_lib = self.copy(pristine, "floor-plan");
        let plan = measure_keeping(&mut self.sync(&plan_lib, &["--dry-run"]), None, true);
        let doc: serde_json::Value = serde_json::from_str(&plan.stdout).expect("plan JSON");
        let requests = self.work.join("floor-requests.jsonl");
        let mut out = std::fs::File::create(&requests).expect("requests");
        for change in doc["changes"].as_array().expect("changes") {
            let mut fields = change["set"].as_object().cloned().unwrap_or_default();
            for removed in change["removed"].as_array().into_iter().flatten() {
                fields.insert(removed.as_str().unwrap().to_string(), serde_json::json!([]));
            }
            let line = serde_json::json!({"key": change["key"], "fields": fields});
            writeln!(out, "{line}").expect("write");
        }
        drop(out);
        let samples: Vec<Sample> = (0..self.runs)
            .map(|r| {
                let lib = self.copy(pristine, &format!("floor-{r}"));
                let mut cmd = Command::new("git");
                cmd.current_dir(&lib.repo)
                    .args(["annex", "metadata", "--batch", "--json"]);
                let s = measure(&mut cmd, Some(&requests));
                let _ = std::fs::remove_dir_all(lib.repo.parent().unwrap());
                s
            })
            .collect();
        summarize(
            "raw git-annex floor (same writes)",
            pristine.tracks,
            &samples,
        )
    }

    /// Runs `args` `runs` times on `lib`, calling `before` ahead of each run.
    fn repeat(
        &self,
        name: &str,
        lib: &Generated,
        args: &[&str],
        mut before: impl FnMut(usize),
    ) -> Row {
        let samples: Vec<Sample> = (0..self.runs)
            .map(|r| {
                before(r);
                self.run_sync(lib, args)
            })
            .collect();
        summarize(name, lib.tracks, &samples)
    }
}

/// `--cues`: the generated libraries give every other track a main cue, up to 8 hot cues
/// (labelled, colored, the last a saved loop) and the analyser's marker.
static CUES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

fn with_cues() -> bool {
    *CUES.get().unwrap_or(&false)
}

fn shape(n: usize) -> Shape {
    Shape {
        cues: with_cues(),
        ..Shape::new(n)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    CUES.set(args.iter().any(|a| a == "--cues")).ok();
    if let Some(i) = args.iter().position(|a| a == "--generate") {
        let n: usize = args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .expect("--generate N DIR");
        let dir = PathBuf::from(args.get(i + 2).expect("--generate N DIR"));
        let lib = library::generate(&dir, &shape(n)).expect("generate");
        println!(
            "repository {}\nMixxx database {} ({} tracks)",
            lib.repo.display(),
            lib.db.display(),
            lib.tracks
        );
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let first_only = args.iter().any(|a| a == "--first");
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let runs: usize = value("--runs").and_then(|v| v.parse().ok()).unwrap_or(3);
    let (small, large) = if quick {
        (1_000, 10_000)
    } else {
        (10_000, 100_000)
    };

    let exe = std::env::current_exe().expect("exe");
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("music-commander");
    assert!(
        binary.exists(),
        "build the binary first: cargo build --release"
    );
    let keep = value("--keep").map(PathBuf::from);
    let tmp = tempfile::Builder::new()
        .prefix("mc-bench-")
        .tempdir()
        .expect("tempdir");
    let work = keep.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&work).expect("work dir");
    let bench = Bench { binary, work, runs };

    let mut rows = Vec::new();
    let pristine_small = bench.pristine(small);
    eprintln!("scenario 1/2: first sync and raw floor, {small} tracks");
    let direct = bench.first_sync(&pristine_small, "direct", "1");
    let j1 = bench.first_sync(&pristine_small, "git-annex", "1");
    let j2 = bench.first_sync(&pristine_small, "git-annex", "2");
    let floor = bench.raw_floor(&pristine_small);
    if first_only {
        let ratio = |a: &Row, b: &Row| a.wall.as_secs_f64() / b.wall.as_secs_f64();
        let rows = [direct, j1, j2, floor];
        print_rows(&rows, runs);
        let [direct, j1, j2, floor] = &rows;
        println!("\nratios and targets:");
        println!(
            "  first sync direct / raw floor        {:>7.3}   (target ≤ 0.20, moonshot 0.10)",
            ratio(direct, floor)
        );
        println!(
            "  first sync direct / git-annex -j1    {:>7.3}",
            ratio(direct, j1)
        );
        println!(
            "  first sync git-annex -j1 / floor     {:>7.3}   (target ≤ 1.10)",
            ratio(j1, floor)
        );
        println!(
            "  first sync git-annex -j2 / -j1       {:>7.3}",
            ratio(j2, j1)
        );
        if keep.is_none() {
            drop(tmp);
        }
        return;
    }

    let read_side = read_scenarios(&bench, &pristine_small, large);
    rows.extend([direct, j1, j2, floor]);
    rows.extend(read_side);
    print_rows(&rows, runs);
    let (direct, j1, j2, floor) = (&rows[0], &rows[1], &rows[2], &rows[3]);
    let ratio = |a: &Row, b: &Row| a.wall.as_secs_f64() / b.wall.as_secs_f64();
    println!("\nratios and targets:");
    println!(
        "  first sync direct / raw floor        {:>7.3}   (target ≤ 0.20, moonshot 0.10)",
        ratio(direct, floor)
    );
    println!(
        "  first sync git-annex -j1 / raw floor {:>7.3}   (target ≤ 1.10)",
        ratio(j1, floor)
    );
    println!(
        "  first sync git-annex -j2 / -j1       {:>7.3}   (target < 1.00)",
        ratio(j2, j1)
    );
    print_read_targets(&rows[4..], small, large);
    if keep.is_none() {
        drop(tmp);
    }
}

/// The table of every row and the per-phase medians.
fn print_rows(rows: &[Row], runs: usize) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let annex = Command::new("git")
        .args(["annex", "version", "--raw"])
        .output()
        .ok();
    let annex = annex
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("machine: {cores} cores, {mem:.0} GiB RAM, git-annex {annex}; median of {runs} runs");
    println!(
        "{:<38}{:>8}{:>11}{:>11}{:>12}{:>12}",
        "scenario", "tracks", "wall s", "cpu s", "ours MiB", "tree MiB"
    );
    for r in rows {
        let ours = match r.own_mib > 0.0 {
            true => format!("{:.1}", r.own_mib),
            false => "-".to_string(),
        };
        println!(
            "{:<38}{:>8}{:>11.3}{:>11.3}{:>12}{:>12.1}",
            r.name,
            r.tracks,
            r.wall.as_secs_f64(),
            r.cpu.as_secs_f64(),
            ours,
            r.rss_mib
        );
    }
    println!(
        "(ours: music-commander's own peak, VmHWM; tree: wait4's peak over the process and the git processes it waited for)"
    );
    println!("\nphases (median s):");
    for r in rows {
        if r.phases.is_empty() {
            continue;
        }
        let phases: Vec<String> = r
            .phases
            .iter()
            .map(|(p, s)| format!("{p} {s:.3}"))
            .collect();
        println!("  {} ({}): {}", r.name, r.tracks, phases.join(", "));
    }
}

/// The read side (issue 15): a no-op at both sizes, the first sync of the large library with
/// `--json` (which holds the whole change list), the first no-op after that full write, more
/// no-ops, and a 1 % edit (dry run, then written). In this order in the result.
fn read_scenarios(bench: &Bench, pristine_small: &Generated, large: usize) -> Vec<Row> {
    eprintln!("no-op sync, {} tracks", pristine_small.tracks);
    let synced_small = bench.copy(pristine_small, "synced-small");
    bench.run_sync(&synced_small, &[]);
    // The first no-op after a write reads everything; the ones after it are what a DJ who
    // changed nothing sees.
    bench.run_sync(&synced_small, &[]);
    let noop_small = bench.repeat("no-op sync", &synced_small, &[], |_| {});
    let touched_small = bench.repeat("no-op, Mixxx DB touched", &synced_small, &[], |r| {
        touch(&synced_small.db, r)
    });

    let pristine_large = bench.pristine(large);
    let synced_large = bench.copy(&pristine_large, "synced-large");
    eprintln!("first sync of {large} tracks, --json (once) …");
    let first = bench.run_sync(&synced_large, &[]);
    eprintln!("  {:.1}s", first.wall.as_secs_f64());
    let first = summarize("first sync --json (once)", pristine_large.tracks, &[first]);
    // Re-reads every log the write changed into the metadata cache.
    let after_write = summarize(
        "first no-op after it (once)",
        pristine_large.tracks,
        &[bench.run_sync(&synced_large, &[])],
    );
    eprintln!("no-op sync, {large} tracks");
    let noop_large = bench.repeat("no-op sync", &synced_large, &[], |_| {});
    let touched_large = bench.repeat("no-op, Mixxx DB touched", &synced_large, &[], |r| {
        touch(&synced_large.db, r)
    });
    let one_percent = large / 100;
    eprintln!("--dry-run with 1% changed, {large} tracks");
    library::mutate(&synced_large.db, one_percent, 1000).expect("mutate");
    let dry = bench.repeat(
        "--dry-run, 1% changed",
        &synced_large,
        &["--dry-run"],
        |_| {},
    );
    eprintln!("1% changed, {large} tracks");
    let db = synced_large.db.clone();
    let changed = bench.repeat("sync, 1% changed", &synced_large, &[], |r| {
        if r > 0 {
            library::mutate(&db, one_percent, 2000 + r as u64).expect("mutate");
        }
    });
    vec![
        noop_small,
        touched_small,
        first,
        after_write,
        noop_large,
        touched_large,
        dry,
        changed,
    ]
}

/// Moves the database's modification time as Mixxx does when it opens the library and
/// changes nothing: every input but the Mixxx file is as the last sync left it, so the sync
/// cannot take its quiet shortcut and reads both sides in full.
fn touch(db: &Path, run: usize) {
    let later = std::time::SystemTime::now() + Duration::from_secs(1 + run as u64);
    std::fs::File::options()
        .write(true)
        .open(db)
        .and_then(|f| f.set_modified(later))
        .expect("touch the Mixxx database");
}

/// The read side's targets against what [`read_scenarios`] measured (`rows` in its order).
fn print_read_targets(rows: &[Row], small: usize, large: usize) {
    let [
        noop_small,
        touched_small,
        first,
        after_write,
        noop_large,
        touched_large,
        dry,
        changed,
    ] = rows
    else {
        panic!("read_scenarios returns eight rows");
    };
    // The targets are stated in MB; peaks are printed in MiB.
    let limit_mib = 150.0 * 1e6 / (1024.0 * 1024.0);
    let write_time = changed
        .phases
        .iter()
        .find(|(p, _)| p == "write + commit")
        .map(|(_, s)| *s)
        .unwrap_or(0.0);
    // Our own process's peak (from its --json), else the tree's (git children included).
    let peak = |row: &Row| {
        if row.own_mib > 0.0 {
            row.own_mib
        } else {
            row.rss_mib
        }
    };
    let line = |what: &str, wall: f64, target: f64, row: &Row| {
        let mib = peak(row);
        println!(
            "  {what:<34} {wall:>7.3}s  ×{:<5.2} of ≤ {target} s  {}   peak {mib:>5.0} MiB  ×{:.2} of ≤ 150 MB  {}",
            wall / target,
            if wall <= target { "met" } else { "NOT met" },
            mib / limit_mib,
            if mib <= limit_mib { "met" } else { "NOT met" },
        );
    };
    line(
        &format!("no-op {small}"),
        noop_small.wall.as_secs_f64(),
        0.1,
        noop_small,
    );
    line(
        &format!("no-op {small}, Mixxx DB touched"),
        touched_small.wall.as_secs_f64(),
        0.1,
        touched_small,
    );
    line(
        &format!("no-op {large}"),
        noop_large.wall.as_secs_f64(),
        0.5,
        noop_large,
    );
    line(
        &format!("no-op {large}, Mixxx DB touched"),
        touched_large.wall.as_secs_f64(),
        0.5,
        touched_large,
    );
    line(
        &format!("1% edit of {large}"),
        changed.wall.as_secs_f64(),
        1.0,
        changed,
    );
    println!(
        "  {:<34} {:>7.3}s  (outside git-annex's write; dry run {:.3}s)",
        "  of which ours",
        changed.wall.as_secs_f64() - write_time,
        dry.wall.as_secs_f64()
    );
    for row in [first, after_write] {
        let mib = peak(row);
        println!(
            "  {:<34} {:>7.3}s              peak {mib:>5.0} MiB  ×{:.2} of ≤ 150 MB  {}",
            row.name,
            row.wall.as_secs_f64(),
            mib / limit_mib,
            if mib <= limit_mib { "met" } else { "NOT met" },
        );
    }
}
