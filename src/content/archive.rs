//! What an attachment is, from its first bytes rather than its declared type, and
//! the file names inside a zip archive, read from its central directory, and inside
//! the zip archives it holds, to a configured depth (each inner archive inflated
//! within a byte budget, so a zip bomb costs a bounded amount).

/// A MIME type for well-known magic numbers.
pub fn sniff(data: &[u8]) -> Option<&'static str> {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
        (b"MZ", "application/x-msdownload"),
        (b"\x7fELF", "application/x-elf"),
        (b"Rar!\x1a\x07", "application/vnd.rar"),
        (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
        (b"\x1f\x8b", "application/gzip"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            "application/x-ole-storage",
        ),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF8", "image/gif"),
    ];
    MAGIC
        .iter()
        .find(|(m, _)| data.starts_with(m))
        .map(|(_, t)| *t)
}

/// At most this many names are read from one archive.
const MAX_ENTRIES: usize = 10_000;

/// Bytes inflated for inner archives, in all, per attachment.
const INFLATE_BUDGET: usize = 32 << 20;

/// The member names of a zip archive, and, `depth` levels down, those of the zip
/// archives inside it as `inner.zip/member`; empty when `data` is not a zip (or is
/// damaged).
pub fn zip_names(data: &[u8], depth: u32) -> Vec<String> {
    let mut names = Vec::new();
    let mut budget = INFLATE_BUDGET;
    walk_zip(data, "", depth, &mut budget, &mut names);
    names
}

