//! The unit of a metadata write, shared by the writer and the sync record.

use std::collections::BTreeMap;

use crate::model::AnnexKey;

/// One metadata change for one key: each named field is replaced by exactly these values;
/// an empty list removes the field. Fields not named are left untouched by git-annex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteRequest {
    pub key: AnnexKey,
    pub fields: BTreeMap<String, Vec<String>>,
}
