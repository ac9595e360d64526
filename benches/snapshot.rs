//! Micro-benchmarks of the key space and the template engine, on the seed
//! layout `/services/web/<domain>/<host>/{ip,port}` (10 hosts per domain, 2 keys
//! per host). `cargo bench --bench snapshot`; no external harness.
//!
//! Each figure is the median of several samples; a sample repeats the operation
//! enough times to last at least a few milliseconds, and the figure is that
//! sample's time divided by the number of operations in it.
//!
//! Environment: `BENCH_KEYS="10000 100000"` picks the sizes; `BENCH_SAMPLES`
//! the number of samples (default 11); `BENCH_SAMPLE_MS` the minimum length of
//! a sample (default 5).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use confd::snapshot::{Snapshot, View};
use confd::template::TemplateCompiler;

/// The template `bench/run.sh` renders (the quick start's HAProxy template).
const HAPROXY_TEMPLATE: &str = include_str!("../bench/haproxy.cfg.tmpl");

const HOSTS_PER_DOMAIN: usize = 10;

/// The same keys, values and order as `bench/gen_data.py --keys N` produces
/// (the order the file backend hands them over in).
fn seed_pairs(keys: usize) -> Vec<(String, String)> {
    let domains = keys / (2 * HOSTS_PER_DOMAIN);
    let width = domains.to_string().len();
    let mut pairs = Vec::with_capacity(keys);
    for d in 0..domains {
        let domain = format!("d{d:0width$}.example.com");
        for h in 1..=HOSTS_PER_DOMAIN {
            let base = format!("/services/web/{domain}/web{h}");
            let ip = format!("10.{}.{}.{h}", (d >> 8) & 255, d & 255);
            pairs.push((format!("{base}/ip"), ip));
            pairs.push((format!("{base}/port"), (8000 + h).to_string()));
        }
    }
    pairs
}

struct Settings {
    samples: usize,
    min_sample: Duration,
}

/// Times `op` (which performs `ops` operations per call) and returns the
/// median time per operation.
fn measure(settings: &Settings, ops: usize, mut op: impl FnMut()) -> Duration {
    // Warm up, and find how many calls make one sample last long enough.
    let start = Instant::now();
    op();
    let once = start.elapsed().max(Duration::from_nanos(1));
    let calls = (settings.min_sample.as_nanos() / once.as_nanos()).clamp(1, 1_000_000) as usize;
    let mut per_op: Vec<Duration> = (0..settings.samples)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                op();
            }
            start.elapsed() / (calls * ops) as u32
        })
        .collect();
    per_op.sort();
    per_op[per_op.len() / 2]
}

fn show(duration: Duration) -> String {
    let ns = duration.as_nanos();
    if ns < 10_000 {
        format!("{ns} ns")
    } else if ns < 10_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{:.2} ms", ns as f64 / 1e6)
    }
}

fn report(keys: usize, name: &str, per_op: Duration, note: &str) {
    println!("| {keys} | {name} | {} | {note} |", show(per_op));
}

