//! Configuration: the TOML schema, its defaults, and validation with errors that name
//! file, line, key and reason. Unknown keys are errors, never silently ignored.

mod admin;
mod alerts;
mod antivirus;
mod check;
mod cluster;
mod error;
mod model;
mod parse;
mod rate_limit;
mod reload;
mod reports;
mod rule;
mod rules;
mod signing;
mod units;

#[cfg(test)]
mod tests;

pub use error::{ConfigError, ConfigErrors};
pub use model::*;
pub use parse::{built_in, host_name, load_file, parse_domain, parse_log_format, parse_str};
pub use rate_limit::{LimitKey, RateLimit};
pub use reload::needs_restart;
pub use rule::{
    AUTH_METHODS, Action, Condition, DomainList, Enforcer, Impersonation, Matcher, Pattern, Rule,
    StripSpec, TextField, in_networks, normalize_name,
};
pub use signing::{DEFAULT_HEADERS, parse_selector};
pub use units::{parse_duration, parse_size};

use std::path::{Path, PathBuf};

/// The configuration file a package installs, read when `-c` and
/// `MAILWARDEN_CONFIG` name none.
pub const DEFAULT_PATH: &str = "/etc/mailwarden/mailwarden.toml";

/// Which file to read, and why: `-c FILE`; else `$MAILWARDEN_CONFIG`; else
/// [`DEFAULT_PATH`] when it exists; else none (the built-in defaults).
pub fn locate(given: Option<PathBuf>) -> (Option<PathBuf>, &'static str) {
    if let Some(path) = given {
        return (Some(path), "-c");
    }
    if let Some(path) = std::env::var_os("MAILWARDEN_CONFIG").filter(|v| !v.is_empty()) {
        return (Some(path.into()), "MAILWARDEN_CONFIG");
    }
    let default = Path::new(DEFAULT_PATH);
    if default.exists() {
        return (Some(default.to_owned()), "the default path");
    }
    (None, "built-in defaults")
}

/// Loads `path`, or the built-in defaults when there is none.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigErrors> {
    match path {
        Some(p) => load_file(p),
        None => Ok(built_in()),
    }
}
