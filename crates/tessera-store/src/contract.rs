//! The one contract suite of `Store`: every backend runs it (SQLite in memory and on disk,
//! PostgreSQL when `TEST_DATABASE_URL` is set).

// Test support: a failed expectation is the test failing.
#![allow(clippy::expect_used)]

use serde_json::json;
use tessera_core::audit::{AuditEvent, AuditQuery};
use tessera_core::federation::{
    IdentityProvider, IdpProtocol, LinkedIdentity, Mapping, UpstreamAuth,
};
use tessera_core::model::{
    Alg, Api, Artifact, ArtifactKey, ArtifactKind, AuthMethod, Client, ClientType, Consent,
    GrantType, KeyRecord, LifetimeOverrides, Logo, Scope, StoredSettings, TokenFormat, User,
};
use tessera_core::store::{Change, Consume, Consumed, Record, Store, StoreError, Table};
use tessera_core::usage::UsageCount;
use tessera_core::Timestamp;

const T0: Timestamp = Timestamp(1_700_000_000);

pub fn client(id: &str) -> Client {
    Client {
        client_id: id.into(),
        name: format!("client {id}"),
        description: String::new(),
        client_type: ClientType::M2m,
        enabled: true,
        grant_types: vec![GrantType::ClientCredentials],
        auth_method: AuthMethod::ClientSecretBasic,
        scopes: vec!["read".into()],
        apis: vec![],
        token_format: TokenFormat::Jwt,
        signing_alg: tessera_core::model::JwsAlg::Key(Alg::ES256),
        access_token_ttl: 900,
        introspection_allowed: true,
        introspect_any_token: false,
        refresh_grace_secs: 0,
        oauth_policy: Default::default(),
        profile: None,
        signing_kid: None,
        dpop_bound_access_tokens: false,
        secret_ciphertext: Some("ct".into()),
        browser: Default::default(),
        federation: Default::default(),
        protection: Default::default(),
        mtls: Default::default(),
        backchannel: Default::default(),
        logo: None,
        created_at: T0,
        updated_at: T0,
    }
}

fn scope(name: &str) -> Scope {
    Scope {
        name: name.into(),
        display_name: name.into(),
        description: String::new(),
        default: false,
        discoverable: true,
        claims: Default::default(),
        created_at: T0,
        updated_at: T0,
    }
}

fn artifact(n: u8, expires_at: i64) -> Artifact {
    Artifact {
        key: ArtifactKey([n; 40]),
        kind: ArtifactKind::AccessToken,
        client_id: "c1".into(),
        grant_id: Some(format!("g{n}")),
        user_id: None,
        expires_at: Timestamp(expires_at),
        revoked_at: None,
        consumed_at: None,
        payload: json!({"sub": "c1", "n": n}),
    }
}

/// Runs every check against `store`, which must be empty.
pub async fn run(store: &dyn Store) {
    store.ping().await.expect("ping");
    records(store).await;
    atomicity(store).await;
    optimistic_concurrency(store).await;
    artifacts(store).await;
    concurrent_inserts(store).await;
    single_use_and_grants(store).await;
    rotations(store).await;
    rotations_together(store).await;
    user_artifacts(store).await;
    stored_settings(store).await;
    logos(store).await;
    users_and_consents(store).await;
    linked_identities(store).await;
    failure_counters(store).await;
    leases(store).await;
    audit_events(store).await;
    usage_counts(store).await;
    inserts_together(store).await;
    artifacts_with_grants(store).await;
}

