//! `check-config`: everything `serve` would build from a file, built and
//! reported, with `--check-dns` comparing the published DKIM keys.

use std::path::PathBuf;
use std::process::ExitCode;

use mailwarden::config;

use crate::runtime;
use mailwarden::{Pipeline, dnscheck};

/// Loads the file and builds everything `serve` would build from it (the DNS
/// resolver and the signing keys included), so a config that passes here also
/// starts. With `check_dns`, compares each selector's published key too.
pub fn check_config(path: Option<PathBuf>, check_dns: bool) -> ExitCode {
    let (path, from) = config::locate(path);
    let c = match config::load(path.as_deref()) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{} error(s)", errors.0.len());
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = Pipeline::from_config(&c) {
        eprintln!("mailwarden: {e}");
        return ExitCode::FAILURE;
    }
    if let Some(alerts) = &c.alerts
        && let Err(e) = mailwarden::check_alerts(alerts)
    {
        eprintln!("mailwarden: {e}");
        return ExitCode::FAILURE;
    }
    if let Some(admin) = &c.admin
        && let Err(e) = mailwarden::read_tokens(&admin.token_file)
            .and_then(|_| mailwarden::tls_config(admin).map_err(|e| e.to_string()))
    {
        eprintln!("mailwarden: {e}");
        return ExitCode::FAILURE;
    }
    let source = c
        .source
        .as_ref()
        .map_or("built-in defaults".to_owned(), |p| {
            format!("{} (from {from})", p.display())
        });
    println!("{source}: OK");
    let listen: Vec<String> = c.server.listen.iter().map(ToString::to_string).collect();
    println!("  listen: {}", listen.join(", "));
    println!("  authserv_id: {}", c.inbound.authserv_id);
    let dns = if c.dns.nameservers.is_empty() {
        "system resolver (/etc/resolv.conf)".to_owned()
    } else {
        let servers: Vec<String> = c.dns.nameservers.iter().map(ToString::to_string).collect();
        servers.join(", ")
    };
    println!("  dns: {dns}");
    for k in &c.signing.keys {
        println!(
            "  signing: {} with selector {} ({})",
            k.domain,
            k.selector,
            k.key_file.display()
        );
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    // clamd being down is not a configuration error (a reload must not wait for
    // it), so it is reported and does not change the exit status.
    if let Some(av) = &c.antivirus {
        rt.block_on(check_clamd(av));
    }
    if !check_dns {
        return ExitCode::SUCCESS;
    }
    let checks = match rt.block_on(dnscheck::check_config(&c)) {
        Ok(checks) => checks,
        Err(e) => {
            eprintln!("mailwarden: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for check in checks {
        match check.outcome {
            Ok(what) => println!("  dns: {}: OK, {what}", check.name),
            Err(why) => {
                failed = true;
                eprintln!("  dns: {}: ERROR: {why}", check.name);
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `PING` and `VERSION` to clamd; prints what it said or why it could not be asked.
async fn check_clamd(av: &config::AntivirusConfig) {
    let scanner = mailwarden::Scanner::new(av);
    let result = match scanner.ping().await {
        Ok(()) => scanner.ask_version().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(version) => println!("  antivirus: clamd {}: OK, {version}", av.clamd),
        Err(e) => eprintln!(
            "  antivirus: clamd {}: WARNING: {e} (until it answers, mail gets antivirus.on_error)",
            av.clamd
        ),
    }
}
