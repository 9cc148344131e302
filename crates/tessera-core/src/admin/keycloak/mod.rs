//! `tessera import keycloak`: a Keycloak realm export (`kc.sh export`) as a Tessera apply file,
//! and a report of everything that is not carried over, or not as it was, and why. Each record is
//! judged by the rules an apply uses, so that what the file declares applies as it is.

mod clients;
mod idps;
mod realm;
mod scopes;
mod users;

use std::collections::HashSet;

use serde::Serialize;

use super::apply::Spec;
use super::clients::Catalog;
use super::permission::{Operation, TargetKind};
use super::{invalid, Admin, AdminResult};
use crate::model::ACCESS_TOKEN_TTL_RANGE;
use crate::provider::Provider;
use realm::Realm;

/// The Keycloak versions whose export format the import reads.
pub const KEYCLOAK_VERSIONS: std::ops::RangeInclusive<u32> = 19..=26;

/// What happened to one thing of the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The record is left out.
    NotImported,
    /// The record is imported without this setting.
    Dropped,
    /// The record is imported with this setting changed.
    Changed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NotImported => "not imported",
            Outcome::Dropped => "dropped",
            Outcome::Changed => "changed",
        }
    }
}

/// One line of the import report: where in the export, what happened, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub at: String,
    pub outcome: Outcome,
    pub reason: String,
}

/// The report as the conversion writes it.
#[derive(Debug, Default)]
struct Report(Vec<Finding>);

impl Report {
    fn push(&mut self, at: &str, outcome: Outcome, reason: impl Into<String>) {
        self.0.push(Finding {
            at: at.to_owned(),
            outcome,
            reason: reason.into(),
        });
    }
    fn not_imported(&mut self, at: &str, reason: impl Into<String>) {
        self.push(at, Outcome::NotImported, reason);
    }
    fn dropped(&mut self, at: &str, reason: impl Into<String>) {
        self.push(at, Outcome::Dropped, reason);
    }
    fn changed(&mut self, at: &str, reason: impl Into<String>) {
        self.push(at, Outcome::Changed, reason);
    }
}

/// An imported realm: the apply file and the report.
#[derive(Debug, Clone)]
pub struct KeycloakImport {
    pub realm: String,
    pub keycloak_version: String,
    pub spec: Spec,
    pub findings: Vec<Finding>,
}

/// The realm `name` of an export: one realm object, or an array of them (`kc.sh export` without
/// `--realm`). Malformed JSON and unexpected shapes are refused with their place in the file.
fn parse(text: &str, name: Option<&str>) -> AdminResult<Realm> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        invalid(
            "keycloak export",
            format!(
                "malformed JSON at line {}, column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    let (value, path) = match value {
        serde_json::Value::Array(realms) => {
            let names: Vec<String> = realms
                .iter()
                .map(|r| r["realm"].as_str().unwrap_or("").to_owned())
                .collect();
            let index = match name {
                Some(n) => names.iter().position(|r| r == n),
                None if realms.len() == 1 => Some(0),
                None => None,
            }
            .ok_or_else(|| {
                invalid(
                    "realm",
                    format!("the export holds the realms {names:?}: name one with --realm"),
                )
            })?;
            (realms[index].clone(), format!("[{index}]"))
        }
        serde_json::Value::Object(_) => (value, String::new()),
        _ => {
            return Err(invalid(
                "keycloak export",
                "is not a realm export (a JSON object, or an array of them)",
            ))
        }
    };
    let realm: Realm = serde_path_to_error::deserialize(value).map_err(|e| {
        let at = e.path().to_string();
        invalid(&format!("{path}{at}"), e.into_inner().to_string())
    })?;
    if let Some(n) = name.filter(|n| *n != realm.realm) {
        return Err(invalid(
            "realm",
            format!("the export is of realm {:?}, not {n:?}", realm.realm),
        ));
    }
    if realm.realm.is_empty() {
        return Err(invalid(
            &format!("{path}.realm"),
            "missing: not a Keycloak realm export (kc.sh export --realm NAME)",
        ));
    }
    Ok(realm)
}

