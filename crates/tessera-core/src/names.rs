//! The names rules compare (group names, usernames, API identifiers; scope names are RFC 6749
//! §3.3 ASCII tokens and checked where scopes are), accepted only in their normal form, once, at
//! the edge of core: the value a rule looks at is exactly the value stored. A name that differs
//! from its normal form is refused, never silently rewritten, so `tessera-admins ` (a trailing
//! space) or `tessera-admins` with a zero-width space is an error, not the administrators' group.
//!
//! The normal form: no leading or trailing white space; no control, format or other invisible
//! (default-ignorable) character anywhere; Unicode normalization form KC, so no full-width,
//! ligature or other compatibility character (RFC 8264 §9.17 disallows them in identifiers too);
//! for group names the only space inside is U+0020, for usernames none at all. Group names are
//! case-sensitive, but one that looks like `tessera-admins` (by case, or by confusable characters
//! such as U+2010 for `-` or a Cyrillic `а`: the UTS #39 skeleton) is refused as reserved;
//! usernames are unique regardless of case (the store keys them in lower case), and a new one
//! that looks like another user's ([`look_alike`]) is refused where users are written.

use unicode_normalization::{is_nfkc, UnicodeNormalization};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
use unicode_security::confusable_detection::skeleton;

/// The group whose members are administrators.
pub const ADMIN_GROUP: &str = "tessera-admins";

/// Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt): characters that
/// render as nothing.
const INVISIBLE: [(u32, u32); 17] = [
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
];

