//! `dns-audit`: one of the admin's domains as receivers see it in the DNS (SPF,
//! DKIM against our keys, DMARC, MTA-STS, TLS-RPT). Exit 0 when all is well, 1
//! with warnings, 2 with errors.

use std::path::PathBuf;
use std::process::ExitCode;

use mailwarden::config;
use mailwarden::dns_audit::{Finding, Level};
use mailwarden::dnscheck;

use crate::runtime;

pub fn dns_audit(path: Option<PathBuf>, domain: &str, json: bool) -> ExitCode {
    let Some(c) = crate::load_config(path) else {
        return ExitCode::from(2);
    };
    if let Err(e) = config::parse_domain(domain) {
        eprintln!("mailwarden: {domain}: {e}");
        return ExitCode::from(2);
    }
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(_) => return ExitCode::from(2),
    };
    let audited = rt.block_on(async {
        let mut findings =
            mailwarden::dns_audit::audit(&c.dns, c.inbound.dmarc_discovery, &domain).await?;
        findings.extend(dkim(&c, &domain).await?);
        Ok::<_, String>(findings)
    });
    let findings = match audited {
        Ok(f) => f,
        Err(e) => {
            eprintln!("mailwarden: {e}");
            return ExitCode::from(2);
        }
    };
    let worst = findings.iter().map(|f| f.level).max().unwrap_or(Level::Ok);
    let result = match worst {
        Level::Error => "errors",
        Level::Warning => "warnings",
        _ => "ok",
    };
    if json {
        let doc = serde_json::json!({ "domain": domain, "result": result, "findings": findings });
        println!("{doc}");
    } else {
        for f in &findings {
            let level = match f.level {
                Level::Ok => "ok",
                Level::Info => "note",
                Level::Warning => "WARNING",
                Level::Error => "ERROR",
            };
            println!("{:<8} {:<8} {}", f.check, level, f.message);
        }
        println!("{domain}: {result}");
    }
    ExitCode::from(match worst {
        Level::Error => 2,
        Level::Warning => 1,
        _ => 0,
    })
}

/// Our `[[signing.keys]]` for the domain against what DNS publishes.
async fn dkim(c: &config::Config, domain: &str) -> Result<Vec<Finding>, String> {
    let suffix = format!("._domainkey.{domain}");
    let ours = c.signing.keys.iter().any(|k| k.domain == domain);
    if !ours {
        return Ok(vec![Finding::new(
            "dkim",
            Level::Info,
            format!(
                "no [[signing.keys]] for {domain} in the configuration: no published key compared"
            ),
        )]);
    }
    Ok(dnscheck::check_config(c)
        .await?
        .into_iter()
        .filter(|k| k.name.ends_with(&suffix))
        .map(|k| match k.outcome {
            Ok(what) => Finding::new("dkim", Level::Ok, format!("{}: {what}", k.name)),
            Err(why) => Finding::new("dkim", Level::Error, format!("{}: {why}", k.name)),
        })
        .collect())
}
