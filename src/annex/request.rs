//! The unit of a metadata write, shared by the writer and the sync record.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::model::AnnexKey;

/// One metadata change for one key: each named field is replaced by exactly these values;
/// an empty list removes the field. Fields not named are left untouched by git-annex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteRequest {
    pub key: AnnexKey,
    pub fields: BTreeMap<String, Vec<String>>,
}

/// The requests of one write, by index. The writer asks for each more than once (to validate
/// it, then on every attempt), so a caller can make them when asked instead of holding them
/// all: a sync's requests are its plan's outgoing values, which as owned requests were a
/// second copy of a first sync's largest data.
pub trait Requests: Sync {
    fn len(&self) -> usize;
    fn get(&self, i: usize) -> Cow<'_, WriteRequest>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Requests for Vec<WriteRequest> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn get(&self, i: usize) -> Cow<'_, WriteRequest> {
        Cow::Borrowed(&self[i])
    }
}