/// Artifacts stored together, in one write: each whose key is free; a key already taken
/// answers a conflict and is left as it was, and the others are stored all the same.
async fn inserts_together(store: &dyn Store) {
    let far = T0.plus(10_000).0;
    let all = [artifact(250, far), artifact(251, far), artifact(252, far)];
    store.insert_artifacts(&all).await.expect("insert");
    for a in &all {
        assert_eq!(
            store.get_artifact(&a.key).await.expect("get").as_ref(),
            Some(a)
        );
    }
    let again = [artifact(253, far), artifact(251, far + 1)];
    assert!(matches!(
        store.insert_artifacts(&again).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .get_artifact(&again[0].key)
            .await
            .expect("get")
            .as_ref(),
        Some(&again[0])
    );
    assert_eq!(
        store.get_artifact(&all[1].key).await.expect("get").as_ref(),
        Some(&all[1]),
        "the taken key keeps its artifact"
    );
    store.insert_artifacts(&[]).await.expect("nothing to store");
}

/// Usage counts add up per (minute, metric, application), are read per application or all, and
/// old minutes go.
async fn usage_counts(store: &dyn Store) {
    let count = |minute: i64, metric: &str, client: &str, n: i64| UsageCount {
        minute,
        metric: metric.into(),
        client_id: client.into(),
        count: n,
    };
    let first = [
        count(60, "sign_in.succeeded", "web", 2),
        count(120, "token.client_credentials", "m2m", 5),
        count(120, "throttled", "", 1),
    ];
    store.add_usage(&first, 0).await.expect("add");
    // Another node's counts for the same minutes add to them.
    store
        .add_usage(&[count(60, "sign_in.succeeded", "web", 3)], 0)
        .await
        .expect("add");
    let all = store.usage_since(0, None).await.expect("read");
    assert_eq!(all.len(), 3);
    assert_eq!(all[0], count(60, "sign_in.succeeded", "web", 5));
    let web = store.usage_since(0, Some("web")).await.expect("read");
    assert_eq!(web, vec![count(60, "sign_in.succeeded", "web", 5)]);
    assert_eq!(store.usage_since(100, None).await.expect("read").len(), 2);
    // Minutes before the cut are deleted with the next addition.
    store
        .add_usage(&[count(180, "throttled", "", 1)], 120)
        .await
        .expect("add");
    let kept = store.usage_since(0, None).await.expect("read");
    assert!(kept.iter().all(|c| c.minute >= 120), "{kept:?}");
}

/// A user's sessions and grants are found by user, oldest first, revoked and expired ones too.
async fn user_artifacts(store: &dyn Store) {
    let owned = |n: u8, kind: ArtifactKind, user: &str| Artifact {
        kind,
        user_id: Some(user.into()),
        ..artifact(n, T0.plus(100).0)
    };
    let mine = [
        owned(220, ArtifactKind::Session, "u-ann"),
        owned(221, ArtifactKind::Grant, "u-ann"),
        owned(223, ArtifactKind::Grant, "u-ann"),
    ];
    for a in &mine {
        store.insert_artifact(a).await.expect("insert");
    }
    store
        .insert_artifact(&owned(222, ArtifactKind::Grant, "u-bob"))
        .await
        .expect("insert");
    store
        .revoke_artifact(&mine[2].key, T0)
        .await
        .expect("revoke");
    let found = store.user_artifacts("u-ann").await.expect("user artifacts");
    assert_eq!(
        found.iter().map(|a| a.key).collect::<Vec<_>>(),
        mine.iter().map(|a| a.key).collect::<Vec<_>>()
    );
    assert_eq!(found[0], mine[0], "stored as inserted");
    assert_eq!(found[2].revoked_at, Some(T0));
    assert!(store
        .user_artifacts("u-nobody")
        .await
        .expect("none")
        .is_empty());
}

/// An artifact read with its grant and the grant's user, as they stand: the grant found among
/// the other artifacts under its id; none for an artifact without a grant, a grant that is
/// gone or a user that is.
async fn artifacts_with_grants(store: &dyn Store) {
    let owner = user("u-gw", "grant-owner");
    store.insert_user(&owner).await.expect("insert user");
    let under = |n: u8, kind: ArtifactKind, grant: Option<&str>| Artifact {
        kind,
        grant_id: grant.map(str::to_owned),
        ..artifact(n, T0.plus(100).0)
    };
    let grant = Artifact {
        user_id: Some("u-gw".into()),
        ..under(201, ArtifactKind::Grant, Some("gw1"))
    };
    let rotated = under(200, ArtifactKind::RefreshToken, Some("gw1"));
    let token = under(202, ArtifactKind::RefreshToken, Some("gw1"));
    let orphan = under(203, ArtifactKind::RefreshToken, Some("gw-none"));
    let loose = under(204, ArtifactKind::AccessToken, None);
    let gone_user = Artifact {
        user_id: Some("u-gone".into()),
        ..under(205, ArtifactKind::Grant, Some("gw2"))
    };
    let of_gone = under(206, ArtifactKind::RefreshToken, Some("gw2"));
    for a in [
        &rotated, &grant, &token, &orphan, &loose, &gone_user, &of_gone,
    ] {
        store.insert_artifact(a).await.expect("insert");
    }
    let read = |a: &Artifact| {
        let key = a.key;
        async move {
            store
                .get_artifact_with_grant(&key)
                .await
                .expect("read")
                .expect("found")
        }
    };
    let r = read(&token).await;
    assert_eq!(r.artifact, token);
    assert_eq!(r.grant.as_ref(), Some(&grant));
    assert_eq!(r.user.as_ref(), Some(&owner));
    assert_eq!(
        read(&grant).await.grant.as_ref(),
        Some(&grant),
        "a grant is its own"
    );
    for a in [&orphan, &loose] {
        let r = read(a).await;
        assert_eq!((&r.artifact, r.grant, r.user), (a, None, None));
    }
    let r = read(&of_gone).await;
    assert_eq!((r.grant.as_ref(), r.user), (Some(&gone_user), None));
    assert_eq!(
        store
            .get_artifact_with_grant(&ArtifactKey([209; 40]))
            .await
            .expect("read"),
        None
    );
    // As stored now: the grant revoked, the user blocked.
    store.revoke_artifact(&grant.key, T0).await.expect("revoke");
    let blocked = User {
        blocked: true,
        ..owner.clone()
    };
    store.update_user(&blocked).await.expect("block");
    let r = read(&token).await;
    assert_eq!(r.grant.and_then(|g| g.revoked_at), Some(T0));
    assert!(r.user.expect("user").blocked);
    store.delete_user("u-gw").await.expect("delete user");
}

/// The runtime settings are one configuration record: absent, created, updated.
async fn stored_settings(store: &dyn Store) {
    assert_eq!(store.get_settings().await.expect("get"), None);
    let mut settings = StoredSettings {
        lifetimes: LifetimeOverrides {
            access_token: Some(600),
            ..LifetimeOverrides::default()
        },
        updated_at: T0,
    };
    let v = store.config_version().await.expect("version");
    store
        .apply_at(v, &[Change::Create(Record::Settings(settings.clone()))])
        .await
        .expect("create");
    assert_eq!(
        store.get_settings().await.expect("get"),
        Some(settings.clone())
    );
    settings.lifetimes.id_token = Some(120);
    assert!(matches!(
        store
            .apply_at(v, &[Change::Update(Record::Settings(settings.clone()))])
            .await,
        Err(StoreError::Stale)
    ));
    store
        .apply(&[Change::Update(Record::Settings(settings.clone()))])
        .await
        .expect("update");
    assert_eq!(store.get_settings().await.expect("get"), Some(settings));
}

/// A logo is written with its client's change and deleted with the client.
async fn logos(store: &dyn Store) {
    let logo = Logo {
        client_id: "with-logo".into(),
        content_type: "image/png".into(),
        data: "iVBORw0".into(),
        updated_at: T0,
    };
    store
        .apply(&[
            Change::Create(Record::Client(client("with-logo"))),
            Change::Create(Record::Logo(logo.clone())),
        ])
        .await
        .expect("client and logo");
    assert_eq!(
        store.get_logo("with-logo").await.expect("get"),
        Some(logo.clone())
    );
    assert!(
        store
            .apply(&[Change::Create(Record::Logo(Logo {
                client_id: "no-such-client".into(),
                ..logo
            }))])
            .await
            .is_err(),
        "a logo belongs to a client"
    );
    store
        .apply(&[Change::Delete(Table::Clients, "with-logo".into())])
        .await
        .expect("delete");
    assert_eq!(store.get_logo("with-logo").await.expect("get"), None);
}

/// Audit events come back newest first, filtered and paged by id; expired ones are purged.
async fn audit_events(store: &dyn Store) {
    let event = |n: i64, actor: &str, action: &str, client: Option<&str>| AuditEvent {
        id: 0,
        at: T0.plus(n),
        actor: actor.into(),
        action: action.into(),
        target: format!("t{n}"),
        client_id: client.map(str::to_owned),
        detail: json!({"n": n}),
    };
    let all = [
        event(0, "cli", "client.created", Some("c1")),
        event(1, "user:a", "client.updated", Some("c1")),
        event(2, "user:a", "user.blocked", None),
        event(3, "system", "key.rotated", None),
        event(4, "user:b", "client.secret_rotated", Some("c2")),
    ];
    for (i, e) in all.iter().enumerate() {
        // The first two expire early and are purged below.
        let expires = if i < 2 { T0.plus(10) } else { T0.plus(1000) };
        store.record_event(e, expires).await.expect("record");
    }
    let list = |q: AuditQuery| async move {
        store
            .list_events(&AuditQuery { limit: 10, ..q })
            .await
            .expect("list")
            .into_iter()
            .map(|e| e.target)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list(AuditQuery::default()).await,
        ["t4", "t3", "t2", "t1", "t0"]
    );
    let got = store
        .list_events(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(
        got[4],
        AuditEvent {
            id: got[4].id,
            ..all[0].clone()
        }
    );
    assert!(got.windows(2).all(|w| w[0].id > w[1].id));
    let q = |f: fn(&mut AuditQuery)| {
        let mut q = AuditQuery::default();
        f(&mut q);
        q
    };
    assert_eq!(
        list(q(|q| q.actor = Some("user:a".into()))).await,
        ["t2", "t1"]
    );
    assert_eq!(
        list(q(|q| q.action = Some("client.".into()))).await,
        ["t4", "t1", "t0"]
    );
    assert_eq!(
        list(q(|q| q.action = Some("client.updated".into()))).await,
        ["t1"]
    );
    assert_eq!(
        list(q(|q| q.client_id = Some("c1".into()))).await,
        ["t1", "t0"]
    );
    assert_eq!(
        list(q(|q| {
            q.since = Some(T0.plus(1));
            q.until = Some(T0.plus(3));
        }))
        .await,
        ["t3", "t2", "t1"]
    );
    let page = store
        .list_events(&AuditQuery {
            limit: 2,
            ..AuditQuery::default()
        })
        .await
        .expect("page");
    let next = AuditQuery {
        before: Some(page[1].id),
        ..AuditQuery::default()
    };
    assert_eq!(list(next).await, ["t2", "t1", "t0"]);
    assert_eq!(store.purge_events(T0.plus(11), 1).await.expect("purge"), 1);
    assert_eq!(
        store.purge_events(T0.plus(11), 100).await.expect("purge"),
        1
    );
    assert_eq!(list(AuditQuery::default()).await, ["t4", "t3", "t2"]);
}

/// A rotation consumes its token and stores the successor in one write: of many at once one wins
/// and only its successor is stored, beside inserts of the same batch; no successor is stored for
/// a token that is missing, another client's, or consumed before.
async fn rotations(store: &dyn Store) {
    let token = Artifact {
        kind: ArtifactKind::RefreshToken,
        ..artifact(227, 10_000)
    };
    store.insert_artifact(&token).await.expect("insert");
    let which = Consume {
        key: &token.key,
        kind: ArtifactKind::RefreshToken,
        client_id: "c1",
    };
    let successors: Vec<Artifact> = (228..236u8)
        .map(|n| Artifact {
            kind: ArtifactKind::RefreshToken,
            ..artifact(n, 10_000)
        })
        .collect();
    let others: Vec<Artifact> = (236..240u8).map(|n| artifact(n, 10_000)).collect();
    let rotations = successors
        .iter()
        .map(|s| store.rotate_artifact(which, Timestamp(50), None, s));
    let inserts = others.iter().map(|a| store.insert_artifact(a));
    let (rotated, inserted) = futures_util::future::join(
        futures_util::future::join_all(rotations),
        futures_util::future::join_all(inserts),
    )
    .await;
    assert!(inserted.iter().all(Result::is_ok), "{inserted:?}");
    let winners: Vec<usize> = rotated
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, Ok(Consumed::First(_))))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(winners.len(), 1, "{rotated:?}");
    for (i, (r, s)) in rotated.iter().zip(&successors).enumerate() {
        let stored = store.get_artifact(&s.key).await.expect("get");
        if i == winners[0] {
            assert_eq!(stored.as_ref(), Some(s), "the winner's successor is stored");
        } else {
            assert!(matches!(r, Ok(Consumed::Again(a)) if a.consumed_at == Some(Timestamp(50))));
            assert_eq!(stored, None, "a loser's successor is not stored");
        }
    }
    for a in &others {
        assert!(store.get_artifact(&a.key).await.expect("get").is_some());
    }
    let spare = Artifact {
        kind: ArtifactKind::RefreshToken,
        ..artifact(242, 10_000)
    };
    let missing = ArtifactKey([243; 40]);
    for (which, why) in [
        (
            Consume {
                key: &missing,
                ..which
            },
            "a missing token",
        ),
        (
            Consume {
                client_id: "c2",
                ..which
            },
            "another client's token",
        ),
    ] {
        assert_eq!(
            store
                .rotate_artifact(which, Timestamp(60), None, &spare)
                .await
                .expect("rotate"),
            Consumed::Missing,
            "{why}"
        );
        assert_eq!(
            store.get_artifact(&spare.key).await.expect("get"),
            None,
            "{why}"
        );
    }
    // A consume naming the key with another client, in the same batch and ahead of the rightful
    // one, consumes nothing and does not cancel it.
    for n in 245..249u8 {
        let code = artifact(n, 10_000);
        store.insert_artifact(&code).await.expect("insert");
        let right = Consume {
            key: &code.key,
            kind: code.kind,
            client_id: "c1",
        };
        let wrong = Consume {
            client_id: "c2",
            ..right
        };
        let (w, r) = futures_util::future::join(
            store.consume_artifact(wrong, Timestamp(80), None),
            store.consume_artifact(right, Timestamp(80), None),
        )
        .await;
        assert_eq!(w.expect("consume"), Consumed::Missing, "another client's");
        assert!(
            matches!(r, Ok(Consumed::First(_))),
            "the rightful one: {r:?}"
        );
    }
    let next = Artifact {
        kind: ArtifactKind::RefreshToken,
        ..artifact(244, 10_000)
    };
    store.insert_artifact(&next).await.expect("insert");
    let clash = store
        .rotate_artifact(
            Consume {
                key: &next.key,
                ..which
            },
            Timestamp(70),
            None,
            &others[0],
        )
        .await;
    assert!(
        matches!(clash, Err(StoreError::Conflict(_))),
        "a successor whose key exists: {clash:?}"
    );
}

