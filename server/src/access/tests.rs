use super::*;

const T0: i64 = 1_700_000_000_000;

fn access(flag: Option<&str>) -> (Access, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 10_000).expect("open");
    (Access::new(store, flag, false, false), dir)
}

fn kiosk(filter: Option<&str>) -> Scope {
    Scope {
        site: None,
        view: View::Kiosk,
        panel: None,
        filter: filter.map(str::to_owned),
        range: "1h".into(),
    }
}

#[test]
fn tokens_are_stored_as_hashes_give_their_role_and_stop_when_revoked() {
    let (a, dir) = access(Some("flag-secret"));
    let (viewer, listed) = a
        .create_token(Role::Viewer, "lobby-tv", T0)
        .expect("create");
    assert_eq!(listed.role.as_deref(), Some("viewer"));
    assert_eq!(
        a.token(&viewer),
        Ok(Principal::Token {
            role: Role::Viewer,
            key: listed.key.clone()
        })
    );
    assert!(a.token("flag-secret").expect("flag").is_admin());
    assert_eq!(a.token("pbt_nope-nope-nope-nope"), Err(Refusal::WrongToken));
    assert_eq!(a.token(""), Err(Refusal::WrongToken));
    // The secret is nowhere on disk.
    drop(a);
    let mut found = false;
    for f in walk(dir.path()) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        found |= bytes.windows(viewer.len()).any(|w| w == viewer.as_bytes());
    }
    assert!(!found, "the token itself is stored");
    let a = Access::new(
        Store::open(dir.path(), 10_000).expect("open"),
        None,
        false,
        false,
    );
    let ended = a.ended(&a.token(&viewer).expect("viewer"));
    assert!(!ended.revoked.is_cancelled());
    a.revoke(AccessKind::Token, &listed.key, T0 + 1)
        .expect("revoke");
    assert!(ended.revoked.is_cancelled(), "open sockets are told");
    assert_eq!(ended.reason(T0 + 2), "access revoked");
    assert_eq!(a.token(&viewer), Err(Refusal::TokenRevoked));
    assert!(matches!(
        a.revoke(AccessKind::Token, "0000000000000000", T0),
        Err(AccessError::Unknown("token", _))
    ));
    let list = a.list(AccessKind::Token).expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].revoked_ms, Some(T0 + 1));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_link_opens_its_scope_until_it_expires_or_is_revoked_and_so_do_its_sessions() {
    let (a, _dir) = access(None);
    let (id, listed) = a
        .create_link(&kiosk(Some("country:DE")), "lobby", Some(T0 + 60_000), T0)
        .expect("create");
    assert!(!id.contains(&listed.key), "the key says nothing of the id");
    let (p, h) = a.link(&id, T0).expect("open");
    let Principal::Link { scope, .. } = &p else {
        panic!("{p:?}")
    };
    assert_eq!(scope.filter.as_deref(), Some("country:DE"));
    assert_eq!(a.link(&id, T0 + 60_000), Err(Refusal::LinkExpired));
    assert_eq!(
        a.link("x".repeat(43).as_str(), T0),
        Err(Refusal::UnknownLink)
    );
    let (cookie, csrf, until) = a.open_session(&p, Some(&h), None, T0).expect("session");
    assert_eq!(
        until,
        T0 + SESSION_TTL_MS,
        "the cookie outlives the link, to say so"
    );
    assert_eq!(a.session(&cookie, T0), Ok((p.clone(), csrf)));
    assert_eq!(a.session(&cookie, T0 + 60_000), Err(Refusal::LinkExpired));
    // A second session, then the link is revoked: the session says so.
    let (cookie, _, _) = a.open_session(&p, Some(&h), None, T0).expect("session");
    let ended = a.ended(&p);
    assert_eq!(ended.expires_ms, Some(T0 + 60_000));
    a.revoke(AccessKind::Link, &listed.key, T0 + 10)
        .expect("revoke");
    assert_eq!(ended.reason(T0 + 20), "link revoked");
    assert_eq!(a.session(&cookie, T0 + 20), Err(Refusal::LinkRevoked));
    assert_eq!(a.link(&id, T0 + 20), Err(Refusal::LinkRevoked));
    // An expiry in the past and a bad scope are refused.
    assert!(a.create_link(&kiosk(None), "x", Some(T0), T0).is_err());
    let mut bad = kiosk(None);
    bad.range = "40d".into();
    assert!(a.create_link(&bad, "x", None, T0).is_err());
    assert!(a.create_link(&kiosk(None), "", None, T0).is_err());
}

#[test]
fn token_sessions_follow_their_token_and_signing_out_ends_them() {
    let (a, _dir) = access(Some("flag-secret"));
    let flag = a.token("flag-secret").expect("flag");
    let (cookie, csrf, until) = a
        .open_session(&flag, None, Some("flag-secret"), T0)
        .expect("session");
    assert_eq!(until, T0 + SESSION_TTL_MS);
    assert_eq!(a.session(&cookie, T0), Ok((flag, csrf)));
    a.close_session(&cookie).expect("close");
    assert_eq!(a.session(&cookie, T0), Err(Refusal::SessionOver));

    let (viewer, listed) = a.create_token(Role::Viewer, "tv", T0).expect("token");
    let p = a.token(&viewer).expect("viewer");
    let (cookie, _, _) = a.open_session(&p, None, Some(&viewer), T0).expect("s");
    assert_eq!(
        a.session(&cookie, T0).map(|(p, _)| p.role_name()),
        Ok("viewer")
    );
    a.revoke(AccessKind::Token, &listed.key, T0)
        .expect("revoke");
    assert_eq!(a.session(&cookie, T0), Err(Refusal::TokenRevoked));
    // Sessions that are over are purged.
    assert_eq!(a.purge_sessions(T0 + SESSION_TTL_MS).expect("purge"), 1);
}