/// `keycloakVersion`: the export formats of [`KEYCLOAK_VERSIONS`] only.
fn version(realm: &Realm) -> AdminResult<String> {
    let v = realm.keycloak_version.as_deref().ok_or_else(|| {
        invalid(
            "keycloakVersion",
            "missing: Tessera reads realm exports of kc.sh export, which name their Keycloak version",
        )
    })?;
    let major = v.split('.').next().and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m) if KEYCLOAK_VERSIONS.contains(&m) => Ok(v.to_owned()),
        _ => Err(invalid(
            "keycloakVersion",
            format!(
                "{v}: Tessera reads the exports of Keycloak {} to {}",
                KEYCLOAK_VERSIONS.start(),
                KEYCLOAK_VERSIONS.end()
            ),
        )),
    }
}

/// What the realm itself sets that Tessera does differently.
fn realm_findings(realm: &Realm, report: &mut Report) {
    if let Some(p) = realm.password_policy.as_deref().filter(|p| !p.is_empty()) {
        report.dropped("passwordPolicy", format!("{p}: Tessera's password rule is a length of 8 to 1024 characters; the policy is not carried over"));
    }
    if realm.otp_policy_type.is_some() {
        report.changed("otpPolicyType", "Tessera's authenticator apps use TOTP with SHA-1, 6 digits and 30 s, which every app supports");
    }
    if realm.brute_force_protected {
        report.changed("bruteForceProtected", "Tessera throttles sign-ins per account and per address (sign_in.max_failures_* in the configuration file)");
    }
    if !realm.authentication_flows.is_empty() {
        report.dropped("authenticationFlows", "Tessera decides how users sign in by the authentication scheme of each application (schemes:)");
    }
    if !realm.components.is_empty() {
        report.dropped("components", "user storage (LDAP, Kerberos), key providers and other components are not carried over; upstream directories sign in through identity providers");
    }
    if !realm.smtp_server.is_empty() {
        report.dropped("smtpServer", "Tessera sends no mail");
    }
    if realm.client_policies.is_some() {
        report.dropped(
            "clientPolicies",
            "Tessera applies OAuth 2.1 and FAPI 2.0 per application (oauth_policy, profile)",
        );
    }
    if let Some(s) = realm.sso_session_max_lifespan {
        report.changed("ssoSessionMaxLifespan", format!("{s} s: Keycloak's refresh tokens end with the SSO session; Tessera's live for each application's refresh_token_ttl (default 1 day)"));
    }
    if let Some(ttl) = realm.access_token_lifespan {
        let (lo, hi) = ACCESS_TOKEN_TTL_RANGE;
        if !(lo..=hi).contains(&ttl) {
            report.changed(
                "accessTokenLifespan",
                format!("{ttl} s is outside {lo} to {hi} s: applications take the nearest"),
            );
        }
    }
    if !realm.roles.client.values().all(Vec::is_empty) {
        report.dropped(
            "roles.client",
            "client roles have no equivalent: Tessera authorises with groups and scopes",
        );
    }
}