/// Rotations of several tokens at once, nothing else written with them: each token's first
/// rotation consumes it (replacing its payload when asked) and stores its successor; a second
/// rotation of the same token, one of a token consumed before, one of a missing token and one
/// naming another client store nothing, and the last does not cancel the rightful one after it.
async fn rotations_together(store: &dyn Store) {
    let key = |n: u8| {
        let mut k = [0xA5; 40];
        k[0] = n;
        ArtifactKey(k)
    };
    let token = |n: u8| Artifact {
        key: key(n),
        kind: ArtifactKind::RefreshToken,
        ..artifact(n, 10_000)
    };
    let tokens: Vec<Artifact> = (0..6).map(token).collect();
    store.insert_artifacts(&tokens).await.expect("insert");
    let before = Consume {
        key: &tokens[5].key,
        kind: ArtifactKind::RefreshToken,
        client_id: "c1",
    };
    assert!(matches!(
        store.consume_artifact(before, Timestamp(40), None).await,
        Ok(Consumed::First(_))
    ));
    let missing = key(6);
    let successors: Vec<Artifact> = (10..19).map(token).collect();
    let replaced = json!({"rotated": true});
    // (token, client, successor, payload)
    let jobs: Vec<(&ArtifactKey, &str, &Artifact, Option<&serde_json::Value>)> = vec![
        (&tokens[0].key, "c1", &successors[0], Some(&replaced)),
        (&tokens[0].key, "c1", &successors[1], None),
        (&tokens[1].key, "c2", &successors[2], None),
        (&tokens[1].key, "c1", &successors[3], None),
        (&tokens[2].key, "c1", &successors[4], None),
        (&tokens[3].key, "c1", &successors[5], None),
        (&tokens[4].key, "c1", &successors[6], None),
        (&tokens[5].key, "c1", &successors[7], None),
        (&missing, "c1", &successors[8], None),
    ];
    let rotated = futures_util::future::join_all(jobs.iter().map(|(k, c, s, p)| {
        let which = Consume {
            key: k,
            kind: ArtifactKind::RefreshToken,
            client_id: c,
        };
        store.rotate_artifact(which, Timestamp(60), *p, s)
    }))
    .await;
    let first = |i: usize| matches!(&rotated[i], Ok(Consumed::First(a)) if a.key == *jobs[i].0);
    assert!(
        first(0) != first(1),
        "one of two rotations of a token: {rotated:?}"
    );
    assert!((3..7).all(first), "rotations 3 to 6: {rotated:?}");
    assert_eq!(
        rotated[2].as_ref().ok(),
        Some(&Consumed::Missing),
        "another client's"
    );
    assert!(
        matches!(&rotated[7], Ok(Consumed::Again(_))),
        "{:?}",
        rotated[7]
    );
    assert_eq!(
        rotated[8].as_ref().ok(),
        Some(&Consumed::Missing),
        "a missing token"
    );
    for (i, (_, _, s, _)) in jobs.iter().enumerate() {
        let stored = store.get_artifact(&s.key).await.expect("get");
        if i != 2 && first(i) {
            assert_eq!(stored.as_ref(), Some(*s), "rotation {i}'s successor");
        } else {
            assert_eq!(stored, None, "rotation {i} stored a successor");
        }
    }
    let t0 = store.get_artifact(&tokens[0].key).await.expect("get");
    let t0 = t0.expect("token 0");
    assert_eq!(t0.consumed_at, Some(Timestamp(60)));
    let expected = if first(0) {
        &replaced
    } else {
        &tokens[0].payload
    };
    assert_eq!(&t0.payload, expected);
}

