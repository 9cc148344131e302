//! Keycloak users as Tessera users: profile as standard claims, attributes, groups and realm
//! roles as groups, and their password credential as an imported hash.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::realm::{Credential, Group, KcUser, Realm};
use super::Report;
use crate::admin::users::{check_attribute_names, check_claim_values, standard_claim};
use crate::admin::UserSpec;

/// Realm roles every Keycloak user has: nothing to carry over.
fn implicit_role(realm: &Realm, role: &str) -> bool {
    role == format!("default-roles-{}", realm.realm)
        || matches!(role, "offline_access" | "uma_authorization")
}

/// Each group path's Tessera name (the group's own name when no other group has it, else its
/// path without the leading `/`) and the realm roles its members have (its ancestors' too).
struct Groups {
    names: HashMap<String, String>,
    roles: HashMap<String, Vec<String>>,
}

fn groups(realm: &Realm) -> Groups {
    fn walk<'a>(
        g: &'a Group,
        parent: &str,
        inherited: &[String],
        out: &mut Vec<(String, &'a str, Vec<String>)>,
    ) {
        let path = g
            .path
            .clone()
            .unwrap_or_else(|| format!("{parent}/{}", g.name));
        let mut roles = inherited.to_vec();
        roles.extend(g.realm_roles.iter().cloned());
        for s in &g.sub_groups {
            walk(s, &path, &roles, out);
        }
        out.push((path, g.name.as_str(), roles));
    }
    let mut all = Vec::new();
    for g in &realm.groups {
        walk(g, "", &[], &mut all);
    }
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (_, name, _) in &all {
        *count.entry(name).or_default() += 1;
    }
    let mut names = HashMap::new();
    let mut roles = HashMap::new();
    for (path, name, r) in all {
        let tessera = if count[name] == 1 {
            name.to_owned()
        } else {
            path.trim_start_matches('/').to_owned()
        };
        names.insert(path.clone(), tessera);
        roles.insert(path, r);
    }
    Groups { names, roles }
}

pub(super) fn users(realm: &Realm, report: &mut Report) -> Vec<UserSpec> {
    let groups = groups(realm);
    let mut taken: BTreeMap<String, usize> = BTreeMap::new();
    for u in &realm.users {
        *taken.entry(u.username.to_lowercase()).or_default() += 1;
    }
    let mut out = Vec::new();
    for u in &realm.users {
        let at = format!("users[{}]", u.username);
        if let Some(client) = &u.service_account_client_id {
            report.not_imported(
                &at,
                format!(
                    "the service account of {client}: the client credentials grant needs no user"
                ),
            );
            continue;
        }
        if taken[&u.username.to_lowercase()] > 1 {
            report.not_imported(&at, "another user has the same username but for case, and Tessera compares usernames regardless of case: neither is imported");
            continue;
        }
        if let Some(spec) = user(u, &at, realm, &groups, report) {
            out.push(spec);
        }
    }
    out
}

fn user(
    u: &KcUser,
    at: &str,
    realm: &Realm,
    groups: &Groups,
    report: &mut Report,
) -> Option<UserSpec> {
    let mut spec = UserSpec {
        username: u.username.clone(),
        blocked: u.enabled == Some(false),
        ..UserSpec::default()
    };
    match password(u, at, report) {
        Ok(Some((clear, hash))) => {
            spec.password = clear;
            spec.password_hash = hash;
        }
        Ok(None) if u.federation_link.is_some() => report.changed(at, "federated (LDAP, Kerberos or a custom store): its password stays there, and the user is imported without one; sign in through an identity provider, or set a password"),
        Ok(None) => {}
        Err(why) => {
            report.not_imported(at, format!("password: {why}"));
            return None;
        }
    }
    profile(u, at, &mut spec, report);
    // Groups by path, then realm roles, direct and through groups, as groups.
    let mut roles: Vec<String> = u.realm_roles.clone();
    for path in &u.groups {
        match groups.names.get(path) {
            Some(name) => member(&mut spec, name, &format!("{at}.groups"), report),
            None => report.dropped(
                &format!("{at}.groups"),
                format!("{path}: no such group in the export"),
            ),
        }
        roles.extend(groups.roles.get(path).into_iter().flatten().cloned());
    }
    for role in roles {
        if !implicit_role(realm, &role) {
            member(&mut spec, &role, &format!("{at}.realmRoles"), report);
        }
    }
    if !u.client_roles.is_empty() {
        report.dropped(
            &format!("{at}.clientRoles"),
            "client roles have no equivalent: Tessera authorises with groups and scopes",
        );
    }
    for action in &u.required_actions {
        let why = match action.as_str() {
            "CONFIGURE_TOTP" => "Tessera asks for a second factor when the application's authentication scheme needs one",
            "UPDATE_PASSWORD" => "Tessera has no forced password change; set a new password for the user",
            "VERIFY_EMAIL" => "Tessera sends no verification mail; email_verified is carried over",
            _ => "no equivalent",
        };
        report.dropped(&format!("{at}.requiredActions"), format!("{action}: {why}"));
    }
    for link in &u.federated_identities {
        let idp = link["identityProvider"].as_str().unwrap_or("?");
        report.dropped(&format!("{at}.federatedIdentities"), format!("{idp}: the link is made again at the user's first sign-in there, when the provider links by e-mail (link_by_email)"));
    }
    Some(spec)
}

