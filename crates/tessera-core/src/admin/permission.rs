//! Who may do what in administration: the one model. Every administrative operation has a need
//! for an ordinary target; the target's kind may raise it: the admin API itself, its scopes, its
//! applications, imported signing keys, the administrators' group and users who are
//! administrators are [`TargetKind::Protected`] (changing them needs `administrator`), an
//! application that may assert users' identities needs a power over users, and a user acting on
//! their own account needs only `users:self`. [`required`] is the rule; the use-cases of
//! [`super::Admin`] call it for the targets they touch; the OpenAPI document and
//! `docs/security.md` are rendered from it.

use serde::Serialize;

/// The admin API's scopes (seed 000's API scopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "&'static str")]
pub enum AdminScope {
    Administrator,
    ConfigRead,
    ConfigWrite,
    UsersRead,
    UsersWrite,
    UsersSelf,
    Consents,
}

impl AdminScope {
    pub const ALL: [AdminScope; 7] = [
        AdminScope::Administrator,
        AdminScope::ConfigRead,
        AdminScope::ConfigWrite,
        AdminScope::UsersRead,
        AdminScope::UsersWrite,
        AdminScope::UsersSelf,
        AdminScope::Consents,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AdminScope::Administrator => "administrator",
            AdminScope::ConfigRead => "config:read",
            AdminScope::ConfigWrite => "config:write",
            AdminScope::UsersRead => "users:read",
            AdminScope::UsersWrite => "users:write",
            AdminScope::UsersSelf => "users:self",
            AdminScope::Consents => "consents",
        }
    }

    /// By its scope name, exactly (scope names are case-sensitive, RFC 6749 §3.3).
    pub fn parse(name: &str) -> Option<AdminScope> {
        AdminScope::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The display name and description the scope is created with.
    pub fn describe(self) -> (&'static str, &'static str) {
        match self {
            AdminScope::Administrator => (
                "Administrator",
                "Everything the admin API offers, the audit log included",
            ),
            AdminScope::ConfigRead => (
                "Read configuration",
                "Read applications, APIs, scopes, signing keys and settings",
            ),
            AdminScope::ConfigWrite => (
                "Change configuration",
                "Create, change and delete applications, APIs, scopes and signing keys",
            ),
            AdminScope::UsersRead => ("Read users", "Read users and groups"),
            AdminScope::UsersWrite => (
                "Manage users",
                "Create, change, block and delete users and set their passwords",
            ),
            AdminScope::UsersSelf => ("Your own profile", "Read and change your own profile"),
            AdminScope::Consents => (
                "Consents",
                "List and revoke the consents users gave applications",
            ),
        }
    }
}

impl From<AdminScope> for &'static str {
    fn from(s: AdminScope) -> &'static str {
        s.name()
    }
}

use AdminScope as S;

/// What an operation needs: any one of its alternatives, each a set of scopes held together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    ConfigRead,
    ConfigWrite,
    UsersRead,
    UsersWrite,
    /// The caller's own user: `users:self` will do.
    OwnRead,
    OwnWrite,
    Consents,
    /// The caller's own consents, or anyone's with `consents`.
    OwnConsents,
    Audit,
    Administrator,
    /// A power over users' identities given to an application (asserting users, impersonation):
    /// `administrator`, or `config:write` together with `users:write`.
    UserPower,
}