/// A code is consumed exactly once even when many try at once; a grant revokes all its artifacts.
async fn single_use_and_grants(store: &dyn Store) {
    let mut code = artifact(240, 10_000);
    code.grant_id = Some("grant-x".into());
    store.insert_artifact(&code).await.expect("insert");
    let mut sibling = artifact(241, 10_000);
    sibling.grant_id = Some("grant-x".into());
    store.insert_artifact(&sibling).await.expect("insert");

    let successor = json!({"next": 1});
    let which = Consume {
        key: &code.key,
        kind: code.kind,
        client_id: "c1",
    };
    let other_client = Consume {
        client_id: "c2",
        ..which
    };
    assert_eq!(
        store
            .consume_artifact(other_client, Timestamp(40), None)
            .await
            .expect("consume"),
        Consumed::Missing,
        "another client cannot use it up"
    );
    let tries = (0..8).map(|_| store.consume_artifact(which, Timestamp(50), Some(&successor)));
    let results = futures_util::future::join_all(tries).await;
    let firsts: Vec<_> = results
        .iter()
        .filter(|r| matches!(r, Ok(Consumed::First(_))))
        .collect();
    assert_eq!(firsts.len(), 1, "{results:?}");
    match &results[0] {
        Ok(Consumed::First(a)) | Ok(Consumed::Again(a)) => assert_eq!(a.key, code.key),
        other => panic!("{other:?}"),
    }
    match store
        .consume_artifact(which, Timestamp(60), None)
        .await
        .expect("consume")
    {
        Consumed::Again(a) => {
            assert_eq!(a.consumed_at, Some(Timestamp(50)));
            assert_eq!(a.payload, successor, "the first consumer's payload is kept");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store
            .consume_artifact(
                Consume {
                    key: &ArtifactKey([250; 40]),
                    ..which
                },
                Timestamp(1),
                None,
            )
            .await
            .expect("consume"),
        Consumed::Missing
    );

    assert_eq!(store.artifacts_of("grant-x").await.expect("of").len(), 2);
    assert_eq!(
        store
            .revoke_grant("grant-x", Timestamp(70))
            .await
            .expect("revoke"),
        2
    );
    assert_eq!(
        store
            .revoke_grant("grant-x", Timestamp(80))
            .await
            .expect("revoke"),
        0
    );
    let s = store
        .get_artifact(&sibling.key)
        .await
        .expect("get")
        .expect("sibling");
    assert_eq!(s.revoked_at, Some(Timestamp(70)));
}

pub fn user(id: &str, username: &str) -> User {
    User {
        id: id.into(),
        username: username.into(),
        password_hash: None,
        rehashed_from: None,
        claims: json!({"email": format!("{id}@example.com")})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        attributes: Default::default(),
        groups: vec!["staff".into()],
        blocked: false,
        sign_out_epoch: 0,
        factors: Default::default(),
        created_at: T0,
        updated_at: T0,
        revision: 0,
    }
}

async fn users_and_consents(store: &dyn Store) {
    let alice = user("u1", "Alice");
    store.insert_user(&alice).await.expect("insert");
    assert!(
        matches!(
            store.insert_user(&user("u2", "ALICE")).await,
            Err(StoreError::Conflict(_))
        ),
        "usernames are unique case-insensitively"
    );
    assert_eq!(
        store.find_user("alice").await.expect("find"),
        Some(alice.clone())
    );
    let bob = user("u2", "bob");
    store.insert_user(&bob).await.expect("insert");
    let renamed = User {
        username: "Alice".into(),
        ..bob.clone()
    };
    assert!(matches!(
        store.update_user(&renamed).await,
        Err(StoreError::Conflict(_))
    ));
    let blocked = User {
        blocked: true,
        ..bob.clone()
    };
    store.update_user(&blocked).await.expect("update");
    let stored = store.get_user("u2").await.expect("get").expect("u2");
    assert_eq!(
        stored,
        User {
            revision: 1,
            ..blocked.clone()
        },
        "one revision up"
    );
    // A write prepared from the record before that update loses, whatever it changes.
    let from_before = User {
        claims: Default::default(),
        ..bob.clone()
    };
    assert!(matches!(
        store.update_user(&from_before).await,
        Err(StoreError::Stale)
    ));
    assert_eq!(
        store.get_user("u2").await.expect("get"),
        Some(stored.clone())
    );
    store
        .update_user(&stored)
        .await
        .expect("the current revision writes");
    assert_eq!(
        store
            .find_user("BOB")
            .await
            .expect("find")
            .map(|u| u.revision),
        Some(2)
    );
    assert!(matches!(
        store.update_user(&user("nobody", "x")).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.list_users().await.expect("list").len(), 2);

    let consent = Consent {
        user_id: "u1".into(),
        client_id: "c1".into(),
        scopes: vec!["openid".into()],
        updated_at: T0,
    };
    store.put_consent(&consent).await.expect("put");
    let wider = Consent {
        scopes: vec!["openid".into(), "email".into()],
        ..consent.clone()
    };
    store.put_consent(&wider).await.expect("replace");
    assert_eq!(
        store.get_consent("u1", "c1").await.expect("get"),
        Some(wider.clone())
    );
    assert_eq!(
        store.list_consents("u1").await.expect("list"),
        vec![wider.clone()]
    );
    let bobs = Consent {
        user_id: "u2".into(),
        ..consent.clone()
    };
    store.put_consent(&bobs).await.expect("put");
    assert_eq!(
        store.client_consents("c1").await.expect("by client"),
        vec![wider, bobs]
    );
    assert_eq!(store.client_consents("c2").await.expect("none"), vec![]);
    store.delete_user("u1").await.expect("delete");
    assert_eq!(
        store.get_consent("u1", "c1").await.expect("get"),
        None,
        "consents go with the user"
    );
    assert!(!store.delete_consent("u1", "c1").await.expect("delete"));
    assert!(matches!(
        store.delete_user("u1").await,
        Err(StoreError::NotFound(_))
    ));
}

pub fn idp(name: &str) -> IdentityProvider {
    IdentityProvider {
        name: name.into(),
        display_name: format!("IdP {name}"),
        enabled: true,
        protocol: IdpProtocol::Oidc,
        issuer: Some(format!("https://{name}.example.com")),
        authorization_endpoint: None,
        token_endpoint: None,
        userinfo_endpoint: None,
        client_id: "tessera".into(),
        secret_ciphertext: Some("ct".into()),
        auth_method: UpstreamAuth::ClientSecretBasic,
        scopes: vec!["openid".into()],
        use_userinfo: false,
        subject_claim: "sub".into(),
        mappings: vec![Mapping {
            claim: "email".into(),
            to: "email".into(),
        }],
        jit: true,
        link_by_email: false,
        domains: vec![format!("{name}.example.com")],
        amr_map: Default::default(),
        upstream_logout: true,
        metadata_url: None,
        metadata_xml: None,
        name_id_format: None,
        encrypted_assertions: false,
        exchange_audiences: vec![],
        created_at: T0,
        updated_at: T0,
    }
}

/// Identities at upstream providers: unique per provider and subject, found by subject and by
/// user, updated only for their user, and gone with their provider or their user; users are
/// found by email case-insensitively, as their claims say now.
async fn linked_identities(store: &dyn Store) {
    store
        .apply(&[
            Change::Create(Record::Idp(idp("corp"))),
            Change::Create(Record::Idp(idp("social"))),
        ])
        .await
        .expect("idps");
    let mut listed = store.list_idps().await.expect("list");
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(listed, vec![idp("corp"), idp("social")]);

    let (ann, ben) = (user("u-fed-ann", "fed-ann"), user("u-fed-ben", "fed-ben"));
    store.insert_user(&ann).await.expect("ann");
    store.insert_user(&ben).await.expect("ben");
    let link = |idp: &str, subject: &str, user: &str| LinkedIdentity {
        idp: idp.into(),
        subject: subject.into(),
        user_id: user.into(),
        email: Some(format!("{subject}@{idp}.example.com")),
        groups: vec!["g".into()],
        linked_at: T0,
        last_sign_in: None,
    };
    let corp_ann = link("corp", "s-1", "u-fed-ann");
    store.link_identity(&corp_ann).await.expect("link");
    store
        .link_identity(&link("social", "s-1", "u-fed-ann"))
        .await
        .expect("the same subject at another provider is another identity");
    store
        .link_identity(&link("corp", "s-2", "u-fed-ben"))
        .await
        .expect("link ben");
    assert!(
        matches!(
            store.link_identity(&link("corp", "s-1", "u-fed-ben")).await,
            Err(StoreError::Conflict(_))
        ),
        "an identity is linked to one user"
    );
    assert_eq!(
        store.find_identity("corp", "s-1").await.expect("find"),
        Some(corp_ann.clone())
    );
    assert_eq!(
        store.find_identity("corp", "S-1").await.expect("find"),
        None
    );
    let anns = store.user_identities("u-fed-ann").await.expect("ann's");
    assert_eq!(anns.len(), 2);
    assert!(anns.contains(&corp_ann));

    let signed_in = LinkedIdentity {
        groups: vec![],
        last_sign_in: Some(T0.plus(60)),
        ..corp_ann.clone()
    };
    store.update_identity(&signed_in).await.expect("update");
    assert_eq!(
        store.find_identity("corp", "s-1").await.expect("find"),
        Some(signed_in.clone())
    );
    assert!(
        matches!(
            store
                .update_identity(&LinkedIdentity {
                    user_id: "u-fed-ben".into(),
                    ..signed_in.clone()
                })
                .await,
            Err(StoreError::NotFound(_))
        ),
        "an update does not move an identity to another user"
    );

    let found = store
        .find_users_by_email("U-FED-ANN@example.COM", 5)
        .await
        .expect("by email");
    assert_eq!(
        found.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        ["u-fed-ann"]
    );
    let mut moved = store
        .get_user("u-fed-ben")
        .await
        .expect("get")
        .expect("ben");
    moved
        .claims
        .insert("email".into(), json!("u-fed-ann@example.com"));
    store.update_user(&moved).await.expect("same email");
    assert_eq!(
        store
            .find_users_by_email("u-fed-ann@example.com", 1)
            .await
            .expect("limited")
            .len(),
        1
    );
    assert_eq!(
        store
            .find_users_by_email("u-fed-ann@example.com", 5)
            .await
            .expect("both")
            .len(),
        2
    );
    assert!(store
        .find_users_by_email("u-fed-ben@example.com", 5)
        .await
        .expect("old email")
        .is_empty());

    assert!(store
        .unlink_identity("social", "s-1")
        .await
        .expect("unlink"));
    assert!(!store.unlink_identity("social", "s-1").await.expect("again"));
    store
        .apply(&[Change::Delete(Table::Idps, "corp".into())])
        .await
        .expect("delete idp");
    assert_eq!(
        store.find_identity("corp", "s-2").await.expect("find"),
        None
    );
    assert!(store
        .user_identities("u-fed-ann")
        .await
        .expect("none")
        .is_empty());
    store
        .link_identity(&link("social", "s-3", "u-fed-ben"))
        .await
        .expect("link");
    store.delete_user("u-fed-ben").await.expect("delete user");
    assert_eq!(
        store.find_identity("social", "s-3").await.expect("find"),
        None,
        "identities go with the user"
    );
    store.delete_user("u-fed-ann").await.expect("delete user");
    store
        .apply(&[Change::Delete(Table::Idps, "social".into())])
        .await
        .expect("delete idp");
}

async fn failure_counters(store: &dyn Store) {
    let t = Timestamp(1_000);
    let count =
        |at: Timestamp| async move { store.failures("acct:a", at, 60).await.expect("read").count };
    assert_eq!(count(t).await, 0);
    for n in 1..=3 {
        assert_eq!(
            store
                .count_failure("acct:a", t.plus(n), 60)
                .await
                .expect("count"),
            n
        );
    }
    let f = store
        .failures("acct:a", t.plus(30), 60)
        .await
        .expect("read");
    assert_eq!(f.count, 3);
    assert_eq!(
        f.until,
        t.plus(61),
        "the window started at the first failure"
    );
    assert_eq!(count(t.plus(61)).await, 0, "window over");
    assert_eq!(
        store
            .count_failure("acct:a", t.plus(61), 60)
            .await
            .expect("count"),
        1,
        "starts over"
    );
    store.clear_failures("acct:a").await.expect("clear");
    assert_eq!(count(t.plus(62)).await, 0);
}

/// A lease has one holder until it expires; its holder renews it.
async fn leases(store: &dyn Store) {
    let t = Timestamp(5_000);
    let take = |holder: &'static str, at: Timestamp| async move {
        store
            .try_lease("purge", holder, at, 60)
            .await
            .expect("lease")
    };
    assert!(take("a", t).await, "free");
    assert!(!take("b", t.plus(1)).await, "held by a");
    assert!(take("a", t.plus(30)).await, "renewed by its holder");
    assert!(!take("b", t.plus(89)).await, "the renewal runs to t+90");
    assert!(take("b", t.plus(90)).await, "expired: b takes it");
    assert!(!take("a", t.plus(91)).await, "now b's");
    assert!(
        store
            .try_lease("other", "a", t.plus(91), 60)
            .await
            .expect("lease"),
        "leases are independent"
    );
}

/// Many inserts at once (they are group-committed): each is answered for its own row, and a key
/// queued twice is inserted once.
async fn concurrent_inserts(store: &dyn Store) {
    let mut all: Vec<Artifact> = (0..200u8)
        .map(|n| Artifact {
            key: ArtifactKey([n; 40]),
            kind: ArtifactKind::RevokedJti,
            ..artifact(n, 5_000)
        })
        .collect();
    all.push(all[7].clone());
    let results =
        futures_util::future::join_all(all.iter().map(|a| store.insert_artifact(a))).await;
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Conflict(_))))
        .count();
    assert_eq!(conflicts, 2, "the duplicate, and key 1 (stored earlier)");
    assert!(
        results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(StoreError::Conflict(_)))),
        "{results:?}"
    );
    for a in all.iter().skip(7).take(150) {
        assert_eq!(
            store
                .get_artifact(&a.key)
                .await
                .expect("get")
                .map(|x| x.kind),
            Some(ArtifactKind::RevokedJti)
        );
    }
}

