//! Counting a suite's cases, and holding the differences to `deviations.toml`.

use std::collections::BTreeMap;

/// One case whose result differs from the suite's, with the reason we keep ours.
#[derive(serde::Deserialize)]
struct Deviation {
    suite: String,
    case: String,
    ours: String,
    reason: String,
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
    pub fn case(&mut self, id: &str, expected: &str, ours: &str) {
        self.total += 1;
        if expected.split('|').any(|e| e.eq_ignore_ascii_case(ours)) {
            self.agreed += 1;
        } else {
            self.differ
                .insert(id.to_owned(), (expected.to_owned(), ours.to_owned()));
        }
    }

    /// A case the suite has but that compares nothing an RFC defines (named, counted).
    #[allow(dead_code)]
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
        let listed: BTreeMap<&str, &Deviation> = file
            .deviation
            .iter()
            .filter(|d| d.suite == self.suite)
            .map(|d| (d.case.as_str(), d))
            .collect();
        for d in listed.values() {
            assert!(
                !d.reason.trim().is_empty(),
                "{}/{}: no reason given",
                d.suite,
                d.case
            );
        }
        let mut problems = Vec::new();
        for (case, (expected, ours)) in &self.differ {
            match listed.get(case.as_str()) {
                Some(d) if d.ours.eq_ignore_ascii_case(ours) => {}
                Some(d) => problems.push(format!(
                    "{case}: expected {expected}, ours {ours} (deviations.toml says ours is {})",
                    d.ours
                )),
                None => problems.push(format!("{case}: expected {expected}, ours {ours}")),
            }
        }
        for case in listed.keys() {
            if !self.differ.contains_key(*case) {
                problems.push(format!(
                    "{case}: listed in deviations.toml but agrees now (or did not run)"
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