impl Need {
    /// The alternatives: the caller must hold every scope of at least one of them.
    pub fn alternatives(self) -> &'static [&'static [AdminScope]] {
        match self {
            Need::ConfigRead => &[&[S::Administrator], &[S::ConfigRead], &[S::ConfigWrite]],
            Need::ConfigWrite => &[&[S::Administrator], &[S::ConfigWrite]],
            Need::UsersRead => &[&[S::Administrator], &[S::UsersRead], &[S::UsersWrite]],
            Need::UsersWrite => &[&[S::Administrator], &[S::UsersWrite]],
            Need::OwnRead => &[
                &[S::Administrator],
                &[S::UsersRead],
                &[S::UsersWrite],
                &[S::UsersSelf],
            ],
            Need::OwnWrite => &[&[S::Administrator], &[S::UsersWrite], &[S::UsersSelf]],
            Need::Consents => &[&[S::Administrator], &[S::Consents]],
            Need::OwnConsents => &[&[S::Administrator], &[S::Consents], &[S::UsersSelf]],
            Need::Audit | Need::Administrator => &[&[S::Administrator]],
            Need::UserPower => &[&[S::Administrator], &[S::ConfigWrite, S::UsersWrite]],
        }
    }

    /// Whether scopes `held` satisfy the need.
    pub fn met_by(self, held: impl Fn(AdminScope) -> bool) -> bool {
        self.alternatives()
            .iter()
            .any(|all| all.iter().all(|s| held(*s)))
    }

    /// Every scope that takes part in some alternative (the `scope` of an `insufficient_scope`
    /// challenge, RFC 6750 §3).
    pub fn scopes(self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = Vec::new();
        for s in self.alternatives().iter().flat_map(|a| a.iter()) {
            if !v.contains(&s.name()) {
                v.push(s.name());
            }
        }
        v
    }

    /// In words: `administrator or config:write`, `administrator or config:write with users:write`.
    pub fn describe(self) -> String {
        self.alternatives()
            .iter()
            .map(|all| {
                all.iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(" with ")
            })
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

/// What an operation acts on, as far as who may act is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetKind {
    /// Anything not listed below.
    Ordinary,
    /// The caller's own user.
    Own,
    /// An application that may assert users' identities: the JWT bearer grant with user
    /// subjects, or token exchange with impersonation.
    AssertsUsers,
    /// What could make its holder an administrator: the admin API, its scopes, its
    /// applications (and an application that may introspect any token), imported signing keys,
    /// the `tessera-admins` group and its members.
    Protected,
}

impl TargetKind {
    pub const ALL: [TargetKind; 4] = [
        TargetKind::Ordinary,
        TargetKind::Own,
        TargetKind::AssertsUsers,
        TargetKind::Protected,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            TargetKind::Ordinary => "ordinary",
            TargetKind::Own => "the caller's own user",
            TargetKind::AssertsUsers => "an application that asserts users",
            TargetKind::Protected => "administrators, the admin API and its applications",
        }
    }
}

/// Every administrative operation, as the admin API, the Admin Portal and the CLI offer them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    ListApplications,
    ReadApplication,
    CreateApplication,
    ChangeApplication,
    DeleteApplication,
    EnableApplication,
    DisableApplication,
    RotateSecret,
    SetLogo,
    RemoveLogo,
    ListApplicationConsents,
    RevokeApplicationConsents,
    ListApis,
    ReadApi,
    CreateApi,
    ReplaceApi,
    DeleteApi,
    ListScopes,
    ReadScope,
    CreateScope,
    ReplaceScope,
    DeleteScope,
    ListKeys,
    ReadKey,
    GenerateKey,
    ImportKey,
    ScheduleKey,
    RetireKey,
    ReadSettings,
    ChangeSettings,
    ListUsers,
    ReadUser,
    CreateUser,
    ChangeUser,
    DeleteUser,
    SetPassword,
    BlockUser,
    UnblockUser,
    ListUserConsents,
    RevokeConsent,
    ListSessions,
    EndSession,
    ListGrants,
    RevokeGrant,
    ListGroups,
    ReadGroup,
    AddMember,
    RemoveMember,
    ReadAudit,
    ListSchemes,
    ReadScheme,
    CreateScheme,
    ReplaceScheme,
    DeleteScheme,
    ListFactors,
    RemoveFactor,
    RequireEnrolment,
    ListIdps,
    ReadIdp,
    CreateIdp,
    ReplaceIdp,
    DeleteIdp,
    ListIdentities,
    /// A user's CIBA requests waiting for a decision.
    ListBackchannelRequests,
    /// An initial access token for dynamic client registration (RFC 7591).
    CreateInitialToken,
    UnlinkIdentity,
    /// The counts of sign-ins, tokens and throttled requests (the Portal's dashboard).
    ReadUsage,
}