async fn records(store: &dyn Store) {
    let v0 = store.config_version().await.expect("version");
    store
        .apply(&[
            Change::Create(Record::Scope(scope("read"))),
            Change::Create(Record::Client(client("c1"))),
        ])
        .await
        .expect("create");
    assert!(
        store.config_version().await.expect("version") > v0,
        "apply raises the version"
    );
    assert_eq!(
        store.get_client("c1").await.expect("get"),
        Some(client("c1"))
    );
    assert_eq!(store.get_client("nope").await.expect("get"), None);
    assert_eq!(
        store.list_scopes().await.expect("list"),
        vec![scope("read")]
    );

    let dup = store
        .apply(&[Change::Create(Record::Client(client("c1")))])
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

    let mut changed = client("c1");
    changed.name = "renamed".into();
    changed.updated_at = T0.plus(5);
    store
        .apply(&[Change::Update(Record::Client(changed.clone()))])
        .await
        .expect("update");
    assert_eq!(store.get_client("c1").await.expect("get"), Some(changed));
    let missing = store
        .apply(&[Change::Update(Record::Client(client("ghost")))])
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );

    let api = Api {
        identifier: "https://api.example.com".into(),
        name: "API".into(),
        scopes: vec!["read".into()],
        created_at: T0,
        updated_at: T0,
    };
    store
        .apply(&[Change::Create(Record::Api(api.clone()))])
        .await
        .expect("api");
    assert_eq!(
        store.get_api(&api.identifier).await.expect("get"),
        Some(api.clone())
    );
    assert_eq!(store.list_apis().await.expect("list"), vec![api.clone()]);

    let key = KeyRecord {
        kid: "k1".into(),
        alg: Alg::ES256,
        x5c: vec!["MII".into()],
        private_ciphertext: "ct".into(),
        not_before: T0,
        not_after: T0.plus(10),
        created_at: T0,
    };
    store
        .apply(&[Change::Create(Record::Key(key.clone()))])
        .await
        .expect("key");
    assert_eq!(store.list_keys().await.expect("keys"), vec![key]);

    store
        .apply(&[Change::Delete(Table::Apis, api.identifier.clone())])
        .await
        .expect("delete");
    assert_eq!(store.get_api(&api.identifier).await.expect("get"), None);
    let gone = store
        .apply(&[Change::Delete(Table::Apis, api.identifier)])
        .await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
    assert_eq!(store.list_clients().await.expect("list").len(), 1);
}