/// A character that shows as nothing or controls the text: never part of a name.
fn invisible(c: char) -> bool {
    let u = c as u32;
    INVISIBLE.iter().any(|(lo, hi)| (*lo..=*hi).contains(&u))
        || matches!(
            c.general_category(),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::Surrogate
                | GeneralCategory::PrivateUse
                | GeneralCategory::Unassigned
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
}

/// The checks every name shares; `inner_space` says whether U+0020 may stand inside.
fn normal(raw: &str, max: usize, inner_space: bool) -> Result<(), String> {
    if raw.is_empty() {
        return Err("must not be empty".into());
    }
    if raw.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if raw.starts_with(char::is_whitespace) || raw.ends_with(char::is_whitespace) {
        return Err("must not begin or end with white space".into());
    }
    if let Some(c) = raw.chars().find(|c| invisible(*c)) {
        return Err(format!(
            "must not contain invisible or control characters (U+{:04X})",
            c as u32
        ));
    }
    if let Some(c) = raw
        .chars()
        .find(|c| c.is_whitespace() && !(inner_space && *c == ' '))
    {
        return Err(if inner_space {
            format!(
                "must not contain white space other than plain spaces (U+{:04X})",
                c as u32
            )
        } else {
            "must not contain white space".into()
        });
    }
    if !is_nfkc(raw) {
        return Err(format!(
            "must be in Unicode normalization form KC (no full-width, ligature or other compatibility characters): {}",
            raw.nfkc().collect::<String>()
        ));
    }
    Ok(())
}

/// What a name looks like, whatever its case and script, in three forms, each a UTS #39 §4
/// skeleton (which maps confusables to a prototype: Cyrillic `о` to `o`, `1` and `I` to `l`,
/// `rn` to `m`): of the lower-case name, of the lower-cased skeleton, and of the upper-case name.
/// No one form is enough: lower-casing first turns a Greek `Τ` into `τ`, which looks like no
/// Latin letter; the skeleton first turns `I` into `l` where `i` stays `i`. Dashes and other
/// horizontal strokes UTS #39 leaves alone (em dash, U+1806, U+30FC) count as `-` first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookAlike([String; 3]);

impl LookAlike {
    /// Whether a reader could take one name for the other: one of the forms is the same.
    pub fn matches(&self, other: &LookAlike) -> bool {
        self.0.iter().zip(&other.0).any(|(a, b)| a == b)
    }
}

/// A dash, or a stroke drawn like one.
fn dash_like(c: char) -> bool {
    c.general_category() == GeneralCategory::DashPunctuation
        || matches!(
            c,
            '\u{30FC}' | '\u{2500}' | '\u{2501}' | '\u{23AF}' | '\u{2212}'
        )
}

pub fn look_alike(name: &str) -> LookAlike {
    let name: String = name
        .chars()
        .map(|c| if dash_like(c) { '-' } else { c })
        .collect();
    let skel = |s: &str| -> String { skeleton(s).collect() };
    LookAlike([
        skel(&name.to_lowercase()),
        skel(&skel(&name).to_lowercase()),
        skel(&name.to_uppercase()),
    ])
}

/// A group name in its normal form, at most 128 characters.
pub fn group(raw: &str) -> Result<String, String> {
    normal(raw, 128, true)?;
    if raw != ADMIN_GROUP && look_alike(raw).matches(&look_alike(ADMIN_GROUP)) {
        return Err(format!(
            "{raw:?} is reserved: the administrators' group is {ADMIN_GROUP}"
        ));
    }
    Ok(raw.to_owned())
}

/// A username in its normal form: 1-256 characters, no white space.
pub fn username(raw: &str) -> Result<String, String> {
    normal(raw, 256, false).map(|()| raw.to_owned())
}

/// RFC 8707 §2: an API identifier is an absolute URI without a fragment, here also in the form
/// URI parsers give it (lower-case scheme and host, no default port, no dot segments,
/// percent-encoding as parsed), so one API has one identifier (an authority alone may be written
/// with or without its `/`, as resource indicators are sent both ways).
pub fn api_identifier(raw: &str) -> Result<String, String> {
    if raw.len() > 512 {
        return Err("must be at most 512 characters".into());
    }
    if raw.chars().any(|c| c.is_whitespace() || invisible(c)) {
        return Err("must not contain white space or invisible characters".into());
    }
    let url = url::Url::parse(raw).map_err(|_| "must be an absolute URI".to_owned())?;
    if url.fragment().is_some() || raw.contains('#') {
        return Err("must not contain a fragment".into());
    }
    let parsed = url.as_str();
    // A parser adds `/` to an authority without a path: `https://api.example.com` is written so.
    let same = parsed == raw || (url.path() == "/" && parsed == format!("{raw}/"));
    if !same {
        return Err(format!("must be written in its normal form: {parsed}"));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_and_invisible_names_are_refused() {
        for bad in [
            "tessera-admins ",
            " tessera-admins",
            "tessera-admins\t",
            "tessera-admins\u{a0}",
            "tessera-admins\u{200b}",
            "tessera\u{200d}-admins",
            "tessera-admins\u{feff}",
            "\u{2003}tessera-admins",
            "tessera\u{3164}admins",
            "tessera-admins\u{e0041}",
            "sales\tteam",
            "sales\u{a0}team",
            "Tessera-Admins",
            "TESSERA-ADMINS",
            "",
            "cafe\u{301}",
            "tessera\u{2010}admins",
            "tessera-\u{430}dmins",
            "ｔｅｓｓｅｒａ-admins",
            "tessera-admin\u{455}",
            "\u{3a4}essera-Admins",
            "\u{422}ESSERA-ADMINS",
            "TESSERA-AD\u{41c}INS",
            "TESSERA-ADM1NS",
            "TESSERA-ADM|NS",
            "tessera-a\u{13e7}mins",
            "tessera\u{1806}admins",
            "tessera\u{2014}admins",
            "tessera\u{2e3a}admins",
            "tessera\u{30fc}admins",
        ] {
            assert!(group(bad).is_err(), "{bad:?}");
        }
        for ok in [
            "tessera-admins",
            "sales team",
            "café",
            "Ventas-Éspaña",
            "营销",
        ] {
            assert_eq!(group(ok).as_deref(), Ok(ok));
        }
        assert!(username("ali ce").is_err());
        assert!(username("alice\u{200b}").is_err());
        assert_eq!(username("Alice").as_deref(), Ok("Alice"));
        assert!(username("ｒｏｏｔ").is_err(), "full-width");
        assert!(username("ﬁona").is_err(), "a ligature");
        let alike = |a: &str, b: &str| look_alike(a).matches(&look_alike(b));
        assert!(alike("r\u{43e}\u{43e}t", "Root"));
        assert!(alike("a\u{399}ice", "alice"));
        assert!(alike("aIice", "alice"));
        assert!(alike("ROO\u{422}", "root"));
        assert!(!alike("root", "robot"));
        assert!(!alike("alice", "alicia"));
        // Distinct names that only an extra fold would confuse.
        for (a, b) in [
            ("ian", "lan"),
            ("ilia", "lila"),
            ("eli", "ell"),
            ("kim", "klm"),
            ("ivan", "lvan"),
        ] {
            assert!(!alike(a, b), "{a} / {b}");
        }
    }

    #[test]
    fn api_identifiers_are_in_their_parsed_form() {
        for ok in [
            "https://api.example.com",
            "https://api.example.com/",
            "https://api.example.com/v1",
            "urn:example:api",
        ] {
            assert_eq!(api_identifier(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in [
            "HTTPS://api.example.com",
            "https://API.example.com/v1",
            "https://api.example.com:443/v1",
            "https://api.example.com/a/../v1",
            "https://api.example.com/v1#x",
            " https://api.example.com",
            "https://api.example.com/v1\u{200b}",
            "api.example.com",
        ] {
            assert!(api_identifier(bad).is_err(), "{bad}");
        }
    }
}
