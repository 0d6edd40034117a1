//! Configuration: a TOML file plus command-line flags and environment variables.
//!
//! Precedence is flag > environment > file > default. clap resolves flag > environment (each
//! path flag has an `env`), this module supplies file > default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::sync::fields::{KeyNotation, ManagedFields, MixxxField};

/// The environment variable that names the config file (below `--config`).
pub const CONFIG_ENV: &str = "MUSIC_COMMANDER_CONFIG";

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub paths: PathsConfig,
    pub sync: SyncConfig,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PathsConfig {
    pub mixxx_db: Option<PathBuf>,
    pub music_repo: Option<PathBuf>,
    pub mixxx_music_root: Option<PathBuf>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct SyncConfig {
    /// Mixxx fields to sync (names from the field table); `None` means all of them.
    pub fields: Option<Vec<String>>,
    /// Mixxx field name → git-annex field name.
    pub names: BTreeMap<String, String>,
    pub key_notation: KeyNotation,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            fields: None,
            names: BTreeMap::new(),
            key_notation: KeyNotation::Traditional,
        }
    }
}

/// Every key a config file may hold; anything else earns a warning (typos should not pass
/// silently, but an old binary reading a newer config should still run).
const KNOWN_KEYS: &[(&str, &[&str])] = &[
    ("paths", &["mixxx_db", "music_repo", "mixxx_music_root"]),
    ("sync", &["fields", "names", "key_notation"]),
];

/// A loaded config and the warnings it produced.
#[derive(Debug, Default)]
pub struct Loaded {
    pub config: Config,
    /// The file it came from, if any.
    pub path: Option<PathBuf>,
    pub warnings: Vec<String>,
}

/// The default config path: `$XDG_CONFIG_HOME/music-commander/config.toml`, else
/// `~/.config/music-commander/config.toml`.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| home_dir().map(|h| h.join(".config")))?;
    Some(base.join("music-commander").join("config.toml"))
}

/// Loads `explicit` (from `--config` or the environment; it must exist) or else the default
/// file (which may be missing: then everything is default).
pub fn load(explicit: Option<&Path>) -> Result<Loaded> {
    let (path, required) = match explicit {
        Some(p) => (Some(expand_tilde(p)), true),
        None => (default_path(), false),
    };
    let Some(path) = path else {
        return Ok(Loaded::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(Loaded::default());
        }
        Err(e) => {
            return Err(Error::Config {
                path,
                message: format!("cannot read it: {e}"),
            });
        }
    };
    let (config, warnings) = parse(&text).map_err(|message| Error::Config {
        path: path.clone(),
        message,
    })?;
    Ok(Loaded {
        config,
        path: Some(path),
        warnings,
    })
}

/// Parses config text; returns the config and warnings about unknown keys.
pub fn parse(text: &str) -> std::result::Result<(Config, Vec<String>), String> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| one_line(text, &e))?;
    let warnings = unknown_keys(&table);
    let config: Config =
        Config::deserialize(toml::Value::Table(table)).map_err(|e| one_line(text, &e))?;
    Ok((config, warnings))
}

