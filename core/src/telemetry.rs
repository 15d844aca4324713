//! Tracing set-up shared by the binaries: human or JSON lines on stderr, filtered by `RUST_LOG`.
//!
//! What may be logged is set by the design, not here: no raw rows, record ids or pre-disclosure
//! counts at any level, and TLS refusals only at debug.

use std::fmt;
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

/// Installs the global tracing subscriber, writing to stderr in `format`.
///
/// The filter comes from `RUST_LOG` when it is set and valid, otherwise from `default_filter`
/// (e.g. `"info"` or `"vrs_node=debug,info"`). Calling it again (tests, embedded use) changes
/// nothing: the first subscriber stays.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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
    fn init_twice_is_harmless() {
        init(LogFormat::Json, "debug");
        init(LogFormat::Human, "info");
        tracing::debug!("still works");
    }
}
