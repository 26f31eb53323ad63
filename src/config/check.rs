//! The checker every section of the configuration is validated with: it turns raw
//! spanned TOML values into typed ones (durations, sizes, ranges, lists) and
//! collects every error with its file, line, column and key, so one run of
//! `check-config` reports them all.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::error::ConfigError;
use super::parse::S;
use super::units::{parse_duration, parse_size};

/// Collects errors with positions resolved against the source text.
pub(super) struct Checker<'a> {
    pub(super) file: Option<&'a Path>,
    pub(super) source: &'a str,
    pub(super) errors: Vec<ConfigError>,
}

impl<'a> Checker<'a> {
    pub(super) fn error(
        &mut self,
        span: Option<Range<usize>>,
        key: &str,
        reason: impl Into<String>,
    ) {
        self.errors.push(ConfigError {
            file: self.file.map(Path::to_path_buf),
            position: span.map(|s| line_column(self.source, s.start)),
            key: Some(key.to_owned()),
            reason: reason.into(),
        });
    }

    /// The place of `key = ` inside `span` when it stands there exactly once, else
    /// `span`: a table given inline or over several lines has one span, and an error
    /// about one of its keys should point at that key's line.
    pub(super) fn narrow(&self, span: &Range<usize>, key: &str) -> Range<usize> {
        let Some(text) = self.source.get(span.clone()) else {
            return span.clone();
        };
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        let places: Vec<usize> = text
            .match_indices(key)
            .filter(|(at, _)| {
                let before = text[..*at].chars().next_back();
                let after = text[at + key.len()..].trim_start();
                !before.is_some_and(word) && after.starts_with('=') && !after.starts_with("==")
            })
            .map(|(at, _)| at)
            .collect();
        match places.as_slice() {
            [at] => span.start + at..span.start + at + key.len(),
            _ => span.clone(),
        }
    }

    /// Parses an optional spanned string with `parse`, falling back to `default`.
    pub(super) fn value<T>(
        &mut self,
        raw: S<String>,
        key: &str,
        default: T,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> T {
        match raw {
            None => default,
            Some(spanned) => match parse(spanned.get_ref()) {
                Ok(v) => v,
                Err(reason) => {
                    self.error(Some(spanned.span()), key, reason);
                    default
                }
            },
        }
    }

    pub(super) fn duration(&mut self, raw: S<String>, key: &str, default: Duration) -> Duration {
        self.value(raw, key, default, |t| match parse_duration(t)? {
            d if d.is_zero() => Err("must be longer than zero".to_owned()),
            d => Ok(d),
        })
    }

    /// A duration that must stay below `server.eom_timeout` (`eom`); `why` ends the
    /// error message.
    pub(super) fn duration_within_eom(
        &mut self,
        raw: S<String>,
        key: &str,
        default: Duration,
        eom: Duration,
        why: &str,
    ) -> Duration {
        let span = raw.as_ref().map(Spanned::span);
        let d = self.duration(raw, key, default);
        if d >= eom {
            self.error(
                span,
                key,
                format!(
                    "must be shorter than server.eom_timeout ({}s), {why}",
                    eom.as_secs()
                ),
            );
        }
        d
    }

    pub(super) fn size(&mut self, raw: S<String>, key: &str, default: usize, min: usize) -> usize {
        self.value(raw, key, default, |t| {
            let n = usize::try_from(parse_size(t)?).map_err(|_| "too large".to_owned())?;
            if n < min {
                Err(format!("must be at least {min} bytes"))
            } else {
                Ok(n)
            }
        })
    }

    pub(super) fn integer(
        &mut self,
        raw: S<i64>,
        key: &str,
        default: u32,
        range: Range<i64>,
    ) -> u32 {
        match raw {
            None => default,
            Some(v) if range.contains(v.get_ref()) => *v.get_ref() as u32,
            Some(v) => {
                let reason = format!(
                    "{} is out of range ({} to {})",
                    v.get_ref(),
                    range.start,
                    range.end - 1
                );
                self.error(Some(v.span()), key, reason);
                default
            }
        }
    }

    pub(super) fn list<T>(
        &mut self,
        raw: Vec<Spanned<String>>,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Vec<T> {
        let mut out = Vec::with_capacity(raw.len());
        for item in raw {
            match parse(item.get_ref()) {
                Ok(v) => out.push(v),
                Err(reason) => self.error(Some(item.span()), key, reason),
            }
        }
        out
    }
}

pub(super) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
