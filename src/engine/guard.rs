//! Guards against bad data: `min_keys` refuses to render from fewer keys
//! than a resource needs, `max_shrink` from a key count that fell by more
//! than a fraction since the resource's last good render. A refusal leaves
//! dest as it is.

use crate::resource::Resource;

/// Checks the keys a resource sees now against its guards; `last_good` is
/// the count at its last successful render, if any.
pub fn check(
    resource: &Resource,
    count: usize,
    roots: &[String],
    last_good: Option<usize>,
) -> Result<(), String> {
    if let Some(min) = resource.min_keys
        && count < min
    {
        return Err(format!(
            "refusing to write: the resource sees {count} keys under {} but min_keys = {min}; dest left as it is",
            roots.join(", ")
        ));
    }
    if let (Some(max_shrink), Some(previous)) = (resource.max_shrink, last_good) {
        let floor = previous as f64 * (1.0 - max_shrink);
        if (count as f64) < floor {
            return Err(format!(
                "refusing to write: the key count fell from {previous} to {count}, more than max_shrink = {:.0}%; dest left as it is",
                max_shrink * 100.0
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn resource(extra: &str) -> Resource {
        let text = format!("[template]\nsrc = \"a\"\ndest = \"/tmp/a\"\nkeys = [\"/a\"]\n{extra}");
        match crate::resource::parse("t.toml", Path::new("t.toml"), &text, Path::new("/t"), "") {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn min_keys_refuses_fewer_keys_and_names_the_roots() {
        let r = resource("min_keys = 3\n");
        let roots = vec!["/a".to_string()];
        let refusal = check(&r, 2, &roots, None).expect_err("refused");
        assert!(
            refusal.contains("sees 2 keys under /a but min_keys = 3"),
            "{refusal}"
        );
        assert!(check(&r, 3, &roots, None).is_ok());
    }

    #[test]
    fn max_shrink_compares_with_the_last_good_count() {
        let r = resource("max_shrink = \"50%\"\n");
        assert!(
            check(&r, 1, &[], None).is_ok(),
            "no history: nothing to compare"
        );
        assert!(check(&r, 50, &[], Some(100)).is_ok());
        let refusal = check(&r, 49, &[], Some(100)).expect_err("refused");
        assert!(refusal.contains("fell from 100 to 49"), "{refusal}");
    }
}
