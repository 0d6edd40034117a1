//! The three-way decision for one field of one file: this Mixxx, the repository, and the base
//! (what this clone's Mixxx and the repository last agreed on).
//!
//! Pure functions over value sets (sorted, distinct strings, as a `FieldSet` holds them), so the
//! rules that keep one machine from reverting another's curation can be tested exhaustively
//! without a repository. The rules:
//!
//! | Mixxx vs base | repository vs base | result |
//! |---|---|---|
//! | same | same | in sync |
//! | changed | same | outgoing: `sync` writes Mixxx's value |
//! | same | changed | incoming: `import` brings the repository's value into Mixxx |
//! | changed | changed, equal | converged: in sync |
//! | changed | changed, different | conflict: nothing is written either way |
//!
//! A single-valued field the repository holds with several values (two clones set it and
//! git-annex merged by union) is a conflict whatever the base says. Multi-valued fields merge
//! element by element and never conflict. Without a base (a new clone, lost local state), a
//! field the repository lacks is outgoing, equal values are in sync and anything else is a
//! conflict: losing the base can never make a sync overwrite what another clone wrote.

/// The base of one field: `None` when this clone does not know one.
pub type Base<'a> = Option<&'a [String]>;

/// How a field's values combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// At most one value (rating, BPM, …).
    Single,
    /// A set whose elements are merged one by one (crates).
    Multi,
}

/// What the three-way comparison found for one field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Merge {
    /// The value set the repository should get (Mixxx's edits applied to it); `None` when
    /// nothing goes out.
    pub outgoing: Option<Vec<String>>,
    /// The value set this Mixxx should get (the repository's edits applied to it); `None` when
    /// nothing comes in.
    pub incoming: Option<Vec<String>>,
    /// Both sides changed the field differently since the base; neither is applied.
    pub conflict: bool,
}

impl Merge {
    pub fn in_sync(&self) -> bool {
        self.outgoing.is_none() && self.incoming.is_none() && !self.conflict
    }
}

/// How a conflict is settled, when the user said so (`--prefer`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Prefer {
    /// Conflicts stay conflicts.
    #[default]
    Neither,
    /// This machine's Mixxx wins.
    Mixxx,
    /// The repository wins.
    Repo,
}

/// The three-way merge of one field. `mixxx` and `repo` are the current value sets.
pub fn merge(arity: Arity, mixxx: &[String], repo: &[String], base: Base<'_>) -> Merge {
    if mixxx == repo {
        return Merge::default();
    }
    match arity {
        Arity::Single => merge_single(mixxx, repo, base),
        Arity::Multi => merge_multi(mixxx, repo, base),
    }
}

/// [`merge`], with conflicts settled the way `prefer` says.
pub fn merge_preferring(
    arity: Arity,
    mixxx: &[String],
    repo: &[String],
    base: Base<'_>,
    prefer: Prefer,
) -> Merge {
    let merged = merge(arity, mixxx, repo, base);
    if !merged.conflict {
        return merged;
    }
    match prefer {
        Prefer::Neither => merged,
        Prefer::Mixxx => Merge {
            outgoing: Some(mixxx.to_vec()),
            ..Merge::default()
        },
        Prefer::Repo => Merge {
            incoming: Some(repo.to_vec()),
            ..Merge::default()
        },
    }
}

fn merge_single(mixxx: &[String], repo: &[String], base: Base<'_>) -> Merge {
    let conflict = Merge {
        conflict: true,
        ..Merge::default()
    };
    if repo.len() > 1 {
        return conflict;
    }
    match base {
        Some(base) if mixxx == base => Merge {
            incoming: Some(repo.to_vec()),
            ..Merge::default()
        },
        Some(base) if repo == base => Merge {
            outgoing: Some(mixxx.to_vec()),
            ..Merge::default()
        },
        None if repo.is_empty() => Merge {
            outgoing: Some(mixxx.to_vec()),
            ..Merge::default()
        },
        _ => conflict,
    }
}

fn merge_multi(mixxx: &[String], repo: &[String], base: Base<'_>) -> Merge {
    let mut assumed = Vec::new();
    let base = element_base(mixxx, repo, base, &mut assumed);
    // An element changed on one side only is applied to the other; an element changed on both
    // sides changed the same way (membership is binary), so it is in sync.
    let mut outgoing: Vec<String> = Vec::with_capacity(repo.len() + mixxx.len());
    let mut incoming: Vec<String> = Vec::with_capacity(repo.len() + mixxx.len());
    for element in union(&union(mixxx, repo), base) {
        let (in_m, in_r, in_b) = (
            contains(mixxx, &element),
            contains(repo, &element),
            contains(base, &element),
        );
        let (to_repo, to_mixxx) = if in_m != in_b && in_r == in_b {
            (in_m, in_m)
        } else if in_r != in_b && in_m == in_b {
            (in_r, in_r)
        } else {
            (in_r, in_m)
        };
        if to_repo {
            outgoing.push(element.clone());
        }
        if to_mixxx {
            incoming.push(element);
        }
    }
    Merge {
        outgoing: (outgoing != repo).then_some(outgoing),
        incoming: (incoming != mixxx).then_some(incoming),
        conflict: false,
    }
}

