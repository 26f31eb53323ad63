//! `genkey` and `keys rotate`: new DKIM keys, their records, and the steps
//! that keep mail verifiable while a selector changes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use mailwarden::config::{self, KeyAlgorithm};
use mailwarden::{genkey, rotate};

/// A new key: for which domain and selector, of what kind, owned by whom.
#[derive(clap::Args)]
pub struct KeyArgs {
    #[arg(long)]
    pub domain: String,
    /// Required for genkey; for keys rotate, default s<year><month>.
    #[arg(long, required = false)]
    pub selector: Option<String>,
    /// rsa-sha256 (genkey's default) or ed25519-sha256; for keys rotate, which
    /// of a domain's keys (when it has both).
    #[arg(long)]
    pub algorithm: Option<String>,
    /// RSA modulus size: 2048, 3072 or 4096.
    #[arg(long, default_value_t = 2048)]
    pub bits: usize,
    /// Owner of the key file (run as root), e.g. mailwarden.
    #[arg(long)]
    pub owner: Option<String>,
    /// Group of the key file; the file is then mode 0640.
    #[arg(long)]
    pub group: Option<String>,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make the next key for a domain beside its current one; print its DNS
    /// record, the configuration change and when to make it.
    Rotate {
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        #[command(flatten)]
        key: KeyArgs,
    },
}

fn algorithm(name: &str) -> Result<KeyAlgorithm, String> {
    match name {
        "rsa-sha256" => Ok(KeyAlgorithm::RsaSha256),
        "ed25519-sha256" => Ok(KeyAlgorithm::Ed25519Sha256),
        other => Err(format!("{other:?}: use rsa-sha256 or ed25519-sha256")),
    }
}

pub fn genkey(key: &KeyArgs, out: &Path) -> ExitCode {
    let (domain, selector, bits) = (
        key.domain.as_str(),
        key.selector.as_deref().unwrap_or(""),
        key.bits,
    );
    let (owner, group) = (key.owner.as_deref(), key.group.as_deref());
    let algorithm = match algorithm(key.algorithm.as_deref().unwrap_or("rsa-sha256")) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("mailwarden: --algorithm {e}");
            return ExitCode::FAILURE;
        }
    };
    for (what, value, check) in [
        (
            "--domain",
            domain,
            config::parse_domain as fn(&str) -> Result<String, String>,
        ),
        ("--selector", selector, config::parse_selector),
    ] {
        if let Err(e) = check(value) {
            eprintln!("mailwarden: {what}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let domain = domain.to_ascii_lowercase();
    let selector = selector.to_ascii_lowercase();
    let owner = match genkey::Ownership::named(owner, group) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mailwarden: {e}");
            return ExitCode::FAILURE;
        }
    };
    match genkey::generate(&domain, &selector, algorithm, bits, out, owner) {
        Err(e) => {
            eprintln!("mailwarden: {e}");
            ExitCode::FAILURE
        }
        Ok(g) => {
            print!("{}", g.instructions(&domain, &selector, algorithm));
            ExitCode::SUCCESS
        }
    }
}

pub fn rotate(path: Option<PathBuf>, key: &KeyArgs) -> ExitCode {
    let Some(c) = crate::load_config(path) else {
        return ExitCode::FAILURE;
    };
    let request =
        genkey::Ownership::named(key.owner.as_deref(), key.group.as_deref()).and_then(|owner| {
            Ok(rotate::Request {
                domain: &key.domain,
                selector: key.selector.as_deref(),
                algorithm: key.algorithm.as_deref().map(algorithm).transpose()?,
                rsa_bits: key.bits,
                owner,
            })
        });
    match request.and_then(|r| rotate::rotate(&c, &r)) {
        Ok(r) => {
            print!("{}", r.instructions());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mailwarden: {e}");
            ExitCode::FAILURE
        }
    }
}