fn walk_zip(data: &[u8], prefix: &str, depth: u32, budget: &mut usize, names: &mut Vec<String>) {
    if !data.starts_with(b"PK\x03\x04") {
        return;
    }
    let u16_at = |i: usize| data.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |i: usize| {
        data.get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    // The end-of-central-directory record is in the last 64 KiB + 22 bytes.
    let lowest = data.len().saturating_sub(65_557);
    let Some(eocd) = (lowest..data.len().saturating_sub(21))
        .rev()
        .find(|&i| u32_at(i) == Some(0x0605_4b50))
    else {
        return;
    };
    let (Some(count), Some(offset)) = (u16_at(eocd + 10), u32_at(eocd + 16)) else {
        return;
    };
    let mut at = offset as usize;
    for _ in 0..usize::from(count).min(MAX_ENTRIES) {
        if names.len() >= MAX_ENTRIES || u32_at(at) != Some(0x0201_4b50) {
            break;
        }
        let (
            Some(method),
            Some(size),
            Some(name_len),
            Some(extra_len),
            Some(comment_len),
            Some(local),
        ) = (
            u16_at(at + 10),
            u32_at(at + 20),
            u16_at(at + 28),
            u16_at(at + 30),
            u16_at(at + 32),
            u32_at(at + 42),
        )
        else {
            break;
        };
        let start = at + 46;
        let Some(name) = data.get(start..start + usize::from(name_len)) else {
            break;
        };
        let name: String = String::from_utf8_lossy(name)
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        at = start + usize::from(name_len) + usize::from(extra_len) + usize::from(comment_len);
        if name.ends_with('/') {
            continue;
        }
        let path = format!("{prefix}{name}");
        if depth > 0
            && let Some(inner) = member(data, local as usize, method, size as usize, budget)
        {
            walk_zip(&inner, &format!("{path}/"), depth - 1, budget, names);
        }
        names.push(path);
    }
}

/// The data of the member whose local header is at `local`, when it is stored or
/// deflated and inflates within `budget` (which it uses up); `None` otherwise.
fn member(
    data: &[u8],
    local: usize,
    method: u16,
    size: usize,
    budget: &mut usize,
) -> Option<Vec<u8>> {
    let u16_at = |i: usize| data.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    if data.get(local..local + 4)? != b"PK\x03\x04" {
        return None;
    }
    let start = local + 30 + usize::from(u16_at(local + 26)?) + usize::from(u16_at(local + 28)?);
    let raw = data.get(start..start.checked_add(size)?)?;
    let inner = match method {
        0 => raw.to_vec(),
        8 => miniz_oxide::inflate::decompress_to_vec_with_limit(raw, *budget).ok()?,
        _ => return None,
    };
    if !inner.starts_with(b"PK\x03\x04") {
        return None;
    }
    *budget = budget.saturating_sub(inner.len());
    Some(inner)
}

#[cfg(test)]
/// A stored (uncompressed) zip with these members, built by hand.
pub(crate) fn test_zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in members {
        let offset = out.len() as u32;
        let header = |sig: u32, central: bool| {
            let mut h = sig.to_le_bytes().to_vec();
            if central {
                h.extend([20, 0]);
            }
            h.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            h.extend(0u32.to_le_bytes()); // crc, not checked here
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend([0, 0]);
            if central {
                h.extend([0; 10]); // comment length, disk, attributes
                h.extend(offset.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        out.extend(header(0x0403_4b50, false));
        out.extend(*data);
        central.extend(header(0x0201_4b50, true));
    }
    let cd_offset = out.len() as u32;
    let cd_len = central.len() as u32;
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0, 0, 0, 0]);
    out.extend((members.len() as u16).to_le_bytes());
    out.extend((members.len() as u16).to_le_bytes());
    out.extend(cd_len.to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend([0, 0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_member_names_and_sniffs_types() {
        let z = test_zip(&[
            ("invoice.pdf.exe", b"MZ\x90\x00"),
            ("dir/", b""),
            ("readme.txt", b"hi"),
        ]);
        assert_eq!(zip_names(&z, 2), ["invoice.pdf.exe", "readme.txt"]);
        assert_eq!(sniff(&z), Some("application/zip"));
        assert_eq!(sniff(b"MZ\x90\x00"), Some("application/x-msdownload"));
        assert_eq!(sniff(b"hello"), None);
        assert!(zip_names(b"PK\x03\x04 not really", 2).is_empty());
        // A central directory that points past the end is not followed.
        let mut broken = z.clone();
        let n = broken.len();
        broken[n - 6..n - 2].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(zip_names(&broken, 2).is_empty());
    }

    /// Defect 9 of the hardening review: a `.exe` in a zip in a zip passed the
    /// `attachment_ext` rules. Inner archives are read to the configured depth.
    #[test]
    fn archives_inside_archives_are_read_to_the_depth_asked() {
        let innermost = test_zip(&[("evil.exe", b"MZ\x90\x00")]);
        let inner = test_zip(&[("deeper.zip", &innermost), ("notes.txt", b"hi")]);
        let outer = test_zip(&[("inner.zip", &inner)]);
        assert_eq!(zip_names(&outer, 0), ["inner.zip"]);
        assert_eq!(
            zip_names(&outer, 1),
            ["inner.zip/deeper.zip", "inner.zip/notes.txt", "inner.zip"]
        );
        assert_eq!(
            zip_names(&outer, 2),
            [
                "inner.zip/deeper.zip/evil.exe",
                "inner.zip/deeper.zip",
                "inner.zip/notes.txt",
                "inner.zip"
            ]
        );
        let deflated = miniz_oxide::deflate::compress_to_vec(&inner, 6);
        let mut z = test_zip(&[("packed.zip", &deflated)]);
        // Method 8 (deflate) in both headers of the one member.
        for sig in [&b"PK\x03\x04"[..], b"PK\x01\x02"] {
            let at = z.windows(4).position(|w| w == sig).unwrap();
            let method = at + if sig[2] == 3 { 8 } else { 10 };
            z[method] = 8;
        }
        let names = zip_names(&z, 2);
        assert!(
            names.contains(&"packed.zip/deeper.zip/evil.exe".to_owned()),
            "{names:?}"
        );
    }
}
