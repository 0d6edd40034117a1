//! git-annex adjusted branches (`git annex adjust --unlock | --lock | --fix | --hide-missing`).
//!
//! In an adjusted branch the work tree and index show a transformed view of the branch the
//! user works on: `adjusted/main(hidemissing)` leaves out every file whose content is absent,
//! `(unlocked)` turns symlinks into pointer files. Metadata belongs to keys, not to that view,
//! so a sync must see the files of the original branch: they are read from its tree, whose
//! symlink blobs name keys the same way the index's do.

use crate::annex::Repo;
use crate::error::{Error, Result};

const ADJUSTED: &str = "refs/heads/adjusted/";

/// The branch HEAD adjusts, as the refs to read it from, best first: the branch itself, then
/// the basis git-annex keeps for it (`refs/basis/adjusted/…`, the commit the adjusted branch
/// was last made from). None when HEAD is no adjusted branch.
fn original_refs(repo: &Repo) -> Option<[String; 2]> {
    // HEAD is always a plain file in the work tree's git dir, so no process is needed.
    let head = std::fs::read_to_string(repo.git_dir.join("HEAD")).ok()?;
    let adjusted = head.trim_end().strip_prefix("ref: ")?;
    let view = adjusted.strip_prefix(ADJUSTED)?;
    // `<branch>(<mode>)`; branch names cannot contain `(`… but may, so cut at the last one.
    let branch = view.strip_suffix(')')?.rsplit_once('(')?.0;
    Some([
        format!("refs/heads/{branch}"),
        format!("refs/basis/adjusted/{view}"),
    ])
}

/// `git ls-tree -r -z` of the branch HEAD adjusts, or None when HEAD is not adjusted.
pub(crate) fn original_tree(repo: &Repo) -> Result<Option<Vec<u8>>> {
    let Some(refs) = original_refs(repo) else {
        return Ok(None);
    };
    let mut last = None;
    for name in &refs {
        match repo.git_output(&["ls-tree", "-r", "-z", "--full-tree", name]) {
            Ok(listing) => return Ok(Some(listing)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        Error::git(
            "cannot read the branch the adjusted branch is based on",
            repo.git().args(["ls-tree"]).protocol("no branch to read"),
        )
    }))
}

/// One blob of a `git ls-tree` listing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TreeRecord<'a> {
    pub mode: &'a [u8],
    pub object: &'a [u8],
    pub path: &'a [u8],
}

/// One `git ls-tree` record, `<mode> SP <type> SP <object> TAB <path>`; None for what is not
/// a blob (a submodule's commit).
pub(crate) fn parse_tree_record(record: &[u8]) -> Result<Option<TreeRecord<'_>>> {
    let bad = || {
        Error::git(
            "cannot read the branch the adjusted branch is based on",
            crate::annex::git::Git::new()
                .args(["ls-tree"])
                .protocol(format!(
                    "unexpected line {:?}",
                    String::from_utf8_lossy(record)
                )),
        )
    };
    let tab = record.iter().position(|&b| b == b'\t').ok_or_else(bad)?;
    let mut fields = record[..tab].split(|&b| b == b' ');
    let (Some(mode), Some(kind), Some(object)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(bad());
    };
    Ok((kind == b"blob").then_some(TreeRecord {
        mode,
        object,
        path: &record[tab + 1..],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_records() {
        assert_eq!(
            parse_tree_record(b"120000 blob 0123abcd\tdir/a b.mp3").unwrap(),
            Some(TreeRecord {
                mode: b"120000",
                object: b"0123abcd",
                path: b"dir/a b.mp3",
            })
        );
        assert_eq!(
            parse_tree_record(b"160000 commit 0123abcd\tsub").unwrap(),
            None
        );
        assert!(parse_tree_record(b"garbage").is_err());
    }
}
