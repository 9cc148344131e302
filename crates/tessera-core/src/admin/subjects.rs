//! OIDC Core §8: `sub` is "a locally unique and never reassigned identifier within the Issuer
//! for the End-User". Applications take their subject from the user's id or, per application,
//! from another attribute (seed 000 "Subject Management"); a client's own tokens (client
//! credentials) carry its `client_id` (RFC 9068 §2.2), and several applications may serve one
//! API, whose resource server then sees all of these side by side. So one value is one party's:
//! no user may hold, in any namespace in use, a value another user holds in any (the same or
//! another), nor an application's `client_id`. Local subjects never contain `|`, the separator of
//! partners' subjects (`issuer|sub`, token exchange). Nor may a new username look like another
//! user's ([`crate::names::look_alike`]), to a reader of the Portal or the audit log.
//!
//! Every write that could bring two parties to one value is judged here, against the population
//! as it will be (the stored users and applications, with what the write changes), one write at
//! a time on this node.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::permission::{Operation, TargetKind};
use super::{invalid, Admin, AdminError, AdminResult};
use crate::claims::attribute;
use crate::model::{Client, User};
use crate::names::look_alike;

/// Where partners' subjects put the issuer apart from its own subject.
const PARTNER_SEPARATOR: char = '|';

/// The namespace of applications' own subjects.
const CLIENT_IDS: &str = "client_id";

/// The namespaces of pairwise subjects (OIDC Core §8.1) begin so; each names its application.
const PAIRWISE: &str = "pairwise subject at ";

/// Whether a value has the form of a pairwise subject: base64url of 32 bytes. Only such a
/// value can equal one, so only then are the pairwise subjects of every user worked out.
fn pairwise_form(v: &str) -> bool {
    v.len() == 43
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A value of `attr` as a subject would read it.
fn subject_value(u: &User, attr: &str) -> Option<String> {
    match attribute(u, attr)? {
        Value::String(s) if !s.is_empty() => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whose subject a value is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Owner<'a> {
    User(&'a User),
    Client(&'a str),
}

/// One party's value in one namespace.
#[derive(Debug)]
struct Holding<'a> {
    owner: Owner<'a>,
    namespace: String,
    value: String,
}

impl Holding<'_> {
    fn same_owner(&self, other: &Holding<'_>) -> bool {
        match (self.owner, other.owner) {
            (Owner::User(a), Owner::User(b)) => a.id == b.id,
            (Owner::Client(a), Owner::Client(b)) => a == b,
            _ => false,
        }
    }

    /// "a user's emp_id", "the application's client_id".
    fn describe(&self) -> String {
        match self.owner {
            Owner::User(u) => format!("user {}'s {}", u.username, self.namespace),
            Owner::Client(_) => format!("an application's {}", self.namespace),
        }
    }
}

/// The subject namespaces the applications `clients` use: `id`, and every attribute one takes
/// its subject from.
fn namespaces_of<'a>(clients: impl IntoIterator<Item = &'a Client>) -> Vec<String> {
    let mut out = vec!["id".to_owned()];
    for c in clients {
        let attr = &c.browser.subject_attribute;
        if !out.contains(attr) {
            out.push(attr.clone());
        }
    }
    out
}

/// Every subject value of `users` (in each of `namespaces`) and of `clients`.
fn holdings<'a>(
    users: &'a [User],
    clients: &'a [Client],
    namespaces: &'a [String],
) -> Vec<Holding<'a>> {
    let mut out = Vec::new();
    for u in users {
        for ns in namespaces {
            if let Some(value) = subject_value(u, ns) {
                out.push(Holding {
                    owner: Owner::User(u),
                    namespace: ns.clone(),
                    value,
                });
            }
        }
    }
    for c in clients {
        out.push(Holding {
            owner: Owner::Client(&c.client_id),
            namespace: CLIENT_IDS.to_owned(),
            value: c.client_id.clone(),
        });
    }
    out
}

/// The first value two parties hold where one of the two holdings is `judged`: the judged one
/// first.
fn collision<'h, 'a>(
    holdings: &'h [Holding<'a>],
    judged: impl Fn(&Holding<'_>) -> bool,
) -> Option<(&'h Holding<'a>, &'h Holding<'a>)> {
    let mut by_value: HashMap<&str, Vec<&Holding<'a>>> = HashMap::new();
    for h in holdings {
        let earlier = by_value.entry(h.value.as_str()).or_default();
        for e in earlier.iter() {
            if h.same_owner(e) {
                continue;
            }
            if judged(h) {
                return Some((h, e));
            }
            if judged(e) {
                return Some((e, h));
            }
        }
        earlier.push(h);
    }
    None
}