use Operation as O;
use TargetKind as K;

impl Operation {
    pub const ALL: [Operation; 67] = [
        O::ListApplications,
        O::ReadApplication,
        O::CreateApplication,
        O::ChangeApplication,
        O::DeleteApplication,
        O::EnableApplication,
        O::DisableApplication,
        O::RotateSecret,
        O::SetLogo,
        O::RemoveLogo,
        O::ListApplicationConsents,
        O::RevokeApplicationConsents,
        O::ListApis,
        O::ReadApi,
        O::CreateApi,
        O::ReplaceApi,
        O::DeleteApi,
        O::ListScopes,
        O::ReadScope,
        O::CreateScope,
        O::ReplaceScope,
        O::DeleteScope,
        O::ListKeys,
        O::ReadKey,
        O::GenerateKey,
        O::ImportKey,
        O::ScheduleKey,
        O::RetireKey,
        O::ReadSettings,
        O::ChangeSettings,
        O::ListUsers,
        O::ReadUser,
        O::CreateUser,
        O::ChangeUser,
        O::DeleteUser,
        O::SetPassword,
        O::BlockUser,
        O::UnblockUser,
        O::ListUserConsents,
        O::RevokeConsent,
        O::ListSessions,
        O::EndSession,
        O::ListGrants,
        O::RevokeGrant,
        O::ListGroups,
        O::ReadGroup,
        O::AddMember,
        O::RemoveMember,
        O::ReadAudit,
        O::ListSchemes,
        O::ReadScheme,
        O::CreateScheme,
        O::ReplaceScheme,
        O::DeleteScheme,
        O::ListFactors,
        O::RemoveFactor,
        O::RequireEnrolment,
        O::ListIdps,
        O::ReadIdp,
        O::CreateIdp,
        O::ReplaceIdp,
        O::DeleteIdp,
        O::ListIdentities,
        O::UnlinkIdentity,
        O::ListBackchannelRequests,
        O::CreateInitialToken,
        O::ReadUsage,
    ];

