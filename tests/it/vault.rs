//! The vault backend against a real Vault API server (OpenBao's dev server,
//! started by `common::vault` on a free 127.0.0.1 port): KV v1 and v2,
//! confd's flattening, every auth method a dev server can be set up for
//! (token, app-role, userpass, cert) and the login requests of the two it
//! cannot (kubernetes, github) against a scripted server, refusals, and
//! secrets kept out of every message. The daemon tests (polling, token
//! renewal) are in `vault_daemon.rs`. Every test starts its own server.

use serde_json::{Value, json};

use crate::common::confd::onetime;
use crate::common::vault::{Bao, ROOT_TOKEN};
use crate::common::{Run, Scenario, read};
use crate::net::{Reply, TinyServer};

/// A scenario with one resource `out` reading `keys` through `template`.
pub fn scenario(keys: &[&str], template: &str) -> Scenario {
    let s = Scenario::new();
    s.template("out.tmpl", template);
    s.resource("out", "out", keys, "");
    s
}

/// `confd -onetime -backend vault -node <node> -confdir … EXTRA`.
pub fn vault_onetime(s: &Scenario, node: &str, extra: &[&str]) -> Run {
    onetime(s, "vault", &[node], extra)
}

/// The root token's flags.
const AS_ROOT: [&str; 4] = ["-auth-type", "token", "-auth-token", ROOT_TOKEN];

