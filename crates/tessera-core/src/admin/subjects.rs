//! OIDC Core §8: `sub` is "a locally unique and never reassigned identifier within the Issuer
//! for the End-User". Applications take their subject from the user's id or, per application,
//! from another attribute (seed 000 "Subject Management"), and several of them may serve one API:
//! a resource server then sees subjects of every namespace in use side by side. So one value is
//! one user's across all of them: no user may hold, in any namespace in use, a value another user
//! holds in any (the same or another), or one would pass for the other. Local subjects never
//! contain `|`, the separator of partners' subjects (`issuer|sub`, token exchange). Nor may a
//! new username look like another user's ([`crate::names::look_alike`]), to a reader of the
//! Portal or the audit log.

use std::collections::HashMap;

use super::{Admin, AdminError, AdminResult};
use crate::claims::attribute;
use crate::model::User;
use crate::names::look_alike;

/// Where partners' subjects put the issuer apart from its own subject.
const PARTNER_SEPARATOR: char = '|';

/// A value of `attr` as a subject would read it.
fn subject_value(u: &User, attr: &str) -> Option<String> {
    match attribute(u, attr)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Two users holding one subject value.
struct Collision {
    value: String,
    /// The namespace each holds it in.
    attrs: (String, String),
}

/// The first value two users of `users` hold (each in any of `namespaces`) where one of the two
/// holdings is `judged` (by user id and namespace): one pass over every value.
fn collision(
    users: &[User],
    namespaces: &[String],
    judged: impl Fn(&str, &str) -> bool,
) -> Option<Collision> {
    let mut holders: HashMap<String, (&str, &str)> = HashMap::new();
    for u in users {
        for attr in namespaces {
            let Some(v) = subject_value(u, attr) else {
                continue;
            };
            match holders.get(&v) {
                None => {
                    holders.insert(v, (&u.id, attr));
                }
                Some((id, other)) if *id != u.id && (judged(&u.id, attr) || judged(id, other)) => {
                    return Some(Collision {
                        value: v,
                        attrs: (attr.clone(), (*other).to_owned()),
                    });
                }
                Some(_) => {}
            }
        }
    }
    None
}

impl Admin<'_> {
    /// The subject namespaces in use: `id`, and every attribute an application takes its
    /// subject from.
    async fn namespaces(&self, adding: Option<&str>) -> AdminResult<Vec<String>> {
        let mut out = vec!["id".to_owned()];
        let clients = self.store.list_clients().await?;
        let attrs = clients
            .iter()
            .map(|c| c.browser.subject_attribute.as_str())
            .chain(adding);
        for attr in attrs {
            if !out.iter().any(|a| a == attr) {
                out.push(attr.to_owned());
            }
        }
        Ok(out)
    }

    /// Refuses `u` when a subject value it holds is another user's, or contains `|`; or, when
    /// its username is new (`new_username`), when that looks like another user's.
    pub(crate) async fn check_user_distinct(
        &self,
        u: &User,
        new_username: bool,
    ) -> AdminResult<()> {
        let namespaces = self.namespaces(None).await?;
        if let Some(attr) = namespaces
            .iter()
            .find(|a| subject_value(u, a).is_some_and(|v| v.contains(PARTNER_SEPARATOR)))
        {
            return Err(super::invalid(
                if attr == "username" {
                    "username"
                } else {
                    "attributes"
                },
                format!("the {attr} is a subject identifier and must not contain '|'"),
            ));
        }
        if namespaces.len() == 1 && !new_username {
            // Ids only: unique by construction.
            return Ok(());
        }
        let mut users = self.store.list_users().await?;
        users.retain(|o| o.id != u.id);
        if new_username {
            let look = look_alike(&u.username);
            if let Some(o) = users.iter().find(|o| look_alike(&o.username) == look) {
                return Err(AdminError::Conflict(format!(
                    "the username {:?} looks like another user's, {:?}",
                    u.username, o.username
                )));
            }
        }
        users.push(u.clone());
        match collision(&users, &namespaces, |id, _| id == u.id) {
            None => Ok(()),
            Some(c) => Err(AdminError::Conflict(format!(
                "{:?} is one user's {} and another user's {}: a subject identifier must be one user's",
                c.value, c.attrs.0, c.attrs.1
            ))),
        }
    }

    /// Refuses `attr` as an application's subject while a value of it is another user's in any
    /// namespace in use, or contains `|`.
    pub(crate) async fn check_attribute_unique(&self, attr: &str) -> AdminResult<()> {
        let namespaces = self.namespaces(Some(attr)).await?;
        let users = self.store.list_users().await?;
        let refuse = |why: String| Err(super::invalid("subject_attribute", why));
        if let Some(v) = users
            .iter()
            .filter_map(|u| subject_value(u, attr))
            .find(|v| v.contains(PARTNER_SEPARATOR))
        {
            return refuse(format!(
                "a user's {attr} {v:?} contains '|', which no subject identifier may"
            ));
        }
        match collision(&users, &namespaces, |_, a| a == attr) {
            None => Ok(()),
            Some(c) => refuse(format!(
                "{:?} is one user's {} and another user's {}: a subject identifier must be one user's",
                c.value, c.attrs.0, c.attrs.1
            )),
        }
    }
}