/// What a write changes: users (those whose username is new named too) and applications.
#[derive(Debug, Default)]
pub(crate) struct Written<'a> {
    pub users: Vec<&'a User>,
    pub new_usernames: Vec<&'a str>,
    pub clients: Vec<&'a Client>,
}

impl<'a> Written<'a> {
    pub fn user(u: &'a User, new_username: bool) -> Written<'a> {
        Written {
            users: vec![u],
            new_usernames: if new_username {
                vec![u.id.as_str()]
            } else {
                vec![]
            },
            clients: vec![],
        }
    }

    pub fn client(c: &'a Client) -> Written<'a> {
        Written {
            clients: vec![c],
            ..Written::default()
        }
    }

    fn writes_user(&self, id: &str) -> bool {
        self.users.iter().any(|u| u.id == id)
    }

    fn writes_client(&self, id: &str) -> bool {
        self.clients.iter().any(|c| c.client_id == id)
    }
}

/// What is wrong with a judged holding.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wrong {
    /// Another party holds the value.
    Taken,
    /// The value contains [`PARTNER_SEPARATOR`].
    Separator,
}

/// The error for a judged holding: on a user, 409 for a value taken (422 naming the field for
/// `|`); on an application, 422 naming `client_id` or `subject_attribute`.
fn refusal(judged: &Holding<'_>, w: &Written<'_>, wrong: Wrong, why: String) -> AdminError {
    match judged.owner {
        Owner::Client(_) => invalid("client_id", why),
        Owner::User(u) if !w.writes_user(&u.id) => invalid("subject_attribute", why),
        Owner::User(u) if wrong == Wrong::Separator => invalid(
            if judged.namespace == "username" {
                "username"
            } else if u.attributes.contains_key(&judged.namespace) {
                "attributes"
            } else {
                "claims"
            },
            why,
        ),
        Owner::User(_) => AdminError::Conflict(why),
    }
}

impl Admin<'_> {
    /// Refuses the write `w` when it would bring two parties to one subject value, a subject
    /// value with `|`, or a new username that looks like another user's.
    pub(crate) async fn check_subjects(&self, w: &Written<'_>) -> AdminResult<()> {
        let mut clients = self.store.list_clients().await?;
        let before = namespaces_of(&clients);
        clients.retain(|c| !w.writes_client(&c.client_id));
        clients.extend(w.clients.iter().map(|c| (*c).clone()));
        let namespaces = namespaces_of(&clients);
        // Ids are random and unique, and a user's never changes: with no other namespace and
        // no application or username written, nothing can collide.
        if namespaces.len() == 1 && w.clients.is_empty() && w.new_usernames.is_empty() {
            return Ok(());
        }
        let new_namespace = |ns: &str| !before.iter().any(|b| b == ns);
        let mut users = self.store.list_users().await?;
        users.retain(|u| !w.writes_user(&u.id));
        users.extend(w.users.iter().map(|u| (*u).clone()));
        let mut all = holdings(&users, &clients, &namespaces);
        let judged = |h: &Holding<'_>| match h.owner {
            Owner::Client(id) => w.writes_client(id),
            Owner::User(u) => {
                w.writes_user(&u.id)
                    || (!h.namespace.starts_with(PAIRWISE) && new_namespace(&h.namespace))
            }
        };
        // A client_id or an attribute value set to a user's pairwise subject (handed to every
        // relying party of its sector) would pass for that user.
        if all.iter().any(|h| judged(h) && pairwise_form(&h.value)) {
            all.extend(self.pairwise_holdings(&users, &clients));
        }
        if let Some(h) = all
            .iter()
            .filter(|h| h.namespace != "id" && judged(h))
            .find(|h| h.value.contains(PARTNER_SEPARATOR))
        {
            let why = format!(
                "{} {:?} is a subject identifier and must not contain '|' (the form of partners' subjects)",
                h.describe(),
                h.value
            );
            return Err(refusal(h, w, Wrong::Separator, why));
        }
        self.check_look_alikes(&users, w)?;
        match collision(&all, judged) {
            None => Ok(()),
            Some((mine, theirs)) => {
                let why = format!(
                    "{:?} is {} and {}: a subject identifier must be one party's",
                    mine.value,
                    mine.describe(),
                    theirs.describe()
                );
                Err(refusal(mine, w, Wrong::Taken, why))
            }
        }
    }

    /// Every user's subject at each pairwise application.
    fn pairwise_holdings<'a>(&self, users: &'a [User], clients: &'a [Client]) -> Vec<Holding<'a>> {
        let mut out = Vec::new();
        for c in clients
            .iter()
            .filter(|c| c.browser.subject_type == crate::model::SubjectType::Pairwise)
        {
            // Users without the attribute have no subject there (and no warning to log).
            let holders = users
                .iter()
                .filter(|u| subject_value(u, &c.browser.subject_attribute).is_some());
            for u in holders {
                if let Ok(value) = self.subject(c, u) {
                    out.push(Holding {
                        owner: Owner::User(u),
                        namespace: format!("{PAIRWISE}{}", c.client_id),
                        value,
                    });
                }
            }
        }
        out
    }

    /// Refuses a new username that looks like another user's (`users` as they will be).
    fn check_look_alikes(&self, users: &[User], w: &Written<'_>) -> AdminResult<()> {
        if w.new_usernames.is_empty() {
            return Ok(());
        }
        let looks: Vec<_> = users.iter().map(|u| look_alike(&u.username)).collect();
        for (u, look) in users.iter().zip(&looks) {
            if !w.new_usernames.contains(&u.id.as_str()) {
                continue;
            }
            let other = users
                .iter()
                .zip(&looks)
                .find(|(o, l)| o.id != u.id && look.matches(l));
            if let Some((o, _)) = other {
                return Err(AdminError::Conflict(format!(
                    "the username {:?} looks like another user's, {:?}",
                    u.username, o.username
                )));
            }
            // Users are named by id or username (the CLI, the admin API's paths): one that is
            // another user's id would name that user.
            if users
                .iter()
                .any(|o| o.id != u.id && o.id.eq_ignore_ascii_case(&u.username))
            {
                return Err(AdminError::Conflict(format!(
                    "the username {:?} is another user's id",
                    u.username
                )));
            }
        }
        Ok(())
    }

    /// Refuses a user's own change (`users:self`) of a claim some application takes its subject
    /// from: the subject would be the user's to choose, and to give up for another to take.
    pub(crate) async fn check_subject_self_edit(
        &self,
        claims: &Map<String, Value>,
    ) -> AdminResult<()> {
        let namespaces = namespaces_of(&self.store.list_clients().await?);
        match claims.keys().find(|k| namespaces.contains(k)) {
            None => Ok(()),
            Some(k) => Err(AdminError::Forbidden {
                need: super::Need::UsersWrite,
                reason: format!(
                    "claims.{k} is an application's subject identifier; it can be changed only with users:write"
                ),
            }),
        }
    }

    /// Subject values two parties hold already (stored before these rules, or written on two
    /// nodes at the same instant): each described, for the operator to resolve.
    pub async fn shared_subjects(&self) -> AdminResult<Vec<String>> {
        self.authorize(Operation::ListUsers, TargetKind::Ordinary)?;
        let clients = self.store.list_clients().await?;
        let namespaces = namespaces_of(&clients);
        let users = self.store.list_users().await?;
        let mut all = holdings(&users, &clients, &namespaces);
        all.extend(self.pairwise_holdings(&users, &clients));
        let mut by_value: HashMap<&str, Vec<&Holding<'_>>> = HashMap::new();
        for h in &all {
            by_value.entry(h.value.as_str()).or_default().push(h);
        }
        let mut out: Vec<String> = by_value
            .into_iter()
            .filter(|(_, hs)| hs.iter().any(|h| !h.same_owner(hs[0])))
            .map(|(v, hs)| {
                let who: Vec<String> = hs.iter().map(|h| h.describe()).collect();
                format!("{v:?}: {}", who.join(", "))
            })
            .collect();
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;

    fn user(id: &str, username: &str, attrs: Value) -> User {
        User {
            id: id.into(),
            username: username.into(),
            password_hash: None,
            rehashed_from: None,
            claims: Default::default(),
            attributes: attrs.as_object().cloned().unwrap_or_default(),
            groups: vec![],
            blocked: false,
            sign_out_epoch: 0,
            factors: Default::default(),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            revision: 0,
        }
    }

    fn ns(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn a_collision_is_found_whichever_holding_came_first() {
        let namespaces = ns(&["id", "emp", "badge"]);
        // a holds "x" as emp and as badge; b holds it as emp. Judging the badge namespace finds
        // the pair though a's emp holding came first and neither emp holding is judged.
        let users = [
            user("a", "ann", serde_json::json!({"emp": "x", "badge": "x"})),
            user("b", "bob", serde_json::json!({"emp": "x"})),
        ];
        let all = holdings(&users, &[], &namespaces);
        let (mine, _) = collision(&all, |h| h.namespace == "badge").expect("collision");
        assert_eq!(mine.value, "x");
        // One user holding a value in two namespaces is no collision.
        let alone = [user("a", "ann", serde_json::json!({"emp": "a"}))];
        assert!(collision(&holdings(&alone, &[], &namespaces), |_| true).is_none());
        // A number and the string of its digits are one subject.
        let users = [
            user("a", "ann", serde_json::json!({"emp": 7})),
            user("b", "bob", serde_json::json!({"badge": "7"})),
        ];
        let all = holdings(&users, &[], &namespaces);
        assert!(collision(&all, |h| matches!(h.owner, Owner::User(u) if u.id == "b")).is_some());
    }
}
