//! Which user claims an application receives: the subject (seed 000 "Subject Management", OIDC
//! Core §8 pairwise), standard claims by scope (OIDC Core §5.4), custom claim mappings per scope
//! (seed 003 "Custom Claims") and the `claims` request parameter (OIDC Core §5.5).

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
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

/// Claims an administrator may neither define in a scope's claim mappings nor name a user
/// attribute after: the protocol's own (set by the authorization server), those of JWTs and
/// OAuth tokens (RFC 7519 §4.1, RFC 7662 §2.2, RFC 7800, RFC 8693 §4), and the standard claims of
/// OIDC Core §5.1, which only the user's own claims fill (so `email` is always the user's email).
pub fn reserved_claim(name: &str) -> bool {
    const TOKENS: [&str; 16] = [
        "jti",
        "nbf",
        "scope",
        "client_id",
        "cnf",
        "act",
        "may_act",
        "token_type",
        "events",
        "at_hash",
        "c_hash",
        "s_hash",
        "typ",
        "username",
        // OIDC Core §5.6.2: aggregated and distributed claims.
        "_claim_names",
        "_claim_sources",
    ];
    PROTOCOL_CLAIMS.contains(&name)
        || TOKENS.contains(&name)
        || ["profile", "email", "address", "phone"]
            .iter()
            .any(|s| scope_claims(s).contains(&name))
}

/// The claims of the protocol itself that ID tokens carry; discovery adds the scopes' claims.
pub const PROTOCOL_CLAIMS: [&str; 11] = [
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

/// OIDC Core §8.1: the sector of a pairwise client is the one host of its redirect URIs; native
/// apps on loopback or private-use schemes have no host of their own, so each is its own sector.
pub fn sector(client: &Client) -> String {
    let host = client
        .browser
        .redirect_uris
        .iter()
        .filter_map(|u| url::Url::parse(u).ok())
        .filter_map(|u| u.host_str().map(str::to_owned))
        .find(|h| !matches!(h.as_str(), "localhost" | "127.0.0.1" | "[::1]"));
    host.unwrap_or_else(|| format!("client:{}", client.client_id))
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
    /// OIDC Core §8: the `sub` this client sees for this user. A user without the application's
    /// subject attribute gets no token at all: falling back to another value could hand one
    /// user's `sub` to another.
    pub fn subject(&self, client: &Client, user: &User) -> Result<String> {
        let b = &client.browser;
        let local = match attribute(user, &b.subject_attribute) {
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                tracing::warn!(client_id = %client.client_id, user_id = %user.id,
                    attribute = %b.subject_attribute, "subject attribute missing");
                return Err(Error::access_denied(format!(
                    "the user has no {} attribute, which this application uses as the subject identifier",
                    b.subject_attribute
                )));
            }
        };
        Ok(match b.subject_type {
            SubjectType::Public => local,
            SubjectType::Pairwise => {
                let sector = sector(client);
                b64url(
                    &self
                        .master
                        .derive(format!("pairwise\0{sector}\0{local}").as_bytes()),
                )
            }
        })
    }

    /// The user's claims for `scopes`. `extra` (the `claims` parameter) only moves claims that
    /// `granted` scopes already release, e.g. into the ID token: it never widens what the user
    /// consented to (OIDC Core §3.1.2.4).
    pub fn user_claims(
        &self,
        user: &User,
        scopes: &[String],
        extra: &[String],
        granted: &[String],
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
                // A mapping stored before standard claims were reserved never stands in for one.
                for (claim, attr) in scope.claims.iter().filter(|(c, _)| !reserved_claim(c)) {
                    if let Some(v) = attribute(user, attr) {
                        out.insert(claim.clone(), v);
                    }
                }
            }
        }
        for name in extra {
            if granted
                .iter()
                .any(|s| scope_claims(s).contains(&name.as_str()))
            {
                add(name, &mut out);
            }
        }
        out
    }
}