/// toml's messages span several lines (with a source excerpt); errors here are one line, so
/// keep the message and the position as line:column.
fn one_line(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

fn unknown_keys(table: &toml::Table) -> Vec<String> {
    let mut warnings = Vec::new();
    for (section, value) in table {
        let Some((_, keys)) = KNOWN_KEYS.iter().find(|(name, _)| name == section) else {
            warnings.push(format!("unknown config section [{section}] (ignored)"));
            continue;
        };
        if let Some(inner) = value.as_table() {
            for key in inner.keys() {
                if !keys.contains(&key.as_str()) {
                    warnings.push(format!("unknown config key {section}.{key} (ignored)"));
                }
            }
        }
    }
    warnings
}

impl Config {
    /// The managed fields after applying `[sync] fields` and `[sync.names]`, validated the way
    /// git-annex will validate them, so a bad name fails at start-up, not mid-run.
    pub fn managed_fields(&self, source: &Path) -> Result<ManagedFields> {
        let bad = |message: String| Error::Config {
            path: source.to_path_buf(),
            message,
        };
        let selected: Vec<MixxxField> = match &self.sync.fields {
            None => MixxxField::ALL.to_vec(),
            Some(names) => names
                .iter()
                .map(|n| {
                    MixxxField::from_name(n).ok_or_else(|| {
                        bad(format!(
                            "sync.fields: unknown field {n:?} (known: {})",
                            MixxxField::ALL.map(MixxxField::name).join(", ")
                        ))
                    })
                })
                .collect::<Result<_>>()?,
        };
        for from in self.sync.names.keys() {
            if MixxxField::from_name(from).is_none() {
                return Err(bad(format!("sync.names: unknown field {from:?}")));
            }
        }
        ManagedFields::new(&selected, &self.sync.names).map_err(|m| bad(format!("sync: {m}")))
    }
}

/// Expands a leading `~` or `~/` to the home directory.
pub fn expand_tilde(path: &Path) -> PathBuf {
    let Ok(rest) = path.strip_prefix("~") else {
        return path.to_path_buf();
    };
    match home_dir() {
        Some(home) => home.join(rest),
        None => path.to_path_buf(),
    }
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// Where Mixxx keeps its database on this OS.
pub fn default_mixxx_db() -> Option<PathBuf> {
    if cfg!(target_os = "macos") {
        home_dir().map(|h| {
            h.join("Library/Containers/org.mixxx.mixxx/Data/Library/Application Support/Mixxx/mixxxdb.sqlite")
        })
    } else if cfg!(windows) {
        std::env::var_os("LOCALAPPDATA").map(|d| PathBuf::from(d).join("Mixxx/mixxxdb.sqlite"))
    } else {
        home_dir().map(|h| h.join(".mixxx/mixxxdb.sqlite"))
    }
}

/// The commented file `init-config` writes: every key, with its default.
pub fn template() -> String {
    let fields = MixxxField::ALL
        .map(|f| format!("\"{}\"", f.name()))
        .join(", ");
    format!(
        r#"# music-commander configuration.
# Precedence: command-line flag > environment variable > this file > default.

[paths]
# Mixxx's library database. Default: Mixxx's location for this OS
# (Linux: ~/.mixxx/mixxxdb.sqlite). Environment: MUSIC_COMMANDER_MIXXX_DB.
# mixxx_db = "~/.mixxx/mixxxdb.sqlite"

# The git-annex repository holding the music. Default: the git work tree containing the
# current directory. Environment: MUSIC_COMMANDER_REPO.
# music_repo = "~/Music"

# The folder that, in the paths Mixxx stored, corresponds to the repository root. Set it when
# Mixxx on this machine saw the collection under another path than the repository's
# (e.g. "/media/usb/Music" while the repository is ~/Music). Default: the repository root.
# Environment: MUSIC_COMMANDER_MUSIC_ROOT.
# mixxx_music_root = "/media/usb/Music"

[sync]
# Which Mixxx fields to sync. Default: all of them. Fields left out are never touched.
# fields = [{fields}]

# Key notation for the `key` field: "traditional" (C, F#m, Bb), "openkey" (1d, 4m),
# "lancelot" (8B, 11A), or "as-stored" (the text Mixxx saved, which may mix notations).
key_notation = "traditional"

# Rename git-annex fields, e.g. to avoid git-annex's own `year`/`month` fields that
# annex.genmetadata sets. Names must start with a letter or digit and use only
# letters, digits, '_', '-', '.'.
[sync.names]
# year = "mixxx-year"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_without_warnings_and_matches_defaults() {
        let (config, warnings) = parse(&template()).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.sync.key_notation, KeyNotation::Traditional);
        assert!(config.sync.fields.is_none());
    }

    #[test]
    fn unknown_keys_are_warned_by_name() {
        let (_, warnings) =
            parse("[paths]\nmixx_db = \"x\"\n[sync]\nkey_notation = \"openkey\"\n[extra]\n")
                .unwrap();
        assert_eq!(
            warnings,
            vec![
                "unknown config section [extra] (ignored)".to_string(),
                "unknown config key paths.mixx_db (ignored)".to_string()
            ]
        );
    }

    #[test]
    fn malformed_toml_names_the_position() {
        let err = parse("[paths]\nmixxx_db = \n").unwrap_err();
        assert!(err.starts_with("line 2, column "), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn bad_key_notation_is_an_error() {
        let err = parse("[sync]\nkey_notation = \"camelot\"\n").unwrap_err();
        assert!(err.contains("camelot"), "{err}");
    }

    #[test]
    fn tilde_expands() {
        let home = home_dir().unwrap();
        assert_eq!(expand_tilde(Path::new("~/x")), home.join("x"));
        assert_eq!(expand_tilde(Path::new("/a/~")), PathBuf::from("/a/~"));
    }
}