/// A batch that fails part-way leaves nothing behind, and does not raise the version.
async fn atomicity(store: &dyn Store) {
    let v = store.config_version().await.expect("version");
    let r = store
        .apply(&[
            Change::Create(Record::Client(client("c2"))),
            Change::Create(Record::Scope(scope("read"))),
        ])
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    assert_eq!(
        store.get_client("c2").await.expect("get"),
        None,
        "the batch was rolled back"
    );
    assert_eq!(store.config_version().await.expect("version"), v);
}

/// `apply_at` writes only at the version it was given.
async fn optimistic_concurrency(store: &dyn Store) {
    let v = store.config_version().await.expect("version");
    store
        .apply_at(v, &[Change::Create(Record::Scope(scope("cas-1")))])
        .await
        .expect("at the current version");
    let stale = store
        .apply_at(v, &[Change::Create(Record::Scope(scope("cas-2")))])
        .await;
    assert!(matches!(stale, Err(StoreError::Stale)), "{stale:?}");
    assert_eq!(
        store.get_scope("cas-2").await.expect("get"),
        None,
        "nothing written"
    );
    assert_eq!(store.config_version().await.expect("version"), v + 1);
}

async fn artifacts(store: &dyn Store) {
    let a = artifact(1, 1_000);
    store.insert_artifact(&a).await.expect("insert");
    assert_eq!(
        store.get_artifact(&a.key).await.expect("get"),
        Some(a.clone())
    );
    assert!(matches!(
        store.insert_artifact(&a).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .get_artifact(&ArtifactKey([9; 40]))
            .await
            .expect("get"),
        None
    );

    assert!(store
        .revoke_artifact(&a.key, Timestamp(500))
        .await
        .expect("revoke"));
    assert!(
        !store
            .revoke_artifact(&a.key, Timestamp(600))
            .await
            .expect("revoke"),
        "revoked once"
    );
    assert_eq!(
        store
            .get_artifact(&a.key)
            .await
            .expect("get")
            .and_then(|x| x.revoked_at),
        Some(Timestamp(500))
    );
    assert!(!store
        .revoke_artifact(&ArtifactKey([9; 40]), Timestamp(1))
        .await
        .expect("revoke"));

    for n in 2..7 {
        store
            .insert_artifact(&artifact(n, 100))
            .await
            .expect("insert");
    }
    assert_eq!(
        store.purge_expired(Timestamp(200), 3).await.expect("purge"),
        3,
        "bounded batch"
    );
    assert_eq!(
        store
            .purge_expired(Timestamp(200), 100)
            .await
            .expect("purge"),
        2
    );
    assert_eq!(
        store
            .purge_expired(Timestamp(200), 100)
            .await
            .expect("purge"),
        0
    );
    assert!(
        store.get_artifact(&a.key).await.expect("get").is_some(),
        "unexpired artifacts stay"
    );
}
