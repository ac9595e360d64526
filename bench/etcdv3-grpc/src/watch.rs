//! Watch latency, write → event received, for either path: single changes
//! of existing keys, spaced out; and a burst of new keys written back to
//! back. The writer is the same for both paths (gateway puts on one
//! keep-alive connection); only the watching side differs.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::{Error, Event, Watcher, gateway};

/// How long one change may take before it counts as lost.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long after its last write a burst may take to arrive in full.
const BURST_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the single-change measurement.
pub struct Singles {
    /// Keys in the seed layout (sets the domain names' width).
    pub keys: u64,
    /// Changes to make.
    pub changes: u64,
    /// Pause after each change was seen.
    pub gap_ms: u64,
    /// Picks the hosts whose port changes.
    pub seed: u64,
}

async fn start(
    path: &str,
    endpoint: &str,
    root: &str,
    from: u64,
    one_batch: bool,
    sender: UnboundedSender<Event>,
) -> Result<Watcher, Error> {
    match path {
        "gateway" => gateway::watch(endpoint, root, from, one_batch, sender).await,
        #[cfg(feature = "grpc")]
        "grpc" => crate::grpc::watch(endpoint, root, from, one_batch, sender).await,
        other => Err(format!("unknown or not built watch path {other:?}").into()),
    }
}

/// One watch stream, open until the end; or with `reopen`, a stream per
/// batch of events, each opened from the revision after the last one seen
/// (the task then returns the number of streams it opened).
async fn open(
    path: &str,
    endpoint: &str,
    root: &str,
    reopen: bool,
) -> Result<(Watcher, UnboundedReceiver<Event>), Error> {
    let (sender, receiver) = unbounded_channel();
    let first = start(path, endpoint, root, 0, reopen, sender.clone()).await?;
    if !reopen {
        return Ok((first, receiver));
    }
    let (path, endpoint, root) = (path.to_string(), endpoint.to_string(), root.to_string());
    let supervisor = tokio::spawn(async move {
        let mut streams = 1;
        let mut current = first;
        loop {
            let newest = current.await??;
            if sender.is_closed() {
                return Ok(streams);
            }
            current = start(&path, &endpoint, &root, newest + 1, true, sender.clone()).await?;
            streams += 1;
        }
    });
    Ok((supervisor, receiver))
}

/// A 64-bit LCG step (Knuth's MMIX constants): reproducible host picks.
fn next(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *state >> 33
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Changes the `port` of a random existing host `changes` times, each
/// after the previous one was seen and `gap_ms` later; reports the time
/// from just before each write was sent to its event, and to etcd's answer.
pub async fn singles(
    path: &str,
    endpoint: &str,
    root: &str,
    settings: &Singles,
) -> Result<serde_json::Value, Error> {
    let (task, mut events) = open(path, endpoint, root, false).await?;
    let writer = gateway::client()?;
    let domains = settings.keys / 20;
    let width = domains.max(1).to_string().len();
    let mut state = settings.seed;
    let mut latencies = Vec::new();
    let mut acks = Vec::new();
    let mut lost = 0;
    for change in 0..settings.changes {
        let domain = next(&mut state) % domains.max(1);
        let host = next(&mut state) % 10 + 1;
        let key = format!("{root}/d{domain:0width$}.example.com/web{host}/port");
        let value = format!("{}", 20_000 + settings.seed % 1000 * 100 + change);
        let sent = Instant::now();
        gateway::put(&writer, endpoint, &key, &value).await?;
        acks.push(ms(sent.elapsed()));
        let deadline = tokio::time::Instant::now() + CHANGE_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some(event)) if event.key == key && event.value == value => {
                    latencies.push(ms(event.at.duration_since(sent)));
                    break;
                }
                Ok(Some(_)) => continue,
                Ok(None) => return Err(watch_ended(task).await),
                Err(_) => {
                    lost += 1;
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(settings.gap_ms)).await;
    }
    task.abort();
    Ok(serde_json::json!({
        "cmd": "watch",
        "path": path,
        "latencies_ms": latencies,
        "acks_ms": acks,
        "lost": lost,
    }))
}

