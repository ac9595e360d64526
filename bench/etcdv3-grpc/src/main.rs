//! Measures etcd's v3 JSON gateway (confd's etcdv3 path) against the native
//! gRPC API (etcd-client) on the same footing: one-shot reads of a subtree
//! and watch latency (write → event received). Every command prints one JSON
//! line; bench/etcdv3_grpc.sh runs them interleaved and summarises.
//!
//! ```text
//! etcdv3-grpc-bench read  PATH ENDPOINT ROOT EXPECTED_KEYS
//! etcdv3-grpc-bench watch PATH ENDPOINT ROOT KEYS CHANGES GAP_MS SEED
//! etcdv3-grpc-bench burst PATH ENDPOINT ROOT WRITES TAG
//! etcdv3-grpc-bench burst-reopen PATH ENDPOINT ROOT WRITES TAG
//! ```
//!
//! `burst-reopen` ends the watch stream after every message with events and
//! opens a new one from the next revision, as confd's etcdv3 backend did
//! before it kept its streams open.
//!
//! PATH: `gateway`; `grpc` (Range paged at 5,000 keys, as confd pages the
//! gateway); `grpc-single` (one Range, decoding limit raised);
//! `grpc-default-limit` (one Range at tonic's default 4 MiB limit).

mod gateway;
#[cfg(feature = "grpc")]
mod grpc;
mod watch;

use std::time::Instant;

/// Errors are reported, not handled: this is a measurement program.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Key/value pairs as confd's backends hand them to the snapshot.
pub type Pairs = Vec<(String, String)>;

/// Keys asked for per range request by confd's etcdv3 backend.
pub const PAGE_SIZE: u64 = 5_000;

/// The task reading a watch stream; it returns the newest revision it saw.
pub type Watcher = tokio::task::JoinHandle<Result<u64, Error>>;

/// A put seen on a watch stream, stamped when its message was decoded.
#[derive(Debug)]
pub struct Event {
    /// The key.
    pub key: String,
    /// The new value.
    pub value: String,
    /// When the message holding it was decoded.
    pub at: Instant,
    /// Which watch message (1, 2, …) carried it: events in one message were
    /// delivered together.
    pub message: u64,
}

/// `[key, range_end)` of `root` and everything below it, as confd asks for
/// it: up to `root + "0"` ('0' follows '/'); siblings are filtered after.
pub fn subtree_range(root: &str) -> (Vec<u8>, Vec<u8>) {
    if root == "/" {
        return (b"/".to_vec(), b"0".to_vec());
    }
    (root.as_bytes().to_vec(), format!("{root}0").into_bytes())
}

/// Whether `key` is `root` or lies below it.
pub fn is_within(key: &str, root: &str) -> bool {
    root == "/"
        || key == root
        || (key.starts_with(root) && key.as_bytes().get(root.len()) == Some(&b'/'))
}

/// FNV-1a over every key and value in order: both paths must return the
/// same data.
fn digest(pairs: &Pairs) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (key, value) in pairs {
        for byte in key.bytes().chain([0]).chain(value.bytes()).chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

async fn read(path: &str, endpoint: &str, root: &str) -> Result<(Pairs, u64), Error> {
    match path {
        "gateway" => gateway::read(endpoint, root).await,
        #[cfg(feature = "grpc")]
        "grpc" => grpc::read(endpoint, root, true, true).await,
        #[cfg(feature = "grpc")]
        "grpc-single" => grpc::read(endpoint, root, false, true).await,
        #[cfg(feature = "grpc")]
        "grpc-default-limit" => grpc::read(endpoint, root, false, false).await,
        other => Err(format!("unknown or not built path {other:?}").into()),
    }
}

fn arg<'a>(args: &'a [String], index: usize, name: &str) -> Result<&'a str, Error> {
    args.get(index)
        .map(String::as_str)
        .ok_or_else(|| format!("missing argument {name}").into())
}

fn number(args: &[String], index: usize, name: &str) -> Result<u64, Error> {
    arg(args, index, name)?
        .parse()
        .map_err(|e| format!("{name}: {e}").into())
}

async fn run(args: &[String]) -> Result<serde_json::Value, Error> {
    let command = arg(args, 1, "command")?;
    let path = arg(args, 2, "PATH")?;
    let endpoint = arg(args, 3, "ENDPOINT")?.trim_end_matches('/');
    let root = arg(args, 4, "ROOT")?;
    match command {
        "read" => {
            let expected = number(args, 5, "EXPECTED_KEYS")?;
            let start = Instant::now();
            let (pairs, bytes) = read(path, endpoint, root).await?;
            let elapsed = start.elapsed();
            if pairs.len() as u64 != expected {
                return Err(format!("read {} keys, expected {expected}", pairs.len()).into());
            }
            Ok(serde_json::json!({
                "cmd": "read",
                "path": path,
                "keys": pairs.len(),
                "ms": elapsed.as_secs_f64() * 1e3,
                "bytes": bytes,
                "digest": format!("{:016x}", digest(&pairs)),
            }))
        }
        "watch" => {
            let settings = watch::Singles {
                keys: number(args, 5, "KEYS")?,
                changes: number(args, 6, "CHANGES")?,
                gap_ms: number(args, 7, "GAP_MS")?,
                seed: number(args, 8, "SEED")?,
            };
            watch::singles(path, endpoint, root, &settings).await
        }
        "burst" | "burst-reopen" => {
            let writes = number(args, 5, "WRITES")?;
            let tag = arg(args, 6, "TAG")?;
            let reopen = command == "burst-reopen";
            watch::burst(path, endpoint, root, writes, tag, reopen).await
        }
        other => Err(format!("unknown command {other:?}").into()),
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // One thread, as confd's one-shot and daemon modes run.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("etcdv3-grpc-bench: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(result) => {
            println!("{result}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("etcdv3-grpc-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
