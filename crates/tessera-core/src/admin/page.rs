//! Cursor pagination of administrative lists, and entity tags (RFC 9110 §8.8.3) of records, so an
//! update made from a stale copy is refused instead of silently overwriting another change.

use serde::Serialize;

use super::{invalid, AdminError, AdminResult};
use crate::secret::{b64url, b64url_decode, sha256};

/// The largest page a caller may ask for, and the size when it names none.
pub const MAX_PAGE: usize = 200;
pub const DEFAULT_PAGE: usize = 50;

/// One page of a list, and the cursor of the next page when there is one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The page size a caller asked for, checked.
pub fn page_size(limit: Option<usize>) -> AdminResult<usize> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        )),
    }
}

/// An opaque cursor naming the last key of a page.
pub fn cursor_of(key: &str) -> String {
    b64url(key.as_bytes())
}

/// The key a cursor names.
pub fn cursor_key(cursor: &str) -> AdminResult<String> {
    b64url_decode(cursor)
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| invalid("cursor", "is not a cursor this server returned"))
}

/// The page of `items` after `cursor`, ordered by `key` (unique per item).
pub fn paginate<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> &str,
    cursor: Option<&str>,
    limit: Option<usize>,
) -> AdminResult<Page<T>> {
    let limit = page_size(limit)?;
    items.sort_by(|a, b| key(a).cmp(key(b)));
    if let Some(c) = cursor {
        let after = cursor_key(c)?;
        items.retain(|i| key(i) > after.as_str());
    }
    let more = items.len() > limit;
    items.truncate(limit);
    let next_cursor = more
        .then(|| items.last().map(|i| cursor_of(key(i))))
        .flatten();
    Ok(Page { items, next_cursor })
}

/// The entity tag of a record as the API shows it: a strong validator over its whole content.
pub fn etag(record: &impl Serialize) -> String {
    let json = serde_json::to_vec(record).unwrap_or_default();
    let digest = sha256(&json);
    format!("\"{}\"", b64url(&digest[..18]))
}

/// RFC 9110 §13.1.1: `If-Match` holds when it is `*` or lists the current tag.
pub fn check_etag(current: &impl Serialize, if_match: Option<&str>) -> AdminResult<()> {
    let Some(header) = if_match else {
        return Ok(());
    };
    let tag = etag(current);
    let holds = header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == tag);
    if holds {
        Ok(())
    } else {
        Err(AdminError::PreconditionFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_each_other_without_gaps_or_repeats() {
        let items: Vec<String> = (0..7).map(|i| format!("k{i}")).collect();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let p = paginate(items.clone(), |s| s.as_str(), cursor.as_deref(), Some(3)).unwrap();
            seen.extend(p.items);
            match p.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, items);
        assert!(paginate(items.clone(), |s| s.as_str(), Some("!!"), None).is_err());
        assert!(paginate(items, |s| s.as_str(), None, Some(0)).is_err());
    }

    #[test]
    fn if_match_needs_the_current_tag() {
        let tag = etag(&"a");
        assert!(check_etag(&"a", Some(&tag)).is_ok());
        assert!(check_etag(&"a", Some("*")).is_ok());
        assert!(check_etag(&"a", None).is_ok());
        assert!(matches!(
            check_etag(&"b", Some(&tag)),
            Err(AdminError::PreconditionFailed)
        ));
    }
}