#[test]
fn kv_v1_and_v2_follow_confds_data_mapping() {
    let bao = Bao::start();
    bao.enable_kv("kv1", 1);
    bao.write_v1("kv1", "database/host", json!({"value": "127.0.0.1"}));
    bao.write_v1("kv1", "database/port", json!({"value": "3306"}));
    bao.write_v1(
        "kv1",
        "upstream",
        json!({"app1": "10.0.1.10:8080", "app2": "10.0.1.11:8080"}),
    );
    bao.write_v1(
        "kv1",
        "nested/east/app1",
        json!({"value": "10.0.1.10:8080"}),
    );
    // The dev server mounts KV v2 at secret/.
    bao.write_v2(
        "secret",
        "app/db",
        json!({"username": "app", "port": 5432, "tls": {"on": true, "ca": "PEM"}, "note": null}),
    );
    bao.write_v2("secret", "app/api/key", json!({"value": "k-1"}));
    let template = "\
host={{ getv(key=\"/kv1/database/host\") }}:{{ getv(key=\"/kv1/database/port\") }}
{% for kv in gets(key=\"/kv1/upstream/*\") %}{{ kv.key }}={{ kv.value }}
{% endfor %}upstream={{ getv(key=\"/kv1/upstream\") }}
nested={{ lsdir(key=\"/kv1/nested\") | join(sep=\",\") }} {{ getv(key=\"/kv1/nested/east/app1\") }}
app={{ ls(key=\"/secret/app\") | join(sep=\",\") }}
db={{ getv(key=\"/secret/app/db\") }}
user={{ getv(key=\"/secret/app/db/username\") }} port={{ getv(key=\"/secret/app/db/port\") }} tls={{ getv(key=\"/secret/app/db/tls/on\") }}/{{ getv(key=\"/secret/app/db/tls/ca\") }} note=[{{ getv(key=\"/secret/app/db/note\") }}]
key={{ getv(key=\"/secret/app/api/key\") }} data-path={{ exists(key=\"/secret/data/app/db\") }}
";
    let s = scenario(&["/kv1", "/secret/app"], template);
    vault_onetime(&s, &bao.url(), &AS_ROOT).expect_code(0);
    assert_eq!(
        read(&s.out("out")),
        "\
host=127.0.0.1:3306
/kv1/upstream/app1=10.0.1.10:8080
/kv1/upstream/app2=10.0.1.11:8080
upstream={\"app1\":\"10.0.1.10:8080\",\"app2\":\"10.0.1.11:8080\"}
nested=east 10.0.1.10:8080
app=api,db
db={\"note\":null,\"port\":5432,\"tls\":{\"ca\":\"PEM\",\"on\":true},\"username\":\"app\"}
user=app port=5432 tls=true/PEM note=[]
key=k-1 data-path=false
"
    );
}

#[test]
fn a_deleted_v2_secret_leaves_the_keys_and_a_changed_one_renders_anew() {
    let bao = Bao::start();
    bao.write_v2("secret", "web/a", json!({"value": "1"}));
    bao.write_v2("secret", "web/b", json!({"value": "2"}));
    let s = scenario(
        &["/secret/web"],
        "{% for kv in gets(key=\"/secret/web/*\") %}{{ kv.key }}={{ kv.value }}\n{% endfor %}",
    );
    vault_onetime(&s, &bao.url(), &AS_ROOT).expect_code(0);
    assert_eq!(read(&s.out("out")), "/secret/web/a=1\n/secret/web/b=2\n");
    bao.delete_v2("secret", "web/a");
    bao.write_v2("secret", "web/b", json!({"value": "3"}));
    vault_onetime(&s, &bao.url(), &AS_ROOT).expect_code(0);
    assert_eq!(read(&s.out("out")), "/secret/web/b=3\n");
}

#[test]
fn a_policy_that_reads_one_secret_without_listing_is_enough_for_that_key() {
    let bao = Bao::start();
    bao.write_v2("secret", "app/db", json!({"password": "pw"}));
    bao.write_v2("secret", "app/other", json!({"value": "hidden"}));
    bao.policy(
        "one",
        "path \"secret/data/app/db\" { capabilities = [\"read\"] }",
    );
    let token = bao.token("one", 600, true);
    let s = scenario(
        &["/secret/app/db"],
        "{{ getv(key=\"/secret/app/db/password\") }}",
    );
    let auth = ["-auth-type", "token", "-auth-token", token.as_str()];
    vault_onetime(&s, &bao.url(), &auth).expect_code(0);
    assert_eq!(read(&s.out("out")), "pw");
    // The folder above it cannot be listed: an error, and the file stays.
    let s2 = scenario(
        &["/secret/app"],
        "{{ getv(key=\"/secret/app/db/password\") }}",
    );
    s2.write("out/out", "before");
    let run = vault_onetime(&s2, &bao.url(), &auth);
    run.expect_code(1);
    assert!(run.stderr.contains("403"), "{}", run.stderr);
    assert_eq!(read(&s2.out("out")), "before");
    assert!(!run.stderr.contains(&token), "{}", run.stderr);
}

#[test]
fn engines_other_than_kv_are_refused_by_name() {
    let bao = Bao::start();
    bao.enable_engine("transit", "transit");
    let s = scenario(&["/transit"], "x");
    let run = vault_onetime(&s, &bao.url(), &AS_ROOT);
    run.expect_code(1);
    let line = run.line_with("transit");
    assert!(line.contains("a transit secrets engine"), "{line}");
}

/// A secret `kv/app` = `value: ok`, readable by policy `app`.
fn app_secret(bao: &Bao) {
    bao.enable_kv("kv", 1);
    bao.write_v1("kv", "app", json!({"value": "ok"}));
    bao.read_policy("app", &["kv/*"]);
}

#[test]
fn app_role_logs_in_at_its_default_and_at_a_custom_path() {
    let bao = Bao::start();
    app_secret(&bao);
    bao.enable_auth("approle", "approle");
    bao.enable_auth("test", "approle");
    for path in [None, Some("test")] {
        let (role_id, secret_id) = bao.approle(path.unwrap_or("approle"), "confd", "app", 60, 120);
        let s = scenario(&["/kv/app"], "{{ getv(key=\"/kv/app\") }}");
        let mut flags = vec![
            "-auth-type",
            "app-role",
            "-role-id",
            &role_id,
            "-secret-id",
            &secret_id,
            "-log-level",
            "debug",
        ];
        if let Some(path) = path {
            flags.extend(["-path", path]);
        }
        let run = vault_onetime(&s, &bao.url(), &flags);
        run.expect_code(0);
        assert_eq!(read(&s.out("out")), "ok");
        assert!(run.stderr.contains("logged in"), "{}", run.stderr);
        assert!(!run.stderr.contains(&secret_id), "{}", run.stderr);
    }
}

#[test]
fn userpass_logs_in_and_a_wrong_password_never_shows() {
    let bao = Bao::start();
    app_secret(&bao);
    bao.enable_auth("userpass", "userpass");
    bao.userpass("userpass", "ann", "right-Pa55", "app");
    let s = scenario(&["/kv/app"], "{{ getv(key=\"/kv/app\") }}");
    let ok = [
        "-auth-type",
        "userpass",
        "-username",
        "ann",
        "-password",
        "right-Pa55",
    ];
    vault_onetime(&s, &bao.url(), &ok).expect_code(0);
    assert_eq!(read(&s.out("out")), "ok");
    let wrong = [
        "-auth-type",
        "userpass",
        "-username",
        "ann",
        "-password",
        "wr0ng-Pa55",
    ];
    let run = vault_onetime(&s, &bao.url(), &wrong);
    run.expect_code(1);
    let line = run.line_with("login with userpass at auth/userpass was refused");
    assert!(line.contains("400") || line.contains("403"), "{line}");
    assert!(!run.stderr.contains("wr0ng-Pa55"), "{}", run.stderr);
}

#[test]
fn cert_auth_logs_in_with_the_client_certificate_over_tls() {
    let bao = Bao::start_with_tls();
    app_secret(&bao);
    bao.enable_auth("cert", "cert");
    bao.cert_role("confd", "app");
    let Some((https, files)) = bao.tls() else {
        panic!("started with TLS");
    };
    let s = scenario(&["/kv/app"], "{{ getv(key=\"/kv/app\") }}");
    let (ca, cert, key) = (
        files.ca.display().to_string(),
        files.client_cert.display().to_string(),
        files.client_key.display().to_string(),
    );
    let tls = [
        "-auth-type",
        "cert",
        "-client-ca-keys",
        &ca,
        "-client-cert",
        &cert,
        "-client-key",
        &key,
    ];
    vault_onetime(&s, &https, &tls).expect_code(0);
    assert_eq!(read(&s.out("out")), "ok");
    // Without the certificate there is nothing to log in with.
    let run = vault_onetime(&s, &https, &["-auth-type", "cert", "-client-ca-keys", &ca]);
    run.expect_code(2);
    assert!(run.stderr.contains("-client-cert"), "{}", run.stderr);
}

/// A scripted Vault that accepts any login, answers `kv/app` with `value:
/// ok`, and records every request.
fn scripted_vault() -> TinyServer {
    TinyServer::start(|request| {
        let path = request.target.split('?').next().unwrap_or("");
        let body = if path.ends_with("/login") {
            json!({"auth": {"client_token": "token-from-login", "lease_duration": 0, "renewable": false}})
        } else if path.starts_with("/v1/sys/internal/ui/mounts/") {
            json!({"data": {"path": "kv/", "type": "kv", "options": {"version": "1"}}})
        } else if path == "/v1/kv/app" && !request.target.contains("list=true") {
            json!({"data": {"value": "ok"}})
        } else {
            return Reply::new(404, r#"{"errors":[]}"#);
        };
        Reply::new(200, body.to_string()).header("Content-Type", "application/json")
    })
}

fn login_body(server: &TinyServer) -> (String, Value) {
    let requests = server.requests();
    let login = requests
        .iter()
        .find(|r| r.target.contains("/login"))
        .unwrap_or_else(|| panic!("no login request: {requests:?}"));
    assert_eq!(login.method, "POST");
    let body = serde_json::from_slice(&login.body).unwrap_or(Value::Null);
    // Every later request carries the token the login gave.
    for later in requests.iter().filter(|r| !r.target.contains("/login")) {
        assert_eq!(
            later.header("x-vault-token"),
            Some("token-from-login"),
            "{later:?}"
        );
    }
    (login.target.clone(), body)
}

#[test]
fn kubernetes_sends_the_service_account_token_and_role() {
    let server = scripted_vault();
    let s = scenario(&["/kv/app"], "{{ getv(key=\"/kv/app\") }}");
    let jwt = s
        .write("sa-token", "eyJhbGciOi.test.jwt\n")
        .display()
        .to_string();
    let flags = [
        "-auth-type",
        "kubernetes",
        "-role-id",
        "web",
        "-kubernetes-token-file",
        &jwt,
    ];
    vault_onetime(&s, &server.url(), &flags).expect_code(0);
    assert_eq!(read(&s.out("out")), "ok");
    let (target, body) = login_body(&server);
    assert_eq!(target, "/v1/auth/kubernetes/login");
    assert_eq!(body, json!({"role": "web", "jwt": "eyJhbGciOi.test.jwt"}));
    // A missing token file is an error naming it, and no request is sent.
    let missing = s.path().join("nope").display().to_string();
    let flags = [
        "-auth-type",
        "kubernetes",
        "-role-id",
        "web",
        "-kubernetes-token-file",
        &missing,
    ];
    let run = vault_onetime(&s, &server.url(), &flags);
    run.expect_code(1);
    assert!(run.stderr.contains(&missing), "{}", run.stderr);
}

#[test]
fn github_sends_the_personal_token_at_a_custom_path() {
    let server = scripted_vault();
    let s = scenario(&["/kv/app"], "{{ getv(key=\"/kv/app\") }}");
    let flags = [
        "-auth-type",
        "github",
        "-auth-token",
        "ghp_personal",
        "-path",
        "gh",
    ];
    let run = vault_onetime(&s, &server.url(), &flags);
    run.expect_code(0);
    let (target, body) = login_body(&server);
    assert_eq!(target, "/v1/auth/gh/login");
    assert_eq!(body, json!({"token": "ghp_personal"}));
    assert!(!run.stderr.contains("ghp_personal"));
}

#[test]
fn auth_settings_are_checked_before_anything_is_sent() {
    let s = scenario(&["/kv/app"], "x");
    let node = "http://127.0.0.1:9";
    for (flags, flag, says) in [
        (&[][..], "-auth-type", "needs an auth method"),
        (
            &["-auth-type", "app-id"][..],
            "-auth-type",
            "app-id no longer exists",
        ),
        (
            &["-auth-type", "token", "-app-id", "a", "-user-id", "b"][..],
            "-app-id",
            "app-role",
        ),
        (
            &["-auth-type", "ldap"][..],
            "-auth-type",
            "unknown auth type \"ldap\"",
        ),
        (&["-auth-type", "token"][..], "-auth-token", "VAULT_TOKEN"),
        (
            &["-auth-type", "app-role", "-role-id", "r"][..],
            "-secret-id",
            "needs -secret-id",
        ),
        (
            &["-auth-type", "userpass", "-username", "u"][..],
            "-password",
            "needs -password",
        ),
        (
            &["-auth-type", "kubernetes"][..],
            "-role-id",
            "needs -role-id",
        ),
        (
            &["-auth-type", "token", "-auth-token", "t", "-basic-auth"][..],
            "-basic-auth",
            "userpass",
        ),
    ] {
        let run = vault_onetime(&s, node, flags);
        run.expect_code(2);
        let line = run.line_with(says);
        assert!(line.contains(&format!("{flag}: ")), "{flags:?}: {line}");
    }
    // Vault's flags with another backend are refused too.
    let run = s.onetime_env(&["-auth-type", "token"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("only the vault backend uses this flag"),
        "{}",
        run.stderr
    );
}

#[test]
fn vault_token_comes_from_the_environment_and_never_shows() {
    let bao = Bao::start();
    app_secret(&bao);
    let token = bao.token("app", 600, true);
    let mut s = scenario(&["/kv/app"], "{{ getv(key=\"/kv/app\") }}");
    s.set_env("VAULT_TOKEN", &token);
    let run = vault_onetime(
        &s,
        &bao.url(),
        &["-auth-type", "token", "-log-level", "debug"],
    );
    run.expect_code(0);
    assert_eq!(read(&s.out("out")), "ok");
    assert!(!run.stderr.contains(&token), "{}", run.stderr);
    // -noop shows the file's diff, never the token; --help never shows the
    // secrets of the environment.
    bao.write_v1("kv", "app", json!({"value": "changed"}));
    let run = vault_onetime(&s, &bao.url(), &["-auth-type", "token", "-noop"]);
    run.expect_code(0);
    assert!(run.stdout.contains("+changed"), "{}", run.stdout);
    assert!(!run.stdout.contains(&token) && !run.stderr.contains(&token));
    s.set_env("CONFD_SECRET_ID", "secret-id-value")
        .set_env("CONFD_AUTH_TOKEN", &token);
    let help = s.run(&["--help"]);
    help.expect_code(0);
    assert!(help.stdout.contains("--secret-id"), "{}", help.stdout);
    assert!(!help.stdout.contains("secret-id-value") && !help.stdout.contains(&token));
}

#[test]
fn a_dead_first_node_fails_over_and_large_answers_are_capped() {
    let bao = Bao::start();
    app_secret(&bao);
    let s = scenario(&["/kv/app"], "{{ getv(key=\"/kv/app\") }}");
    // Nothing listens on the first node: the second one serves the read.
    let dead = format!("http://127.0.0.1:{}", crate::common::free_port());
    let run = onetime(&s, "vault", &[dead.as_str(), bao.url().as_str()], &AS_ROOT);
    run.expect_code(0);
    assert_eq!(read(&s.out("out")), "ok");
    // A secret larger than -max-response-size fails naming the limit, and
    // the file keeps its content.
    bao.write_v1("kv", "app", json!({ "value": "x".repeat(4096) }));
    let mut capped = AS_ROOT.to_vec();
    capped.extend(["-max-response-size", "2KiB"]);
    let run = vault_onetime(&s, &bao.url(), &capped);
    run.expect_code(1);
    assert!(run.stderr.contains("-max-response-size"), "{}", run.stderr);
    assert_eq!(read(&s.out("out")), "ok");
}
