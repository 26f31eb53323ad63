//! The conformance runner: every third-party suite in `tests/fixtures/conformance`
//! (copied from `../shared/conformance` with their licences and SOURCE notes)
//! played through the milter against a real knot serving each case's DNS records.
//! Each suite prints its counts; a case whose result differs from the suite's must
//! be listed in `deviations.toml` with the RFC text that justifies our answer, and
//! a listed deviation that no longer happens fails the run too, so the list stays
//! true. `scripts/conformance.sh` runs it alone and prints the table.

#[path = "../common/mod.rs"]
mod common;

mod arc;
mod authmilter;
mod dkim_perl;
mod dkim_vectors;
mod spf;
mod tally;
mod world;
mod zone;
