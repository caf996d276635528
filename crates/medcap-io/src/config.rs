//! Configuration files: TOML or JSON by extension (`.json` is JSON,
//! anything else TOML), relative paths resolved against the file's
//! directory, the type's own consistency rules checked, and the record of
//! the configuration a run started with ([`pin_run_config`]), compared on
//! every resume.
//!
//! ```
//! use std::path::{Path, PathBuf};
//! use medcap_io::config::{ConfigFile, InvalidConfig, load};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Run { data: PathBuf, epochs: u32 }
//!
//! impl ConfigFile for Run {
//!     fn resolve_paths(&mut self, base: &Path) {
//!         medcap_io::config::resolve(&mut self.data, base);
//!     }
//!     fn check(&self) -> Result<(), InvalidConfig> {
//!         if self.epochs == 0 {
//!             return Err(InvalidConfig::new("epochs", "must be at least 1"));
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("run.toml"), "data = \"train.csv\"\nepochs = 2\n")?;
//! let run: Run = load(&dir.path().join("run.toml"))?;
//! assert_eq!(run.data, dir.path().join("train.csv"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The two syntaxes a configuration file may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML (the default for any extension but `.json`).
    Toml,
    /// JSON.
    Json,
}

impl Format {
    /// The format of `path`, by its extension.
    pub fn of(path: &Path) -> Self {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            Self::Json
        } else {
            Self::Toml
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Toml => "TOML",
            Self::Json => "JSON",
        })
    }
}

/// A configuration that breaks one of its type's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} {reason}")]
pub struct InvalidConfig {
    /// The key (dotted, as in the file: `optim.lr`).
    pub key: String,
    /// What is wrong with its value.
    pub reason: String,
}

impl InvalidConfig {
    /// `key` with what is wrong with it.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("config {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The text is not valid TOML or JSON, or not this configuration
    /// (unknown key, wrong type).
    #[error("config {}: not a valid {format} configuration: {message}", path.display())]
    Parse {
        /// The file (`<text>` for text given in code).
        path: PathBuf,
        /// The syntax it was read as.
        format: Format,
        /// The parser's message (with line and column where it gives them).
        message: String,
    },
    /// The values break a rule of the configuration.
    #[error("{}{source}", named(path))]
    Invalid {
        /// The file (empty for a configuration built in code).
        path: PathBuf,
        /// The rule.
        source: InvalidConfig,
    },
    /// A run directory holds a run started with another configuration.
    #[error(
        "{}: the run there started with another configuration; continue it with that one, or start afresh elsewhere",
        path.display()
    )]
    Changed {
        /// The saved configuration.
        path: PathBuf,
    },
    /// The record of a run's configuration cannot be written.
    #[error(transparent)]
    Write(#[from] crate::IoError),
}

/// `config FILE: `, or `configuration: ` for one built in code.
fn named(path: &Path) -> String {
    if path.as_os_str().is_empty() {
        "configuration: ".to_owned()
    } else {
        format!("config {}: ", path.display())
    }
}

/// A configuration type read from a file by [`load`].
pub trait ConfigFile: DeserializeOwned {
    /// Makes relative paths relative to `base` (the file's directory); see
    /// [`resolve`].
    fn resolve_paths(&mut self, base: &Path);

    /// The type's consistency rules.
    ///
    /// # Errors
    /// The first rule broken.
    fn check(&self) -> Result<(), InvalidConfig>;
}

/// Makes `path` relative to `base` when it is relative and not empty (an
/// empty path means "not given" in several configurations).
pub fn resolve(path: &mut PathBuf, base: &Path) {
    if !path.as_os_str().is_empty() && path.is_relative() {
        *path = base.join(&*path);
    }
}

/// Parses `text` as `format`; `path` only names the source in errors.
///
/// # Errors
/// [`ConfigError::Parse`] with the parser's message.
pub fn parse<T: DeserializeOwned>(
    text: &str,
    format: Format,
    path: &Path,
) -> Result<T, ConfigError> {
    let parsed = match format {
        Format::Toml => toml::from_str(text).map_err(|e| e.to_string()),
        Format::Json => serde_json::from_str(text).map_err(|e| e.to_string()),
    };
    parsed.map_err(|message| ConfigError::Parse {
        path: path.to_owned(),
        format,
        message: message.trim_end().to_owned(),
    })
}

/// Reads the configuration file `path` ([`Format::of`] its extension),
/// resolves its relative paths against its directory and checks it.
///
/// # Errors
/// [`ConfigError::Read`], [`ConfigError::Parse`] or
/// [`ConfigError::Invalid`], each naming `path`.
pub fn load<T: ConfigFile>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut config: T = parse(&text, Format::of(path), path)?;
    let base = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    config.resolve_paths(base);
    config.check().map_err(|source| ConfigError::Invalid {
        path: path.to_owned(),
        source,
    })?;
    Ok(config)
}

/// Checks a configuration built in code rather than read from a file.
///
/// # Errors
/// [`ConfigError::Invalid`] (with an empty path) for the first rule broken.
pub fn check<T: ConfigFile>(config: &T) -> Result<(), ConfigError> {
    config.check().map_err(|source| ConfigError::Invalid {
        path: PathBuf::new(),
        source,
    })
}