/// The base to keep for a field once this run is over, given the values each side holds
/// after it (`mixxx` after an import, `repo` after a write). Where the sides agree, that is
/// the new base; where they still differ (an incoming change not imported, a conflict, a
/// write that failed), the old base stays, so the next run decides the same way.
pub fn settle(
    arity: Arity,
    mixxx: &[String],
    repo: &[String],
    base: Base<'_>,
) -> Option<Vec<String>> {
    if mixxx == repo {
        return Some(mixxx.to_vec());
    }
    match arity {
        Arity::Single => base.map(<[String]>::to_vec),
        Arity::Multi => {
            let mut assumed = Vec::new();
            let base = element_base(mixxx, repo, base, &mut assumed);
            let mut settled = Vec::new();
            for element in union(&union(mixxx, repo), base) {
                let in_m = contains(mixxx, &element);
                let agreed = in_m == contains(repo, &element);
                if (agreed && in_m) || (!agreed && contains(base, &element)) {
                    settled.push(element);
                }
            }
            Some(settled)
        }
    }
}

/// The base of a multi-valued field, element by element. Without one, what both sides hold is
/// agreed and everything else was added on the side that has it: membership is never
/// removed on a guess. `assumed` holds that guess when it is needed.
fn element_base<'a>(
    mixxx: &[String],
    repo: &[String],
    base: Base<'a>,
    assumed: &'a mut Vec<String>,
) -> &'a [String] {
    match base {
        Some(base) => base,
        None => {
            *assumed = intersection(mixxx, repo);
            assumed
        }
    }
}

fn contains(sorted: &[String], value: &str) -> bool {
    sorted
        .binary_search_by(|probe| probe.as_str().cmp(value))
        .is_ok()
}

