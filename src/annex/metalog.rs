//! Parsing git-annex `.log.met` files. OWNER: helper "annex-read".

use crate::model::FieldSet;

/// The current metadata described by a `.log.met` file (lines may come in any order; the
/// newest clock wins per (field, value)). Never panics; unparsable lines are skipped, as
/// git-annex does.
pub fn current(_log: &[u8]) -> FieldSet {
    todo!("helper annex-read")
}

/// Union-merges several versions of one log (the branch blob + unmerged sibling refs), the
/// way git-annex merges its branch: concatenate lines, de-duplicate, sort bytewise.
pub fn union(_logs: &[&[u8]]) -> Vec<u8> {
    todo!("helper annex-read")
}

/// The branch path of a key's metadata log: `<hashdirlower(key)><keyFile(key)>.log.met`.
pub fn met_path(_key: &str) -> String {
    todo!("helper annex-read")
}
