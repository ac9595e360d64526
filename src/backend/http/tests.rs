//! Unit tests of the http module.

use super::*;

#[test]
fn node_urls_get_a_scheme() {
    assert_eq!(
        node_url("127.0.0.1:2379", "http").map(|u| u.to_string()),
        Ok("http://127.0.0.1:2379/".to_string())
    );
    assert_eq!(
        node_url("https://etcd:2379", "http").map(|u| u.scheme().to_string()),
        Ok("https".to_string())
    );
    assert!(node_url("ftp://x", "http").is_err());
    assert!(node_url("http://[bad", "http").is_err());
}

#[test]
fn user_information_leaves_the_url_and_its_password_is_masked() {
    let node = Node::parse("http://root:s3%20cret@127.0.0.1:2379", "http").expect("parses");
    assert_eq!(node.url.as_str(), "http://127.0.0.1:2379/");
    assert_eq!(node.name, "http://root:***@127.0.0.1:2379");
    assert_eq!(
        node.userinfo,
        Some(("root".to_string(), "s3 cret".to_string()))
    );
    assert!(!format!("{node:?}").contains("s3"));
    // host:port with user information gets the scheme and the same mask.
    let bare = Node::parse("u:p@etcd:2379", "https").expect("parses");
    assert_eq!(bare.name, "https://u:***@etcd:2379");
    // A user without a password is shown as is (as Go's URL.Redacted).
    let user_only = Node::parse("http://u@h:1", "http").expect("parses");
    assert_eq!(user_only.name, "http://u@h:1");
    assert_eq!(user_only.userinfo, Some(("u".to_string(), String::new())));
    let plain = Node::parse("http://h:1", "http").expect("parses");
    assert_eq!((plain.name.as_str(), plain.userinfo), ("http://h:1", None));
}

#[test]
fn addresses_that_do_not_parse_never_show_their_password() {
    for address in [
        "http://root:s3cret@[bad",
        "ftp://root:s3cret@h",
        "root:s3cret@[bad",
        "http://root:s3cret/x@h:1",
        "http://root:s3%ZZcret@h:1",
    ] {
        let error = Node::parse(address, "http").expect_err(address);
        assert!(!error.contains("s3"), "{address}: {error}");
        assert!(error.contains("root:***@"), "{address}: {error}");
    }
    assert_eq!(
        redact_address("http://a:b@c@host:1/p"),
        "http://a:***@host:1/p"
    );
    assert_eq!(redact_address("host:1"), "host:1");
}

#[test]
fn debug_output_masks_every_secret() {
    let auth = ClientAuth {
        username: Some("root".into()),
        password: Some("s3cret".into()),
        auth_token: Some("t0ken".into()),
        ..ClientAuth::default()
    };
    let shown = format!("{auth:?}");
    assert!(shown.contains("root") && !shown.contains("s3cret") && !shown.contains("t0ken"));
    let client = NodeClient::new(&HttpConfig {
        backend: "etcd",
        nodes: vec!["http://u:s3cret@127.0.0.1:1".into(), "127.0.0.1:2".into()],
        scheme: "http".into(),
        auth,
        max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
        watch_timeout: DEFAULT_WATCH_TIMEOUT,
    })
    .expect("client");
    assert_eq!(
        client.describe_nodes(),
        "http://u:***@127.0.0.1:1, http://127.0.0.1:2"
    );
    assert!(!format!("{client:?}").contains("s3cret"));
}

#[test]
fn the_response_cap_needs_a_unit_or_at_least_a_kib() {
    assert!(parse_max_response_size("64").is_err());
    assert_eq!(parse_max_response_size("1KiB"), Ok(1024));
    assert_eq!(parse_max_response_size("64MiB"), Ok(64 << 20));
}

#[test]
fn server_text_is_one_short_line() {
    assert_eq!(server_text(b"  not found\n"), "not found");
    assert_eq!(
        server_text(b"a\nFORGED INFO x=1\r\x1b[31m\te\xe2\x80\xa8"),
        "a\\nFORGED INFO x=1\\r\\u{1b}[31m\\te\\u{2028}"
    );
    let long = "é".repeat(1000);
    let shown = server_text(long.as_bytes());
    assert!(shown.ends_with("… (2000 bytes)"), "{shown}");
    assert!(shown.len() <= MAX_SERVER_TEXT + 20, "{}", shown.len());
    assert!(shown.starts_with("éé") && !shown.contains('\u{fffd}'));
    assert_eq!(server_text(b"\xff ok"), "\u{fffd} ok");
}
