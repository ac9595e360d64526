//! Whole templates: confd 0.16's own integration templates (copied from its
//! `integration/confdir/templates/`) and templates in the style of real
//! deployments.

use super::*;

const BASIC: &str = r##"hostname: {{ getenv "HOSTNAME" }}
[database]
host={{ getv "/database/host" }}
password={{ getv "/database/password" }}
port={{ getv "/database/port" }}
username={{ getv "/database/username" }}
"##;

const EXISTS: &str = r##"{{ if exists "/key" }}value: {{ getv "/key" }}{{ end }}
{{- if exists "/doesnotexist" }}This line will not be printed value: {{ getv "/key" }}{{ end }}
"##;

const SERVER_BLOCK: &str = r##"

server {
    server_name  www.example.com;
    location / {
        proxy_pass        http://app;
        proxy_redirect    off;
        proxy_set_header  Host             $host;
        proxy_set_header  X-Real-IP        $remote_addr;
        proxy_set_header  X-Forwarded-For  $proxy_add_x_forwarded_for;
   }
}
"##;

fn iteration() -> String {
    format!(
        "upstream app {{\n{{{{- range gets \"/upstream/*\" }}}}\n  server {{{{ .Value }}}};\n{{{{- end }}}}\n}}{SERVER_BLOCK}"
    )
}

fn nested() -> String {
    format!(
        "upstream app {{\n{{{{ range gets \"/nested/*\" }}}}\n  {{{{ range gets .Key }}}}\n    server {{{{ .Value }}}};\n  {{{{ end }}}}\n{{{{ end }}}}\n}}{SERVER_BLOCK}"
    )
}

#[test]
fn confd_basic() {
    assert_eq!(
        root(BASIC),
        concat!(
            r##"[T("hostname: ") A(getenv "HOSTNAME") T("\n[database]\nhost=") A(getv "/database/host") "##,
            r##"T("\npassword=") A(getv "/database/password") T("\nport=") A(getv "/database/port") "##,
            r##"T("\nusername=") A(getv "/database/username") T("\n")]"##
        )
    );
}

#[test]
fn confd_exists() {
    // The `{{-` eats the newline between the two ifs.
    assert_eq!(
        root(EXISTS),
        concat!(
            r##"[If(exists "/key"; [T("value: ") A(getv "/key")]; -) "##,
            r##"If(exists "/doesnotexist"; [T("This line will not be printed value: ") A(getv "/key")]; -) T("\n")]"##
        )
    );
}

#[test]
fn confd_iteration() {
    let t = parse_confd(&iteration()).expect("parses");
    let want_tail = format!("T({:?})", format!("\n}}{SERVER_BLOCK}"));
    assert_eq!(
        dump(&t.root),
        format!(
            r##"[T("upstream app {{") Range(gets "/upstream/*"; [T("\n  server ") A(.Value) T(";")]; -) {want_tail}]"##
        )
    );
}

#[test]
fn confd_nested() {
    let t = parse_confd(&nested()).expect("parses");
    let want_tail = format!("T({:?})", format!("\n}}{SERVER_BLOCK}"));
    assert_eq!(
        dump(&t.root),
        format!(
            concat!(
                r##"[T("upstream app {{\n") Range(gets "/nested/*"; [T("\n  ") "##,
                r##"Range(gets .Key; [T("\n    server ") A(.Value) T(";\n  ")]; -) T("\n")]; -) {}]"##
            ),
            want_tail
        )
    );
}

/// HAProxy in the usual confd style: ranging over directories, nested
/// getv, printf with a width, a define used twice, comments and trimming.
const HAPROXY: &str = r##"{{- /* HAProxy for every service under /services */ -}}
{{ define "server" -}}
    server {{ base .Dir }} {{ getv (printf "%s/ip" .Dir) }}:{{ getv (printf "%s/port" .Dir) "80" }} check
{{- end -}}
global
    maxconn {{ getv "/haproxy/maxconn" "4096" }}

{{ range $svc := lsdir "/services" -}}
backend {{ $svc }}
    balance {{ or (getv (printf "/services/%s/balance" $svc) "") "roundrobin" }}
{{- range $host := lsdir (printf "/services/%s" $svc) }}
{{- $dir := printf "/services/%s/%s" $svc $host }}
{{ template "server" (map "Dir" $dir) }}
{{- end }}
{{ else -}}
# no services
{{ end -}}
listen stats
    bind :{{ printf "%-6s" (getv "/haproxy/stats_port" "8404") }}
"##;

