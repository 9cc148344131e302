//! Which user claims an application receives: the subject (seed 000 "Subject Management", OIDC
//! Core §8 pairwise), standard claims by scope (OIDC Core §5.4), custom claim mappings per scope
//! (seed 003 "Custom Claims") and the `claims` request parameter (OIDC Core §5.5).

use serde_json::{json, Map, Value};

use crate::model::{Client, SubjectType, User};
use crate::provider::Provider;
use crate::secret::b64url;

/// OIDC Core §5.4: the standard claims each scope releases.
pub fn scope_claims(scope: &str) -> &'static [&'static str] {
    match scope {
        "profile" => &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
        "email" => &["email", "email_verified"],
        "address" => &["address"],
        "phone" => &["phone_number", "phone_number_verified"],
        _ => &[],
    }
}

/// Every claim name discovery lists (`claims_supported`).
pub const STANDARD_CLAIMS: [&str; 26] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "sid",
    "name",
    "family_name",
    "given_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "email_verified",
    "address",
    "phone_number",
    "phone_number_verified",
    "locale",
];

/// A user attribute by name: `id`, `username`, `groups`, a standard claim, or a custom attribute.
pub fn attribute(user: &User, name: &str) -> Option<Value> {
    match name {
        "id" => Some(json!(user.id)),
        "username" => Some(json!(user.username)),
        "groups" => Some(json!(user.groups)),
        _ => user
            .attributes
            .get(name)
            .or_else(|| user.claims.get(name))
            .cloned(),
    }
}

/// The claim names the OIDC `claims` parameter asks for under `member` (`userinfo` or `id_token`).
pub fn requested_claims(claims_request: Option<&Value>, member: &str) -> Vec<String> {
    claims_request
        .and_then(|c| c.get(member))
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

impl Provider {
    /// OIDC Core §8: the `sub` this client sees for this user.
    pub fn subject(&self, client: &Client, user: &User) -> String {
        let b = &client.browser;
        let local = match attribute(user, &b.subject_attribute) {
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                if b.subject_attribute != "id" {
                    tracing::warn!(client_id = %client.client_id, user_id = %user.id,
                        attribute = %b.subject_attribute, "subject attribute missing; using the user id");
                }
                user.id.clone()
            }
        };
        match b.subject_type {
            SubjectType::Public => local,
            SubjectType::Pairwise => {
                // OIDC Core §8.1: the sector is the host of the redirect URIs.
                let sector = b
                    .redirect_uris
                    .first()
                    .and_then(|u| url::Url::parse(u).ok())
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_else(|| client.client_id.clone());
                b64url(
                    &self
                        .master
                        .derive(format!("pairwise\0{sector}\0{local}").as_bytes()),
                )
            }
        }
    }

    /// The user's claims for these scopes, plus named extra claims (the `claims` parameter).
    pub fn user_claims(
        &self,
        user: &User,
        scopes: &[String],
        extra: &[String],
    ) -> Map<String, Value> {
        let mut out = Map::new();
        let add = |name: &str, out: &mut Map<String, Value>| {
            if name == "updated_at" {
                out.insert(name.into(), json!(user.updated_at.0));
            } else if let Some(v) = user.claims.get(name) {
                out.insert(name.into(), v.clone());
            }
        };
        for s in scopes {
            for c in scope_claims(s) {
                add(c, &mut out);
            }
            if let Some(scope) = self.scope(s) {
                for (claim, attr) in &scope.claims {
                    if let Some(v) = attribute(user, attr) {
                        out.insert(claim.clone(), v);
                    }
                }
            }
        }
        for name in extra {
            if scope_claims("profile")
                .iter()
                .chain(scope_claims("email"))
                .chain(scope_claims("address"))
                .chain(scope_claims("phone"))
                .any(|c| c == name)
            {
                add(name, &mut out);
            }
        }
        out
    }
}
