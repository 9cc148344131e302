//! Application logos (seed 000: "Upload an image file. The logo will be visible in the
//! applications list and on the authentication pages"): checked by size and by what the bytes
//! are, not by what the uploader says they are; stored beside the client and versioned by digest.

use serde_json::json;

use super::permission::Operation;
use super::{invalid, Admin, AdminError, AdminResult};
use crate::model::{Client, Logo};
use crate::provider::Provider;
use crate::secret::{b64url, b64url_decode, sha256};
use crate::store::{Change, Record};

/// The image types a logo may have, recognised by their first bytes (their signatures).
const TYPES: [(&str, &[u8]); 5] = [
    ("image/png", b"\x89PNG\r\n\x1a\n"),
    ("image/jpeg", b"\xff\xd8\xff"),
    ("image/gif", b"GIF87a"),
    ("image/gif", b"GIF89a"),
    ("image/webp", b"RIFF"),
];

/// The type of an image, from its bytes; `None` for anything else.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    TYPES
        .iter()
        .find(|(t, magic)| {
            bytes.starts_with(magic) && (*t != "image/webp" || bytes.get(8..12) == Some(b"WEBP"))
        })
        .map(|(t, _)| *t)
}

/// The largest width or height of a logo, in pixels: a small file may claim huge dimensions that
/// would cost every browser showing the sign-in page.
pub const MAX_SIDE: u32 = 4096;

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn le16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_le_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    let x = b.get(at..at + 3)?;
    Some(u32::from(x[0]) | u32::from(x[1]) << 8 | u32::from(x[2]) << 16)
}

/// A JPEG's dimensions, from its first start-of-frame marker (ITU T.81 §B.2.2).
fn jpeg_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2;
    loop {
        while *b.get(i)? != 0xff {
            i += 1;
        }
        while *b.get(i)? == 0xff {
            i += 1;
        }
        let marker = *b.get(i)?;
        i += 1;
        match marker {
            0xd0..=0xd9 | 0x01 => continue,
            0xc0..=0xcf if !matches!(marker, 0xc4 | 0xc8 | 0xcc) => {
                return Some((be16(b, i + 5)?, be16(b, i + 3)?));
            }
            _ => i += usize::try_from(be16(b, i)?).ok()?,
        }
    }
}

/// An image's width and height in pixels, read from its header without decoding it: PNG's IHDR
/// chunk, GIF's logical screen, JPEG's frame header, WebP's VP8, VP8L or VP8X header.
pub fn dimensions(content_type: &str, b: &[u8]) -> Option<(u32, u32)> {
    match content_type {
        "image/png" if b.get(12..16) == Some(b"IHDR") => {
            let w = u32::from_be_bytes(b.get(16..20)?.try_into().ok()?);
            let h = u32::from_be_bytes(b.get(20..24)?.try_into().ok()?);
            Some((w, h))
        }
        "image/gif" => Some((le16(b, 6)?, le16(b, 8)?)),
        "image/jpeg" => jpeg_dimensions(b),
        "image/webp" => match b.get(12..16)? {
            b"VP8 " if b.get(23..26) == Some(&[0x9d, 0x01, 0x2a]) => {
                Some((le16(b, 26)? & 0x3fff, le16(b, 28)? & 0x3fff))
            }
            b"VP8L" if b.get(20) == Some(&0x2f) => {
                let bits = u32::from_le_bytes(b.get(21..25)?.try_into().ok()?);
                Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
            }
            b"VP8X" => Some((le24(b, 24)? + 1, le24(b, 27)? + 1)),
            _ => None,
        },
        _ => None,
    }
}

/// Checks an upload: not empty, at most [`Logo::MAX_BYTES`], a PNG, JPEG, GIF or WebP image
/// whose bytes agree with the type it was sent as (when one was given), at most [`MAX_SIDE`]
/// pixels wide and high. Returns its type.
pub fn check_logo(declared: Option<&str>, bytes: &[u8]) -> AdminResult<&'static str> {
    if bytes.is_empty() {
        return Err(invalid("logo", "the file is empty"));
    }
    if bytes.len() > Logo::MAX_BYTES {
        return Err(invalid(
            "logo",
            format!(
                "the file is {} KiB; a logo may be at most {} KiB",
                bytes.len().div_ceil(1024),
                Logo::MAX_BYTES / 1024
            ),
        ));
    }
    let declared = declared
        .map(|d| {
            d.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|d| !d.is_empty() && d != "application/octet-stream");
    if declared.as_deref() == Some("image/svg+xml") {
        return Err(invalid(
            "logo",
            "SVG images are not accepted (they can carry scripts); upload a PNG, JPEG, GIF or WebP image",
        ));
    }
    let Some(actual) = sniff(bytes) else {
        return Err(invalid("logo", "is not a PNG, JPEG, GIF or WebP image"));
    };
    let same = |d: &str| d == actual || (d == "image/jpg" && actual == "image/jpeg");
    if let Some(d) = declared.filter(|d| !same(d)) {
        return Err(invalid(
            "logo",
            format!("was sent as {d} but the file is {actual}"),
        ));
    }
    match dimensions(actual, bytes) {
        None => Err(invalid(
            "logo",
            format!("the {actual} header does not say the image's size in pixels"),
        )),
        Some((w, h)) if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE => Err(invalid(
            "logo",
            format!(
                "the image is {w}×{h} pixels; a logo may be at most {MAX_SIDE}×{MAX_SIDE} pixels"
            ),
        )),
        Some(_) => Ok(actual),
    }
}