#[test]
fn haproxy_style() {
    let t = parse_confd(HAPROXY).expect("parses");
    let server = t.define("server").expect("server defined");
    assert_eq!(
        dump(&server.body),
        concat!(
            r##"[T("server ") A(base .Dir) T(" ") A(getv (printf "%s/ip" .Dir)) T(":") "##,
            r##"A(getv (printf "%s/port" .Dir) "80") T(" check")]"##
        )
    );
    assert_eq!(
        dump(&t.root),
        concat!(
            r##"[C(" HAProxy for every service under /services ") T("global\n    maxconn ") A(getv "/haproxy/maxconn" "4096") T("\n\n") "##,
            r##"Range($svc := lsdir "/services"; [T("backend ") A($svc) T("\n    balance ") "##,
            r##"A(or (getv (printf "/services/%s/balance" $svc) "") "roundrobin") "##,
            r##"Range($host := lsdir (printf "/services/%s" $svc); [A($dir := printf "/services/%s/%s" $svc $host) T("\n") "##,
            r##"Tpl("server"; (map "Dir" $dir))]; -) T("\n")]; [T("# no services\n")]) "##,
            r##"T("listen stats\n    bind :") A(printf "%-6s" (getv "/haproxy/stats_port" "8404")) T("\n")]"##
        )
    );
}

/// nginx upstreams from JSON values, with index, len, eq and else-if.
const NGINX: &str = r##"{{ $apps := getvs "/apps/*" -}}
{{ range $i, $raw := $apps -}}
{{ $app := json $raw -}}
upstream {{ $app.name }} {
{{- range $app.backends }}
    server {{ .host }}:{{ .port }}{{ if eq (printf "%v" .weight) "0" }} down{{ else if .weight }} weight={{ .weight }}{{ end }};
{{- end }}
}
{{ if lt $i (sub (len $apps) 1) }}
{{ end -}}
{{ end -}}
# first: {{ (index $apps 0) | json | printf "%v" }}
# key: {{ (get "/apps/a").Key }} {{ with get "/apps/a" }}{{ .Value | base64Encode }}{{ end }}
"##;

#[test]
fn nginx_style() {
    let t = parse_confd(NGINX).expect("parses");
    assert_eq!(
        dump(&t.root),
        concat!(
            r##"[A($apps := getvs "/apps/*") Range($i, $raw := $apps; [A($app := json $raw) T("upstream ") A($app.name) T(" {") "##,
            r##"Range($app.backends; [T("\n    server ") A(.host) T(":") A(.port) "##,
            r##"If(eq (printf "%v" .weight) "0"; [T(" down")]; [If(.weight; [T(" weight=") A(.weight)]; -)]) T(";")]; -) "##,
            r##"T("\n}\n") If(lt $i (sub (len $apps) 1); [T("\n")]; -)]; -) "##,
            r##"T("# first: ") A((index $apps 0) | json | printf "%v") T("\n# key: ") A((get "/apps/a").Key) T(" ") "##,
            r##"With(get "/apps/a"; [A(.Value | base64Encode)]; -) T("\n")]"##
        )
    );
}

/// A Patroni-style YAML file with a block overridden by nothing, and
/// arithmetic helpers.
const PATRONI: &str = r##"scope: {{ getv "/patroni/scope" }}
{{ block "members" (lsdir "/members") -}}
members:
{{- range . }}
  - {{ . }}
{{- end }}
{{- end }}
ttl: {{ mul (atoi (getv "/patroni/ttl" "30")) 1 }}
loop_wait: {{ div (add 10 0) 1 }}
ports: {{ join (split (getv "/patroni/ports" "5432,5433") ",") " " }}
{{ range $n := seq 1 3 }}{{ if gt $n 2 }}{{ break }}{{ end }}n{{ $n }} {{ end }}
"##;

#[test]
fn patroni_style() {
    let t = parse_confd(PATRONI).expect("parses");
    let members = t.define("members").expect("block defined");
    assert_eq!(members.kind, DefineKind::Block);
    assert_eq!(
        dump(&members.body),
        r##"[T("members:") Range(.; [T("\n  - ") A(.)]; -)]"##
    );
    assert_eq!(
        dump(&t.root),
        concat!(
            r##"[T("scope: ") A(getv "/patroni/scope") T("\n") Block("members"; (lsdir "/members")) "##,
            r##"T("\nttl: ") A(mul (atoi (getv "/patroni/ttl" "30")) 1) T("\nloop_wait: ") A(div (add 10 0) 1) "##,
            r##"T("\nports: ") A(join (split (getv "/patroni/ports" "5432,5433") ",") " ") T("\n") "##,
            r##"Range($n := seq 1 3; [If(gt $n 2; [Br]; -) T("n") A($n) T(" ")]; -) T("\n")]"##
        )
    );
}

