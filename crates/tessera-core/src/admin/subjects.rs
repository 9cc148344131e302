//! OIDC Core §8: `sub` is "a locally unique and never reassigned identifier within the Issuer
//! for the End-User". An application may take its subject from a user attribute other than the
//! id (seed 000 "Subject Management"); then no two users may hold the same value of it, or one
//! would sign in to that application as the other. Writing a user whose value of such an
//! attribute is another user's is refused, and so is making an attribute the subject of an
//! application while users share values of it. (`id` and `username` are unique by construction.)

use super::{Admin, AdminError, AdminResult};
use crate::claims::attribute;
use crate::model::User;

/// Subject attributes unique by construction.
fn unique_by_construction(attr: &str) -> bool {
    matches!(attr, "id" | "username")
}

/// A value of `attr` as a subject would read it.
fn subject_value(u: &User, attr: &str) -> Option<String> {
    match attribute(u, attr)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Admin<'_> {
    /// The attributes applications take their subjects from (other than `id` and `username`),
    /// each with one application that does.
    async fn subject_attributes(&self) -> AdminResult<Vec<(String, String)>> {
        let mut out: Vec<(String, String)> = Vec::new();
        for c in self.store.list_clients().await? {
            let attr = &c.browser.subject_attribute;
            if !unique_by_construction(attr) && !out.iter().any(|(a, _)| a == attr) {
                out.push((attr.clone(), c.client_id));
            }
        }
        Ok(out)
    }

    /// Refuses `u` when its value of an attribute some application uses as its subject is
    /// another user's.
    pub(crate) async fn check_subjects_unique(&self, u: &User) -> AdminResult<()> {
        let attrs = self.subject_attributes().await?;
        let mine: Vec<(&str, &str, String)> = attrs
            .iter()
            .filter_map(|(a, c)| subject_value(u, a).map(|v| (a.as_str(), c.as_str(), v)))
            .collect();
        if mine.is_empty() {
            return Ok(());
        }
        for other in self.store.list_users().await? {
            if other.id == u.id {
                continue;
            }
            for (attr, client, value) in &mine {
                if subject_value(&other, attr).as_ref() == Some(value) {
                    return Err(AdminError::Conflict(format!(
                        "{attr} {value:?} is another user's, and the application {client} uses {attr} as its subject identifier"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Refuses `attr` as an application's subject while users share a value of it.
    pub(crate) async fn check_attribute_unique(&self, attr: &str) -> AdminResult<()> {
        if unique_by_construction(attr) {
            return Ok(());
        }
        let mut seen = std::collections::HashSet::new();
        for u in self.store.list_users().await? {
            if let Some(v) = subject_value(&u, attr) {
                if !seen.insert(v.clone()) {
                    return Err(super::invalid(
                        "subject_attribute",
                        format!(
                            "users share the {attr} {v:?}; a subject identifier must be one user's"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