    /// A stable name: the audit log's and the documentation's.
    pub fn name(self) -> &'static str {
        match self {
            O::ListApplications => "applications.list",
            O::ReadApplication => "application.read",
            O::CreateApplication => "application.create",
            O::ChangeApplication => "application.change",
            O::DeleteApplication => "application.delete",
            O::EnableApplication => "application.enable",
            O::DisableApplication => "application.disable",
            O::RotateSecret => "application.rotate_secret",
            O::SetLogo => "application.set_logo",
            O::RemoveLogo => "application.remove_logo",
            O::ListApplicationConsents => "application.consents.list",
            O::RevokeApplicationConsents => "application.consents.revoke",
            O::ListApis => "apis.list",
            O::ReadApi => "api.read",
            O::CreateApi => "api.create",
            O::ReplaceApi => "api.replace",
            O::DeleteApi => "api.delete",
            O::ListScopes => "scopes.list",
            O::ReadScope => "scope.read",
            O::CreateScope => "scope.create",
            O::ReplaceScope => "scope.replace",
            O::DeleteScope => "scope.delete",
            O::ListKeys => "keys.list",
            O::ReadKey => "key.read",
            O::GenerateKey => "key.generate",
            O::ImportKey => "key.import",
            O::ScheduleKey => "key.schedule",
            O::RetireKey => "key.retire",
            O::ReadSettings => "settings.read",
            O::ChangeSettings => "settings.change",
            O::ListUsers => "users.list",
            O::ReadUser => "user.read",
            O::CreateUser => "user.create",
            O::ChangeUser => "user.change",
            O::DeleteUser => "user.delete",
            O::SetPassword => "user.set_password",
            O::BlockUser => "user.block",
            O::UnblockUser => "user.unblock",
            O::ListUserConsents => "user.consents.list",
            O::RevokeConsent => "user.consent.revoke",
            O::ListSessions => "user.sessions.list",
            O::EndSession => "user.session.end",
            O::ListGrants => "user.grants.list",
            O::RevokeGrant => "user.grant.revoke",
            O::ListGroups => "groups.list",
            O::ReadGroup => "group.read",
            O::AddMember => "group.add_member",
            O::RemoveMember => "group.remove_member",
            O::ReadAudit => "audit.read",
            O::ListSchemes => "schemes.list",
            O::ReadScheme => "scheme.read",
            O::CreateScheme => "scheme.create",
            O::ReplaceScheme => "scheme.replace",
            O::DeleteScheme => "scheme.delete",
            O::ListFactors => "user.factors.list",
            O::RemoveFactor => "user.factor.remove",
            O::RequireEnrolment => "user.require_enrolment",
            O::ListIdps => "idps.list",
            O::ReadIdp => "idp.read",
            O::CreateIdp => "idp.create",
            O::ReplaceIdp => "idp.replace",
            O::DeleteIdp => "idp.delete",
            O::ListIdentities => "user.identities.list",
            O::UnlinkIdentity => "user.identity.unlink",
            O::ListBackchannelRequests => "user.backchannel_requests.list",
            O::ReadUsage => "usage.read",
            O::CreateInitialToken => "registration.initial_token.create",
        }
    }

    /// Whether it changes anything.
    pub fn writes(self) -> bool {
        !matches!(
            self,
            O::ListApplications
                | O::ReadApplication
                | O::ListApplicationConsents
                | O::ListApis
                | O::ReadApi
                | O::ListScopes
                | O::ReadScope
                | O::ListKeys
                | O::ReadKey
                | O::ReadSettings
                | O::ListUsers
                | O::ReadUser
                | O::ListUserConsents
                | O::ListSessions
                | O::ListGrants
                | O::ListGroups
                | O::ReadGroup
                | O::ReadAudit
                | O::ListSchemes
                | O::ReadScheme
                | O::ListFactors
                | O::ListIdps
                | O::ReadIdp
                | O::ListIdentities
                | O::ListBackchannelRequests
                | O::ReadUsage
        )
    }

    /// The need on an ordinary target.
    pub fn need(self) -> Need {
        match self {
            O::ListApplications
            | O::ReadApplication
            | O::ListApis
            | O::ReadApi
            | O::ListScopes
            | O::ReadScope
            | O::ListKeys
            | O::ReadKey
            | O::ReadSettings
            | O::ListSchemes
            | O::ReadScheme
            | O::ListIdps
            | O::ReadIdp
            | O::ReadUsage => Need::ConfigRead,
            // An identity provider asserts who users are: it creates them and links to them.
            O::CreateIdp | O::ReplaceIdp | O::DeleteIdp => Need::UserPower,
            O::CreateApplication
            | O::ChangeApplication
            | O::DeleteApplication
            | O::EnableApplication
            | O::DisableApplication
            | O::RotateSecret
            | O::SetLogo
            | O::RemoveLogo
            | O::CreateApi
            | O::ReplaceApi
            | O::DeleteApi
            | O::CreateScope
            | O::ReplaceScope
            | O::DeleteScope
            | O::GenerateKey
            | O::ScheduleKey
            | O::RetireKey
            | O::ChangeSettings
            | O::CreateScheme
            | O::ReplaceScheme
            | O::DeleteScheme
            | O::CreateInitialToken => Need::ConfigWrite,
            O::ListApplicationConsents | O::RevokeApplicationConsents => Need::Consents,
            // Whoever knows an imported key's private part can sign any token.
            O::ImportKey => Need::Administrator,
            O::ListUsers
            | O::ReadUser
            | O::ListSessions
            | O::ListGrants
            | O::ListGroups
            | O::ReadGroup
            | O::ListFactors
            | O::ListIdentities
            | O::ListBackchannelRequests => Need::UsersRead,
            O::CreateUser
            | O::ChangeUser
            | O::DeleteUser
            | O::SetPassword
            | O::BlockUser
            | O::UnblockUser
            | O::EndSession
            | O::RevokeGrant
            | O::AddMember
            | O::RemoveMember
            | O::RemoveFactor
            | O::RequireEnrolment
            | O::UnlinkIdentity => Need::UsersWrite,
            O::ListUserConsents | O::RevokeConsent => Need::Consents,
            O::ReadAudit => Need::Audit,
        }
    }

    /// The kinds of target the operation can meet (the others do not apply to it).
    pub fn targets(self) -> &'static [TargetKind] {
        match self {
            O::CreateApplication
            | O::ChangeApplication
            | O::ReadApplication
            | O::DeleteApplication
            | O::EnableApplication
            | O::DisableApplication
            | O::RotateSecret
            | O::SetLogo
            | O::RemoveLogo => &[K::Ordinary, K::AssertsUsers, K::Protected],
            O::CreateApi
            | O::ReplaceApi
            | O::DeleteApi
            | O::ReadApi
            | O::CreateScope
            | O::ReplaceScope
            | O::DeleteScope
            | O::ReadScope => &[K::Ordinary, K::Protected],
            O::ReadUser
            | O::ChangeUser
            | O::SetPassword
            | O::ListUserConsents
            | O::RevokeConsent
            | O::ListSessions
            | O::EndSession
            | O::ListGrants
            | O::RevokeGrant
            | O::ListFactors
            | O::ListIdentities
            | O::ListBackchannelRequests
            | O::UnlinkIdentity => &[K::Ordinary, K::Own, K::Protected],
            O::RevokeApplicationConsents
            | O::CreateUser
            | O::DeleteUser
            | O::BlockUser
            | O::UnblockUser
            | O::AddMember
            | O::RemoveMember
            | O::ReadGroup
            | O::ReplaceScheme
            | O::DeleteScheme
            | O::RemoveFactor
            | O::RequireEnrolment
            | O::ReplaceIdp
            | O::DeleteIdp => &[K::Ordinary, K::Protected],
            _ => &[K::Ordinary],
        }
    }
}