impl Provider {
    /// An application's logo: its type and bytes.
    pub async fn logo(&self, client_id: &str) -> AdminResult<Option<(String, Vec<u8>)>> {
        let Some(logo) = self.store.get_logo(client_id).await? else {
            return Ok(None);
        };
        let bytes = b64url_decode(&logo.data)
            .ok_or_else(|| AdminError::Conflict(format!("logo of {client_id} is corrupt")))?;
        Ok(Some((logo.content_type, bytes)))
    }

    /// Where an application's logo is served, when it has one; the version in the query makes a
    /// changed logo a new URL, so the old one may be cached for long.
    pub fn logo_uri(&self, client: &Client) -> Option<String> {
        client.logo.as_ref().map(|v| {
            self.settings
                .endpoint(&format!("/logo/{}?v={v}", client.client_id))
        })
    }
}

impl Admin<'_> {
    /// Sets or replaces an application's logo (`declared`: the type it was uploaded as).
    pub async fn set_logo(
        &self,
        client_id: &str,
        declared: Option<&str>,
        bytes: &[u8],
    ) -> AdminResult<Client> {
        self.authorize(Operation::SetLogo, super::TargetKind::Ordinary)?;
        let content_type = check_logo(declared, bytes)?;
        let version = b64url(&sha256(bytes)[..9]);
        let data = b64url(bytes);
        self.change_logo(client_id, Some((content_type, version, data)))
            .await
    }

    /// Removes an application's logo; pages show its name alone.
    pub async fn remove_logo(&self, client_id: &str) -> AdminResult<Client> {
        self.change_logo(client_id, None).await
    }

    async fn change_logo(
        &self,
        client_id: &str,
        logo: Option<(&str, String, String)>,
    ) -> AdminResult<Client> {
        let logo = &logo;
        self.settle(|| async move {
            let at = self.read_version().await?;
            let op = if logo.is_some() {
                Operation::SetLogo
            } else {
                Operation::RemoveLogo
            };
            let mut c = self.reach_client(op, client_id).await?;
            self.precondition(&c)?;
            let stored = self.store.get_logo(client_id).await?.is_some();
            let now = self.now();
            let image = match logo {
                Some((content_type, version, data)) => {
                    c.logo = Some(version.clone());
                    let record = Record::Logo(Logo {
                        client_id: client_id.to_owned(),
                        content_type: (*content_type).to_owned(),
                        data: data.clone(),
                        updated_at: now,
                    });
                    Some(if stored {
                        Change::Update(record)
                    } else {
                        Change::Create(record)
                    })
                }
                None if stored => {
                    c.logo = None;
                    Some(Change::Delete(
                        crate::store::Table::Logos,
                        client_id.to_owned(),
                    ))
                }
                None => return Ok(c),
            };
            c.updated_at = now;
            let mut changes = vec![Change::Update(Record::Client(c.clone()))];
            changes.extend(image);
            let detail = json!({ "fields": ["logo"] });
            self.commit_as(at, &changes, None, detail).await?;
            Ok(c)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x06\0\0\0";
    /// A JPEG's start of image, an APP0 segment, then a baseline frame header of 48×32.
    const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x04ab\xff\xc0\0\x11\x08\0\x20\0\x30\x03";

    #[test]
    fn logos_are_judged_by_their_bytes() {
        assert_eq!(check_logo(Some("image/png"), PNG).unwrap(), "image/png");
        assert_eq!(check_logo(None, PNG).unwrap(), "image/png");
        assert_eq!(check_logo(Some("image/jpg"), JPEG).unwrap(), "image/jpeg");
        assert_eq!(dimensions("image/jpeg", JPEG), Some((48, 32)));
        assert_eq!(
            check_logo(None, b"GIF89a\x10\0\x10\0..").unwrap(),
            "image/gif"
        );
        let vp8x = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0\x3f\0\0\x1f\0\0";
        assert_eq!(check_logo(None, vp8x).unwrap(), "image/webp");
        assert_eq!(dimensions("image/webp", vp8x), Some((64, 32)));
        let huge_gif = b"GIF89a\x40\x9c\x40\x9c..";
        assert!(check_logo(None, huge_gif)
            .unwrap_err()
            .to_string()
            .contains("pixels"));
        assert!(check_logo(None, b"\xff\xd8\xff\xe0")
            .unwrap_err()
            .to_string()
            .contains("pixels"));
        let refused = |declared: Option<&str>, bytes: &[u8]| {
            check_logo(declared, bytes).unwrap_err().to_string()
        };
        assert!(refused(Some("image/jpeg"), PNG)
            .contains("sent as image/jpeg but the file is image/png"));
        assert!(refused(None, b"RIFF\0\0\0\0WAVEfmt ").contains("not a PNG"));
        assert!(refused(None, b"<svg onload=alert(1)>").contains("not a PNG"));
        assert!(refused(Some("image/svg+xml"), b"<svg/>").contains("SVG"));
        assert!(refused(None, b"").contains("empty"));
        let big = [PNG, &vec![0u8; Logo::MAX_BYTES]].concat();
        assert!(refused(None, &big).contains("at most 256 KiB"));
    }
}
