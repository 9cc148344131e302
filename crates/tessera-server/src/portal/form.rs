//! A posted HTML form (`application/x-www-form-urlencoded`, or `multipart/form-data` when it
//! uploads a file), read leniently: an absent field is empty, textareas are split into lines,
//! comma lists into items.

use axum::body::Bytes;
use http::HeaderMap;

/// The fields of a posted form, in order.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

/// At most this many fields are read; a form never needs more.
const MAX_FIELDS: usize = 200;

impl Form {
    /// A form of either encoding, with the bytes of the field `file` when one was chosen (an
    /// empty file input is no upload; what the browser says the file is follows its name, so
    /// only the bytes are kept). A multipart body that cannot be read is refused.
    pub async fn read(
        headers: &HeaderMap,
        body: Bytes,
        file: &str,
    ) -> Result<(Form, Option<Bytes>), String> {
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Ok(boundary) = multer::parse_boundary(content_type) else {
            return Ok((Form::parse(&body), None));
        };
        let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
        let mut parts = multer::Multipart::new(stream, boundary);
        let (mut fields, mut upload) = (Vec::new(), None);
        let unreadable = |e: multer::Error| format!("the form could not be read: {e}");
        while let Some(part) = parts.next_field().await.map_err(unreadable)? {
            let name = part.name().unwrap_or("").to_owned();
            if name == file && part.file_name().is_some() {
                let bytes = part.bytes().await.map_err(unreadable)?;
                if !bytes.is_empty() {
                    upload = Some(bytes);
                }
            } else if fields.len() < MAX_FIELDS {
                fields.push((name, part.text().await.map_err(unreadable)?));
            }
        }
        Ok((Form(fields), upload))
    }

    pub fn parse(body: &[u8]) -> Form {
        Form(
            form_urlencoded::parse(body)
                .take(MAX_FIELDS)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// Whether the form has the field at all (an empty text field counts).
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// Every non-empty value of `name` (checkboxes).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    pub fn checked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }

    /// A textarea's non-empty lines.
    pub fn lines(&self, name: &str) -> Vec<String> {
        split(self.get(name), |c| c == '\n' || c == '\r')
    }

    /// A comma-separated field's non-empty items.
    pub fn list(&self, name: &str) -> Vec<String> {
        split(self.get(name), |c| c == ',')
    }

    /// A whole number of seconds, or the field named as invalid.
    pub fn seconds(&self, name: &str) -> Result<i64, tessera_core::admin::AdminError> {
        self.get(name)
            .parse()
            .map_err(|_| tessera_core::admin::AdminError::Invalid {
                field: name.to_owned(),
                message: "must be a whole number of seconds".into(),
            })
    }
}

fn split(value: &str, sep: impl Fn(char) -> bool) -> Vec<String> {
    value
        .split(sep)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{Bytes, Form, HeaderMap};

    #[tokio::test]
    async fn reads_multipart_forms_with_a_file() {
        let body = "--b\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nt0k\r\n\
            --b\r\nContent-Disposition: form-data; name=\"logo\"; filename=\"l.png\"\r\n\
            Content-Type: image/png\r\n\r\nPNGDATA\r\n\
            --b\r\nContent-Disposition: form-data; name=\"other\"; filename=\"\"\r\n\
            Content-Type: application/octet-stream\r\n\r\n\r\n--b--\r\n";
        let mut h = HeaderMap::new();
        h.insert(
            http::header::CONTENT_TYPE,
            "multipart/form-data; boundary=b".parse().unwrap(),
        );
        let (form, upload) = Form::read(&h, Bytes::from(body), "logo").await.unwrap();
        assert_eq!(form.get("csrf"), "t0k");
        let upload = upload.expect("the logo");
        assert_eq!(&upload[..], b"PNGDATA");
        // No file chosen: the empty part is no upload; urlencoded bodies read as before.
        let empty = body.replace("PNGDATA", "");
        let (_, none) = Form::read(&h, Bytes::from(empty), "logo").await.unwrap();
        assert!(none.is_none());
        let (form, none) = Form::read(&HeaderMap::new(), Bytes::from("a=1"), "logo")
            .await
            .unwrap();
        assert_eq!((form.get("a"), none.is_none()), ("1", true));
        let cut = &body[..40];
        assert!(Form::read(&h, Bytes::from(cut), "logo").await.is_err());
    }

    #[test]
    fn reads_fields_lines_and_lists() {
        let f = Form::parse(b"a=+x+&s=1&s=&s=2&t=one%0D%0A%0D%0Atwo&l=a%2C+b%2C%2C");
        assert_eq!(f.get("a"), "x");
        assert_eq!(f.get("missing"), "");
        assert_eq!(f.all("s"), ["1", "2"]);
        assert_eq!(f.lines("t"), ["one", "two"]);
        assert_eq!(f.list("l"), ["a", "b"]);
        assert!(f.seconds("a").is_err());
        assert_eq!(Form::parse(b"n=600").seconds("n").unwrap(), 600);
    }
}
