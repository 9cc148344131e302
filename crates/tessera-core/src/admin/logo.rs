//! Application logos (seed 000: "Upload an image file. The logo will be visible in the
//! applications list and on the authentication pages"): checked by size and by what the bytes
//! are, not by what the uploader says they are; stored beside the client and versioned by digest.

use serde_json::json;

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

/// Checks an upload: not empty, at most [`Logo::MAX_BYTES`], a PNG, JPEG, GIF or WebP image
/// whose bytes agree with the type it was sent as (when one was given). Returns its type.
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
    Ok(actual)
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
            let mut c = self.get_client(client_id).await?;
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

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn logos_are_judged_by_their_bytes() {
        assert_eq!(check_logo(Some("image/png"), PNG).unwrap(), "image/png");
        assert_eq!(check_logo(None, PNG).unwrap(), "image/png");
        assert_eq!(
            check_logo(Some("image/jpg"), b"\xff\xd8\xff\xe0").unwrap(),
            "image/jpeg"
        );
        assert_eq!(check_logo(None, b"GIF89a..").unwrap(), "image/gif");
        assert_eq!(
            check_logo(None, b"RIFF\0\0\0\0WEBPVP8 ").unwrap(),
            "image/webp"
        );
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
