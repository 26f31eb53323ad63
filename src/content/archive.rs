//! What an attachment is, from its first bytes rather than its declared type, and
//! the file names inside a zip archive (read from its central directory; nothing
//! is decompressed).

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

/// The member names of a zip archive; empty when `data` is not one (or is damaged).
pub fn zip_names(data: &[u8]) -> Vec<String> {
    if !data.starts_with(b"PK\x03\x04") {
        return Vec::new();
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
        return Vec::new();
    };
    let (Some(count), Some(offset)) = (u16_at(eocd + 10), u32_at(eocd + 16)) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    let mut at = offset as usize;
    for _ in 0..usize::from(count).min(MAX_ENTRIES) {
        if u32_at(at) != Some(0x0201_4b50) {
            break;
        }
        let (Some(name_len), Some(extra_len), Some(comment_len)) =
            (u16_at(at + 28), u16_at(at + 30), u16_at(at + 32))
        else {
            break;
        };
        let start = at + 46;
        let Some(name) = data.get(start..start + usize::from(name_len)) else {
            break;
        };
        let name = String::from_utf8_lossy(name);
        if !name.ends_with('/') {
            names.push(name.chars().filter(|c| !c.is_control()).collect());
        }
        at = start + usize::from(name_len) + usize::from(extra_len) + usize::from(comment_len);
    }
    names
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
        assert_eq!(zip_names(&z), ["invoice.pdf.exe", "readme.txt"]);
        assert_eq!(sniff(&z), Some("application/zip"));
        assert_eq!(sniff(b"MZ\x90\x00"), Some("application/x-msdownload"));
        assert_eq!(sniff(b"hello"), None);
        assert!(zip_names(b"PK\x03\x04 not really").is_empty());
        // A central directory that points past the end is not followed.
        let mut broken = z.clone();
        let n = broken.len();
        broken[n - 6..n - 2].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(zip_names(&broken).is_empty());
    }
}
