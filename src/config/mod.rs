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

use std::path::Path;

/// Loads `path`, or the built-in defaults when there is none.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigErrors> {
    match path {
        Some(p) => load_file(p),
        None => Ok(built_in()),
    }
}
