//! Declarative configuration (`tessera apply -f tessera.yaml`): plans creates, updates and (with
//! prune) deletes of scopes, APIs, identity providers, schemes and clients against the store, then
//! applies them in one transaction.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::clients::Catalog;
use super::permission::{Operation, TargetKind};
use super::subjects::Written;
use super::targets::{is_administrator, scope_kind};
use super::{
    Admin, AdminError, AdminResult, ApiSpec, ClientSpec, IdpSpec, SchemeSpec, ScopeSpec, UserSpec,
};
use crate::federation::oidc::secret_context;
use crate::federation::IdentityProvider;
use crate::model::{Client, Scope, User};
use crate::provider::Provider;
use crate::secret::constant_time_eq;
use crate::store::{Change, Record, Table};

/// The file's shape: everything a deployment declares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    #[serde(default)]
    pub scopes: Vec<ScopeSpec>,
    #[serde(default)]
    pub apis: Vec<ApiSpec>,
    /// Upstream identity providers (a `client_secret` given is compared with the stored one).
    #[serde(default)]
    pub identity_providers: Vec<IdpSpec>,
    /// Authentication schemes (the built-in `password` is not declared).
    #[serde(default)]
    pub schemes: Vec<SchemeSpec>,
    #[serde(default)]
    pub clients: Vec<ClientSpec>,
    /// Users, matched by username; never pruned (people are not configuration).
    #[serde(default)]
    pub users: Vec<UserSpec>,
}

/// What an export writes for a secret: `tessera apply` keeps the stored secret it stands for.
pub const SECRET_KEPT: &str = "(kept: secrets are never exported)";

/// The secret a declared one stands for: `None` (keep the stored one) for [`SECRET_KEPT`] when
/// the record exists; refused when it does not, since there is nothing to keep.
pub(crate) fn declared_secret(
    field: &str,
    key: &str,
    secret: &Option<String>,
    exists: bool,
) -> AdminResult<Option<String>> {
    match secret.as_deref() {
        Some(SECRET_KEPT) if exists => Ok(None),
        Some(SECRET_KEPT) => Err(super::invalid(
            field,
            format!(
                "{key}: the export's placeholder stands for a stored secret, and none is stored: \
                 give the secret, or leave it out to have one generated"
            ),
        )),
        other => Ok(other.map(str::to_owned)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Unchanged,
    Delete,
}

/// One line of a plan; a generated client secret is reported once, after the plan is applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanItem {
    pub action: Action,
    pub kind: &'static str,
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub items: Vec<PlanItem>,
    changes: Vec<Change>,
    /// Users to create (true) or update (false), written after the configuration.
    users: Vec<(bool, User)>,
    /// The configuration version the plan was made from: it is applied only onto that one.
    version: i64,
}

impl Plan {
    fn push(&mut self, action: Action, kind: &'static str, key: &str, change: Option<Change>) {
        self.items.push(PlanItem {
            action,
            kind,
            key: key.to_owned(),
            client_secret: None,
        });
        self.changes.extend(change);
    }

    pub fn is_noop(&self) -> bool {
        self.changes.is_empty() && self.users.is_empty()
    }
}

/// The operation creating a record of `table` is (`None`: not a record a plan changes).
fn create_op(t: Table) -> Option<Operation> {
    match t {
        Table::Clients => Some(Operation::CreateApplication),
        Table::Apis => Some(Operation::CreateApi),
        Table::Scopes => Some(Operation::CreateScope),
        Table::Schemes => Some(Operation::CreateScheme),
        Table::Idps => Some(Operation::CreateIdp),
        _ => None,
    }
}

fn change_op(t: Table) -> Option<Operation> {
    match t {
        Table::Clients => Some(Operation::ChangeApplication),
        Table::Apis => Some(Operation::ReplaceApi),
        Table::Scopes => Some(Operation::ReplaceScope),
        Table::Schemes => Some(Operation::ReplaceScheme),
        Table::Idps => Some(Operation::ReplaceIdp),
        _ => None,
    }
}

fn delete_op(t: Table) -> Option<Operation> {
    match t {
        Table::Clients => Some(Operation::DeleteApplication),
        Table::Apis => Some(Operation::DeleteApi),
        Table::Scopes => Some(Operation::DeleteScope),
        Table::Schemes => Some(Operation::DeleteScheme),
        Table::Idps => Some(Operation::DeleteIdp),
        _ => None,
    }
}

fn unique<'a>(kind: &str, keys: impl Iterator<Item = &'a str>) -> AdminResult<()> {
    let mut seen = HashSet::new();
    for k in keys {
        if !seen.insert(k) {
            return Err(super::invalid(
                kind,
                format!("{k} is declared more than once"),
            ));
        }
    }
    Ok(())
}

