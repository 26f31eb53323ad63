//! DMARC reports: the rows the daemon records for every evaluated message
//! ([`Recorder`]), the SQLite store they are kept in, RFC 9990 aggregate and
//! RFC 9991 failure reports built from them, and their delivery
//! (`mailwarden reports send` / `list`).

mod aggregate;
mod failure;
mod fleet_rows;
mod mail;
mod recorder;
mod records;
mod row;
mod send;
mod store;

#[cfg(test)]
mod tests;

pub use recorder::Recorder;
pub use send::{Options as SendOptions, Summary as SendSummary, list, run as send};

/// A store filled with `rows` synthetic rows over `domains` policy domains and
/// 2,000 source IPs, for `cargo bench --bench reports`. Not an API.
#[doc(hidden)]
pub fn fill_for_bench(path: &std::path::Path, rows: usize, domains: usize) -> Result<(), String> {
    let mut store = store::Store::open(path)?;
    let t = recorder::unix_now() - 3_600;
    let batch: Vec<row::Row> = (0..10_000)
        .map(|i| row::Row {
            t,
            policy_domain: String::new(),
            header_from: String::new(),
            source_ip: format!("198.51.{}.{}", i % 2_000 / 250, i % 250),
            envelope_from: String::new(),
            envelope_to: "example.net".into(),
            disposition: ["pass", "none", "quarantine", "reject"][i % 4],
            dkim_aligned: i % 4 == 0,
            spf_aligned: i % 8 == 0,
            override_type: None,
            override_comment: None,
            spf: String::new(),
            dkim: String::new(),
            policy: "p=reject;adkim=r;aspf=r;psd=u;t=n;fo=0".into(),
            discovery: "treewalk",
            rua: String::new(),
        })
        .collect();
    let mut done = 0;
    while done < rows {
        let n = (rows - done).min(batch.len());
        let mut chunk = batch[..n].to_vec();
        for (i, r) in chunk.iter_mut().enumerate() {
            let domain = format!("domain{}.example", (done + i) % domains.max(1));
            r.spf = format!(
                "{domain} mfrom {}",
                if r.spf_aligned { "pass" } else { "fail" }
            );
            r.dkim = format!(
                "{domain} s1 {}",
                if r.dkim_aligned { "pass" } else { "fail" }
            );
            r.rua = format!("dmarc@{domain}");
            r.envelope_from = domain.clone();
            r.header_from = domain.clone();
            r.policy_domain = domain;
        }
        store.insert(&chunk)?;
        done += n;
    }
    Ok(())
}
