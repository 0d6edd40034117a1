//! OWNER: helper "annex-read".

use std::collections::HashMap;

use crate::annex::Repo;
use crate::error::Result;
use crate::model::{AnnexKey, FieldSet};

/// Current metadata of `keys`, exactly as `git annex metadata` would report it (minus the
/// derived `*lastchanged` fields): branch blob, replaced by the journal file when one exists,
/// union-merged with every `*/git-annex` ref not yet merged. Keys without metadata are absent
/// from the map. One `git cat-file --batch` for all keys; no git-annex process.
pub fn read(_repo: &Repo, _keys: &[AnnexKey]) -> Result<HashMap<AnnexKey, FieldSet>> {
    todo!("helper annex-read")
}
