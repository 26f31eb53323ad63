//! Counting a suite's cases, and holding the differences to `deviations.toml`.

use std::collections::BTreeMap;

/// One case whose result differs from the suite's, with the reason we keep ours.
/// `case` may hold `*` wildcards (one entry for a class of cases, e.g. every
/// iprev result of a suite); `expected`, when given, must match too.
#[derive(serde::Deserialize)]
struct Deviation {
    suite: String,
    case: String,
    #[serde(default)]
    expected: Option<String>,
    ours: String,
    reason: String,
}

impl Deviation {
    fn covers(&self, case: &str, expected: &str) -> bool {
        glob(&self.case, case) && self.expected.as_deref().is_none_or(|e| e == expected)
    }
}

/// `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

#[derive(serde::Deserialize)]
struct File {
    deviation: Vec<Deviation>,
}

pub struct Tally {
    suite: &'static str,
    total: usize,
    agreed: usize,
    /// case → (expected, ours)
    differ: BTreeMap<String, (String, String)>,
    not_comparable: Vec<String>,
}

impl Tally {
    pub fn new(suite: &'static str) -> Tally {
        Tally {
            suite,
            total: 0,
            agreed: 0,
            differ: BTreeMap::new(),
            not_comparable: Vec::new(),
        }
    }

    /// Records one case: `expected` may list alternatives (`fail|permerror`).
    /// Returns whether it agreed.
    pub fn case(&mut self, id: &str, expected: &str, ours: &str) -> bool {
        self.total += 1;
        if expected.split('|').any(|e| e.eq_ignore_ascii_case(ours)) {
            self.agreed += 1;
            true
        } else {
            self.differ
                .insert(id.to_owned(), (expected.to_owned(), ours.to_owned()));
            false
        }
    }

    /// A case the suite has but that compares nothing an RFC defines (named, counted).
    pub fn skip(&mut self, id: &str, why: &str) {
        self.not_comparable.push(format!("{id} ({why})"));
    }

    /// Prints the counts and fails on a difference not in `deviations.toml`, on a
    /// listed one that did not happen (or happened with another result), and when
    /// fewer than `minimum` cases agree.
    pub fn finish(self, minimum: usize) {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/conformance/deviations.toml"),
        )
        .expect("tests/conformance/deviations.toml");
        let file: File = toml::from_str(&text).expect("deviations.toml parses");
        let listed: Vec<&Deviation> = file
            .deviation
            .iter()
            .filter(|d| d.suite == self.suite)
            .collect();
        for d in &listed {
            assert!(
                !d.reason.trim().is_empty(),
                "{}/{}: no reason given",
                d.suite,
                d.case
            );
        }
        let mut problems = Vec::new();
        let mut used = vec![false; listed.len()];
        for (case, (expected, ours)) in &self.differ {
            match listed.iter().position(|d| d.covers(case, expected)) {
                Some(i) if listed[i].ours.eq_ignore_ascii_case(ours) => used[i] = true,
                Some(i) => problems.push(format!(
                    "{case}: expected {expected}, ours {ours} (deviations.toml says ours is {})",
                    listed[i].ours
                )),
                None => problems.push(format!("{case}: expected {expected}, ours {ours}")),
            }
        }
        for (d, used) in listed.iter().zip(used) {
            if !used {
                problems.push(format!(
                    "{}: listed in deviations.toml but agrees now (or did not run)",
                    d.case
                ));
            }
        }
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "CONFORMANCE {}: {}/{} agree, {} documented deviations, {} not comparable{}",
            self.suite,
            self.agreed,
            self.total,
            self.differ.len(),
            self.not_comparable.len(),
            if self.not_comparable.is_empty() {
                String::new()
            } else {
                format!(": {}", self.not_comparable.join(", "))
            }
        );
        for (case, (expected, ours)) in &self.differ {
            let _ = writeln!(
                std::io::stderr(),
                "  documented: {case}: expected {expected}, ours {ours}"
            );
        }
        assert!(
            problems.is_empty(),
            "{}:\n{}",
            self.suite,
            problems.join("\n")
        );
        assert!(
            self.agreed >= minimum,
            "{}: {} cases agree, fewer than {minimum}",
            self.suite,
            self.agreed
        );
    }
}