/// THE rule: what `op` needs on a target of `kind`. Reads need what they need whatever the
/// target; a change to a protected target needs `administrator`; a change to an application that
/// asserts users needs a power over users; one's own user needs `users:self` (the use-case then
/// limits what `users:self` alone may change: profile claims, and the password only with the
/// current one).
pub fn required(op: Operation, kind: TargetKind) -> Need {
    match kind {
        K::Ordinary => op.need(),
        K::Protected if op.writes() => Need::Administrator,
        K::Protected => op.need(),
        K::AssertsUsers if op.writes() => Need::UserPower,
        K::AssertsUsers => op.need(),
        K::Own => match op {
            O::ListUserConsents | O::RevokeConsent => Need::OwnConsents,
            _ if op.writes() => Need::OwnWrite,
            _ => Need::OwnRead,
        },
    }
}

/// The model as a Markdown table: an operation a row, a target kind a column, the scopes that
/// allow it in each cell (`docs/security.md` holds this table; a test keeps them equal).
pub fn markdown_table() -> String {
    let mut out = String::from("| operation |");
    for k in TargetKind::ALL {
        out.push_str(&format!(" {} |", k.describe()));
    }
    out.push_str("\n|---|");
    for _ in TargetKind::ALL {
        out.push_str("---|");
    }
    out.push('\n');
    for op in Operation::ALL {
        out.push_str(&format!("| `{}` |", op.name()));
        for k in TargetKind::ALL {
            let cell = if op.targets().contains(&k) {
                required(op, k).describe()
            } else {
                "—".to_owned()
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(held: &[AdminScope], op: Operation, kind: TargetKind) -> bool {
        required(op, kind).met_by(|s| held.contains(&s))
    }

    /// The review's findings, as the model answers them.
    #[test]
    fn a_lesser_scope_never_reaches_a_greater_one() {
        let users_write = [S::UsersWrite];
        for op in [
            O::SetPassword,
            O::BlockUser,
            O::ChangeUser,
            O::DeleteUser,
            O::AddMember,
            O::RemoveMember,
            O::EndSession,
            O::RevokeGrant,
            O::RemoveFactor,
            O::RequireEnrolment,
        ] {
            assert!(
                allows(&users_write, op, K::Ordinary),
                "{op:?} on an ordinary user"
            );
            assert!(
                !allows(&users_write, op, K::Protected),
                "{op:?} on an administrator"
            );
            assert!(allows(&[S::Administrator], op, K::Protected));
        }
        for op in [
            O::CreateApplication,
            O::ChangeApplication,
            O::RotateSecret,
            O::EnableApplication,
        ] {
            assert!(!allows(&[S::ConfigWrite], op, K::AssertsUsers), "{op:?}");
            assert!(allows(
                &[S::ConfigWrite, S::UsersWrite],
                op,
                K::AssertsUsers
            ));
            assert!(!allows(&[S::ConfigWrite, S::UsersWrite], op, K::Protected));
        }
        assert!(!allows(&[S::ConfigWrite], O::ImportKey, K::Ordinary));
        // An identity provider asserts users: configuration scopes alone cannot add one.
        for op in [O::CreateIdp, O::ReplaceIdp, O::DeleteIdp] {
            assert!(!allows(&[S::ConfigWrite], op, K::Ordinary), "{op:?}");
            assert!(!allows(&[S::UsersWrite], op, K::Ordinary), "{op:?}");
            assert!(allows(&[S::ConfigWrite, S::UsersWrite], op, K::Ordinary));
        }
        assert!(!allows(
            &[S::ConfigWrite, S::UsersWrite],
            O::ReplaceIdp,
            K::Protected
        ));
        assert!(allows(&[S::UsersSelf], O::UnlinkIdentity, K::Own));
        assert!(!allows(&[S::UsersSelf], O::UnlinkIdentity, K::Ordinary));
        assert!(allows(&[S::UsersSelf], O::SetPassword, K::Own));
        assert!(!allows(&[S::UsersSelf], O::SetPassword, K::Ordinary));
        assert!(!allows(&[S::UsersSelf], O::DeleteUser, K::Ordinary));
        assert!(!allows(&[S::ConfigRead], O::ReadAudit, K::Ordinary));
        // Reading is not changing: users:read reads administrators too.
        assert!(allows(&[S::UsersRead], O::ReadUser, K::Protected));
    }

    /// `docs/security.md` holds the table this model renders, between two markers.
    #[test]
    fn the_documented_table_is_the_model() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/security.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let (begin, end) = ("<!-- permissions: begin -->\n", "<!-- permissions: end -->");
        let start = doc.find(begin).unwrap() + begin.len();
        let stop = doc.find(end).unwrap();
        assert_eq!(
            &doc[start..stop],
            markdown_table(),
            "docs/security.md must hold the table the model renders (between the markers)"
        );
    }

    #[test]
    fn every_operation_has_an_ordinary_rule_and_a_name_of_its_own() {
        let mut names = std::collections::HashSet::new();
        for op in Operation::ALL {
            assert!(names.insert(op.name()), "{op:?}");
            assert!(op.targets().contains(&K::Ordinary), "{op:?}");
        }
        assert!(markdown_table().contains("`user.set_password`"));
    }
}
