//! The in-tree Consul API test server (`tests/it/common/consul.rs`) as a program,
//! for `examples/haproxy-consul/run.sh` and for trying confd's consul backend
//! and `service(...)` by hand. It is not Consul: it speaks the parts of
//! Consul's HTTP API that confd uses (KV with blocking queries, ACL token,
//! datacenter, `/v1/health/service/<name>`), exactly the code the test suite
//! runs, on 127.0.0.1.
//!
//! ```text
//! consul-test-server [--port N] [--port-file PATH] [--token T] [--datacenter DC]
//! ```
//!
//! KV reads and writes go through the HTTP API (`curl -X PUT --data-binary
//! VALUE http://127.0.0.1:PORT/v1/kv/KEY`). The catalog has no HTTP endpoint
//! for writes here, so service instances and their checks are changed with
//! commands on standard input, one per line; each command is answered on
//! standard output with one line, `ok <index>` or `error: <why>`:
//!
//! ```text
//! put KEY [VALUE…]                 set a KV key (the rest of the line; empty = folder/null)
//! delete KEY                       delete one key
//! delete-prefix PREFIX             delete every key starting with PREFIX
//! register ID NAME ADDRESS PORT [tags=a,b] [node=NAME[@ADDRESS]] [meta=K=V]…
//!                                  register (or replace) a service instance; its check passes
//! deregister ID                    remove an instance
//! check ID passing|warning|critical
//!                                  set the status of an instance's check
//! node-check NODE passing|warning|critical
//!                                  set a node's serfHealth check (all its instances)
//! index-backwards N                play a snapshot restore: the index goes back to N
//! index                            print the current index
//! ```
//!
//! End of input (or SIGTERM) stops the server.

#[path = "../../tests/it/common/consul.rs"]
mod consul;

use std::io::{BufRead, Write};
use std::process::ExitCode;

use consul::{CheckStatus, ConsulOptions, ConsulServer, ServiceInstance};

const USAGE: &str =
    "usage: consul-test-server [--port N] [--port-file PATH] [--token T] [--datacenter DC]";

fn main() -> ExitCode {
    let mut options = ConsulOptions::default();
    let mut port_file: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        if name == "--help" || name == "-h" {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        let Some(value) = inline.or_else(|| args.next()) else {
            eprintln!("consul-test-server: {name} needs a value\n{USAGE}");
            return ExitCode::from(2);
        };
        match name.trim_start_matches('-') {
            "port" => match value.parse::<u16>() {
                Ok(port) => options.port = Some(port),
                Err(_) => {
                    eprintln!("consul-test-server: --port {value}: not a port number");
                    return ExitCode::from(2);
                }
            },
            "port-file" => port_file = Some(value),
            "token" => options.token = Some(value),
            "datacenter" => options.datacenter = value,
            _ => {
                eprintln!("consul-test-server: unknown option {name}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }

    let server = ConsulServer::start_with(options);
    eprintln!(
        "consul-test-server: the in-tree Consul API test server (not Consul) listening on {} (datacenter {})",
        server.url(),
        server.datacenter()
    );
    if let Some(path) = &port_file {
        // Written whole, then renamed, so a reader never sees half a number.
        let partial = format!("{path}.partial");
        let written = std::fs::write(&partial, server.port().to_string())
            .and_then(|()| std::fs::rename(&partial, path));
        if let Err(e) = written {
            eprintln!("consul-test-server: --port-file {path}: {e}");
            return ExitCode::FAILURE;
        }
    }

    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let answer = match apply(&server, line) {
            Ok(index) => format!("ok {index}"),
            Err(why) => format!("error: {why}"),
        };
        let mut out = stdout.lock();
        if writeln!(out, "{answer}")
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
    }
    ExitCode::SUCCESS
}

fn status(word: Option<&str>) -> Result<CheckStatus, String> {
    match word {
        Some("passing") => Ok(CheckStatus::Passing),
        Some("warning") => Ok(CheckStatus::Warning),
        Some("critical") => Ok(CheckStatus::Critical),
        Some(other) => Err(format!("{other:?} is not passing, warning or critical")),
        None => Err("missing status (passing, warning or critical)".to_string()),
    }
}

/// Runs one command; returns the index after it.
fn apply(server: &ConsulServer, line: &str) -> Result<u64, String> {
    let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim_start();
    let mut words = rest.split_whitespace();
    let next = |words: &mut std::str::SplitWhitespace<'_>, what: &str| {
        words
            .next()
            .map(str::to_string)
            .ok_or_else(|| format!("{command}: missing {what}"))
    };
    match command {
        "put" => {
            let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
            if key.is_empty() {
                return Err("put: missing key".to_string());
            }
            Ok(server.put(key, value))
        }
        "delete" => {
            let key = next(&mut words, "key")?;
            server.delete(&key);
            Ok(server.index())
        }
        "delete-prefix" => {
            let prefix = next(&mut words, "prefix")?;
            server.delete_prefix(&prefix);
            Ok(server.index())
        }
        "register" => {
            let id = next(&mut words, "id")?;
            let name = next(&mut words, "name")?;
            let address = next(&mut words, "address")?;
            let port = next(&mut words, "port")?;
            let port: u16 = port
                .parse()
                .map_err(|_| format!("register: {port:?} is not a port number"))?;
            let mut instance = ServiceInstance::new(&id, &name, &address, port);
            for option in words {
                match option.split_once('=') {
                    Some(("tags", list)) => {
                        let tags: Vec<&str> = list.split(',').filter(|t| !t.is_empty()).collect();
                        instance = instance.tags(&tags);
                    }
                    Some(("node", node)) => {
                        let (node, at) = node.split_once('@').unwrap_or((node, "127.0.0.1"));
                        instance = instance.on_node(node, at);
                    }
                    Some(("meta", pair)) => {
                        let (k, v) = pair
                            .split_once('=')
                            .ok_or_else(|| format!("register: meta={pair}: expected meta=K=V"))?;
                        instance = instance.meta(k, v);
                    }
                    _ => return Err(format!("register: unknown option {option:?}")),
                }
            }
            Ok(server.register_service(instance))
        }
        "deregister" => {
            let id = next(&mut words, "id")?;
            if !server.deregister_service(&id) {
                return Err(format!("deregister: no instance {id}"));
            }
            Ok(server.index())
        }
        "check" => {
            let id = next(&mut words, "instance id")?;
            let status = status(words.next())?;
            if !server.set_check(&id, status) {
                return Err(format!("check: no instance {id}"));
            }
            Ok(server.index())
        }
        "node-check" => {
            let node = next(&mut words, "node")?;
            let status = status(words.next())?;
            if !server.set_node_check(&node, status) {
                return Err(format!("node-check: no instance on node {node}"));
            }
            Ok(server.index())
        }
        "index-backwards" => {
            let to = next(&mut words, "index")?;
            let to: u64 = to
                .parse()
                .map_err(|_| format!("index-backwards: {to:?} is not a number"))?;
            if to < 1 || to >= server.index() {
                return Err(format!(
                    "index-backwards: {to} must be at least 1 and below the current index {}",
                    server.index()
                ));
            }
            server.set_index_backwards(to);
            Ok(server.index())
        }
        "index" => Ok(server.index()),
        other => Err(format!("unknown command {other:?}")),
    }
}
