//! Property test of the render path a change takes: a snapshot changed in
//! place by random inserts, updates and deletes (as the daemon keeps it),
//! rendered through the helpers, gives exactly the bytes of a render of a
//! snapshot built from scratch, and both equal what a plain model of the
//! key space (a sorted map, the helpers' contract spelled out naively)
//! says the template must print. The template lists the same directories
//! more than once, lists leaves and directories, and reads subtrees large
//! enough for the listing to skip them by searching.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::TemplateCompiler;
use crate::snapshot::{Snapshot, View};

/// Lists `/svc` twice, every child of each directory, the values of the
/// leaves, a glob and the top level.
const TEMPLATE: &str = r#"{% for d in lsdir(key="/svc") %}[{{ d }}]{% for h in ls(key="/svc/" ~ d) %} {{ ("/svc/" ~ d ~ "/" ~ h) | base }}={% if exists(key="/svc/" ~ d ~ "/" ~ h) %}{{ getv(key="/svc/" ~ d ~ "/" ~ h) }}{% else %}{{ lsdir(key="/svc/" ~ d ~ "/" ~ h) | length }}/{{ ls(key="/svc/" ~ d ~ "/" ~ h) | join(sep=",") }}{% endif %}{% endfor %}
{% endfor %}{% for d in lsdir(key="/svc") %}{{ d }};{% endfor %}|{% for p in gets(key="/svc/*/*") %}{{ p.key }}={{ p.value }};{% endfor %}|{{ getvs(key="/svc/*/*") | join(sep=",") }}|{{ ls(key="/") | join(sep=",") }}|{{ getv(key="/svc/d0/h0", default="none") }}"#;

/// A deterministic generator (splitmix64): the same seed, the same changes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A key from a small space, so that changes collide: directories, leaves
/// beside directories of the same name's prefix (`h1` and `h1-x`), and
/// hosts with up to 12 keys below them.
fn random_key(rng: &mut Rng) -> String {
    let top = ["svc", "svc", "svc", "other"][rng.below(4) as usize];
    let dir = format!("d{}", rng.below(4));
    match rng.below(6) {
        0 => format!("/{top}/{dir}"),
        1 => format!("/{top}/{dir}/h{}-x", rng.below(2)),
        2 | 3 => format!("/{top}/{dir}/h{}", rng.below(3)),
        _ => format!("/{top}/{dir}/h{}/k{}", rng.below(3), rng.below(12)),
    }
}

fn random_value(rng: &mut Rng) -> String {
    ["", "a", "10.0.0.1", "b b", "8080", "z"][rng.below(6) as usize].to_string()
}

/// The direct children of `dir` in `model`: name → has children.
fn children(model: &BTreeMap<String, String>, dir: &str) -> BTreeMap<String, bool> {
    let below = if dir == "/" {
        "/".to_string()
    } else {
        format!("{dir}/")
    };
    let mut found: BTreeMap<String, bool> = BTreeMap::new();
    for key in model.keys() {
        if let Some(rest) = key.strip_prefix(&below) {
            let (name, deeper) = match rest.split_once('/') {
                Some((name, _)) => (name, true),
                None => (rest, false),
            };
            *found.entry(name.to_string()).or_default() |= deeper;
        }
    }
    found
}

/// What [`TEMPLATE`] must print for `model`, from the helpers' contract.
fn expected(model: &BTreeMap<String, String>) -> String {
    let dirs: Vec<String> = children(model, "/svc")
        .into_iter()
        .filter(|(_, is_dir)| *is_dir)
        .map(|(name, _)| name)
        .collect();
    let mut out = String::new();
    for d in &dirs {
        out.push_str(&format!("[{d}]"));
        for h in children(model, &format!("/svc/{d}")).keys() {
            let key = format!("/svc/{d}/{h}");
            out.push_str(&format!(" {h}="));
            match model.get(&key) {
                Some(value) => out.push_str(value),
                None => {
                    let below = children(model, &key);
                    let names: Vec<&str> = below.keys().map(String::as_str).collect();
                    let subdirs = below.values().filter(|is_dir| **is_dir).count();
                    out.push_str(&format!("{subdirs}/{}", names.join(",")));
                }
            }
        }
        out.push('\n');
    }
    for d in &dirs {
        out.push_str(&format!("{d};"));
    }
    out.push('|');
    let globbed: Vec<(&String, &String)> = model
        .iter()
        .filter(|(k, _)| {
            k.strip_prefix("/svc/")
                .is_some_and(|rest| rest.split('/').count() == 2)
        })
        .collect();
    for (k, v) in &globbed {
        out.push_str(&format!("{k}={v};"));
    }
    out.push('|');
    let mut values: Vec<&str> = globbed.iter().map(|(_, v)| v.as_str()).collect();
    values.sort();
    out.push_str(&values.join(","));
    out.push('|');
    let top: Vec<String> = children(model, "/").into_keys().collect();
    out.push_str(&top.join(","));
    out.push('|');
    out.push_str(model.get("/svc/d0/h0").map_or("none", String::as_str));
    out
}