/// The record of the configuration a run started with, at `path` (pretty
/// JSON in the run's directory). A new run (`continuing` false) writes it
/// atomically; a continued run must bring the same configuration, since
/// resuming under other settings would mix two runs into one.
///
/// # Errors
/// [`ConfigError::Changed`] when continuing with another configuration (or
/// when the record is missing or unreadable: then nothing says the
/// settings are the same); [`ConfigError::Write`] when it cannot be
/// written.
pub fn pin_run_config<T>(path: &Path, config: &T, continuing: bool) -> Result<(), ConfigError>
where
    T: Serialize + DeserializeOwned + PartialEq,
{
    if continuing {
        let saved: Option<T> = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        return match saved {
            Some(saved) if saved == *config => Ok(()),
            _ => Err(ConfigError::Changed {
                path: path.to_owned(),
            }),
        };
    }
    let mut json = serde_json::to_string_pretty(config).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        format: Format::Json,
        message: e.to_string(),
    })?;
    json.push('\n');
    Ok(crate::write_atomic(path, json.as_bytes())?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        csv: PathBuf,
        #[serde(default)]
        model: PathBuf,
        lr: f64,
    }

    impl ConfigFile for Sample {
        fn resolve_paths(&mut self, base: &Path) {
            resolve(&mut self.csv, base);
            resolve(&mut self.model, base);
        }
        fn check(&self) -> Result<(), InvalidConfig> {
            if self.lr > 0.0 {
                Ok(())
            } else {
                Err(InvalidConfig::new("lr", "must be positive"))
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(0x6d65_6463_6170), ..proptest::prelude::ProptestConfig::default() })]

        /// Any text, read as TOML or JSON: a configuration or a parse error
        /// naming the source, never a panic.
        #[test]
        fn any_text_parses_or_is_reported(text in "\\PC{0,120}", toml_like in "(\\[[a-z]{1,6}\\]\n)?([a-z_]{1,8} = (\"[^\"\n]{0,8}\"|[0-9.e+-]{1,6}|true|\\[\\]|\\{\\})\n){0,4}") {
            for candidate in [&text, &toml_like] {
                for format in [Format::Toml, Format::Json] {
                    match parse::<Sample>(candidate, format, Path::new("x.cfg")) {
                        Ok(_) => {}
                        Err(ConfigError::Parse { path, format: f, message }) => {
                            proptest::prop_assert_eq!(path, PathBuf::from("x.cfg"));
                            proptest::prop_assert_eq!(f, format);
                            proptest::prop_assert!(!message.is_empty());
                        }
                        Err(other) => proptest::prop_assert!(false, "{}", other),
                    }
                }
            }
        }
    }

    #[test]
    fn toml_and_json_load_with_paths_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), "csv = \"x.csv\"\nlr = 0.1\n").unwrap();
        std::fs::write(dir.path().join("b.JSON"), r#"{"csv": "/abs.csv", "lr": 1}"#).unwrap();
        let a: Sample = load(&dir.path().join("a.toml")).unwrap();
        assert_eq!(a.csv, dir.path().join("x.csv"));
        assert_eq!(a.model, PathBuf::new(), "an empty path stays empty");
        let b: Sample = load(&dir.path().join("b.JSON")).unwrap();
        assert_eq!(b.csv, PathBuf::from("/abs.csv"));
    }

    #[test]
    fn each_failure_names_the_file_and_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.toml");
        let err = load::<Sample>(&missing).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
        let unknown = dir.path().join("u.toml");
        std::fs::write(&unknown, "csv = \"x\"\nlr = 1.0\nepochs = 3\n").unwrap();
        let err = load::<Sample>(&unknown).unwrap_err().to_string();
        assert!(err.contains("u.toml") && err.contains("epochs"), "{err}");
        let invalid = dir.path().join("i.json");
        std::fs::write(&invalid, r#"{"csv": "x", "lr": -1}"#).unwrap();
        let err = load::<Sample>(&invalid).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { source, .. } if source.key == "lr"),
            "{err}"
        );
        assert!(
            err.to_string().contains("i.json: lr must be positive"),
            "{err}"
        );
    }

    #[test]
    fn a_run_continues_only_with_the_configuration_it_started_with() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("config.json");
        let first = Sample {
            csv: "a.csv".into(),
            model: "m".into(),
            lr: 0.1,
        };
        let other = Sample {
            lr: 0.2,
            ..first.clone()
        };
        assert!(matches!(
            pin_run_config(&record, &first, true),
            Err(ConfigError::Changed { .. })
        ));
        pin_run_config(&record, &first, false).unwrap();
        pin_run_config(&record, &first, true).unwrap();
        let invalid = Sample {
            lr: -1.0,
            ..first.clone()
        };
        assert_eq!(
            check(&invalid).unwrap_err().to_string(),
            "configuration: lr must be positive"
        );
        let err = pin_run_config(&record, &other, true).unwrap_err();
        assert!(err.to_string().contains("config.json"), "{err}");
        // A new run replaces the record.
        pin_run_config(&record, &other, false).unwrap();
        pin_run_config(&record, &other, true).unwrap();
    }
}
