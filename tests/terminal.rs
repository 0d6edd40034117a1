//! Text another clone or the Mixxx library controls never reaches the terminal as control
//! sequences: a clone description, a file name and a crate name carrying ESC are printed quoted
//! for a person, and exact in `--json`.

mod common;

use std::path::Path;

use common::{Sandbox, sample_track};
use testutils::annex_repo;
use testutils::mixxx_db::SchemaEra;

/// Sets the window title and clears the screen when printed raw.
const HOSTILE: &str = "\x1b]0;pwned\x07\x1b[2J";

fn run(sb: &Sandbox, args: &[&str]) -> (String, String) {
    let out = sb.cmd().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn assert_no_raw_controls(what: &str, text: &str) {
    assert!(
        !text.contains(['\x1b', '\x07', '\u{202e}']),
        "{what} carries a raw control character: {text:?}"
    );
}

#[test]
fn a_clone_description_with_escapes_is_quoted_in_status() {
    let sb = Sandbox::new(1, SchemaEra::Newest);
    sb.git(&["annex", "describe", "here", HOSTILE]);
    run(&sb, &["sync"]);

    let (out, err) = run(&sb, &["status"]);
    assert_no_raw_controls("status stdout", &out);
    assert_no_raw_controls("status stderr", &err);
    assert!(
        out.contains(r#""\033]0;pwned\a\033[2J""#),
        "the description is not shown quoted: {out}"
    );

    let (json, _) = run(&sb, &["status", "--json"]);
    assert!(
        json.contains(r#"\u001b]0;pwned\u0007\u001b[2J"#),
        "status --json does not keep the description exact: {json}"
    );
}

#[test]
fn a_file_name_and_crate_names_with_escapes_are_quoted_in_a_dry_run() {
    let name = format!("Evil/a{HOSTILE}b.flac");
    // Mixxx text loses its control characters on the way in, but not a bidi override; a value
    // another clone wrote into git-annex keeps both.
    let reversed = "Crate\u{202e}kcab";
    let old = format!("Old{HOSTILE}");
    let sb = Sandbox::with_tracks(0, SchemaEra::Newest, |repo: &Path| {
        let mut track = sample_track(repo, 1);
        track.location = repo.join(&name).into_os_string().into_encoded_bytes();
        track.crates = vec![reversed.to_string()];
        vec![track]
    });
    annex_repo::add_files(&sb.repo, &[(Path::new(&name), b"audio\n".as_slice())]).unwrap();
    sb.git(&[
        "annex",
        "metadata",
        "--quiet",
        "-s",
        &format!("crate={old}"),
        &name,
    ]);

    let (out, err) = run(&sb, &["sync", "-n"]);
    assert_no_raw_controls("sync -n stdout", &out);
    assert_no_raw_controls("sync -n stderr", &err);
    assert!(
        out.contains(r#""Evil/a\033]0;pwned\a\033[2Jb.flac""#),
        "the file name is not shown quoted: {out}"
    );
    assert!(
        out.contains(r#""Crate\u{202e}kcab""#),
        "the added crate is not shown quoted: {out}"
    );
    assert!(
        out.contains(r#""Old\033]0;pwned\a\033[2J""#),
        "the removed crate is not shown quoted: {out}"
    );

    let json = sb.sync_json(&["-n"]);
    let change = &json["changes"][0];
    assert_eq!(change["paths"][0], name.as_str());
    assert_eq!(change["set"]["crate"][0], reversed);
    assert_eq!(change["before"]["crate"][0], old.as_str());
}