fn union(a: &[String], b: &[String]) -> Vec<String> {
    let mut out: Vec<String> = a.iter().chain(b).cloned().collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn intersection(a: &[String], b: &[String]) -> Vec<String> {
    a.iter().filter(|v| contains(b, v)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(values: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        out.sort();
        out.dedup();
        out
    }

    fn out(values: &[&str]) -> Merge {
        Merge {
            outgoing: Some(v(values)),
            ..Merge::default()
        }
    }

    fn inc(values: &[&str]) -> Merge {
        Merge {
            incoming: Some(v(values)),
            ..Merge::default()
        }
    }

    const CONFLICT: Merge = Merge {
        outgoing: None,
        incoming: None,
        conflict: true,
    };

    #[test]
    fn the_table_for_single_values() {
        let single = |m: &[&str], r: &[&str], b: Option<&[&str]>| {
            let b = b.map(v);
            merge(Arity::Single, &v(m), &v(r), b.as_deref())
        };
        assert_eq!(single(&["3"], &["3"], Some(&["3"])), Merge::default());
        assert_eq!(single(&["5"], &["3"], Some(&["3"])), out(&["5"]));
        assert_eq!(single(&["3"], &["5"], Some(&["3"])), inc(&["5"]));
        assert_eq!(single(&["5"], &["5"], Some(&["3"])), Merge::default());
        assert_eq!(single(&["4"], &["5"], Some(&["3"])), CONFLICT);
        // Cleared on one side.
        assert_eq!(single(&[], &["3"], Some(&["3"])), out(&[]));
        assert_eq!(single(&["3"], &[], Some(&["3"])), inc(&[]));
        // Two clones set it; git-annex merged by union.
        assert_eq!(single(&["5"], &["4", "5"], Some(&["5"])), CONFLICT);
        assert_eq!(single(&["3"], &["4", "5"], Some(&["3"])), CONFLICT);
        // No base: only a value the repository lacks goes out.
        assert_eq!(single(&["5"], &[], None), out(&["5"]));
        assert_eq!(single(&["5"], &["5"], None), Merge::default());
        assert_eq!(single(&["5"], &["4"], None), CONFLICT);
        assert_eq!(single(&[], &["4"], None), CONFLICT);
    }

    #[test]
    fn crates_merge_element_by_element() {
        let multi = |m: &[&str], r: &[&str], b: Option<&[&str]>| {
            let b = b.map(v);
            merge(Arity::Multi, &v(m), &v(r), b.as_deref())
        };
        // Both machines added a different crate.
        assert_eq!(
            multi(&["A", "Mine"], &["A", "Theirs"], Some(&["A"])),
            Merge {
                outgoing: Some(v(&["A", "Mine", "Theirs"])),
                incoming: Some(v(&["A", "Mine", "Theirs"])),
                conflict: false,
            }
        );
        // Removed here, kept there.
        assert_eq!(multi(&["B"], &["A", "B"], Some(&["A", "B"])), out(&["B"]));
        // Removed there.
        assert_eq!(multi(&["A", "B"], &["B"], Some(&["A", "B"])), inc(&["B"]));
        // Without a base nothing is removed.
        assert_eq!(
            multi(&["A"], &["B"], None),
            Merge {
                outgoing: Some(v(&["A", "B"])),
                incoming: Some(v(&["A", "B"])),
                conflict: false,
            }
        );
    }

    #[test]
    fn preferences_settle_conflicts_only() {
        let (m, r, b) = (v(&["4"]), v(&["5"]), v(&["3"]));
        let p = |prefer| merge_preferring(Arity::Single, &m, &r, Some(&b), prefer);
        assert_eq!(p(Prefer::Neither), CONFLICT);
        assert_eq!(p(Prefer::Mixxx), out(&["4"]));
        assert_eq!(p(Prefer::Repo), inc(&["5"]));
        // An incoming change is not a conflict: preferring Mixxx does not revert it.
        let incoming = merge_preferring(Arity::Single, &b, &r, Some(&b), Prefer::Mixxx);
        assert_eq!(incoming, inc(&["5"]));
    }

    #[test]
    fn settling_keeps_the_old_base_where_sides_differ() {
        let (m, r, b) = (v(&["3"]), v(&["5"]), v(&["3"]));
        assert_eq!(settle(Arity::Single, &m, &r, Some(&b)), Some(b.clone()));
        assert_eq!(settle(Arity::Single, &r, &r, Some(&b)), Some(r.clone()));
        assert_eq!(settle(Arity::Single, &m, &r, None), None);
        assert_eq!(
            settle(
                Arity::Multi,
                &v(&["A", "B"]),
                &v(&["B", "C"]),
                Some(&v(&["B"]))
            ),
            Some(v(&["B"]))
        );
    }

    fn values() -> impl Strategy<Value = Vec<String>> {
        prop::collection::btree_set(prop::sample::select(vec!["1", "2", "3"]), 0..3)
            .prop_map(|s| s.into_iter().map(String::from).collect())
    }

    fn arity() -> impl Strategy<Value = Arity> {
        prop_oneof![Just(Arity::Single), Just(Arity::Multi)]
    }

    proptest! {
        /// Whatever the values: an edit made only on the other side is never undone, an edit
        /// made only here is never lost, and a change is never sent both ways at odds.
        #[test]
        fn never_reverts(arity in arity(), m in values(), r in values(), b in proptest::option::of(values())) {
            let merged = merge(arity, &m, &r, b.as_deref());
            if let Some(b) = &b {
                if &m == b {
                    // Only the repository changed: nothing goes out.
                    prop_assert_eq!(&merged.outgoing, &None);
                }
                if &r == b && (arity == Arity::Multi || r.len() <= 1) {
                    // Only Mixxx changed: nothing comes in, nothing conflicts.
                    prop_assert_eq!(&merged.incoming, &None);
                    prop_assert!(!merged.conflict);
                }
            } else if !r.is_empty() && arity == Arity::Single {
                // No base: what the repository holds is never overwritten.
                prop_assert_eq!(&merged.outgoing, &None);
            }
            if arity == Arity::Multi {
                prop_assert!(!merged.conflict);
                if b.is_none() {
                    // Without a base, no membership is removed on either side.
                    for e in m.iter().chain(&r) {
                        if let Some(o) = &merged.outgoing { prop_assert!(o.contains(e)); }
                        if let Some(i) = &merged.incoming { prop_assert!(i.contains(e)); }
                    }
                }
            }
            // Applying both directions makes the sides agree.
            if !merged.conflict {
                let m2 = merged.incoming.clone().unwrap_or(m.clone());
                let r2 = merged.outgoing.clone().unwrap_or(r.clone());
                prop_assert_eq!(&m2, &r2);
            }
        }

        /// After a run, the settled base makes the next run decide the same for what was not
        /// applied, and see nothing for what was.
        #[test]
        fn settled_base_is_stable(arity in arity(), m in values(), r in values(), b in proptest::option::of(values())) {
            let merged = merge(arity, &m, &r, b.as_deref());
            // Apply only the outgoing half (a sync), then settle.
            let r2 = merged.outgoing.clone().unwrap_or(r.clone());
            let b2 = settle(arity, &m, &r2, b.as_deref());
            let again = merge(arity, &m, &r2, b2.as_deref());
            prop_assert_eq!(&again.outgoing, &None);
            prop_assert_eq!(again.incoming, merged.incoming.clone());
            prop_assert_eq!(again.conflict, merged.conflict);
        }
    }
}
