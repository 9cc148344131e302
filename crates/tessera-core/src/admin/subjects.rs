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
/// holdings is `judged` (by user id and namespace).
fn collision(
    users: &[User],
    namespaces: &[String],
    judged: impl Fn(&str, &str) -> bool,
) -> Option<Collision> {
    let mut holders: HashMap<String, Vec<(&str, &str)>> = HashMap::new();
    for u in users {
        for attr in namespaces {
            let Some(v) = subject_value(u, attr) else {
                continue;
            };
            let held = holders.entry(v.clone()).or_default();
            let other = held
                .iter()
                .find(|(id, other)| *id != u.id && (judged(&u.id, attr) || judged(id, other)));
            if let Some((_, other)) = other {
                return Some(Collision {
                    value: v,
                    attrs: (attr.clone(), (*other).to_owned()),
                });
            }
            held.push((&u.id, attr));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;

    fn user(id: &str, username: &str, attrs: serde_json::Value) -> User {
        User {
            id: id.into(),
            username: username.into(),
            password_hash: None,
            claims: Default::default(),
            attributes: attrs.as_object().cloned().unwrap_or_default(),
            groups: vec![],
            blocked: false,
            sign_out_epoch: 0,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            revision: 0,
        }
    }

    #[test]
    fn a_collision_is_found_whichever_holding_came_first() {
        let ns: Vec<String> = ["id", "emp", "badge"].map(String::from).to_vec();
        // a holds "x" as emp and as badge; b holds it as emp. Judging the badge namespace finds
        // the pair though a's emp holding came first and neither emp holding is judged.
        let users = [
            user("a", "ann", serde_json::json!({"emp": "x", "badge": "x"})),
            user("b", "bob", serde_json::json!({"emp": "x"})),
        ];
        let c = collision(&users, &ns, |_, attr| attr == "badge").expect("collision");
        assert_eq!(c.value, "x");
        // One user holding a value in two namespaces is no collision.
        let alone = [user("a", "ann", serde_json::json!({"emp": "a"}))];
        assert!(collision(&alone, &ns, |_, _| true).is_none());
        // A number and the string of its digits are one subject.
        let users = [
            user("a", "ann", serde_json::json!({"emp": 7})),
            user("b", "bob", serde_json::json!({"badge": "7"})),
        ];
        assert!(collision(&users, &ns, |id, _| id == "b").is_some());
    }
}