/// Redis Sentinel / env-file style: with/else, printf verbs, raw strings,
/// character constants and comparisons.
const SENTINEL: &str = r##"{{ with $m := getv "/redis/master" "" -}}
sentinel monitor mymaster {{ $m }} {{ printf "%d" 6379 }} {{ len (ls "/redis/sentinels") }}
{{- else -}}
# no master
{{- end }}
{{ range gets "/kafka/env/*" -}}
KAFKA_{{ toUpper (replace (base .Key) "." "_" -1) }}={{ printf "%q" .Value }}
{{ end -}}
SEP={{ printf "%c" '=' }} RAW={{ `a\nb` }} ZK={{ join (getvs "/zk/*") "," }}
"##;

#[test]
fn sentinel_and_env_style() {
    let t = parse_confd(SENTINEL).expect("parses");
    assert_eq!(
        dump(&t.root),
        concat!(
            r##"[With($m := getv "/redis/master" ""; [T("sentinel monitor mymaster ") A($m) T(" ") A(printf "%d" 6379) T(" ") "##,
            r##"A(len (ls "/redis/sentinels"))]; [T("# no master")]) T("\n") "##,
            r##"Range(gets "/kafka/env/*"; [T("KAFKA_") A(toUpper (replace (base .Key) "." "_" -1)) T("=") A(printf "%q" .Value) T("\n")]; -) "##,
            r##"T("SEP=") A(printf "%c" '=') T(" RAW=") A(`a\nb`) T(" ZK=") A(join (getvs "/zk/*") ",") T("\n")]"##
        )
    );
}

#[test]
fn every_confd_function_parses_and_an_unknown_one_does_not() {
    for name in CONFD_FUNCTIONS.iter().chain(GO_BUILTINS) {
        let src = format!("{{{{ {name} }}}}");
        assert!(parse_confd(&src).is_ok(), "{name}");
    }
    assert_eq!(
        error("{{ cget \"/k\" }}").message,
        "function \"cget\" not defined"
    );
}

/// Examples from confd 0.16's docs/templates.md.
#[test]
fn confd_documentation_examples() {
    let cases = [
        (
            "{{$endpoint := map \"name\" \"elasticsearch\" \"private_port\" 9200 \"public_port\" 443}}\n\nname: {{index $endpoint \"name\"}}\n",
            r#"[A($endpoint := map "name" "elasticsearch" "private_port" 9200 "public_port" 443) T("\n\nname: ") A(index $endpoint "name") T("\n")]"#,
        ),
        (
            "# Generated by confd {{datetime.Format \"Jan 2, 2006 at 3:04pm (MST)\"}}\n",
            r##"[T("# Generated by confd ") A(datetime.Format "Jan 2, 2006 at 3:04pm (MST)") T("\n")]"##,
        ),
        (
            "{{ $url := split (getv \"/deis/service\") \":\" }}\n    host: {{index $url 0}}\n",
            r#"[A($url := split (getv "/deis/service") ":") T("\n    host: ") A(index $url 0) T("\n")]"#,
        ),
        (
            "{{$data := json (getv \"/test/data/\")}}\ntype: {{ (index $data.animals 1).type }}\n{{range $data.animals}}\n{{.name}}\n{{end}}\n",
            concat!(
                r#"[A($data := json (getv "/test/data/")) T("\ntype: ") A((index $data.animals 1).type) T("\n") "#,
                r#"Range($data.animals; [T("\n") A(.name) T("\n")]; -) T("\n")]"#
            ),
        ),
        (
            "{{range lookupSRV \"mail\" \"tcp\" \"example.com\"}}\n  target: {{.Target}}\n{{end}}\n",
            r#"[Range(lookupSRV "mail" "tcp" "example.com"; [T("\n  target: ") A(.Target) T("\n")]; -) T("\n")]"#,
        ),
        (
            "{{seq 1 (atoi (getv \"/count\"))}}\n",
            r#"[A(seq 1 (atoi (getv "/count"))) T("\n")]"#,
        ),
    ];
    for (src, want) in cases {
        assert_eq!(root(src), want, "{src:?}");
    }
    // The decrypting helpers exist only when confd has a PGP key.
    assert_eq!(
        error("{{with cget \"/key\"}}{{end}}").message,
        "function \"cget\" not defined"
    );
}
