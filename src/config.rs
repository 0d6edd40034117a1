//! Configuration: the TOML file, and the one declaration of every setting ([`SETTINGS`]:
//! key, environment variable, default, documentation) that the flag help, the `init-config`
//! template and the known-key check are all derived from.
//!
//! Precedence is flag > environment > file > default, applied in one place
//! (`cli::resolve`); this module only reads the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::sync::fields::{FieldId, KeyNotation, ManagedFields};

/// One setting: where it lives in the file, which environment variable and flag (if any)
/// override it, and how it is documented.
pub struct Setting {
    /// `[section]` in the file; empty for the config path itself (not a file key).
    pub section: &'static str,
    pub key: &'static str,
    pub env: Option<&'static str>,
    /// The flag help's first words.
    pub summary: &'static str,
    /// How the default reads in help and template.
    pub default: &'static str,
    /// The template's comment above the key (lines without `# `).
    pub doc: &'static [&'static str],
    /// The template's example line(s).
    pub example: fn() -> String,
}

impl Setting {
    /// `--flag` help: summary, default and environment variable.
    pub fn flag_help(&self) -> String {
        let mut help = format!("{} [default: {}]", self.summary, self.default);
        if let Some(env) = self.env {
            help.push_str(&format!(" [env: {env}=]"));
        }
        help
    }

    /// The environment's value, an empty variable counting as unset.
    pub fn env_value(&self) -> Option<PathBuf> {
        self.env
            .and_then(std::env::var_os)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }
}

pub const CONFIG: Setting = Setting {
    section: "",
    key: "config",
    env: Some("MUSIC_COMMANDER_CONFIG"),
    summary: "Config file",
    default: "$XDG_CONFIG_HOME/music-commander/config.toml",
    doc: &[],
    example: String::new,
};

pub const MIXXX_DB: Setting = Setting {
    section: "paths",
    key: "mixxx_db",
    env: Some("MUSIC_COMMANDER_MIXXX_DB"),
    summary: "Mixxx's library database",
    default: "~/.mixxx/mixxxdb.sqlite",
    doc: &[
        "Mixxx's library database (Mixxx's location for this OS; Linux: ~/.mixxx/mixxxdb.sqlite).",
    ],
    example: || "# mixxx_db = \"~/.mixxx/mixxxdb.sqlite\"".into(),
};

pub const REPO: Setting = Setting {
    section: "paths",
    key: "music_repo",
    env: Some("MUSIC_COMMANDER_REPO"),
    summary: "The git-annex repository holding the music",
    default: "the one containing the current directory",
    doc: &["The git-annex repository holding the music."],
    example: || "# music_repo = \"~/Music\"".into(),
};

pub const MUSIC_ROOT: Setting = Setting {
    section: "paths",
    key: "mixxx_music_root",
    env: Some("MUSIC_COMMANDER_MUSIC_ROOT"),
    summary: "The folder that, in Mixxx's paths, is the repository root",
    default: "the repository root",
    doc: &[
        "The folder that, in the paths Mixxx stored, corresponds to the repository root. Set it when",
        "Mixxx on this machine saw the collection under another path than the repository's",
        "(e.g. \"/media/usb/Music\" while the repository is ~/Music).",
    ],
    example: || "# mixxx_music_root = \"/media/usb/Music\"".into(),
};

pub const MIXXX_BACKUP_PATH: Setting = Setting {
    section: "paths",
    key: "mixxx_backup_path",
    env: Some("MUSIC_COMMANDER_MIXXX_BACKUP_PATH"),
    summary: "Where `backup` keeps the Mixxx database in the repository",
    default: "\"Mixxx/{machine}/mixxxdb.sqlite\"",
    doc: &[
        "Where `music-commander backup` stores the Mixxx database in the repository (relative to",
        "its root; annexed, one commit per backup). {machine} is this clone's git-annex",
        "description (else the host name), so each machine's backups stay apart.",
    ],
    example: || "# mixxx_backup_path = \"Mixxx/{machine}/mixxxdb.sqlite\"".into(),
};

pub const FIELDS: Setting = Setting {
    section: "sync",
    key: "fields",
    env: None,
    summary: "Which Mixxx fields to sync",
    default: "all of them but beatgrid",
    doc: &[
        "Which Mixxx fields to sync. Fields left out are never touched. \"beatgrid\" (the beat",
        "grid and its BPM lock) is off unless listed here.",
    ],
    example: || {
        let names: Vec<String> = FieldId::config_names()
            .into_iter()
            .map(|n| format!("\"{n}\""))
            .collect();
        format!("# fields = [{}]", names.join(", "))
    },
};

pub const KEY_NOTATION: Setting = Setting {
    section: "sync",
    key: "key_notation",
    env: None,
    summary: "Key notation for the `key` field",
    default: "\"traditional\"",
    doc: &[
        "Key notation for the `key` field: \"traditional\" (C, F#m, Bb), \"openkey\" (1d, 4m),",
        "\"lancelot\" (8B, 11A), or \"as-stored\" (the text Mixxx saved, which may mix notations).",
    ],
    example: || "key_notation = \"traditional\"".into(),
};

pub const NAMES: Setting = Setting {
    section: "sync",
    key: "names",
    env: None,
    summary: "Rename git-annex fields",
    default: "no renames",
    doc: &[
        "Rename git-annex fields, e.g. to avoid git-annex's own `year`/`month` fields that",
        "annex.genmetadata sets. Names must start with a letter or digit and use only",
        "letters, digits, '_', '-', '.'.",
    ],
    example: || "[sync.names]\n# year = \"mixxx-year\"".into(),
};