/// Writes `writes` new keys under `root/burst-TAG/` one after the other,
/// each as soon as etcd acknowledged the previous one, and reports how they
/// arrived: how many, how late each was after its write was sent, how many
/// watch messages carried them, and how long after the last acknowledgement
/// the last one came. The keys are deleted afterwards. With `reopen` the
/// watch is a new stream after every batch (see [`open`]).
pub async fn burst(
    path: &str,
    endpoint: &str,
    root: &str,
    writes: u64,
    tag: &str,
    reopen: bool,
) -> Result<serde_json::Value, Error> {
    let (task, mut events) = open(path, endpoint, root, reopen).await?;
    let writer = gateway::client()?;
    let burst_root = format!("{root}/burst-{tag}");
    let mut sent_at: HashMap<String, Instant> = HashMap::new();
    let mut arrived: HashMap<String, (Instant, u64)> = HashMap::new();
    let start = Instant::now();
    for write in 0..writes {
        // 10 hosts per domain, ip then port for each, as bench/daemon.sh does.
        let host = write / 2;
        let leaf = if write % 2 == 0 { "ip" } else { "port" };
        let key = format!(
            "{burst_root}/d{:03}.example.com/web{}/{leaf}",
            host / 10,
            host % 10 + 1
        );
        let value = if leaf == "ip" {
            format!("10.200.{}.{}", host / 10, host % 10 + 1)
        } else {
            format!("{}", 9000 + host % 10)
        };
        sent_at.insert(key.clone(), Instant::now());
        gateway::put(&writer, endpoint, &key, &value).await?;
        // Take what has arrived so far without waiting.
        while let Ok(event) = events.try_recv() {
            arrived
                .entry(event.key)
                .or_insert((event.at, event.message));
        }
    }
    let last_ack = Instant::now();
    let writes_took = ms(last_ack.duration_since(start));
    let deadline = tokio::time::Instant::now() + BURST_TIMEOUT;
    while arrived.len() < sent_at.len() {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) => {
                arrived
                    .entry(event.key)
                    .or_insert((event.at, event.message));
            }
            Ok(None) => return Err(watch_ended(task).await),
            Err(_) => break,
        }
    }
    // With reopen the supervisor ends at its next batch once the receiver
    // is gone; it may also sit on a quiet stream, so it is stopped.
    drop(events);
    task.abort();
    let mut delays: Vec<f64> = Vec::new();
    let mut messages = std::collections::BTreeSet::new();
    let mut last_event = last_ack;
    for (key, sent) in &sent_at {
        if let Some((at, message)) = arrived.get(key) {
            delays.push(ms(at.duration_since(*sent)));
            messages.insert(*message);
            last_event = last_event.max(*at);
        }
    }
    delays.sort_by(f64::total_cmp);
    let late = delays.iter().filter(|d| **d >= 50.0).count();
    // Messages are numbered per stream; with reopen, count batches instead
    // as the distinct arrival instants.
    let mut arrivals: Vec<Instant> = arrived.values().map(|(at, _)| *at).collect();
    arrivals.sort();
    arrivals.dedup();
    gateway::delete_under(&writer, endpoint, &burst_root).await?;
    Ok(serde_json::json!({
        "cmd": "burst",
        "path": path,
        "writes": writes,
        "writes_took_ms": writes_took,
        "received": delays.len(),
        "missing": sent_at.len() - delays.len(),
        "delays_ms": delays,
        "late_50ms": late,
        "reopen": reopen,
        "messages": if reopen { arrivals.len() } else { messages.len() },
        "last_after_last_ack_ms": ms(last_event.duration_since(last_ack)),
    }))
}

async fn watch_ended(task: Watcher) -> Error {
    match task.await {
        Ok(Ok(_)) => "watch stream ended".into(),
        Ok(Err(e)) => format!("watch failed: {e}").into(),
        Err(e) => format!("watch task: {e}").into(),
    }
}
