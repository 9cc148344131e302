//! A posted HTML form (`application/x-www-form-urlencoded`), read leniently: an absent field is
//! empty, textareas are split into lines, comma lists into items.

/// The fields of a posted form, in order.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

/// At most this many fields are read; a form never needs more.
const MAX_FIELDS: usize = 200;

impl Form {
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
    use super::Form;

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
