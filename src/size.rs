//! Byte sizes as users write them in flags and resource files (`64MiB`,
//! `512 kB`, `1048576`), and as messages print them.

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// A size the way users write it: `64 MiB`, `512 KiB`, `100 bytes`.
pub fn format_size(bytes: u64) -> String {
    match bytes {
        0 => "0 bytes".to_string(),
        b if b % GIB == 0 => format!("{} GiB", b / GIB),
        b if b % MIB == 0 => format!("{} MiB", b / MIB),
        b if b % KIB == 0 => format!("{} KiB", b / KIB),
        1 => "1 byte".to_string(),
        b => format!("{b} bytes"),
    }
}

/// Parses a size: a whole number of bytes with an optional unit, `B`, `KB`,
/// `MB`, `GB` (powers of 1000) or `KiB`, `MiB`, `GiB` (powers of 1024), in
/// any case, a space allowed before the unit (`"16MiB"`, `"512 kb"`,
/// `"1048576"`). A bare `K`, `M` or `G` is refused: it could mean either.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err("not a size; write e.g. \"16MiB\"".to_string());
    }
    let multiplier: u64 = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000 * 1000,
        "gb" => 1000 * 1000 * 1000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "k" | "m" | "g" => {
            return Err(format!(
                "unit {unit:?} is ambiguous; write {}iB (powers of 1024) or {}B (of 1000)",
                unit.trim().to_ascii_uppercase(),
                unit.trim().to_ascii_uppercase()
            ));
        }
        _ => {
            return Err(format!(
                "unknown unit {:?}; use B, KB, MB, GB, KiB, MiB or GiB",
                unit.trim()
            ));
        }
    };
    let too_big = || "too large".to_string();
    let count: u64 = digits.parse().map_err(|_| too_big())?;
    count.checked_mul(multiplier).ok_or_else(too_big)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_bytes_or_units() {
        assert_eq!(parse_size("16MiB"), Ok(16 * MIB));
        assert_eq!(parse_size(" 16 mib "), Ok(16 * MIB));
        assert_eq!(parse_size("512KiB"), Ok(512 * KIB));
        assert_eq!(parse_size("1GiB"), Ok(GIB));
        assert_eq!(parse_size("2MB"), Ok(2_000_000));
        assert_eq!(parse_size("10kB"), Ok(10_000));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("7B"), Ok(7));
        assert!(
            parse_size("16M")
                .expect_err("ambiguous")
                .contains("ambiguous")
        );
        for bad in [
            "",
            "MiB",
            "64 MB/s",
            "-1",
            "1.5MiB",
            "16 furlongs",
            "99999999999999999999",
            "99999999999GiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes_print_in_the_largest_exact_unit() {
        assert_eq!(format_size(64 * MIB), "64 MiB");
        assert_eq!(format_size(GIB), "1 GiB");
        assert_eq!(format_size(1536 * KIB), "1536 KiB");
        assert_eq!(format_size(1536), "1536 bytes");
        assert_eq!(format_size(1), "1 byte");
    }
}
