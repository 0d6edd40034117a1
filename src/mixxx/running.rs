//! Whether Mixxx is running on this machine.
//!
//! Mixxx caches the tracks it has loaded and writes a changed track's whole `library` row back
//! when the track leaves its cache and at shutdown, so a row another program wrote while Mixxx
//! runs can be overwritten by Mixxx's stale copy. Whatever writes the database first asks here.

use std::path::Path;

/// The process name that means Mixxx, on every platform (`mixxx.exe` on Windows).
pub const DEFAULT_PROCESS_NAME: &str = "mixxx";

/// A running process that looks like Mixxx.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Running {
    pub pid: u32,
    pub name: String,
}

/// The first running process named `process_name` (other than this one), if any.
///
/// On Linux it reads `/proc/*/comm` (the kernel keeps the first 15 bytes of the name); on other
/// systems it asks `pgrep -x` (macOS, BSD) or `tasklist` (Windows). When the question cannot be
/// answered (no `/proc`, no `pgrep`), the answer is "not running": refusing every import on a
/// system we cannot inspect would make the command useless there, and the database's own lock
/// still stops a write while Mixxx is in a transaction.
pub fn find(process_name: &str) -> Option<Running> {
    if Path::new("/proc/self/comm").exists() {
        return find_in_proc(Path::new("/proc"), process_name);
    }
    find_with_tools(process_name)
}

/// `comm` holds at most 15 bytes of the executable's name.
const COMM_LEN: usize = 15;

fn comm_matches(comm: &str, process_name: &str) -> bool {
    let wanted = process_name.as_bytes();
    let wanted = &wanted[..wanted.len().min(COMM_LEN)];
    comm.trim_end_matches('\n').as_bytes() == wanted
}

fn find_in_proc(proc: &Path, process_name: &str) -> Option<Running> {
    let me = std::process::id();
    let entries = std::fs::read_dir(proc).ok()?;
    let mut found: Vec<Running> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            if pid == me {
                return None;
            }
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            comm_matches(&comm, process_name).then(|| Running {
                pid,
                name: comm.trim_end_matches('\n').to_string(),
            })
        })
        .collect();
    found.sort_by_key(|r| r.pid);
    found.into_iter().next()
}

fn find_with_tools(process_name: &str) -> Option<Running> {
    use std::process::{Command, Stdio};
    if cfg!(windows) {
        let image = format!("{process_name}.exe");
        let out = Command::new("tasklist")
            .args(["/FI", &format!("IMAGENAME eq {image}"), "/FO", "CSV", "/NH"])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        // "mixxx.exe","1234",...; "INFO: No tasks ..." when there is none.
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| {
            l.to_ascii_lowercase()
                .starts_with(&format!("\"{}\"", image.to_ascii_lowercase()))
        })?;
        let pid = line.split(',').nth(1)?.trim_matches('"').parse().ok()?;
        return Some(Running { pid, name: image });
    }
    let out = Command::new("pgrep")
        .args(["-x", process_name])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let me = std::process::id();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<u32>().ok())
        .find(|&pid| pid != me)
        .map(|pid| Running {
            pid,
            name: process_name.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_is_compared_whole_and_truncated_like_the_kernel() {
        assert!(comm_matches("mixxx\n", "mixxx"));
        assert!(!comm_matches("mixxx-helper\n", "mixxx"));
        assert!(!comm_matches("mixx\n", "mixxx"));
        assert!(comm_matches(
            "a-very-long-pro\n",
            "a-very-long-process-name"
        ));
    }

    #[test]
    fn a_process_of_that_name_is_found_and_this_one_is_not() {
        if !Path::new("/proc/self/comm").exists() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let name = format!("mcrun{}", std::process::id() % 1_000_000);
        let fake = dir.path().join(&name);
        std::fs::copy("/bin/sleep", &fake).unwrap();
        assert_eq!(find(&name), None);
        let mut child = std::process::Command::new(&fake).arg("30").spawn().unwrap();
        // The kernel sets comm at exec; give it a moment.
        let mut seen = None;
        for _ in 0..50 {
            seen = find(&name);
            if seen.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(seen.map(|r| r.pid), Some(child.id()));
        let me = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert_ne!(find(me.trim_end()).map(|r| r.pid), Some(std::process::id()));
    }
}