/// Makes the user a member of the group `name` (a Keycloak group or realm role), by Tessera's
/// group rule; never of the administrators' group, which an import does not hand out.
fn member(spec: &mut UserSpec, name: &str, at: &str, report: &mut Report) {
    match crate::names::group(name) {
        Ok(g) if g == crate::names::ADMIN_GROUP => report.dropped(at, format!("{name}: would make the user a Tessera administrator; make administrators with tessera admin create --existing")),
        Ok(g) if spec.groups.contains(&g) => {}
        Ok(g) => spec.groups.push(g),
        Err(why) => report.dropped(at, format!("{name}: {why}")),
    }
}

/// The user's current password: in clear from a hand-written file, or its hash. `Err` for a
/// hash Tessera cannot read.
#[allow(clippy::type_complexity)]
fn password(
    u: &KcUser,
    at: &str,
    report: &mut Report,
) -> Result<Option<(Option<String>, Option<String>)>, String> {
    let mut found = None;
    for (i, c) in u.credentials.iter().enumerate() {
        let cat = format!("{at}.credentials[{i}]");
        match c.kind.as_str() {
            "password" if c.temporary => report.dropped(&cat, "a temporary password (to be changed at the first sign-in), which Tessera cannot ask to change: the user is imported without it; set a password"),
            "password" if found.is_none() => found = Some(credential(c)?),
            "password-history" => {}
            "otp" => report.dropped(&cat, "an authenticator app (otp): the user enrols again on the account page"),
            kind if kind.starts_with("webauthn") => report.dropped(&cat, format!("{kind}: passkeys are bound to Keycloak's origin; the user registers again on the account page")),
            kind => report.dropped(&cat, format!("{kind}: no equivalent")),
        }
    }
    Ok(found)
}

fn credential(c: &Credential) -> Result<(Option<String>, Option<String>), String> {
    if let Some(clear) = &c.value {
        return Ok((Some(clear.clone()), None));
    }
    let (Some(secret), Some(data)) = (&c.secret_data, &c.credential_data) else {
        return Err("a password credential without secretData and credentialData".into());
    };
    // The community bcrypt provider keeps the whole bcrypt string as the value.
    let algorithm: Value = serde_json::from_str(data).unwrap_or(Value::Null);
    if algorithm["algorithm"] == "bcrypt" {
        let value: Value =
            serde_json::from_str(secret).map_err(|e| format!("its secretData is not JSON: {e}"))?;
        let hash = value["value"]
            .as_str()
            .ok_or("its secretData has no value")?;
        return crate::password::stored_form(hash).map(|h| (None, Some(h)));
    }
    let hash = crate::foreign_hash::from_keycloak(secret, data)?;
    crate::password::stored_form(&hash).map(|h| (None, Some(h)))
}

/// First and last name, e-mail, and attributes: standard claims where they are one.
fn profile(u: &KcUser, at: &str, spec: &mut UserSpec, report: &mut Report) {
    let mut claims = Map::new();
    if let Some(e) = &u.email {
        claims.insert("email".into(), Value::String(e.clone()));
        claims.insert("email_verified".into(), Value::Bool(u.email_verified));
    }
    let (first, last) = (
        u.first_name.as_deref().unwrap_or(""),
        u.last_name.as_deref().unwrap_or(""),
    );
    if !first.is_empty() {
        claims.insert("given_name".into(), Value::String(first.into()));
    }
    if !last.is_empty() {
        claims.insert("family_name".into(), Value::String(last.into()));
    }
    let name = format!("{first} {last}").trim().to_owned();
    if !name.is_empty() {
        claims.insert("name".into(), Value::String(name));
    }
    let mut attributes = Map::new();
    for (k, values) in &u.attributes {
        let v = match values.as_slice() {
            [one] => Value::String(one.clone()),
            many => Value::Array(many.iter().cloned().map(Value::String).collect()),
        };
        let one = Map::from_iter([(k.clone(), v.clone())]);
        let checked = if standard_claim(k) {
            check_claim_values(&one).map(|()| claims.insert(k.clone(), v))
        } else {
            check_attribute_names(&one).map(|()| attributes.insert(k.clone(), v))
        };
        if let Err(why) = checked {
            report.dropped(&format!("{at}.attributes.{k}"), why);
        }
    }
    spec.claims = claims;
    spec.attributes = attributes;
}
