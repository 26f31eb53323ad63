//! Reading a secret from a file: a DKIM private key, a bearer-token file, a TLS
//! key, the webhook token. A secret that another user could read, or that anyone
//! but its owner could change, is refused with a message that says how to fix it:
//! a key that others can replace is as good as a key they know.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path}: readable by every user (mode {mode:04o}); chmod 600 (or 640 with a group for mailwarden)"
    )]
    WorldReadable { path: String, mode: u32 },
    #[error(
        "{path}: writable by {who} (mode {mode:04o}); only its owner may change a secret: chmod 600 (or 640)"
    )]
    Writable {
        path: String,
        mode: u32,
        who: &'static str,
    },
}

/// Checks the mode of `path`: no access for others, no write for the group.
pub fn check(path: &Path) -> Result<(), SecretError> {
    let shown = || path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| SecretError::Io {
        path: shown(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o002 != 0 {
        return Err(SecretError::Writable {
            path: shown(),
            mode,
            who: "every user",
        });
    }
    if mode & 0o020 != 0 {
        return Err(SecretError::Writable {
            path: shown(),
            mode,
            who: "its group",
        });
    }
    if mode & 0o004 != 0 {
        return Err(SecretError::WorldReadable {
            path: shown(),
            mode,
        });
    }
    Ok(())
}

/// The bytes of a secret file, after [`check`].
pub fn read(path: &Path) -> Result<Vec<u8>, SecretError> {
    check(path)?;
    std::fs::read(path).map_err(|source| SecretError::Io {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn only_owner_writable_and_not_world_readable_secrets_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret").unwrap();
        for (mode, ok) in [
            (0o600, true),
            (0o640, true),
            (0o400, true),
            (0o440, true),
            (0o644, false),
            (0o604, false),
            (0o602, false),
            (0o622, false),
            (0o660, false),
            (0o620, false),
            (0o606, false),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let got = read(&path);
            assert_eq!(got.is_ok(), ok, "mode {mode:o}: {got:?}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o622)).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("writable by every user (mode 0622)"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o620)).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("writable by its group (mode 0620)"), "{err}");
    }
}