impl Admin<'_> {
    /// Converts a Keycloak realm export (the realm `name` of it, when it holds several) into an
    /// apply file and a report. Each scope, API, identity provider, application and user is
    /// judged as an apply would judge it (with what is already stored), and left out with the
    /// reason when it would be refused; nothing is written.
    pub async fn import_keycloak(
        &self,
        text: &str,
        name: Option<&str>,
    ) -> AdminResult<KeycloakImport> {
        for op in [
            Operation::ListScopes,
            Operation::ListApis,
            Operation::ListApplications,
        ] {
            self.authorize(op, TargetKind::Ordinary)?;
        }
        let realm = parse(text, name)?;
        let keycloak_version = version(&realm)?;
        let mut report = Report::default();
        realm_findings(&realm, &mut report);
        let now = self.now();

        let (scopes, apis) = scopes::scopes(&realm, &mut report);
        let mut spec = Spec::default();
        const OWN: &str =
            "a name of Tessera's own (the admin API's), which an import never changes";
        const EXISTS: &str = "already in this Tessera (users compared regardless of case): an \
            import adds, it never changes what is there; change it there, or delete it and import again";
        for s in scopes {
            if self.is_own_scope(&s.name) {
                report.not_imported(&format!("clientScopes[{}]", s.name), OWN);
                continue;
            }
            if self.store.get_scope(&s.name).await?.is_some() {
                report.not_imported(&format!("clientScopes[{}]", s.name), EXISTS);
                continue;
            }
            match s.to_scope(None, now) {
                Ok(_) => spec.scopes.push(s),
                Err(e) => report.not_imported(&format!("clientScopes[{}]", s.name), e.to_string()),
            }
        }
        let declared: HashSet<String> = spec.scopes.iter().map(|s| s.name.clone()).collect();
        for mut a in apis {
            a.scopes.retain(|s| declared.contains(s));
            if self.is_own_api(&a.identifier) {
                report.not_imported(&format!("apis[{}]", a.identifier), OWN);
                continue;
            }
            if self.store.get_api(&a.identifier).await?.is_some() {
                report.not_imported(&format!("apis[{}]", a.identifier), EXISTS);
                continue;
            }
            match a.to_api(None, now) {
                Ok(_) => spec.apis.push(a),
                Err(e) => report.not_imported(&format!("apis[{}]", a.identifier), e.to_string()),
            }
        }
        let stored_idps = self.store.list_idps().await?;
        for i in idps::idps(&realm, &mut report) {
            let at = format!("identityProviders[{}]", i.name);
            if stored_idps.iter().any(|s| s.name == i.name) {
                report.not_imported(&at, EXISTS);
                continue;
            }
            // Aliases that differ only in case name one provider here.
            if spec.identity_providers.iter().any(|d| d.name == i.name) {
                report.not_imported(
                    &at,
                    "another identity provider of the export has this name but for case",
                );
                continue;
            }
            let allow_private = self.settings.allow_private_addresses;
            match i.to_idp(None, allow_private, &self.master, now) {
                Ok(_) => spec.identity_providers.push(i),
                Err(e) => {
                    report.not_imported(&format!("identityProviders[{}]", i.name), e.to_string())
                }
            }
        }

        let stored_scopes = self.store.list_scopes().await?;
        let stored_apis = self.store.list_apis().await?;
        let catalog = Catalog {
            scopes: declared
                .iter()
                .cloned()
                .chain(stored_scopes.into_iter().map(|s| s.name))
                .collect(),
            apis: spec
                .apis
                .iter()
                .map(|a| a.identifier.clone())
                .chain(stored_apis.into_iter().map(|a| a.identifier))
                .collect(),
            schemes: self
                .store
                .list_schemes()
                .await?
                .into_iter()
                .map(|s| s.name)
                .collect(),
            idps: spec
                .identity_providers
                .iter()
                .map(|i| i.name.clone())
                .chain(self.store.list_idps().await?.into_iter().map(|i| i.name))
                .collect(),
        };
        let api_of_scope = |scope: &str| {
            spec.apis
                .iter()
                .find(|a| a.scopes.iter().any(|s| s == scope))
                .map(|a| a.identifier.clone())
        };
        let scope_names: Vec<String> = spec.scopes.iter().map(|s| s.name.clone()).collect();
        let candidates = clients::clients(&realm, &api_of_scope, &scope_names, &mut report);
        for mut c in candidates {
            let at = format!("clients[{}]", c.client_id.as_deref().unwrap_or(&c.name));
            if c.client_id
                .as_deref()
                .is_some_and(|id| self.is_own_client(id))
            {
                report.not_imported(&at, OWN);
                continue;
            }
            let stored = match &c.client_id {
                Some(id) => self.store.get_client(id).await?,
                None => None,
            };
            if stored.is_some() {
                report.not_imported(&at, EXISTS);
                continue;
            }
            if let Some(ttl) = c.access_token_ttl {
                c.access_token_ttl =
                    Some(ttl.clamp(ACCESS_TOKEN_TTL_RANGE.0, ACCESS_TOKEN_TTL_RANGE.1));
            }
            let judged = Provider::spec_secret(&c).and_then(|_| {
                let client = self.client_from_spec(&c, None, now)?;
                self.validate_client(&client, &catalog)
            });
            match judged {
                Ok(()) => spec.clients.push(c),
                Err(e) => report.not_imported(&at, e.to_string()),
            }
        }

        for mut u in users::users(&realm, &mut report) {
            let at = format!("users[{}]", u.username);
            if self.store.find_user(&u.username).await?.is_some() {
                report.not_imported(&at, EXISTS);
                continue;
            }
            // A password in clear (a hand-written import file) is judged and hashed here: the
            // file keeps hashes only.
            if u.password.is_some() {
                match Provider::spec_password_hash(&u).await {
                    Ok(h) => (u.password, u.password_hash) = (None, h),
                    Err(e) => {
                        report.not_imported(&at, e.to_string());
                        continue;
                    }
                }
            }
            match self.user_from_spec(&u, None, None) {
                Ok(_) => spec.users.push(u),
                Err(e) => report.not_imported(&at, e.to_string()),
            }
        }
        Ok(KeycloakImport {
            realm: realm.realm,
            keycloak_version,
            spec,
            findings: report.0,
        })
    }
}