fn render(snapshot: &Arc<Snapshot>, template: &super::Template) -> String {
    match template.render(View::new(snapshot.clone(), "/", &["/".to_string()])) {
        Ok(text) => text,
        Err(e) => panic!("render failed: {e}"),
    }
}

#[test]
fn a_snapshot_changed_in_place_renders_the_bytes_of_a_fresh_one() {
    let template = match TemplateCompiler::new().compile("change.tmpl", TEMPLATE) {
        Ok(t) => t,
        Err(e) => panic!("the test template does not compile: {e}"),
    };
    for seed in 0..40u64 {
        let mut rng = Rng(seed);
        let mut model: BTreeMap<String, String> = BTreeMap::new();
        for _ in 0..rng.below(200) {
            model.insert(random_key(&mut rng), random_value(&mut rng));
        }
        let mut kept = Snapshot::from_pairs(model.iter());
        for step in 0..60 {
            let key = random_key(&mut rng);
            match rng.below(5) {
                0 => {
                    let removed = kept.remove(&key);
                    assert_eq!(removed, model.remove(&key).is_some(), "seed {seed}");
                }
                1 => {
                    kept.remove_tree(&key);
                    let below = format!("{key}/");
                    let gone: BTreeSet<String> = model
                        .keys()
                        .filter(|k| **k == key || k.starts_with(&below))
                        .cloned()
                        .collect();
                    model.retain(|k, _| !gone.contains(k));
                }
                _ => {
                    let value = random_value(&mut rng);
                    kept.insert(&key, &value);
                    model.insert(key, value);
                }
            }
            let changed = render(&Arc::new(kept.clone()), &template);
            let fresh = render(&Arc::new(Snapshot::from_pairs(model.iter())), &template);
            assert_eq!(changed, fresh, "seed {seed}, step {step}");
            assert_eq!(changed, expected(&model), "seed {seed}, step {step}");
        }
    }
}

#[test]
fn keys_are_spelled_as_the_model_spells_them() {
    // The model above writes clean keys only; the view must find them the
    // same way however a template spells them.
    let snapshot = Arc::new(Snapshot::from_pairs([("/svc/d0/h0", "v")]));
    let view = View::new(snapshot, "/", &["/".to_string()]);
    for spelling in [
        "/svc/d0/h0",
        "svc/d0/h0",
        "//svc/d0/h0/",
        "/svc/./d0/h0",
        "/svc/x/../d0/h0",
    ] {
        assert_eq!(view.get(spelling), Some("v"), "{spelling}");
    }
    for missing in ["/svc/d0", "/svc/d0/h0/..x", "/svc/d0/h"] {
        assert_eq!(view.get(missing), None, "{missing}");
    }
}

#[test]
fn a_buffer_sized_from_the_last_render_keeps_the_bytes_and_the_cap() {
    let template = match TemplateCompiler::new().compile("change.tmpl", TEMPLATE) {
        Ok(t) => t,
        Err(e) => panic!("the test template does not compile: {e}"),
    };
    let mut rng = Rng(7);
    let mut model: BTreeMap<String, String> = BTreeMap::new();
    for _ in 0..150 {
        model.insert(random_key(&mut rng), random_value(&mut rng));
    }
    let snapshot = Arc::new(Snapshot::from_pairs(model.iter()));
    let view = || View::new(snapshot.clone(), "/", &["/".to_string()]);
    let limited = |max_output: usize| {
        let limits = super::RenderLimits {
            max_output,
            ..Default::default()
        };
        template.render_limited(view(), Arc::default(), limits).text
    };
    let first = match limited(super::DEFAULT_MAX_OUTPUT) {
        Ok(text) => text,
        Err(e) => panic!("render failed: {e}"),
    };
    assert_eq!(first, expected(&model));
    // The next buffer is sized past the last length, but never past the cap:
    // exactly the length still renders, one byte less is over the limit.
    assert_eq!(limited(first.len()).ok().as_deref(), Some(first.as_str()));
    match limited(first.len() - 1) {
        Err(super::TemplateError::Limit { exceeded, .. }) => {
            assert_eq!(exceeded, super::LimitExceeded::Output(first.len() - 1));
        }
        other => panic!("expected the output limit, got {other:?}"),
    }
    assert_eq!(limited(super::DEFAULT_MAX_OUTPUT).ok(), Some(first));
}