fn bench_size(settings: &Settings, keys: usize) {
    let pairs = seed_pairs(keys);
    let domains = keys / (2 * HOSTS_PER_DOMAIN);

    let t = measure(settings, 1, || {
        let snapshot = Snapshot::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        black_box(snapshot);
    });
    report(
        keys,
        "Snapshot::from_pairs",
        t,
        &format!("{keys} pairs, borrowed input"),
    );

    let snapshot = Arc::new(Snapshot::from_pairs(pairs.iter().cloned()));
    assert_eq!(snapshot.len(), keys);
    let view = View::new(snapshot.clone(), "/", &["/services/web".to_string()]);

    let t = measure(settings, 1, || {
        let children = view.children(black_box("/services/web"));
        assert_eq!(children.len(), domains);
        black_box(children);
    });
    report(
        keys,
        "View::children (ls) /services/web",
        t,
        &format!("{domains} children"),
    );

    let one_domain = format!(
        "/services/web/{}",
        pairs[0].0.split('/').nth(3).unwrap_or("")
    );
    let t = measure(settings, 1, || {
        let children = view.children(black_box(&one_domain));
        assert_eq!(children.len(), HOSTS_PER_DOMAIN);
        black_box(children);
    });
    report(keys, "View::children (ls) one domain", t, "10 children");

    let t = measure(settings, 1, || {
        let found = view.glob(black_box("/services/web/*/*/ip"));
        assert_eq!(found.len(), keys / 2);
        black_box(found);
    });
    report(
        keys,
        "View::glob (gets) /services/web/*/*/ip",
        t,
        &format!("{} matches", keys / 2),
    );

    // getv: look up every key once per call, in a scattered order.
    let lookups: Vec<&str> = (0..keys)
        .map(|i| pairs[(i * 7919) % keys].0.as_str())
        .collect();
    let t = measure(settings, lookups.len(), || {
        for key in &lookups {
            black_box(view.get(black_box(key)));
        }
    });
    report(keys, "View::get (getv)", t, "per lookup, every key once");

    // The same lookups straight on the snapshot: the binary search alone,
    // without the view's key cleaning, prefix join and root check.
    let t = measure(settings, lookups.len(), || {
        for key in &lookups {
            black_box(snapshot.get(black_box(key)));
        }
    });
    report(
        keys,
        "Snapshot::get (same keys, no View)",
        t,
        "binary search only",
    );

    let compiler = TemplateCompiler::new();
    let template = match compiler.compile("haproxy.cfg.tmpl", HAPROXY_TEMPLATE) {
        Ok(t) => t,
        Err(e) => panic!("the HAProxy template does not compile: {e}"),
    };
    let mut size = 0;
    let t = measure(settings, 1, || {
        let view = View::new(snapshot.clone(), "/", &["/services/web".to_string()]);
        match template.render(view) {
            Ok(text) => size = black_box(text).len(),
            Err(e) => panic!("render failed: {e}"),
        }
    });
    report(
        keys,
        "Template::render (HAProxy, whole tree)",
        t,
        &format!("{} KiB out", size / 1024),
    );

    // The same loops without the 2 getv calls per host: what the lookups cost
    // inside a render, as opposed to the loops, lsdir and text output.
    let server_line = HAPROXY_TEMPLATE
        .lines()
        .find(|l| l.contains("getv("))
        .unwrap_or_default();
    let without_getv = HAPROXY_TEMPLATE.replace(
        server_line,
        "    server {{ host | base }} {{ domain }}:80 check",
    );
    assert_ne!(
        without_getv, HAPROXY_TEMPLATE,
        "the HAProxy template has no getv line"
    );
    let loops_only = match compiler.compile("loops.tmpl", &without_getv) {
        Ok(t) => t,
        Err(e) => panic!("the getv-less template does not compile: {e}"),
    };
    let t = measure(settings, 1, || {
        let view = View::new(snapshot.clone(), "/", &["/services/web".to_string()]);
        match loops_only.render(view) {
            Ok(text) => black_box(text),
            Err(e) => panic!("render failed: {e}"),
        };
    });
    report(
        keys,
        "Template::render, same loops without getv",
        t,
        "lsdir + text only",
    );

    let t = measure(settings, 1, || {
        let compiled = compiler.compile("haproxy.cfg.tmpl", HAPROXY_TEMPLATE);
        black_box(compiled.is_ok());
    });
    report(
        keys,
        "TemplateCompiler::compile (HAProxy)",
        t,
        "independent of keys",
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it without.
    // Either way there is nothing to filter, so arguments are ignored, except
    // that a test run only checks that everything works, at a small size.
    let quick = !std::env::args().any(|a| a == "--bench");
    let env_usize = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    };
    let settings = Settings {
        samples: if quick {
            1
        } else {
            env_usize("BENCH_SAMPLES", 11).max(1)
        },
        min_sample: Duration::from_millis(if quick {
            0
        } else {
            env_usize("BENCH_SAMPLE_MS", 5) as u64
        }),
    };
    let sizes: Vec<usize> = if quick {
        vec![1000]
    } else {
        std::env::var("BENCH_KEYS")
            .unwrap_or_else(|_| "10000 100000".to_string())
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect()
    };

    println!("| keys | operation | median per op | note |");
    println!("|---|---|---|---|");
    let start = Instant::now();
    for keys in sizes {
        assert!(
            keys >= 20 && keys % 20 == 0,
            "key counts must be multiples of 20"
        );
        bench_size(&settings, keys);
    }
    eprintln!("(benchmarks took {:.1} s)", start.elapsed().as_secs_f64());
}