pub const WRITER: Setting = Setting {
    section: "sync",
    key: "writer",
    env: Some("MUSIC_COMMANDER_WRITER"),
    summary: "Who writes the git-annex branch",
    default: "\"direct\"",
    doc: &[
        "Who writes the git-annex branch: \"direct\" (the logs git-annex would write, committed",
        "straight onto its branch under git-annex's journal lock; many times faster) or",
        "\"git-annex\" (`git annex metadata --batch`, then a journal commit by git-annex).",
    ],
    example: || "writer = \"direct\"".into(),
};

pub const MIXXX_PROCESS: Setting = Setting {
    section: "mixxx",
    key: "process_name",
    env: Some("MUSIC_COMMANDER_MIXXX_PROCESS"),
    summary: "The process name that means Mixxx is running",
    default: "\"mixxx\"",
    doc: &[
        "The process name that means Mixxx is running: `import` and `restore` refuse to write the Mixxx database",
        "while a process of this name runs (Mixxx would overwrite what was written with its cached rows).",
    ],
    example: || "# process_name = \"mixxx\"".into(),
};

/// Every setting, in template order. A table-valued key (`names`) comes last in its section.
pub const SETTINGS: &[Setting] = &[
    CONFIG,
    MIXXX_DB,
    REPO,
    MUSIC_ROOT,
    MIXXX_BACKUP_PATH,
    FIELDS,
    KEY_NOTATION,
    WRITER,
    NAMES,
    MIXXX_PROCESS,
];

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub paths: PathsConfig,
    pub sync: SyncConfig,
    pub mixxx: MixxxConfig,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct MixxxConfig {
    pub process_name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PathsConfig {
    pub mixxx_db: Option<PathBuf>,
    pub music_repo: Option<PathBuf>,
    pub mixxx_music_root: Option<PathBuf>,
    pub mixxx_backup_path: Option<PathBuf>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct SyncConfig {
    /// Mixxx fields to sync (names from the field table); `None` means all of them.
    pub fields: Option<Vec<String>>,
    /// Mixxx field name → git-annex field name.
    pub names: BTreeMap<String, String>,
    pub key_notation: KeyNotation,
    pub writer: Option<crate::annex::writer::Writer>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            fields: None,
            names: BTreeMap::new(),
            key_notation: KeyNotation::Traditional,
            writer: None,
        }
    }
}

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
    // From the text rather than the parsed table: only then does a type error (`key_notation =
    // 5`) carry the span that says which key and line it is about.
    let config: Config = toml::from_str(text).map_err(|e| one_line(text, &e))?;
    Ok((config, warnings))
}

/// The dotted key whose value starts on the line holding `offset`: the line's own key under the
/// last `[table]` header above it.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let key = line.split_once('=')?.0.trim().trim_matches('"');
    let table = text[..start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
    Some(match table {
        Some(table) if !table.is_empty() => format!("{table}.{key}"),
        _ => key.to_string(),
    })
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
            match key_at(text, before.len()) {
                Some(key) => format!("line {line}, column {column}, {key}: {message}"),
                None => format!("line {line}, column {column}: {message}"),
            }
        }
        None => message,
    }
}

fn unknown_keys(table: &toml::Table) -> Vec<String> {
    let mut warnings = Vec::new();
    for (section, value) in table {
        // Every key a config file may hold; anything else earns a warning (typos should not
        // pass silently, but an old binary reading a newer config should still run).
        let mut keys = SETTINGS
            .iter()
            .filter(|s| !s.section.is_empty() && s.section == section)
            .map(|s| s.key)
            .peekable();
        if keys.peek().is_none() {
            warnings.push(format!("unknown config section [{section}] (ignored)"));
            continue;
        }
        let keys: Vec<&str> = keys.collect();
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
        let selected: Vec<FieldId> = match &self.sync.fields {
            None => FieldId::defaults(),
            Some(names) => names
                .iter()
                .map(|n| {
                    FieldId::from_config_name(n).ok_or_else(|| {
                        bad(format!(
                            "sync.fields: unknown field {n:?} (known: {})",
                            FieldId::config_names().join(", ")
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?
                .concat(),
        };
        for from in self.sync.names.keys() {
            if FieldId::from_name(from).is_none() {
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

/// The commented file `init-config` writes: every key, with its default and environment
/// variable, from [`SETTINGS`].
pub fn template() -> String {
    let mut out = String::from(
        "# music-commander configuration.\n# Precedence: command-line flag > environment variable > this file > default.\n",
    );
    let mut section = "";
    for s in SETTINGS.iter().filter(|s| !s.section.is_empty()) {
        if s.section != section {
            section = s.section;
            out.push_str(&format!("\n[{section}]\n"));
        } else {
            out.push('\n');
        }
        for line in s.doc {
            out.push_str(&format!("# {line}\n"));
        }
        let env = s
            .env
            .map(|e| format!(" Environment: {e}."))
            .unwrap_or_default();
        out.push_str(&format!("# Default: {}.{env}\n", s.default));
        out.push_str(&(s.example)());
        out.push('\n');
    }
    out
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
        assert_eq!(
            config.sync.writer,
            Some(crate::annex::writer::Writer::Direct)
        );
        let (config, _) = parse("[sync]\nwriter = \"git-annex\"\n").unwrap();
        assert_eq!(
            config.sync.writer,
            Some(crate::annex::writer::Writer::GitAnnex)
        );
        assert!(parse("[sync]\nwriter = \"fast\"\n").is_err());
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
