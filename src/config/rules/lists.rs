//! The values conditions match against: patterns (exact, glob, regex), lists given
//! inline or read from a file next to the config, domain lists and header names.

use std::ops::Range;
use std::path::PathBuf;

use regex::{Regex, RegexBuilder};
use toml::Value;

use super::*;

impl RuleCtx<'_, '_> {
    /// Domains from a string, a list or `{ file = "..." }`, checked and lower-cased.
    pub(super) fn domain_list(
        &mut self,
        v: &Value,
        field: &str,
        span: &Range<usize>,
    ) -> Option<DomainList> {
        let source = match v {
            Value::Table(t) => format!(
                "list file {}",
                self.base
                    .join(t.get("file").and_then(Value::as_str).unwrap_or_default())
                    .display()
            ),
            _ => field.rsplit('.').next().unwrap_or(field).to_owned(),
        };
        let items = self.list_items(v, field, span)?;
        let mut domains = Vec::with_capacity(items.len());
        for item in items {
            match crate::config::parse_domain(item.trim_start_matches("*.")) {
                Ok(d) => domains.push(d),
                Err(e) => {
                    self.err(span, field, format!("{item:?}: {e}"));
                    return None;
                }
            }
        }
        Some(DomainList { domains, source })
    }

    /// Strings from a string, a list of strings, or `{ file = "..." }`.
    pub(super) fn list_items(
        &mut self,
        v: &Value,
        field: &str,
        span: &Range<usize>,
    ) -> Option<Vec<String>> {
        match v {
            Value::String(s) => Some(vec![s.clone()]),
            Value::Array(items) => {
                let strings: Option<Vec<String>> = items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect();
                if strings.is_none() {
                    self.err(span, field, "must be a list of strings");
                }
                strings
            }
            Value::Table(t) if t.len() == 1 && t.contains_key("file") => {
                let file = t.get("file").and_then(Value::as_str).unwrap_or_default();
                self.read_list(file, field, span).map(|(_, lines)| lines)
            }
            _ => {
                self.err(
                    span,
                    field,
                    "must be a string, a list of strings or { file = \"...\" }",
                );
                None
            }
        }
    }

    /// Lines of a list file (relative to the config file), `#` comments and blank
    /// lines skipped.
    pub(super) fn read_list(
        &mut self,
        file: &str,
        field: &str,
        span: &Range<usize>,
    ) -> Option<(PathBuf, Vec<String>)> {
        let path = self.base.join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => Some((
                path,
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned)
                    .collect(),
            )),
            Err(e) => {
                self.err(
                    span,
                    field,
                    format!("cannot read list file {}: {e}", path.display()),
                );
                None
            }
        }
    }

    pub(super) fn words(
        &mut self,
        v: &Value,
        field: &str,
        span: &Range<usize>,
        allowed: &[&str],
    ) -> Option<Vec<String>> {
        let items = self.list_items(v, field, span)?;
        for item in &items {
            if !allowed.contains(&item.as_str()) {
                self.err(
                    span,
                    field,
                    format!("{item:?} is not one of {}", allowed.join(", ")),
                );
                return None;
            }
        }
        Some(items)
    }

    /// A text matcher: "exact", ["a", "b"], { glob = ... }, { regex = ... },
    /// { file = "..." } (one entry per line; entries with * or ? are globs).
    pub(super) fn matcher(
        &mut self,
        v: &Value,
        field: &str,
        span: &Range<usize>,
        extension: bool,
    ) -> Option<Matcher> {
        let exact = |s: &str| {
            let s = if extension {
                s.trim_start_matches('.').to_ascii_lowercase()
            } else {
                s.to_owned()
            };
            Pattern::Exact(s)
        };
        let Value::Table(t) = v else {
            let items = self.list_items(v, field, span)?;
            return Some(Matcher {
                patterns: items.iter().map(|s| exact(s)).collect(),
                source: None,
            });
        };
        if let Some(unknown) = t
            .keys()
            .find(|k| !["glob", "regex", "file"].contains(&k.as_str()))
        {
            self.err(
                span,
                &format!("{field}.{unknown}"),
                "unknown matcher key: use glob, regex or file",
            );
            return None;
        }
        if t.len() != 1 {
            self.err(span, field, "give exactly one of glob, regex or file");
            return None;
        }
        let (kind, value) = t.iter().next()?;
        match kind.as_str() {
            "file" => {
                let file = value.as_str().unwrap_or_default();
                let (path, lines) = self.read_list(file, field, span)?;
                let mut patterns = Vec::new();
                for line in lines {
                    if line.contains(['*', '?']) {
                        patterns.push(Pattern::Regex(self.compile(&glob(&line), field, span)?));
                    } else {
                        patterns.push(exact(&line));
                    }
                }
                Some(Matcher {
                    patterns,
                    source: Some(format!("list file {}", path.display())),
                })
            }
            "glob" | "regex" => {
                let items = self.list_items(value, &format!("{field}.{kind}"), span)?;
                let mut patterns = Vec::new();
                for item in items {
                    let re = if kind == "glob" { glob(&item) } else { item };
                    patterns.push(Pattern::Regex(self.compile(&re, field, span)?));
                }
                Some(Matcher {
                    patterns,
                    source: None,
                })
            }
            other => {
                self.err(
                    span,
                    field,
                    format!("unknown matcher {other:?}: use glob, regex or file"),
                );
                None
            }
        }
    }

    /// `Some(())` when `name` can be a header field name; else an error at
    /// `field.name`.
    pub(super) fn header_name(
        &mut self,
        name: &str,
        field: &str,
        span: &Range<usize>,
    ) -> Option<()> {
        if valid_header_name(name) {
            return Some(());
        }
        self.err(
            span,
            &format!("{field}.name"),
            format!("{name:?} is not a header name"),
        );
        None
    }

    pub(super) fn compile(&mut self, re: &str, field: &str, span: &Range<usize>) -> Option<Regex> {
        match RegexBuilder::new(re).size_limit(1 << 20).build() {
            Ok(r) => Some(r),
            Err(e) => {
                self.err(span, field, format!("bad regular expression {re:?}: {e}"));
                None
            }
        }
    }
}