/// True when two records differ in what an administrator declares (not in timestamps).
fn client_differs(a: &Client, b: &Client) -> bool {
    let strip = |c: &Client| Client {
        created_at: c.created_at,
        updated_at: c.created_at,
        secret_ciphertext: None,
        ..c.clone()
    };
    strip(a) != strip(b)
}

impl Provider {
    /// Compares the spec with the store; nothing is written.
    async fn make_plan(&self, spec: &Spec, prune: bool) -> AdminResult<Plan> {
        let now = self.now();
        unique("scopes", spec.scopes.iter().map(|s| s.name.as_str()))?;
        unique("apis", spec.apis.iter().map(|a| a.identifier.as_str()))?;
        // Clients without a client_id are matched by name, so their names must be unique.
        unique(
            "clients",
            spec.clients
                .iter()
                .filter(|c| c.client_id.is_none())
                .map(|c| c.name.trim()),
        )?;
        let mut plan = Plan {
            version: self.store.config_version().await?,
            ..Plan::default()
        };

        let existing_scopes = self.store.list_scopes().await?;
        for s in &spec.scopes {
            let old = existing_scopes.iter().find(|e| e.name == s.name);
            let new = s.to_scope(old, now)?;
            match old {
                None => plan.push(
                    Action::Create,
                    "scope",
                    &new.name,
                    Some(Change::Create(Record::Scope(new.clone()))),
                ),
                Some(o)
                    if Scope {
                        created_at: new.created_at,
                        updated_at: new.updated_at,
                        ..o.clone()
                    } != new =>
                {
                    plan.push(
                        Action::Update,
                        "scope",
                        &new.name,
                        Some(Change::Update(Record::Scope(new.clone()))),
                    )
                }
                Some(_) => plan.push(Action::Unchanged, "scope", &new.name, None),
            }
        }
        let existing_apis = self.store.list_apis().await?;
        let mut scope_names: HashSet<String> = spec.scopes.iter().map(|s| s.name.clone()).collect();
        // A prune keeps Tessera's own scopes and API, so they stay nameable.
        scope_names.extend(
            existing_scopes
                .iter()
                .filter(|s| !prune || self.is_own_scope(&s.name))
                .map(|s| s.name.clone()),
        );
        for a in &spec.apis {
            let old = existing_apis.iter().find(|e| e.identifier == a.identifier);
            let new = a.to_api(old, now)?;
            if let Some(s) = new.scopes.iter().find(|s| !scope_names.contains(*s)) {
                return Err(super::invalid(
                    "apis",
                    format!(
                        "API {} names scope {s}, which is not declared",
                        new.identifier
                    ),
                ));
            }
            match old {
                None => plan.push(
                    Action::Create,
                    "api",
                    &new.identifier,
                    Some(Change::Create(Record::Api(new.clone()))),
                ),
                Some(o) if (&o.name, &o.scopes) != (&new.name, &new.scopes) => plan.push(
                    Action::Update,
                    "api",
                    &new.identifier,
                    Some(Change::Update(Record::Api(new.clone()))),
                ),
                Some(_) => plan.push(Action::Unchanged, "api", &new.identifier, None),
            }
        }
        let mut api_ids: HashSet<String> = spec.apis.iter().map(|a| a.identifier.clone()).collect();
        api_ids.extend(
            existing_apis
                .iter()
                .filter(|a| !prune || self.is_own_api(&a.identifier))
                .map(|a| a.identifier.clone()),
        );

        let existing_idps = self.store.list_idps().await?;
        let mut idp_names = self.plan_idps(&mut plan, spec, &existing_idps, prune)?;

        unique("schemes", spec.schemes.iter().map(|s| s.name.as_str()))?;
        let existing_schemes = self.store.list_schemes().await?;
        // A prune keeps what Tessera's own clients (the Admin Portal, the account page) sign in
        // with, as it keeps them: the scheme not declared, and the identity providers it names.
        let own_schemes: Vec<&crate::scheme::AuthScheme> = if prune {
            let clients = self.store.list_clients().await?;
            existing_schemes
                .iter()
                .filter(|s| !spec.schemes.iter().any(|d| d.name == s.name))
                .filter(|s| {
                    clients.iter().any(|c| {
                        self.is_own_client(&c.client_id)
                            && c.browser.authentication_scheme == s.name
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        idp_names.extend(
            own_schemes
                .iter()
                .flat_map(|s| s.identity_providers.iter().cloned()),
        );
        for s in &spec.schemes {
            let old = existing_schemes.iter().find(|e| e.name == s.name);
            let new = s.to_scheme(old, now)?;
            if let Some(n) = new
                .identity_providers
                .iter()
                .find(|n| !idp_names.contains(*n))
            {
                return Err(super::invalid(
                    "schemes",
                    format!("{} names no identity provider {n}", new.name),
                ));
            }
            let change = match old {
                None => Some((Action::Create, Change::Create(Record::Scheme(new.clone())))),
                Some(o) if SchemeSpec::from(o) != SchemeSpec::from(&new) => {
                    Some((Action::Update, Change::Update(Record::Scheme(new.clone()))))
                }
                Some(_) => None,
            };
            match change {
                Some((action, c)) => plan.push(action, "scheme", &new.name, Some(c)),
                None => plan.push(Action::Unchanged, "scheme", &new.name, None),
            }
        }
        // One scheme per acr (acr_values names one): the declared ones, the stored ones that
        // stay, and the built-in password.
        let mut acrs: Vec<(String, String)> = vec![(
            crate::scheme::DEFAULT_SCHEME.to_owned(),
            crate::scheme::ACR_PASSWORD.to_owned(),
        )];
        acrs.extend(
            existing_schemes
                .iter()
                .filter(|e| !prune || own_schemes.iter().any(|o| o.name == e.name))
                .filter(|e| !spec.schemes.iter().any(|d| d.name == e.name))
                .map(|e| (e.name.clone(), e.acr.clone())),
        );
        for d in &spec.schemes {
            if let Some((other, _)) = acrs.iter().find(|(_, acr)| *acr == d.acr) {
                return Err(super::invalid(
                    "schemes",
                    format!("{} and {other} yield the same acr {}", d.name, d.acr),
                ));
            }
            acrs.push((d.name.clone(), d.acr.clone()));
        }
        let mut scheme_names: HashSet<String> =
            spec.schemes.iter().map(|s| s.name.clone()).collect();
        if !prune {
            scheme_names.extend(existing_schemes.iter().map(|s| s.name.clone()));
        }
        scheme_names.extend(own_schemes.iter().map(|s| s.name.clone()));
        let catalog = Catalog {
            scopes: scope_names.clone(),
            apis: api_ids.clone(),
            schemes: scheme_names.clone(),
            idps: idp_names.clone(),
        };

        let existing_clients = self.store.list_clients().await?;
        let mut kept_clients = HashSet::new();
        for c in &spec.clients {
            let old = match &c.client_id {
                Some(id) => existing_clients.iter().find(|e| &e.client_id == id),
                None => {
                    let mut same = existing_clients.iter().filter(|e| e.name == c.name.trim());
                    match (same.next(), same.next()) {
                        (Some(_), Some(_)) => {
                            return Err(AdminError::Conflict(format!(
                                "several clients are named {:?}; give this one a client_id",
                                c.name
                            )))
                        }
                        (one, _) => one,
                    }
                }
            };
            let declared = ClientSpec {
                client_secret: declared_secret(
                    "clients",
                    &c.name,
                    &c.client_secret,
                    old.is_some(),
                )?,
                ..c.clone()
            };
            let c = &declared;
            let mut new = self.client_from_spec(c, old, now)?;
            self.validate_client(&new, &catalog)?;
            if !kept_clients.insert(new.client_id.clone()) {
                return Err(super::invalid(
                    "clients",
                    format!("{} is declared more than once", new.client_id),
                ));
            }
            match old {
                None => {
                    let secret = Self::spec_secret(c)?;
                    if let Some(secret) = &secret {
                        self.seal_secret(&mut new, secret);
                    }
                    let key = new.client_id.clone();
                    plan.push(
                        Action::Create,
                        "client",
                        &key,
                        Some(Change::Create(Record::Client(new))),
                    );
                    if c.client_secret.is_none() {
                        if let Some(item) = plan.items.last_mut() {
                            item.client_secret = secret;
                        }
                    }
                }
                Some(o) => {
                    let secret_changed = c.client_secret.as_deref().is_some_and(|want| {
                        !self
                            .decrypt_secret(o)
                            .is_some_and(|have| constant_time_eq(&have, want.as_bytes()))
                    });
                    if secret_changed {
                        if let Some(want) = &c.client_secret {
                            Self::spec_secret(c)?;
                            self.seal_secret(&mut new, want);
                        }
                    }
                    if secret_changed || client_differs(o, &new) {
                        let key = new.client_id.clone();
                        plan.push(
                            Action::Update,
                            "client",
                            &key,
                            Some(Change::Update(Record::Client(new))),
                        );
                    } else {
                        plan.push(Action::Unchanged, "client", &new.client_id, None);
                    }
                }
            }
        }

        unique("users", spec.users.iter().map(|u| u.username.as_str()))?;
        for u in &spec.users {
            self.plan_user(&mut plan, u).await?;
        }

        if prune {
            for c in existing_clients.iter().filter(|c| {
                !kept_clients.contains(&c.client_id) && !self.is_own_client(&c.client_id)
            }) {
                plan.push(
                    Action::Delete,
                    "client",
                    &c.client_id,
                    Some(Change::Delete(Table::Clients, c.client_id.clone())),
                );
            }
            for a in existing_apis
                .iter()
                .filter(|a| !api_ids.contains(&a.identifier))
            {
                plan.push(
                    Action::Delete,
                    "api",
                    &a.identifier,
                    Some(Change::Delete(Table::Apis, a.identifier.clone())),
                );
            }
            for s in existing_schemes
                .iter()
                .filter(|s| !scheme_names.contains(&s.name))
            {
                plan.push(
                    Action::Delete,
                    "scheme",
                    &s.name,
                    Some(Change::Delete(Table::Schemes, s.name.clone())),
                );
            }
            for i in existing_idps
                .iter()
                .filter(|i| !idp_names.contains(&i.name))
            {
                plan.push(
                    Action::Delete,
                    "idp",
                    &i.name,
                    Some(Change::Delete(Table::Idps, i.name.clone())),
                );
            }
            for s in existing_scopes
                .iter()
                .filter(|s| !scope_names.contains(&s.name))
            {
                plan.push(
                    Action::Delete,
                    "scope",
                    &s.name,
                    Some(Change::Delete(Table::Scopes, s.name.clone())),
                );
            }
        }
        Ok(plan)
    }

    /// The identity providers' lines of the plan; returns the names there will be. A declared
    /// secret that decrypts to the stored one is no change.
    fn plan_idps(
        &self,
        plan: &mut Plan,
        spec: &Spec,
        existing: &[IdentityProvider],
        prune: bool,
    ) -> AdminResult<HashSet<String>> {
        unique(
            "identity_providers",
            spec.identity_providers.iter().map(|i| i.name.as_str()),
        )?;
        let mut domains: HashSet<&str> = HashSet::new();
        for i in &spec.identity_providers {
            if let Some(d) = i.domains.iter().find(|d| !domains.insert(d.as_str())) {
                return Err(super::invalid(
                    "identity_providers",
                    format!("the domain {d} is declared for two identity providers"),
                ));
            }
        }
        for i in &spec.identity_providers {
            let old = existing.iter().find(|e| e.name == i.name);
            let declared = IdpSpec {
                client_secret: declared_secret(
                    "identity_providers",
                    &i.name,
                    &i.client_secret,
                    old.is_some(),
                )?,
                ..i.clone()
            };
            let i = &declared;
            let new = i.to_idp(
                old,
                self.settings.allow_private_addresses,
                &self.master,
                self.now(),
            )?;
            let secret_changed = match (old, &i.client_secret) {
                (Some(o), Some(want)) => !o
                    .secret_ciphertext
                    .as_deref()
                    .and_then(|c| self.master.decrypt(&secret_context(&o.name), c).ok())
                    .is_some_and(|have| constant_time_eq(&have, want.as_bytes())),
                _ => false,
            };
            let action = match old {
                None => Action::Create,
                Some(o) if secret_changed || IdpSpec::from(o) != IdpSpec::from(&new) => {
                    Action::Update
                }
                Some(_) => {
                    plan.push(Action::Unchanged, "idp", &new.name, None);
                    continue;
                }
            };
            let change = match action {
                Action::Create => Change::Create(Record::Idp(new.clone())),
                _ => Change::Update(Record::Idp(new.clone())),
            };
            plan.push(action, "idp", &new.name, Some(change));
        }
        let mut names: HashSet<String> = spec
            .identity_providers
            .iter()
            .map(|i| i.name.clone())
            .collect();
        if !prune {
            // A stored provider that stays must not route a domain a declared one takes.
            for e in existing.iter().filter(|e| !names.contains(&e.name)) {
                if let Some(d) = e.domains.iter().find(|d| domains.contains(d.as_str())) {
                    return Err(AdminError::Conflict(format!(
                        "the domain {d} signs in at identity provider {} already",
                        e.name
                    )));
                }
            }
            names.extend(existing.iter().map(|e| e.name.clone()));
        }
        Ok(names)
    }

    /// A user's line of the plan: created, updated when anything declared differs (a clear-text
    /// password is checked against the stored hash), or unchanged.
    async fn plan_user(&self, plan: &mut Plan, u: &UserSpec) -> AdminResult<()> {
        let existing = self.store.find_user(&u.username).await?;
        let password_matches = match (&existing, &u.password, &u.password_hash) {
            (Some(e), Some(p), None) => match crate::password::place().await {
                Some(place) => {
                    crate::password::verify_blocking(&place, e.password_hash.clone(), p.clone())
                        .await
                        == Some(true)
                }
                None => false,
            },
            // The imported hash as stored, or the one a sign-in has since replaced.
            (Some(e), None, Some(h)) => crate::password::stored_form(h).is_ok_and(|stored| {
                e.password_hash.as_ref() == Some(&stored)
                    || e.rehashed_from == Some(crate::password::rehash_mark(&stored))
            }),
            _ => true,
        };
        let hash = if existing.is_none() || !password_matches {
            Self::spec_password_hash(u).await?
        } else {
            None
        };
        let new = self.user_from_spec(u, existing.as_ref(), hash)?;
        let action = match &existing {
            None => Action::Create,
            Some(e)
                if !password_matches
                    || User {
                        created_at: new.created_at,
                        updated_at: new.updated_at,
                        ..e.clone()
                    } != new =>
            {
                Action::Update
            }
            Some(_) => Action::Unchanged,
        };
        plan.items.push(PlanItem {
            action,
            kind: "user",
            key: new.username.clone(),
            client_secret: None,
        });
        if action != Action::Unchanged {
            plan.users.push((existing.is_none(), new));
        }
        Ok(())
    }
}

impl Admin<'_> {
    /// Compares the spec with the store (what the caller may read of it); nothing is written.
    pub async fn plan(&self, spec: &Spec, prune: bool) -> AdminResult<Plan> {
        for op in [
            Operation::ListScopes,
            Operation::ListApis,
            Operation::ListSchemes,
            Operation::ListIdps,
            Operation::ListApplications,
            Operation::ListUsers,
        ] {
            self.authorize(op, TargetKind::Ordinary)?;
        }
        self.make_plan(spec, prune).await
    }

    /// Checks the caller may make every change of the plan, each judged by what it touches
    /// before and after.
    async fn may_apply(&self, plan: &Plan) -> AdminResult<()> {
        for change in &plan.changes {
            let (op, after) = match change {
                Change::Create(r) => (create_op(r.table()), Some(r)),
                Change::Update(r) => (change_op(r.table()), Some(r)),
                Change::Delete(t, _) => (delete_op(*t), None),
            };
            let Some(op) = op else { continue };
            self.authorize(op, TargetKind::Ordinary)?;
            let key = match change {
                Change::Create(r) | Change::Update(r) => r.key().to_owned(),
                Change::Delete(_, k) => k.clone(),
            };
            let before = match change {
                Change::Create(_) => TargetKind::Ordinary,
                Change::Update(r) => self.stored_kind(r.table(), &key).await?,
                Change::Delete(t, _) => self.stored_kind(*t, &key).await?,
            };
            self.authorize(op, before)?;
            if let Some(r) = after {
                self.authorize(op, self.record_kind(r))?;
            }
        }
        for (create, u) in &plan.users {
            let op = if *create {
                Operation::CreateUser
            } else {
                Operation::ChangeUser
            };
            self.authorize(op, TargetKind::Ordinary)?;
            if is_administrator(u) {
                self.authorize(op, TargetKind::Protected)?;
            }
            if let Some(existing) = self.store.get_user(&u.id).await? {
                self.authorize(op, self.as_other(&existing))?;
            }
        }
        // The users and applications of the plan together, with each other and with the rest.
        let written = Written {
            users: plan.users.iter().map(|(_, u)| u).collect(),
            new_usernames: plan
                .users
                .iter()
                .filter(|(create, _)| *create)
                .map(|(_, u)| u.id.as_str())
                .collect(),
            clients: plan
                .changes
                .iter()
                .filter_map(|c| match c {
                    Change::Create(Record::Client(c)) | Change::Update(Record::Client(c)) => {
                        Some(c)
                    }
                    _ => None,
                })
                .collect(),
        };
        self.check_subjects(&written).await
    }

    /// The kind of the stored record `key` of `table` (ordinary when there is none).
    async fn stored_kind(&self, table: Table, key: &str) -> AdminResult<TargetKind> {
        Ok(match table {
            Table::Clients => match self.store.get_client(key).await? {
                Some(c) => self.client_kind(&c),
                None => TargetKind::Ordinary,
            },
            Table::Apis => match self.store.get_api(key).await? {
                Some(a) => self.api_kind(&a.identifier, &a.scopes),
                None => TargetKind::Ordinary,
            },
            Table::Scopes => scope_kind(key),
            Table::Schemes => self.scheme_kind(key, &self.store.list_clients().await?),
            Table::Idps => {
                self.idp_kind(key, &self.store.list_clients().await?)
                    .await?
            }
            _ => TargetKind::Protected,
        })
    }

    fn record_kind(&self, r: &Record) -> TargetKind {
        match r {
            Record::Client(c) => self.client_kind(c),
            Record::Api(a) => self.api_kind(&a.identifier, &a.scopes),
            Record::Scope(s) => scope_kind(&s.name),
            // What a scheme or provider protects is judged before the change (the scheme that
            // names it, the protected application that uses the scheme): making one protected
            // means changing those.
            Record::Scheme(_) | Record::Idp(_) => TargetKind::Ordinary,
            _ => TargetKind::Protected,
        }
    }

    /// Applies a plan: the configuration in one transaction, then the users; a plan with nothing
    /// to change writes nothing. Either part fails, writing nothing of itself, if what it was
    /// planned from changed meanwhile: plan again.
    pub async fn apply_plan(&self, plan: &Plan) -> AdminResult<()> {
        let _one_at_a_time = self.subject_writes.lock().await;
        self.may_apply(plan).await?;
        let again = |e| match e {
            AdminError::Raced => AdminError::Conflict(
                "the configuration changed since this plan was made; plan and apply again".into(),
            ),
            other => other,
        };
        if !plan.changes.is_empty() {
            self.commit_as(plan.version, &plan.changes, None, Value::Null)
                .await
                .map_err(again)?;
            tracing::info!(
                changes = plan.changes.len(),
                "declarative configuration applied"
            );
        }
        let mut signed_out = Vec::new();
        for (create, u) in &plan.users {
            let action = if *create {
                self.store.insert_user(u).await?;
                "user.created"
            } else {
                let before = self.store.get_user(&u.id).await?;
                self.store
                    .update_user(u)
                    .await
                    .map_err(|e| again(e.into()))?;
                if before.is_some_and(|b| b.sign_out_epoch != u.sign_out_epoch) {
                    signed_out.push(u);
                }
                "user.updated"
            };
            self.audit(action, &format!("user:{}", u.id), None, Value::Null)
                .await;
        }
        // As for the same changes made one by one: the records of what the new epoch ended are
        // revoked and applications told.
        for u in signed_out {
            self.sign_out_everywhere(u).await?;
        }
        Ok(())
    }
}
