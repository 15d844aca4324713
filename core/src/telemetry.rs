//! Tracing set-up shared by the binaries: human or JSON lines on stderr, filtered by `RUST_LOG`.
//!
//! What may be logged is set by the design, not here: no raw rows, record ids or pre-disclosure
//! counts at any level, and TLS refusals only at debug.

use std::fmt;
use std::io::IsTerminal;
use std::str::FromStr;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal (the default).
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// A log format name that is neither `human` nor `json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log format {0:?}: expected \"human\" or \"json\"")]
pub struct LogFormatError(String);

impl FromStr for LogFormat {
    type Err = LogFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            other => Err(LogFormatError(other.chars().take(40).collect())),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        })
    }
}

/// Where log lines go and which are kept: chosen once, before the subscriber is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logging {
    /// Human or JSON lines.
    pub format: LogFormat,
    /// The filter used when `RUST_LOG` is unset (e.g. `"info"`).
    pub filter: String,
}

/// A log setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoggingError {
    /// The configuration's `[log] format` is neither `human` nor `json`.
    #[error("[log] format: {0}")]
    Format(#[from] LogFormatError),
    /// The configuration's `[log] level` is not a tracing filter.
    #[error("[log] level {0:?} is not a valid filter (e.g. \"info\" or \"vrs_node=debug,warn\")")]
    Level(String),
}

impl Logging {
    /// The settings from a command-line flag, else from a configuration's `[log]` section
    /// (`format`, `level` as written), else `human` with `default_filter`. A configuration value
    /// that does not parse is an error, never silently replaced by a default; the flag wins over
    /// the configuration's format, the configuration's level still applies.
    pub fn resolve(
        flag: Option<LogFormat>,
        config: Option<(&str, &str)>,
        default_filter: &str,
    ) -> Result<Logging, LoggingError> {
        let (format, filter) = match config {
            Some((format, level)) => {
                let format: LogFormat = format.parse()?;
                if EnvFilter::try_new(level).is_err() {
                    return Err(LoggingError::Level(level.chars().take(80).collect()));
                }
                (format, level)
            }
            None => (LogFormat::Human, default_filter),
        };
        Ok(Logging {
            format: flag.unwrap_or(format),
            filter: filter.to_string(),
        })
    }

    /// Installs the global subscriber with these settings ([`init`]).
    pub fn install(&self) {
        init(self.format, &self.filter);
    }
}

/// Installs the global tracing subscriber, writing to stderr in `format` (coloured only when
/// stderr is a terminal).
///
/// The filter comes from `RUST_LOG` when it is set and valid, otherwise from `default_filter`
/// (e.g. `"info"` or `"vrs_node=debug,info"`). Calling it again (tests, embedded use) changes
/// nothing: the first subscriber stays.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Colour only on a terminal: a log file or collector gets no escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // An error only means a global subscriber is already set.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_parses_and_prints() {
        for format in [LogFormat::Human, LogFormat::Json] {
            assert_eq!(format.to_string().parse::<LogFormat>(), Ok(format));
        }
        assert!("JSON".parse::<LogFormat>().is_err());
        let from_config: LogFormat = serde_json::from_str("\"json\"").unwrap();
        assert_eq!(from_config, LogFormat::Json);
    }

    #[test]
    fn the_flag_wins_and_a_wrong_config_value_is_an_error() {
        let from_config = Logging::resolve(None, Some(("json", "debug")), "info").unwrap();
        assert_eq!(from_config.format, LogFormat::Json);
        assert_eq!(from_config.filter, "debug");
        let flag = Logging::resolve(Some(LogFormat::Human), Some(("json", "warn")), "info");
        assert_eq!(flag.unwrap().format, LogFormat::Human);
        let none = Logging::resolve(None, None, "warn").unwrap();
        assert_eq!(
            (none.format, none.filter.as_str()),
            (LogFormat::Human, "warn")
        );
        assert!(matches!(
            Logging::resolve(Some(LogFormat::Human), Some(("jsn", "info")), "info"),
            Err(LoggingError::Format(_))
        ));
        assert!(matches!(
            Logging::resolve(None, Some(("human", "info,[=")), "info"),
            Err(LoggingError::Level(_))
        ));
    }

    #[test]
    fn init_twice_is_harmless() {
        init(LogFormat::Json, "debug");
        init(LogFormat::Human, "info");
        tracing::debug!("still works");
    }
}
