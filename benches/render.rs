//! The render of one change, for profiling and for A/B figures: the seed
//! layout's HAProxy template (`bench/haproxy.cfg.tmpl`) rendered over N keys,
//! R times. `cargo bench --bench render -- KEYS RENDERS [limited]`; the figure
//! printed is the median wall time of one render. `limited` renders as the
//! daemon does (`Template::render_limited`: output counted against
//! `max_output_size`, helpers checking the deadline), else `Template::render`. Under `valgrind --tool=callgrind` the
//! cost of one render is the difference between two runs with different
//! RENDERS, divided by the difference (building the data is the same in both).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use confd::snapshot::{Snapshot, View};
use confd::template::{RenderLimits, TemplateCompiler};

/// The template `bench/run.sh` renders (the quick start's HAProxy template).
const HAPROXY_TEMPLATE: &str = include_str!("../bench/haproxy.cfg.tmpl");

const HOSTS_PER_DOMAIN: usize = 10;

/// The same keys and values as `bench/gen_data.py --keys N`.
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

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it without,
    // and then a small render checks that everything works.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let keys: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let renders: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let limited = args.get(2).is_some_and(|a| a == "limited");
    assert!(
        keys >= 20 && keys.is_multiple_of(20),
        "key counts must be multiples of 20"
    );
    let snapshot = Arc::new(Snapshot::from_pairs(seed_pairs(keys)));
    let template = match TemplateCompiler::new().compile("haproxy.cfg.tmpl", HAPROXY_TEMPLATE) {
        Ok(t) => t,
        Err(e) => panic!("the HAProxy template does not compile: {e}"),
    };
    let roots = ["/services/web".to_string()];
    let mut times: Vec<Duration> = Vec::with_capacity(renders);
    let mut size = 0;
    for _ in 0..renders {
        let start = Instant::now();
        let view = View::new(snapshot.clone(), "/", &roots);
        let text = if limited {
            template
                .render_limited(view, Arc::default(), RenderLimits::default())
                .text
        } else {
            template.render(view)
        };
        match text {
            Ok(text) => size = black_box(text).len(),
            Err(e) => panic!("render failed: {e}"),
        }
        times.push(start.elapsed());
    }
    times.sort();
    if let Some(median) = times.get(times.len() / 2) {
        println!(
            "{keys} keys, {renders} renders{}: median {:.3} ms, min {:.3} ms, {size} bytes out",
            if limited { " (limited)" } else { "" },
            median.as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3
        );
    }
}
